/**
 * Pull: registry -> local store. Manifests (OCI or Docker schema 2) and indexes are stored
 * byte-for-byte (their digests are the image's identity); blobs stream into the store with
 * digest verification. Blobs already in the store are not downloaded again, and the reference is
 * set only after everything it needs is stored, so an interrupted pull leaves no broken image.
 */
import { UserError } from "../errors";
import { checkLayerStack } from "../image/layer-safety";
import { log } from "../log";
import { OciLayout } from "../image/layout";
import { normalizeReference, parseReference } from "../common/reference";
import { Descriptor, Index, Manifest, Platform } from "../image/types";
import { ClientOptions, RegistryClient } from "./client";
import {
  TransferStats,
  displayRef,
  downloadBlob,
  fetchManifest,
  isIndexMediaType,
  parsePlatform,
  platformMatches,
  platformString,
  transferImageBlobs,
} from "./remote";

export interface PullOptions extends ClientOptions {
  store: OciLayout;
  /** "linux/arm64": for an index, store only this platform's manifest and blobs (default: all). */
  platform?: string | Platform;
  /** Store under this name instead of the pulled reference. */
  tagAs?: string;
  /** Reuse an open client (the image cache pulls many images from one registry). */
  client?: RegistryClient;
  /** Parallel blob downloads (default 3). */
  concurrency?: number;
  /**
   * Store the platform's manifest itself under the name instead of the index (the image cache
   * keeps one platform per image).
   */
  flattenToPlatform?: boolean;
}

export interface PullResult {
  /** Digest of what the reference now points at (index or manifest). */
  digest: string;
  mediaType: string;
  size: number;
  /** The platform-specific manifest when a platform was asked for (or the image is single-platform). */
  manifestDigest?: string;
  /** Platforms of the index children that were stored. */
  platforms: string[];
  /** Blob transfer counters. */
  blobsDownloaded: number;
  bytesDownloaded: number;
  blobsSkipped: number;
  /** Downloads that resumed a partial file (Range request) instead of starting over. */
  blobsResumed: number;
}

export async function pullImage(reference: string, opts: PullOptions): Promise<PullResult> {
  const ref = parseReference(reference);
  const what = displayRef(ref);
  const store = opts.store;
  await store.init();
  const client = opts.client ?? (await RegistryClient.open(ref.domain, opts));
  const stats: TransferStats = { blobs: 0, bytes: 0, skipped: 0, resumed: 0 };
  const want = typeof opts.platform === "string" ? parsePlatform(opts.platform) : opts.platform;
  try {
    const top = await fetchManifest(client, ref.path, ref.digest ?? ref.tag ?? "latest", what);
    const repo = ref.path;
    // A layer stack that could write outside its rootfs is refused before the reference is set.
    const fetchImage = async (m: Manifest) => {
      await transferImageBlobs(store, client.host, repo, m, opts.concurrency ?? 3, (d) =>
        downloadBlob(client, store, repo, d, stats),
      );
      await checkLayerStack(
        store,
        m.layers.map((l) => l.digest),
        { what: `pulling ${what}` },
      );
    };
    let stored: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    let manifestDigest: string | undefined;
    const platforms: string[] = [];
    if (isIndexMediaType(top.mediaType)) {
      const idx = top.json as Index;
      const children = want ? idx.manifests.filter((d) => platformMatches(want, d.platform)) : idx.manifests;
      if (children.length === 0)
        throw new UserError(
          `${what} on ${client.host} has no ${want ? platformString(want) : ""} image; it offers: ${idx.manifests.map((d) => platformString(d.platform)).join(", ") || "nothing"}`,
        );
      for (const child of children) {
        const m = await fetchManifest(client, repo, child.digest, `${what}@${child.digest}`);
        if (isIndexMediaType(m.mediaType))
          throw new UserError(`${what}: nested indexes are not supported (${child.digest})`);
        await fetchImage(m.json as Manifest);
        await store.putBlob(m.bytes, m.mediaType);
        platforms.push(platformString(child.platform));
        if (want || children.length === 1) manifestDigest ??= child.digest;
        if (want && opts.flattenToPlatform)
          stored = {
            mediaType: m.mediaType,
            digest: m.digest,
            size: m.bytes.length,
            ...(child.platform ? { platform: child.platform } : {}),
          };
      }
    } else {
      await fetchImage(top.json as Manifest);
      manifestDigest = top.digest;
      const cfg = await store
        .readJson<{ architecture?: string; os?: string; variant?: string }>(
          (top.json as Manifest).config.digest,
        )
        .catch(() => undefined);
      if (cfg?.architecture && cfg.os)
        platforms.push(
          platformString({
            os: cfg.os,
            architecture: cfg.architecture,
            ...(cfg.variant ? { variant: cfg.variant } : {}),
          }),
        );
      if (
        want &&
        cfg?.architecture &&
        !platformMatches(want, {
          os: cfg.os ?? "linux",
          architecture: cfg.architecture,
          ...(cfg.variant ? { variant: cfg.variant } : {}),
        })
      )
        log.warn(`${what} is a single-platform image for ${platforms[0]}, not ${platformString(want)}`);
    }
    if (stored.digest === top.digest) await store.putBlob(top.bytes, top.mediaType);
    const name = opts.tagAs ?? normalizeReference(reference);
    await store.setRef(name, stored);
    return {
      digest: stored.digest,
      mediaType: stored.mediaType,
      size: stored.size,
      ...(manifestDigest ? { manifestDigest } : {}),
      platforms,
      blobsDownloaded: stats.blobs,
      bytesDownloaded: stats.bytes,
      blobsSkipped: stats.skipped,
      blobsResumed: stats.resumed,
    };
  } finally {
    if (!opts.client) client.close();
  }
}

/**
 * Registry operations shared by push, pull and the container-image cache: manifests by
 * reference, blob downloads into the store, and a small record of which repositories are known to
 * hold which blobs (so a push can ask for a cross-repository mount instead of uploading).
 */
import * as path from "node:path";
import { UserError, isTransient } from "../errors";
import { acquireLock, readJsonIfExists, writeJsonAtomic } from "../fsutil";
import { formatBytes, progress } from "../log";
import { OciLayout, digestOf } from "../image/layout";
import { Reference } from "../image/reference";
import { Descriptor, Index, Manifest, MediaTypes, Platform } from "../image/types";
import { repositoryScope } from "./auth";
import { RegistryClient, headerString, readBody } from "./client";

export const MANIFEST_ACCEPT = [
  MediaTypes.manifest,
  MediaTypes.index,
  MediaTypes.dockerManifest,
  MediaTypes.dockerManifestList,
].join(", ");

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaTypes.index || mt === MediaTypes.dockerManifestList;
}

export function displayRef(ref: Reference): string {
  return `${ref.path}${ref.tag ? ":" + ref.tag : ""}${ref.digest ? "@" + ref.digest : ""}`;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  json: Manifest | Index;
}

/** GET a manifest or index by tag or digest; verifies the digest when the reference pins one. */
export async function fetchManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
  what: string,
): Promise<FetchedManifest> {
  const res = await client.request("GET", `/v2/${repo}/manifests/${reference}`, {
    headers: { Accept: MANIFEST_ACCEPT },
    scopes: [repositoryScope(repo, ["pull"])],
    expect: [200, 404],
    what: `${client.host}/${repo}`,
  });
  const bytes = await readBody(res.body);
  if (res.status === 404) throw new UserError(`manifest unknown: ${what} not found on ${client.host}`);
  const digest = digestOf(bytes);
  if (reference.startsWith("sha256:") && digest !== reference)
    throw new UserError(
      `manifest ${what} from ${client.host} has digest ${digest}, expected ${reference}: refusing it`,
    );
  let json: Manifest | Index;
  try {
    json = JSON.parse(bytes.toString("utf8")) as Manifest | Index;
  } catch {
    throw new UserError(`manifest ${what} from ${client.host} is not JSON`);
  }
  const ct = headerString(res.headers["content-type"])?.split(";")[0]?.trim();
  const mediaType =
    json.mediaType ??
    (ct && ct !== "application/json" ? ct : "manifests" in json ? MediaTypes.index : MediaTypes.manifest);
  if (json.schemaVersion !== 2 || (!("manifests" in json) && !("layers" in json)))
    throw new UserError(
      `${what} on ${client.host} uses an unsupported manifest format (${mediaType}); only OCI and Docker schema 2 are supported`,
    );
  return { bytes, digest, mediaType, json };
}

export function platformString(p: Platform | undefined): string {
  if (!p) return "unknown";
  return `${p.os}/${p.architecture}${p.variant ? "/" + p.variant : ""}`;
}

/** "linux/arm64/v8" -> Platform. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture)
    throw new UserError(`invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  if (!want.variant) return true;
  // arm64 images often omit the (only) variant v8.
  return want.variant === (have.variant ?? (have.architecture === "arm64" ? "v8" : undefined));
}

export interface TransferStats {
  blobs: number;
  bytes: number;
  skipped: number;
}

/**
 * Downloads one blob into the store unless it is already there. The content streams straight
 * into the store and is verified; a mismatch stores nothing. A transient failure retries this blob
 * only (earlier blobs stay stored, so a re-run also fetches only what is missing).
 */
export async function downloadBlob(
  client: RegistryClient,
  store: OciLayout,
  repo: string,
  d: Descriptor,
  stats: TransferStats,
): Promise<void> {
  if (await store.hasBlob(d.digest)) {
    stats.skipped++;
    return;
  }
  const bar = progress(`${d.digest.slice(7, 19)}: downloading`, d.size);
  try {
    await client.retry(
      async () => {
        const res = await client.request("GET", `/v2/${repo}/blobs/${d.digest}`, {
          scopes: [repositoryScope(repo, ["pull"])],
          expect: [200, 404],
          what: `${client.host}/${repo}`,
          noRetry: true,
        });
        if (res.status === 404) {
          res.body.resume();
          throw new UserError(`blob unknown: ${d.digest} of ${repo} is missing on ${client.host}`);
        }
        try {
          await store.putBlobStream(res.body, { digest: d.digest, size: d.size }, (n) => bar.update(n));
        } catch (err) {
          res.body.destroy();
          if (isTransient(err)) throw err;
          throw new UserError(
            `downloading ${d.digest} of ${client.host}/${repo}: ${(err as Error).message}`,
            { cause: err },
          );
        }
      },
      `download ${d.digest.slice(0, 19)} (${formatBytes(d.size)})`,
    );
  } finally {
    bar.end();
  }
  stats.blobs++;
  stats.bytes += d.size;
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure wins. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

// ---- where blobs are known to live (for cross-repository mounts) ----

function sourcesFile(store: OciLayout): string {
  return path.join(path.dirname(store.root), `${path.basename(store.root)}.blob-sources.json`);
}

/** Records that `registry/repo` holds these blobs. */
export async function recordBlobSources(
  store: OciLayout,
  registry: string,
  repo: string,
  digests: string[],
): Promise<void> {
  const file = sourcesFile(store);
  const release = await acquireLock(file + ".lock", `blob source record ${file}`);
  try {
    const all = (await readJsonIfExists<Record<string, string[]>>(file)) ?? {};
    const where = `${registry}/${repo}`;
    for (const d of digests) {
      const list = (all[d] ?? []).filter((w) => w !== where);
      all[d] = [where, ...list].slice(0, 8);
    }
    await writeJsonAtomic(file, all);
  } finally {
    await release();
  }
}

/** Other repositories on `registry` known to hold `digest`. */
export async function blobSources(
  store: OciLayout,
  registry: string,
  repo: string,
  digest: string,
): Promise<string[]> {
  const all = (await readJsonIfExists<Record<string, string[]>>(sourcesFile(store))) ?? {};
  return (all[digest] ?? [])
    .filter((w) => w.startsWith(registry + "/") && w !== `${registry}/${repo}`)
    .map((w) => w.slice(registry.length + 1));
}

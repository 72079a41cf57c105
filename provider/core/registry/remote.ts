/**
 * Registry operations shared by push, pull and the container-image cache: manifests by
 * reference, blob downloads into the store, and a small record of which repositories are known to
 * hold which blobs (so a push can ask for a cross-repository mount instead of uploading).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { TransientError, UserError, isTransient } from "../errors";
import { acquireLock, readJsonIfExists, writeJsonAtomic } from "../fsutil";
import { describeFsWriteError } from "../limits";
import { formatBytes } from "../log";
import { progressTask } from "../progress";
import { OciLayout, digestHex, digestOf } from "../image/layout";
import { Reference } from "../common/reference";
import { mapLimit } from "../common/limit";
import { Descriptor, Index, Manifest, MediaTypes, Platform } from "../image/types";
import { repositoryScope } from "./auth";
import { RegistryClient, headerString, readBody } from "./client";
import { toRegistryError } from "./registry-error";

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

/** Like distribution's own limit on manifest bodies. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

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
  let bytes: Buffer;
  try {
    bytes = await readBody(res.body, MAX_MANIFEST_BYTES);
  } catch (err) {
    throw toRegistryError(err, { registry: client.host, repository: repo, object: `manifest ${reference}` });
  }
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
  /** Downloads that continued a partial file with a Range request. */
  resumed: number;
}

/**
 * Downloads one blob into the store unless it is already there. The bytes go to a partial file
 * named after the digest (under the store's tmp dir, locked against a concurrent pull of the same
 * blob); after a transient failure, or in the next run after an interruption, the download
 * resumes from the partial file's end with an HTTP Range request (registries answer 206; a 200
 * restarts from zero). The finished file is verified (size and sha256) before it is renamed into
 * the store: a mismatch deletes it and stores nothing. Other blobs are unaffected by one blob's
 * failure, so a re-run fetches only what is missing.
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
  const partial = path.join(store.tmpDir(), `pull-${digestHex(d.digest)}.partial`);
  // A local write that failed (disk full, permissions): final, named by blob, image and file.
  const writeFailure = (err: unknown): UserError =>
    new UserError(
      `downloading blob ${d.digest} of ${client.host}/${repo} into ${partial}: ${describeFsWriteError(err, store.root)}`,
      { cause: err },
    );
  await fs.promises.mkdir(store.tmpDir(), { recursive: true }).catch((err: unknown) => {
    throw writeFailure(err);
  });
  const release = await acquireLock(`${partial}.lock`, `download of ${d.digest}`, 30 * 60_000);
  const bar = progressTask("pull", d.digest.slice(7, 19), d.size);
  try {
    if (await store.hasBlob(d.digest)) {
      // Another process finished it while we waited for the lock.
      stats.skipped++;
      return;
    }
    await client.retry(
      async () => {
        let offset = await fs.promises.stat(partial).then(
          (st) => st.size,
          () => 0,
        );
        if (offset > d.size) {
          await fs.promises.rm(partial, { force: true });
          offset = 0;
        }
        const res = await client.request("GET", `/v2/${repo}/blobs/${d.digest}`, {
          ...(offset > 0 ? { headers: { Range: `bytes=${offset}-` } } : {}),
          scopes: [repositoryScope(repo, ["pull"])],
          expect: [200, 206, 404, 416],
          what: `${client.host}/${repo}`,
          noRetry: true,
        });
        if (res.status === 404) {
          res.body.resume();
          throw new UserError(`blob unknown: ${d.digest} of ${repo} is missing on ${client.host}`);
        }
        // The hash runs as the bytes arrive (one pass over the data); after a resume the part
        // already on disk is hashed first.
        let hash: crypto.Hash | undefined;
        if (res.status === 416) {
          // Nothing left to fetch (or the partial file is bad): verify below / start over.
          res.body.resume();
        } else {
          if (res.status === 200) offset = 0;
          stats.resumed += offset > 0 ? 1 : 0;
          const h = crypto.createHash("sha256");
          if (offset > 0)
            for await (const c of fs.createReadStream(partial, { end: offset - 1 })) h.update(c as Buffer);
          hash = h;
          let got = offset;
          // Every byte received is on disk before an error surfaces (a stream pipeline may drop
          // buffered writes when it is torn down), so a resume starts exactly where this stopped.
          const fh = await fs.promises.open(partial, offset > 0 ? "a" : "w", 0o644).catch((err: unknown) => {
            throw writeFailure(err);
          });
          let pending: Buffer[] = [];
          let pendingBytes = 0;
          const flush = async () => {
            if (!pendingBytes) return;
            const buf = Buffer.concat(pending, pendingBytes);
            pending = [];
            pendingBytes = 0;
            // A write may take only part of the buffer (a nearly full disk): write the rest, so
            // the next write reports why (ENOSPC) instead of the file silently coming up short.
            for (let at = 0; at < buf.length;) at += (await fh.write(buf, at)).bytesWritten;
          };
          try {
            // 'data' events (not an async iterator) so no received chunk is dropped when the
            // connection breaks right after it: a destroyed stream discards unread buffers.
            await new Promise<void>((resolve, reject) => {
              let writing: Promise<void> = Promise.resolve();
              res.body.on("data", (c: Buffer) => {
                h.update(c);
                got += c.length;
                pending.push(c);
                pendingBytes += c.length;
                bar.update(got);
                if (pendingBytes >= 1 << 20) {
                  res.body.pause();
                  writing = writing.then(flush).then(
                    () => {
                      res.body.resume();
                    },
                    (err: unknown) => {
                      res.body.destroy(err as Error);
                    },
                  );
                }
              });
              res.body.once("end", () => writing.then(flush).then(resolve, reject));
              res.body.once("error", (err) => writing.then(flush).then(() => reject(err), reject));
              // The connection may have broken before these listeners were attached.
              if (res.body.errored) reject(res.body.errored);
              else if (res.body.destroyed && !res.body.readableEnded)
                reject(
                  new TransientError(
                    `connection to ${client.host} closed during the download of ${d.digest}`,
                  ),
                );
            });
          } catch (err) {
            res.body.destroy();
            await flush().catch(() => undefined);
            // Keep the partial file: the retry resumes from its end.
            if (isTransient(err)) throw err;
            throw writeFailure(err);
          } finally {
            await fh.close();
          }
        }
        const size = await fs.promises.stat(partial).then(
          (st) => st.size,
          () => 0,
        );
        if (size < d.size && res.status !== 416)
          throw new TransientError(`download of ${d.digest} ended early (${size} of ${d.size} bytes)`);
        const digest =
          size !== d.size ? "(wrong size)" : hash ? "sha256:" + hash.digest("hex") : await hashFile(partial);
        if (digest !== d.digest) {
          await fs.promises.rm(partial, { force: true });
          throw new UserError(
            `downloading ${d.digest} of ${client.host}/${repo}: content verification failed: expected ${d.digest} (${d.size} bytes), got ${digest} (${size} bytes); nothing was stored`,
          );
        }
        // Verified: the store's invariant (a blob file exists only with its full content) holds.
        try {
          await fs.promises.mkdir(path.dirname(store.blobPath(d.digest)), { recursive: true });
          await fs.promises.rename(partial, store.blobPath(d.digest));
        } catch (err) {
          throw writeFailure(err);
        }
      },
      `download ${d.digest.slice(0, 19)} (${formatBytes(d.size)})`,
      { repository: repo, object: `blob ${d.digest}` },
    );
  } finally {
    bar.end();
    await release();
  }
  stats.blobs++;
  stats.bytes += d.size;
}

async function hashFile(file: string): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return "sha256:" + h.digest("hex");
}

// ---- where blobs are known to live (for cross-repository mounts) ----

function sourcesFile(store: OciLayout): string {
  return path.join(path.dirname(store.root), `${path.basename(store.root)}.blob-sources.json`);
}

/** Records that `registry/repo` holds these blobs. */
async function recordBlobSources(
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

/**
 * Moves an image's config and layers with `one` (at most `limit` at once), then records that
 * `registry/repo` holds them: a hint for later cross-repository mounts, so failing to record it
 * fails nothing.
 */
export async function transferImageBlobs(
  store: OciLayout,
  registry: string,
  repo: string,
  m: Manifest,
  limit: number,
  one: (d: Descriptor) => Promise<unknown>,
): Promise<void> {
  const blobs = [m.config, ...m.layers];
  await mapLimit(blobs, limit, one);
  await recordBlobSources(
    store,
    registry,
    repo,
    blobs.map((b) => b.digest),
  ).catch(() => undefined);
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

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Transform } from "node:stream";
import { UserError } from "../errors";
import { acquireLock, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../fsutil";
import { ownedTempPath, removeOnSignal } from "../temp-owner";
import { normalizeReference } from "../common/reference";
import { Annotations, Descriptor, Index, MediaTypes } from "./types";

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new UserError(`"${digest}" is not a sha256 digest`);
  return m[1] as string;
}

export function digestOf(data: string | Uint8Array): string {
  return "sha256:" + crypto.createHash("sha256").update(data).digest("hex");
}

/**
 * An OCI image layout on disk (image-spec "image-layout"): `oci-layout`, `index.json` and
 * `blobs/sha256/<hex>`. This is the local store; skopeo (`oci:<dir>:<ref>`) and umoci read it.
 *
 * Invariants:
 * - a blob file exists only with its full, verified content (written to a temp file, hashed,
 *   renamed);
 * - index.json is replaced atomically under a lock, so a failed build or pull leaves it as it was;
 * - each index entry carries the full normalised reference in `org.opencontainers.image.ref.name`.
 */
export class OciLayout {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await fs.promises.mkdir(path.join(this.root, "blobs", "sha256"), { recursive: true });
    await fs.promises.mkdir(this.tmpDir(), { recursive: true });
    const marker = path.join(this.root, "oci-layout");
    if (!fs.existsSync(marker)) await writeJsonAtomic(marker, { imageLayoutVersion: "1.0.0" });
    const idx = path.join(this.root, "index.json");
    if (!fs.existsSync(idx))
      await writeJsonAtomic(idx, { schemaVersion: 2, mediaType: MediaTypes.index, manifests: [] });
  }

  tmpDir(): string {
    return path.join(this.root, "tmp");
  }

  blobPath(digest: string): string {
    return path.join(this.root, "blobs", "sha256", digestHex(digest));
  }

  async hasBlob(digest: string): Promise<boolean> {
    try {
      await fs.promises.access(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Marks a blob that is there as just written, for a writer that finds its content already
   * stored: `sealer prune` keeps an unreferenced blob only when it is newer than a running
   * build's lease (see pruneStore), so a reused blob must look as new as a written one. False
   * when the blob is not there (or cannot be touched): the caller then writes it, which also
   * covers a prune that moved it away between a presence check and its use.
   */
  async refreshBlob(digest: string): Promise<boolean> {
    const now = new Date();
    try {
      await fs.promises.utimes(this.blobPath(digest), now, now);
      return true;
    } catch {
      return false;
    }
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await fs.promises.readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        throw new UserError(
          `blob ${digest} is missing from the store at ${this.root}; pull or rebuild the image`,
        );
      throw err;
    }
  }

  async readJson<T>(digest: string): Promise<T> {
    return JSON.parse((await this.readBlob(digest)).toString("utf8")) as T;
  }

  /** Stores bytes; returns the descriptor. */
  async putBlob(
    data: Uint8Array | string,
    mediaType: string,
    annotations?: Record<string, string>,
  ): Promise<Descriptor> {
    const buf = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
    const digest = digestOf(buf);
    if (!(await this.refreshBlob(digest))) await writeFileAtomic(this.blobPath(digest), buf, 0o644);
    return { mediaType, digest, size: buf.length, ...(annotations ? { annotations } : {}) };
  }

  /** Stores a JSON document with canonical formatting (no extra whitespace). */
  async putJson(value: unknown, mediaType: string): Promise<Descriptor> {
    return this.putBlob(JSON.stringify(value), mediaType);
  }

  /**
   * Streams content into the store, verifying size and digest when `expected` is given; a
   * mismatch deletes the temp file and throws: nothing is stored.
   */
  async putBlobStream(
    source: Readable | AsyncIterable<Uint8Array>,
    expected?: { digest: string; size?: number },
    onBytes?: (n: number) => void,
  ): Promise<{ digest: string; size: number }> {
    await fs.promises.mkdir(this.tmpDir(), { recursive: true });
    const tmp = ownedTempPath(this.tmpDir(), "blob");
    const release = removeOnSignal(tmp);
    const hash = crypto.createHash("sha256");
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        onBytes?.(size);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(
        source instanceof Readable ? source : Readable.from(source),
        meter,
        fs.createWriteStream(tmp, { mode: 0o644 }),
      );
      const digest = "sha256:" + hash.digest("hex");
      if (expected && (expected.digest !== digest || (expected.size !== undefined && expected.size !== size)))
        throw new Error(
          `content verification failed: expected ${expected.digest} (${expected.size ?? "?"} bytes), got ${digest} (${size} bytes); nothing was stored`,
        );
      await fs.promises.mkdir(path.dirname(this.blobPath(digest)), { recursive: true });
      await fs.promises.rename(tmp, this.blobPath(digest));
      return { digest, size };
    } finally {
      await fs.promises.rm(tmp, { force: true });
      release();
    }
  }

  /** Moves/copies a finished file into the store (hashing it); the source is consumed. */
  async putBlobFile(file: string): Promise<{ digest: string; size: number }> {
    const hash = crypto.createHash("sha256");
    let size = 0;
    for await (const chunk of fs.createReadStream(file)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const digest = "sha256:" + hash.digest("hex");
    const dest = this.blobPath(digest);
    if (await this.refreshBlob(digest)) {
      await fs.promises.rm(file, { force: true });
    } else {
      await fs.promises.chmod(file, 0o644);
      try {
        await fs.promises.rename(file, dest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
        await writeFileAtomic(dest, await fs.promises.readFile(file));
        await fs.promises.rm(file, { force: true });
      }
    }
    return { digest, size };
  }

  async readIndex(): Promise<Index> {
    const file = path.join(this.root, "index.json");
    const broken = () =>
      new UserError(
        `the image store's index ${file} is damaged (not an OCI index); restore it from a backup, or remove the store to start afresh`,
      );
    const idx = await readJsonIfExists<Index>(file).catch(() => {
      throw broken();
    });
    if (idx === undefined) return { schemaVersion: 2, mediaType: MediaTypes.index, manifests: [] };
    if (!idx || typeof idx !== "object" || !Array.isArray(idx.manifests)) throw broken();
    return idx;
  }

  /** Index entries with their normalised reference names. */
  async listRefs(): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
    const idx = await this.readIndex();
    return idx.manifests
      .filter((d) => d.annotations?.[Annotations.refName])
      .map((d) => ({ ref: d.annotations![Annotations.refName]!, descriptor: d }));
  }

  /** The descriptor a reference (any form) points at, or undefined. */
  async resolve(reference: string): Promise<Descriptor | undefined> {
    const ref = normalizeReference(reference);
    return (await this.listRefs()).find((e) => e.ref === ref)?.descriptor;
  }

  /** Runs `fn` on the index under the store lock and writes its result atomically. */
  async updateIndex(fn: (idx: Index) => Index | Promise<Index>): Promise<void> {
    await this.init();
    const release = await acquireLock(path.join(this.root, "index.lock"), `image store ${this.root}`);
    try {
      const next = await fn(await this.readIndex());
      await writeJsonAtomic(path.join(this.root, "index.json"), next);
    } finally {
      await release();
    }
  }

  /** Points `reference` at `descriptor` (a manifest or an index), replacing any previous target. */
  async setRef(reference: string, descriptor: Descriptor): Promise<void> {
    await this.setRefs([[normalizeReference(reference), descriptor]]);
  }

  /** Sets several normalised references in one index write: all of them or none. */
  async setRefs(entries: Array<[ref: string, descriptor: Descriptor]>): Promise<void> {
    const refs = new Set(entries.map(([ref]) => ref));
    await this.updateIndex((idx) => ({
      ...idx,
      manifests: [
        ...idx.manifests.filter((d) => !refs.has(d.annotations?.[Annotations.refName] ?? "")),
        ...entries.map(([ref, descriptor]) => ({
          mediaType: descriptor.mediaType,
          digest: descriptor.digest,
          size: descriptor.size,
          ...(descriptor.platform ? { platform: descriptor.platform } : {}),
          annotations: { ...(descriptor.annotations ?? {}), [Annotations.refName]: ref },
        })),
      ].sort((a, b) =>
        (a.annotations?.[Annotations.refName] ?? "").localeCompare(
          b.annotations?.[Annotations.refName] ?? "",
        ),
      ),
    }));
  }

  /** Removes a reference; returns whether it existed. */
  async removeRef(reference: string): Promise<boolean> {
    const ref = normalizeReference(reference);
    let found = false;
    await this.updateIndex((idx) => {
      const manifests = idx.manifests.filter((d) => d.annotations?.[Annotations.refName] !== ref);
      found = manifests.length !== idx.manifests.length;
      return { ...idx, manifests };
    });
    return found;
  }
}

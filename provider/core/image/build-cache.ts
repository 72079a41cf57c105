/**
 * The build cache under dataPaths.buildCache():
 *   layers/<key>.json     a finished layer (digest, diffID, size, paths) for a cache key
 *   children/<parentKey>  marker: some layer was built on top of this key
 *   file-hashes.json      content hashes of context files by (path, size, mtime, ctime, inode),
 *                         so an unchanged context is not read again to compute keys.
 *
 * Keys chain: key(layer n) = sha256(key(n-1), instruction text after expansion, digest of what
 * the instruction reads). A hit needs the blob to still be in the store (prune may remove it).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../fsutil";
import type { OciLayout } from "./layout";
import { LayerEntry, readChunks } from "./layer";

export interface CachedLayer {
  digest: string;
  size: number;
  mediaType: string;
  diffID: string;
  paths: string[];
  /** Digest per path of `paths` (layer-groups); absent on layers cached before they existed. */
  groups?: Record<string, string>;
  /** Whether the layer adds or deletes bin/kubeadm (decides kube-installer vs app-installer). */
  kubeadm?: "added" | "removed";
}

export function cacheKey(...parts: string[]): string {
  const h = crypto.createHash("sha256");
  for (const p of parts) h.update(String(Buffer.byteLength(p)) + ":" + p + ";");
  return h.digest("hex");
}

type FileHashRecord = [size: number, mtimeNs: string, ctimeNs: string, ino: string, sha: string];

export class BuildCache {
  private fileHashes: Record<string, FileHashRecord> = {};
  private fileHashesDirty = false;
  private loaded = false;

  constructor(
    readonly dir: string,
    private readonly layout: OciLayout,
  ) {}

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    this.fileHashes =
      (await readJsonIfExists<Record<string, FileHashRecord>>(path.join(this.dir, "file-hashes.json")).catch(
        () => undefined,
      )) ?? {};
  }

  async get(key: string): Promise<CachedLayer | undefined> {
    const hit = await readJsonIfExists<CachedLayer>(path.join(this.dir, "layers", `${key}.json`)).catch(
      () => undefined,
    );
    if (!hit || !(await this.layout.hasBlob(hit.digest))) return undefined;
    return hit;
  }

  async put(parentKey: string, key: string, layer: CachedLayer): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, "layers", `${key}.json`), layer);
    await writeFileAtomic(path.join(this.dir, "children", parentKey), "");
  }

  /** Forgets cached layers whose blob is gone from the store (after `sealer prune`); returns how many. */
  async pruneMissing(): Promise<number> {
    const dir = path.join(this.dir, "layers");
    let removed = 0;
    for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
      const entry = await readJsonIfExists<CachedLayer>(path.join(dir, name)).catch(() => undefined);
      if (entry && (await this.layout.hasBlob(entry.digest))) continue;
      await fs.promises.rm(path.join(dir, name), { force: true });
      removed++;
    }
    return removed;
  }

  /** Whether any layer was ever cached on top of `parentKey` (if not, no lookup can hit). */
  async hasChildren(parentKey: string): Promise<boolean> {
    try {
      await fs.promises.access(path.join(this.dir, "children", parentKey));
      return true;
    } catch {
      return false;
    }
  }

  /** The recorded content hash of a file if its stat still matches. */
  async knownHash(file: string): Promise<string | undefined> {
    await this.load();
    const rec = this.fileHashes[file];
    if (!rec) return undefined;
    const st = await fs.promises.stat(file, { bigint: true }).catch(() => undefined);
    if (!st) return undefined;
    if (
      Number(st.size) !== rec[0] ||
      String(st.mtimeNs) !== rec[1] ||
      String(st.ctimeNs) !== rec[2] ||
      String(st.ino) !== rec[3]
    )
      return undefined;
    return rec[4];
  }

  async recordHash(file: string, sha: string, st?: fs.BigIntStats): Promise<void> {
    await this.load();
    const s = st ?? (await fs.promises.stat(file, { bigint: true }));
    this.fileHashes[file] = [Number(s.size), String(s.mtimeNs), String(s.ctimeNs), String(s.ino), sha];
    this.fileHashesDirty = true;
  }

  /** Hashes a file's content (recording it). */
  async hashFile(file: string): Promise<string> {
    await this.load();
    const st = await fs.promises.stat(file, { bigint: true });
    const rec = this.fileHashes[file];
    if (
      rec &&
      Number(st.size) === rec[0] &&
      String(st.mtimeNs) === rec[1] &&
      String(st.ctimeNs) === rec[2] &&
      String(st.ino) === rec[3]
    )
      return rec[4];
    const h = crypto.createHash("sha256");
    for await (const chunk of readChunks(file, Number(st.size))) h.update(chunk);
    const sha = h.digest("hex");
    await this.recordHash(file, sha, st);
    return sha;
  }

  async save(): Promise<void> {
    if (!this.fileHashesDirty) return;
    // Drop records of files that no longer exist so the file does not grow forever.
    const kept: Record<string, FileHashRecord> = {};
    for (const [f, rec] of Object.entries(this.fileHashes)) if (fs.existsSync(f)) kept[f] = rec;
    await writeFileAtomic(path.join(this.dir, "file-hashes.json"), JSON.stringify(kept));
    this.fileHashesDirty = false;
  }
}

/**
 * Digest of a layer's entries: paths, types, normalised modes, link targets and file content
 * hashes, i.e. exactly what determines the layer's bytes. `contentHash` gives a file entry's
 * content sha256.
 */
export async function entriesDigest(
  entries: LayerEntry[],
  contentHash: (e: LayerEntry) => Promise<string>,
): Promise<string> {
  const h = crypto.createHash("sha256");
  for (const e of entries) {
    let content = "";
    if (e.type === "file")
      content = e.data ? crypto.createHash("sha256").update(e.data).digest("hex") : await contentHash(e);
    else if (e.type === "symlink") content = e.linkTarget ?? "";
    h.update(`${e.path}\0${e.type}\0${e.mode.toString(8)}\0${e.size}\0${content}\n`);
  }
  return h.digest("hex");
}

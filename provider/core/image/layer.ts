/**
 * Layer blobs: which entries go into a layer (from build-context sources), the deterministic
 * gzip tar stream, and the `io.pulumi-sealer.layer.paths` summary of what a layer changes.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { UserError, userErrorAt } from "../errors";
import { progressTask } from "../progress";
import type { OciLayout } from "./layout";
import { recordSkeleton } from "./layer-safety";
import { parallelGzip } from "./parallel-gzip";
import { MediaTypes } from "./types";
import { encodeHeader, normalizeMode, padding, TAR_END, TarEntryType, TarHeader } from "./tar";
import { ownedTempPath, removeOnSignal } from "../temp-owner";

/** One tar entry plus where its content comes from. */
export interface LayerEntry extends TarHeader {
  /** Absolute path of the file whose bytes are the content (files only). */
  source?: string;
  /** In-memory content (whiteouts: empty). */
  data?: Buffer;
}

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";

/**
 * Fixed gzip level: the compressed bytes (and so the layer digest) depend on it. zlib's
 * default trades ratio for speed in the way most registries' layers do.
 */
export const GZIP_LEVEL = 6;
/** Blocks compressed at once (on the libuv pool); does not affect the output bytes. */
const GZIP_CONCURRENCY = Math.max(2, os.availableParallelism() * 2);

/** Sorts entries bytewise by path (parents before children since a dir path is a prefix). */
export function sortEntries<T extends { path: string }>(entries: T[]): T[] {
  return entries
    .map((e) => ({ e, k: Buffer.from(e.path, "utf8") }))
    .sort((a, b) => Buffer.compare(a.k, b.k))
    .map((x) => x.e);
}

/** Normalises a destination inside the rootfs: "/etc/x/" -> "etc/x"; "." or "/" -> "". */
export function normalizeDest(dest: string): string {
  const n = path.posix
    .normalize("/" + dest.replace(/\\/g, "/"))
    .replace(/^\/+/, "")
    .replace(/\/+$/, "");
  return n === "." ? "" : n;
}

/** Dir entries for every ancestor of `rel` ("a/b/c" -> "a/", "a/b/"). */
export function ancestorDirs(rel: string): string[] {
  const parts = rel.replace(/\/$/, "").split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/") + "/");
  return out;
}

function dirEntry(p: string): LayerEntry {
  return { path: p.endsWith("/") ? p : p + "/", type: "dir", mode: 0o755, size: 0 };
}

/** Walks a file or directory tree into entries under `destRel` (files keep their exec bit). */
export async function walkTree(
  absRoot: string,
  destRel: string,
  entries: Map<string, LayerEntry>,
): Promise<void> {
  const st = await fs.promises.lstat(absRoot);
  const add = (e: LayerEntry) => entries.set(e.path, e);
  if (st.isDirectory()) {
    if (destRel) add(dirEntry(destRel));
    const names = await fs.promises.readdir(absRoot);
    names.sort();
    for (const name of names)
      await walkTree(path.join(absRoot, name), destRel ? `${destRel}/${name}` : name, entries);
  } else if (st.isFile()) {
    add({
      path: destRel,
      type: "file",
      mode: normalizeMode("file", st.mode),
      size: st.size,
      source: absRoot,
    });
  } else if (st.isSymbolicLink()) {
    add({
      path: destRel,
      type: "symlink",
      mode: 0o777,
      size: 0,
      linkTarget: await fs.promises.readlink(absRoot),
    });
  }
  // sockets, fifos and devices have no place in a cluster image: skipped.
}

function hasGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re +=
          "[" +
          glob
            .slice(i + 1, end)
            .replace(/^!/, "^")
            .replace(/\\/g, "\\\\") +
          "]";
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Expands wildcards (`*`, `?`, `[...]`) in a context-relative source, component by component. */
export async function expandSource(contextDir: string, source: string): Promise<string[]> {
  const rel = source.replace(/^\.\/+/, "");
  if (!hasGlob(rel)) return [rel];
  let current = [""];
  for (const comp of rel.split("/").filter((c) => c !== "" && c !== ".")) {
    const next: string[] = [];
    for (const base of current) {
      if (!hasGlob(comp)) {
        next.push(base ? `${base}/${comp}` : comp);
        continue;
      }
      const re = globToRegExp(comp);
      const names = await fs.promises.readdir(path.join(contextDir, base)).catch(() => [] as string[]);
      for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    current = next;
  }
  return current;
}

/**
 * The entries a COPY/ADD of `sources` (context-relative) to `dest` produces, with docker's
 * rules: a directory's contents go into dest; a single file goes to dest itself unless dest
 * ends with "/" or is the root, or there are several sources. A top-level symlink source is
 * followed (it must stay inside the context); symlinks inside trees are kept as links.
 */
export async function collectCopyEntries(
  contextDir: string,
  sources: string[],
  dest: string,
  where: string,
): Promise<LayerEntry[]> {
  const destRel = normalizeDest(dest);
  const entries = new Map<string, LayerEntry>();
  const expanded: string[] = [];
  for (const s of sources) {
    const matches = await expandSource(contextDir, s);
    if (matches.length === 0) throw userErrorAt(where, `no file in the build context matches "${s}"`);
    expanded.push(...matches);
  }
  const destIsDir = dest.endsWith("/") || destRel === "" || expanded.length > 1;
  const ctxReal = await fs.promises.realpath(contextDir);
  for (const rel of expanded) {
    const abs = path.resolve(contextDir, rel);
    let real: string;
    try {
      real = await fs.promises.realpath(abs);
    } catch {
      throw userErrorAt(
        where,
        `"${rel}" does not exist in the build context ${contextDir}; create it or fix the path`,
      );
    }
    if (real !== ctxReal && !real.startsWith(ctxReal + path.sep))
      throw userErrorAt(
        where,
        `"${rel}" resolves outside the build context (${real}); copy the file into the context`,
      );
    const st = await fs.promises.stat(real);
    if (st.isDirectory()) await walkTree(real, destRel, entries);
    else {
      const target = destIsDir
        ? destRel
          ? `${destRel}/${path.basename(rel)}`
          : path.basename(rel)
        : destRel;
      await walkTree(real, target, entries);
    }
  }
  refuseWhiteoutNames([...entries.keys()], where);
  return withAncestors([...entries.values()]);
}

/** Names starting with ".wh." mean "deleted" in an OCI layer: a context file may not use them. */
export function refuseWhiteoutNames(paths: string[], where: string): void {
  const bad = paths.filter((p) => path.posix.basename(p.replace(/\/$/, "")).startsWith(WHITEOUT_PREFIX));
  if (bad.length)
    throw userErrorAt(
      where,
      `${bad.map((b) => `"${b}"`).join(", ")} cannot go into an image: names starting with ${WHITEOUT_PREFIX} mark deletions in OCI layers; rename ${bad.length === 1 ? "it" : "them"}`,
    );
}

/** Adds dir entries for all ancestors not already present and sorts. */
export function withAncestors(entries: LayerEntry[]): LayerEntry[] {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const e of entries)
    for (const d of ancestorDirs(e.path)) if (!byPath.has(d)) byPath.set(d, dirEntry(d));
  return sortEntries([...byPath.values()]);
}

/**
 * The summary path an entry path falls under before dirs are merged: a whiteout's target, an
 * opaque whiteout's dir ("/" at the top), and anything deeper than 3 levels cut to its depth-3
 * dir with a trailing "/".
 */
export function summaryLeaf(entryPath: string): string {
  let p = entryPath;
  const trimmed = p.replace(/\/$/, "");
  const base = path.posix.basename(trimmed);
  const dir = trimmed.includes("/") ? trimmed.slice(0, -base.length) : "";
  if (base === OPAQUE_WHITEOUT) p = dir || "/";
  else if (base.startsWith(WHITEOUT_PREFIX)) p = dir + base.slice(WHITEOUT_PREFIX.length);
  if (p === "/") return p;
  const parts = p.replace(/\/$/, "").split("/");
  return parts.length > 3 ? parts.slice(0, 3).join("/") + "/" : p;
}

/**
 * The summary stored in `io.pulumi-sealer.layer.paths`: the leaf paths the layer changes (files,
 * links, empty or opaque dirs, whiteout targets), cut at depth 3 (deeper ones become their
 * depth-3 dir with a trailing "/"), without those already covered by a listed dir; sorted.
 */
export function layerPaths(entryPaths: Array<{ path: string; type: TarEntryType | "other" }>): string[] {
  const dirsWithChildren = new Set<string>();
  for (const e of entryPaths) for (const d of ancestorDirs(e.path)) dirsWithChildren.add(d);
  const out = new Set<string>();
  for (const e of entryPaths) {
    if (e.type === "dir" && dirsWithChildren.has(e.path)) continue;
    out.add(summaryLeaf(e.path));
  }
  const dirs = [...out].filter((p) => p.endsWith("/"));
  return sortEntries(
    [...out]
      .filter((p) => !dirs.some((d) => d !== p && (d === "/" || p.startsWith(d))))
      .map((p) => ({ path: p })),
  ).map((x) => x.path);
}

const SMALL_FILE = 1 << 20;

/**
 * A file's bytes in chunks: small files in one read of exactly their size (a stream would
 * allocate a full high-water-mark buffer per file, which dominates on many small files), big
 * ones in 1 MiB reads. Reads one byte past `expectedSize` so a grown file is noticed.
 */
export async function* readChunks(file: string, expectedSize: number): AsyncGenerator<Buffer> {
  if (expectedSize < SMALL_FILE) {
    yield await fs.promises.readFile(file);
    return;
  }
  const fh = await fs.promises.open(file, "r");
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(SMALL_FILE);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export interface WrittenLayer {
  /** Descriptor of the gzip blob, now in the store. */
  digest: string;
  size: number;
  mediaType: string;
  /** sha256 of the uncompressed tar (config rootfs.diff_ids). */
  diffID: string;
  paths: string[];
  /** sha256 hex of each file's content, by entry path. */
  fileHashes: Map<string, string>;
}

/**
 * Writes entries as a gzip tar into the store. Content is streamed; a source file whose size
 * changed since it was listed fails the build (the context changed under us).
 */
export async function writeLayer(
  layout: OciLayout,
  entries: LayerEntry[],
  opts: { label?: string } = {},
): Promise<WrittenLayer> {
  await layout.init();
  const total = entries.reduce((n, e) => n + (e.type === "file" ? e.size : 0), 0);
  const bar = progressTask("build", opts.label ?? "compressing layer", total);
  const fileHashes = new Map<string, string>();
  let done = 0;
  async function* tarStream(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      yield encodeHeader(e);
      if (e.type !== "file") continue;
      // Each file's digest keys the build cache and the layer's per-path digests (layer-groups).
      const h = crypto.createHash("sha256");
      let n = 0;
      if (e.data) {
        h.update(e.data);
        n = e.data.length;
        if (n) yield e.data;
      } else if (e.source) {
        if (e.size > 0) {
          for await (const b of readChunks(e.source, e.size)) {
            n += b.length;
            if (n > e.size) break;
            h.update(b);
            done += b.length;
            bar.update(done);
            yield b;
          }
        }
      }
      if (n !== e.size)
        throw new UserError(
          `${e.source ?? e.path} changed while the layer was being written (expected ${e.size} bytes, read ${n}); build again`,
        );
      fileHashes.set(e.path, h.digest("hex"));
      yield padding(e.size);
    }
    yield TAR_END;
  }
  const diffHash = crypto.createHash("sha256");
  const blobHash = crypto.createHash("sha256");
  let size = 0;
  async function* compressed(): AsyncGenerator<Buffer> {
    async function* metered(): AsyncGenerator<Buffer> {
      for await (const b of tarStream()) {
        diffHash.update(b);
        yield b;
      }
    }
    for await (const out of parallelGzip(metered(), { level: GZIP_LEVEL, concurrency: GZIP_CONCURRENCY })) {
      blobHash.update(out);
      size += out.length;
      yield out;
    }
  }
  await fs.promises.mkdir(layout.tmpDir(), { recursive: true });
  const tmp = ownedTempPath(layout.tmpDir(), "layer", ".tgz");
  const release = removeOnSignal(tmp);
  try {
    await pipeline(Readable.from(compressed()), fs.createWriteStream(tmp, { mode: 0o644 }));
    bar.end();
    const digest = "sha256:" + blobHash.digest("hex");
    // The temp file is in the store (same filesystem): a rename publishes it whole.
    // Already stored: marked fresh (refreshBlob) so a concurrent prune keeps it, as putBlob does.
    if (!(await layout.refreshBlob(digest))) {
      await fs.promises.chmod(tmp, 0o644);
      await fs.promises.rename(tmp, layout.blobPath(digest));
    }
    // The stack check of any image built on this layer then needs no read of it.
    await recordSkeleton(layout, digest, entries);
    const paths = layerPaths(entries);
    return {
      digest,
      size,
      mediaType: MediaTypes.layerGzip,
      diffID: "sha256:" + diffHash.digest("hex"),
      paths,
      fileHashes,
    };
  } finally {
    bar.end();
    await fs.promises.rm(tmp, { force: true });
    release();
  }
}

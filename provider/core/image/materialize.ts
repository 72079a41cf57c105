/**
 * Applying layer tars onto a directory in order, honouring OCI whiteouts, and listing a
 * layer's paths when it carries no `io.pulumi-sealer.layer.paths` annotation.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import * as tarStream from "tar-stream";
import { clip } from "../kubefile/lexer";
import { UserError } from "../errors";
import type { OciLayout } from "./layout";
import { layerPaths, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from "./layer";
import { layerGroups, type GroupEntry } from "./layer-groups";
import type { TarEntryType } from "./tar";

/** The file starts with the gzip magic. */
export async function isGzip(file: string): Promise<boolean> {
  const fh = await fs.promises.open(file, "r");
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** A path from a tar header made safe: relative, no "..", no empty parts. */
export function cleanTarPath(name: string): string {
  const parts = name
    .replace(/\\/g, "/")
    .split("/")
    .filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) throw new UserError(`layer entry "${name}" escapes the rootfs ("..")`);
  return parts.join("/");
}

/** Iterates the entries of a layer blob (gzip or plain tar). `fn` must consume or ignore the stream. */
export async function forEachLayerEntry(
  layout: OciLayout,
  digest: string,
  fn: (header: tarStream.Header, content: AsyncIterable<Buffer>) => Promise<void>,
  opts: { strict?: boolean } = {},
): Promise<void> {
  const file = layout.blobPath(digest);
  if (!(await layout.hasBlob(digest)))
    throw new UserError(
      `layer ${digest} is missing from the store at ${layout.root}; pull or rebuild the image`,
    );
  const extract = tarStream.extract();
  const source = fs.createReadStream(file);
  const feeding = (await isGzip(file))
    ? pipeline(source, zlib.createGunzip(), extract)
    : pipeline(source, extract);
  let failed: unknown;
  feeding.catch((err: unknown) => {
    failed = err;
  });
  try {
    for await (const entry of extract) {
      if (opts.strict) refuseGlobalPaths(extract, digest, entry.header.name);
      await fn(entry.header, entry as unknown as AsyncIterable<Buffer>);
      entry.resume();
    }
  } catch (err) {
    extract.destroy();
    source.destroy();
    throw err;
  }
  await feeding.catch(() => undefined);
  if (failed) throw new Error(`reading layer ${digest}: ${(failed as Error).message}`, { cause: failed });
}

/**
 * GNU tar applies a global PAX header's path/linkpath/size to every later member; tar-stream
 * only merges it into later local PAX headers. A layer using one could name different paths to
 * the two readers, so it is refused (no layer writer needs one for these keys).
 */
function refuseGlobalPaths(extract: tarStream.Extract, digest: string, name: string): void {
  const global = (extract as unknown as { _paxGlobal?: Record<string, string> | null })._paxGlobal;
  const keys = Object.keys(global ?? {}).filter((k) => k === "path" || k === "linkpath" || k === "size");
  if (keys.length)
    throw new UserError(
      `layer ${digest}: a global PAX header before "${name}" sets ${keys.join(", ")} for later entries; such a layer may unpack differently with different tar readers and is refused`,
    );
}

/** The refusal of a layer entry that could reach outside the rootfs; `where` names the layer. */
export function unsafeEntry(where: string, entry: string, why: string): UserError {
  return new UserError(
    `${where}, entry "${clip(entry, 200)}" ${why}; unpacking it could change files outside the rootfs, so the image is refused: rebuild it from trusted content`,
  );
}

/** The changed-path summary of a layer and its per-path digests (layer-groups), read from its tar. */
export async function listLayerSummary(
  layout: OciLayout,
  digest: string,
): Promise<{ paths: string[]; groups: Record<string, string> }> {
  const entries: GroupEntry[] = [];
  await forEachLayerEntry(layout, digest, async (h, content) => {
    const p = cleanTarPath(h.name);
    if (!p) return;
    const type: TarEntryType | "other" =
      h.type === "directory"
        ? "dir"
        : h.type === "symlink"
          ? "symlink"
          : h.type === "file"
            ? "file"
            : "other";
    let digestOf = h.linkname ?? "";
    if (type === "file") {
      const sha = crypto.createHash("sha256");
      for await (const b of content) sha.update(b);
      digestOf = sha.digest("hex");
    }
    entries.push({
      path: type === "dir" ? p + "/" : p,
      type,
      mode: h.mode ?? 0,
      size: h.size ?? 0,
      content: digestOf,
    });
  });
  const paths = layerPaths(entries);
  return { paths, groups: layerGroups(entries, paths) };
}

async function lstatOrUndefined(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fs.promises.lstat(p);
  } catch {
    return undefined;
  }
}

/**
 * Applies layers (oldest first) onto `destDir`, as a container runtime would: whiteouts
 * `.wh.<name>` delete from lower layers, `.wh..wh..opq` empties a directory of lower-layer
 * content, an entry replaces whatever was at its path. `filter` limits extraction to matching
 * rootfs-relative paths (whiteouts still apply).
 *
 * No path is ever resolved through a symlink: each parent component is checked with lstat from
 * `destDir` down, and a symlink on the way (stored by a lower layer, or created by a RUN) refuses
 * the layer before anything is written or deleted through it. Absolute and ".." hard-link
 * targets are refused too. So whatever the layers hold, nothing outside `destDir` changes.
 */
export async function materializeLayers(
  layout: OciLayout,
  layerDigests: string[],
  destDir: string,
  opts: { filter?: (rel: string) => boolean } = {},
): Promise<void> {
  await fs.promises.mkdir(destDir, { recursive: true });
  const root = await fs.promises.realpath(destDir);
  for (const [i, digest] of layerDigests.entries())
    await applyLayer(
      layout,
      digest,
      `layer ${i + 1} of ${layerDigests.length} (${digest})`,
      root,
      opts.filter,
    );
}

async function applyLayer(
  layout: OciLayout,
  digest: string,
  what: string,
  root: string,
  filter?: (rel: string) => boolean,
): Promise<void> {
  const refuse = (entry: string, why: string) => unsafeEntry(what, entry, why);
  const thisLayer = new Set<string>();
  /** Parent dirs known to be real directories (no symlink above) since the last removal. */
  const safeDirs = new Set<string>();
  /**
   * The absolute path of `rel` with every parent checked to be a real directory. `create`:
   * missing parents are made (a non-directory in the way is replaced, as tar does); otherwise
   * undefined is returned when a parent is missing (nothing to delete there).
   */
  const resolve = async (entry: string, rel: string, create: boolean): Promise<string | undefined> => {
    const parts = rel.split("/");
    let cur = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const relDir = parts.slice(0, i + 1).join("/");
      cur = path.join(cur, parts[i]!);
      if (safeDirs.has(relDir)) continue;
      const st = await lstatOrUndefined(cur);
      if (st?.isSymbolicLink()) throw refuse(entry, `lies under "${relDir}", which is a symlink`);
      if (!st?.isDirectory()) {
        if (!create) return undefined;
        if (st) await fs.promises.rm(cur, { force: true });
        await fs.promises.mkdir(cur, { mode: 0o755 });
      }
      safeDirs.add(relDir);
    }
    return path.join(root, rel);
  };
  const removeExisting = async (abs: string, keepDir: boolean) => {
    const st = await lstatOrUndefined(abs);
    if (!st) return;
    if (keepDir && st.isDirectory()) return;
    // rm does not follow a symlink it removes, nor symlinks inside a tree it removes.
    await fs.promises.rm(abs, { recursive: true, force: true });
    safeDirs.clear();
  };
  await forEachLayerEntry(layout, digest, async (h, stream) => {
    let rel: string;
    try {
      rel = cleanTarPath(h.name);
    } catch {
      throw refuse(h.name, 'has a ".." component');
    }
    if (!rel) return;
    const base = path.posix.basename(rel);
    const dirRel = path.posix.dirname(rel);
    if (base === OPAQUE_WHITEOUT) {
      let dirAbs = root;
      if (dirRel !== ".") {
        const abs = await resolve(h.name, dirRel, false);
        const st = abs ? await lstatOrUndefined(abs) : undefined;
        if (st?.isSymbolicLink()) throw refuse(h.name, `marks "${dirRel}" opaque, which is a symlink`);
        if (!abs || !st?.isDirectory()) return;
        dirAbs = abs;
      }
      for (const n of await fs.promises.readdir(dirAbs)) {
        const childRel = dirRel === "." ? n : `${dirRel}/${n}`;
        if (!thisLayer.has(childRel))
          await fs.promises.rm(path.join(dirAbs, n), { recursive: true, force: true });
      }
      safeDirs.clear();
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === "" || name === "." || name === "..")
        throw refuse(h.name, `whites out "${name}", which names no entry`);
      const targetRel = (dirRel === "." ? "" : dirRel + "/") + name;
      if (thisLayer.has(targetRel)) return;
      const abs = await resolve(h.name, targetRel, false);
      if (abs) await removeExisting(abs, false);
      return;
    }
    if (filter && !filter(rel)) return;
    thisLayer.add(rel);
    const abs = (await resolve(h.name, rel, true))!;
    const mode = (h.mode ?? 0o644) & 0o7777;
    switch (h.type) {
      case "directory": {
        await removeExisting(abs, true);
        await fs.promises.mkdir(abs, { recursive: true });
        await fs.promises.chmod(abs, mode || 0o755);
        return;
      }
      case "file":
      case "contiguous-file": {
        await removeExisting(abs, false);
        // "wx": never opens through a symlink or onto a file someone raced in.
        const fh = await fs.promises.open(abs, "wx", mode);
        try {
          for await (const chunk of stream) await fh.write(chunk);
        } finally {
          await fh.close();
        }
        await fs.promises.chmod(abs, mode);
        return;
      }
      case "symlink": {
        await removeExisting(abs, false);
        await fs.promises.symlink(h.linkname ?? "", abs);
        safeDirs.clear();
        return;
      }
      case "link": {
        const linkname = h.linkname ?? "";
        if (linkname.startsWith("/"))
          throw refuse(h.name, `is a hard link to the absolute path "${linkname}"`);
        let targetRel: string;
        try {
          targetRel = cleanTarPath(linkname);
        } catch {
          throw refuse(h.name, `is a hard link to "${linkname}", which has a ".." component`);
        }
        const target = targetRel ? await resolve(h.name, targetRel, false) : undefined;
        const st = target ? await lstatOrUndefined(target) : undefined;
        if (!target || !st || st.isDirectory())
          throw refuse(h.name, `is a hard link to "${linkname}", which is ${st ? "a directory" : "missing"}`);
        await removeExisting(abs, false);
        // link(2) does not follow a final symlink: a link to a symlink is that symlink again.
        await fs.promises.link(target, abs);
        return;
      }
      default:
        // devices, fifos: a cluster image has no use for them and we run unprivileged-safe.
        return;
    }
  });
}

/**
 * Applying layer tars onto a directory in order, honouring OCI whiteouts, and listing a
 * layer's paths when it carries no `io.pulumi-sealer.layer.paths` annotation.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import * as tarStream from "tar-stream";
import { UserError } from "../errors";
import type { OciLayout } from "./layout";
import { layerPaths, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from "./layer";
import type { TarEntryType } from "./tar";

async function isGzip(file: string): Promise<boolean> {
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

/** The changed-path summary of a layer, read from its tar. */
export async function listLayerPaths(layout: OciLayout, digest: string): Promise<string[]> {
  const entries: Array<{ path: string; type: TarEntryType | "other" }> = [];
  await forEachLayerEntry(layout, digest, async (h) => {
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
    entries.push({ path: type === "dir" ? p + "/" : p, type });
  });
  return layerPaths(entries);
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
 * content, an entry replaces whatever was at its path. Writes never follow a symlink out of
 * `destDir` (each parent dir is checked to resolve inside it). `filter` limits extraction to
 * matching rootfs-relative paths (whiteouts still apply).
 */
export async function materializeLayers(
  layout: OciLayout,
  layerDigests: string[],
  destDir: string,
  opts: { filter?: (rel: string) => boolean } = {},
): Promise<void> {
  await fs.promises.mkdir(destDir, { recursive: true });
  const root = await fs.promises.realpath(destDir);
  for (const digest of layerDigests) await applyLayer(layout, digest, root, opts.filter);
}

async function applyLayer(
  layout: OciLayout,
  digest: string,
  root: string,
  filter?: (rel: string) => boolean,
): Promise<void> {
  const thisLayer = new Set<string>();
  const safeDirs = new Map<string, boolean>();
  const ensureParent = async (rel: string): Promise<string> => {
    const parentRel = path.posix.dirname(rel);
    const abs = path.join(root, rel);
    if (parentRel === "." || safeDirs.get(parentRel)) return abs;
    await fs.promises.mkdir(path.join(root, parentRel), { recursive: true });
    const real = await fs.promises.realpath(path.join(root, parentRel));
    if (real !== root && !real.startsWith(root + path.sep))
      throw new UserError(
        `layer ${digest}: entry "${rel}" would be written through a symlink outside the rootfs`,
      );
    safeDirs.set(parentRel, true);
    return abs;
  };
  const removeExisting = async (abs: string, keepDir: boolean) => {
    const st = await lstatOrUndefined(abs);
    if (!st) return;
    if (keepDir && st.isDirectory()) return;
    await fs.promises.rm(abs, { recursive: true, force: true });
    safeDirs.clear();
  };
  await forEachLayerEntry(layout, digest, async (h, stream) => {
    const rel = cleanTarPath(h.name);
    if (!rel) return;
    const base = path.posix.basename(rel);
    const dirRel = path.posix.dirname(rel);
    if (base === OPAQUE_WHITEOUT) {
      const dirAbs = dirRel === "." ? root : path.join(root, dirRel);
      const names = await fs.promises.readdir(dirAbs).catch(() => [] as string[]);
      for (const n of names) {
        const childRel = dirRel === "." ? n : `${dirRel}/${n}`;
        if (!thisLayer.has(childRel))
          await fs.promises.rm(path.join(dirAbs, n), { recursive: true, force: true });
      }
      safeDirs.clear();
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const targetRel = (dirRel === "." ? "" : dirRel + "/") + base.slice(WHITEOUT_PREFIX.length);
      if (!thisLayer.has(targetRel)) await removeExisting(path.join(root, cleanTarPath(targetRel)), false);
      return;
    }
    if (filter && !filter(rel)) return;
    thisLayer.add(rel);
    const abs = await ensureParent(rel);
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
        const fh = await fs.promises.open(abs, "w", mode);
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
        await removeExisting(abs, false);
        const targetRel = cleanTarPath(h.linkname ?? "");
        const target = await ensureParent(targetRel);
        const real = await fs.promises.realpath(target).catch(() => "");
        if (!real || (real !== root && !real.startsWith(root + path.sep)))
          throw new UserError(
            `layer ${digest}: hard link "${rel}" points at "${h.linkname}", which is missing or outside the rootfs`,
          );
        await fs.promises.link(real, abs);
        return;
      }
      default:
        // devices, fifos: a cluster image has no use for them and we run unprivileged-safe.
        return;
    }
  });
}

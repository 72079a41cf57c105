/**
 * Hand-made layer tars (any entry a tar can hold: symlinks anywhere, whiteouts, hard links,
 * ".." names) and images made of them, for the rootfs-escape tests. Our own layer writer never
 * produces such entries, so they are written with tar-stream directly.
 */
import * as crypto from "node:crypto";
import * as zlib from "node:zlib";
import * as tarStream from "tar-stream";
import type { OciLayout } from "../../provider/core/image/layout";
import { resolveManifest } from "../../provider/core/image/store";
import { Annotations, type ImageConfig, type Manifest, MediaTypes } from "../../provider/core/image/types";

export type CraftEntry =
  | { name: string; type: "file"; data?: string }
  | { name: string; type: "dir" }
  | { name: string; type: "symlink" | "link"; linkname: string };

export interface CraftedLayer {
  digest: string;
  diffID: string;
  size: number;
}

/** One gzip layer holding exactly `entries`, in that order, stored in `layout`. */
export async function craftLayer(layout: OciLayout, entries: CraftEntry[]): Promise<CraftedLayer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) {
    const base = { name: e.name, mode: e.type === "dir" ? 0o755 : 0o644, mtime: new Date(0) };
    if (e.type === "file") {
      const data = Buffer.from(e.data ?? "");
      pack.entry({ ...base, type: "file", size: data.length }, data);
    } else if (e.type === "dir") pack.entry({ ...base, type: "directory" });
    else pack.entry({ ...base, type: e.type, linkname: e.linkname });
  }
  pack.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  const gz = zlib.gzipSync(tar, { level: 1 });
  const desc = await layout.putBlob(gz, MediaTypes.layerGzip);
  return {
    digest: desc.digest,
    size: gz.length,
    diffID: "sha256:" + crypto.createHash("sha256").update(tar).digest("hex"),
  };
}

/**
 * Stores `ref` as an image whose layers are `base`'s (when given: its labels and extension
 * too) followed by `layers`, as if some other tool had built it.
 */
export async function craftImage(
  layout: OciLayout,
  ref: string,
  layers: CraftedLayer[],
  base?: string,
): Promise<Manifest> {
  const parent = base ? await resolveManifest(layout, base) : undefined;
  const config: ImageConfig = {
    architecture: parent?.config.architecture ?? "amd64",
    os: "linux",
    ...(parent?.config.config ? { config: parent.config.config } : {}),
    rootfs: {
      type: "layers",
      diff_ids: [...(parent?.config.rootfs.diff_ids ?? []), ...layers.map((l) => l.diffID)],
    },
  };
  const cfg = await layout.putJson(config, MediaTypes.config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.manifest,
    config: cfg,
    layers: [
      ...(parent?.manifest.layers ?? []),
      ...layers.map((l) => ({
        mediaType: MediaTypes.layerGzip,
        digest: l.digest,
        size: l.size,
        annotations: { [Annotations.layerInstruction]: "crafted" },
      })),
    ],
    ...(parent?.manifest.annotations ? { annotations: parent.manifest.annotations } : {}),
  };
  await layout.setRef(ref, await layout.putJson(manifest, MediaTypes.manifest));
  return manifest;
}

/**
 * The escape the tests are about: layer 1 stores `tree/evildir -> outside` (a symlink may point
 * anywhere), then each later layer is harmless alone but reaches through that symlink.
 */
export async function symlinkEscapeLayers(
  layout: OciLayout,
  outside: string,
  kind: "whiteout+file" | "hardlink" | "opaque",
): Promise<CraftedLayer[]> {
  const l1 = await craftLayer(layout, [
    { name: "tree/", type: "dir" },
    { name: "tree/evildir", type: "symlink", linkname: outside },
  ]);
  if (kind === "whiteout+file")
    return [
      l1,
      await craftLayer(layout, [{ name: "tree/evildir/.wh.victim", type: "file" }]),
      await craftLayer(layout, [{ name: "tree/evildir/pwned.txt", type: "file", data: "pwned" }]),
    ];
  if (kind === "hardlink")
    return [
      l1,
      // A hard link whose target is reached through the symlink: the rootfs would gain a second
      // name for a file outside it (and writes through that name would change it).
      await craftLayer(layout, [
        { name: "tree/", type: "dir" },
        { name: "tree/grab", type: "link", linkname: "tree/evildir/victim" },
      ]),
    ];
  return [l1, await craftLayer(layout, [{ name: "tree/evildir/.wh..wh..opq", type: "file" }])];
}

/** Tar and image fixtures for the archive tests: hand-built images and tar buffers. */
import * as tar from "tar-stream";
import * as zlib from "node:zlib";
import { OciLayout, digestOf } from "../../provider/core/image/layout";
import {
  Annotations,
  Descriptor,
  ImageConfig,
  Index,
  Manifest,
  MediaTypes,
} from "../../provider/core/image/types";

export type TarEntryType =
  "file" | "directory" | "symlink" | "link" | "fifo" | "character-device" | "block-device";

/** A tar (buffer) of the given entries, deterministic. */
export async function tarOf(
  entries: Array<{
    name: string;
    body?: Buffer | string;
    type?: TarEntryType;
    linkname?: string;
  }>,
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    await new Promise<void>((res, rej) =>
      pack.entry(
        {
          name: e.name,
          type,
          mtime: new Date(0),
          mode: type === "directory" ? 0o755 : 0o644,
          ...(e.linkname ? { linkname: e.linkname } : {}),
          ...(type === "file" ? { size: body.length } : {}),
        },
        type === "file" ? body : Buffer.alloc(0),
        (err) => (err ? rej(err) : res()),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Reads every entry of a tar buffer. */
export async function entriesOf(
  buf: Buffer,
): Promise<
  Array<{ name: string; type: string; mtime: number; uid: number; body: Buffer; linkname?: string }>
> {
  const ex = tar.extract();
  const out: Array<{ name: string; type: string; mtime: number; uid: number; body: Buffer }> = [];
  const feed = (async () => {
    ex.end(buf);
  })();
  for await (const e of ex as unknown as AsyncIterable<
    tar.Extract extends AsyncIterable<infer S> ? S : never
  >) {
    const chunks: Buffer[] = [];
    for await (const c of e as unknown as AsyncIterable<Buffer>) chunks.push(c);
    out.push({
      name: e.header.name,
      type: e.header.type,
      mtime: e.header.mtime.getTime(),
      uid: e.header.uid,
      body: Buffer.concat(chunks),
    });
  }
  await feed;
  return out;
}

/** Builds a one-layer image by hand (no builder) and returns its manifest descriptor. */
export async function makeImage(
  store: OciLayout,
  files: Record<string, string>,
  arch = "amd64",
): Promise<Descriptor> {
  const layerTar = await tarOf(Object.entries(files).map(([name, body]) => ({ name, body })));
  const gz = zlib.gzipSync(layerTar, { level: 6 });
  const layer = await store.putBlob(gz, MediaTypes.layerGzip);
  const config: ImageConfig = {
    architecture: arch,
    os: "linux",
    config: { Labels: { "test.io/arch": arch } },
    rootfs: { type: "layers", diff_ids: [digestOf(layerTar)] },
  };
  const cfg = await store.putJson(config, MediaTypes.config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.manifest,
    config: cfg,
    layers: [layer],
    annotations: {
      [Annotations.sealerExtension]: JSON.stringify({ type: "kube-installer", applications: [], launch: {} }),
    },
  };
  return store.putJson(manifest, MediaTypes.manifest);
}

export async function makeMultiPlatform(store: OciLayout): Promise<Descriptor> {
  const amd = await makeImage(store, { "bin/tool": "amd64 tool\n" }, "amd64");
  const arm = await makeImage(store, { "bin/tool": "arm64 tool\n" }, "arm64");
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaTypes.index,
    manifests: [
      { ...amd, platform: { architecture: "amd64", os: "linux" } },
      { ...arm, platform: { architecture: "arm64", os: "linux" } },
    ],
  };
  return store.putJson(index, MediaTypes.index);
}

/** index.json of an archive's entries (as read by entriesOf). */
export function indexOf(entries: Array<{ name: string; body: Buffer }>): Index {
  return JSON.parse(entries.find((e) => e.name === "index.json")!.body.toString()) as Index;
}

/** The archive again, with index.json replaced by `index` (a value, or raw text). */
export async function withIndexJson(
  entries: Array<{ name: string; type: string; body: Buffer; linkname?: string }>,
  index: unknown,
  raw?: string,
): Promise<Buffer> {
  return tarOf(
    entries.map((e) => ({
      name: e.name,
      type: e.type as TarEntryType,
      body: e.name === "index.json" ? Buffer.from(raw ?? JSON.stringify(index)) : e.body,
      ...(e.linkname ? { linkname: e.linkname } : {}),
    })),
  );
}

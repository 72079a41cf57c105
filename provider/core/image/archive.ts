import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { UserError, throwIfProblems } from "../errors";
import { progressTask } from "../progress";
import { OciLayout } from "./layout";
import { normalizeReference } from "./reference";
import { Annotations, Descriptor, Index, Manifest, MediaTypes } from "./types";

/**
 * `sealer save` / `sealer load`: an OCI archive is a tar of an OCI image layout (oci-layout,
 * index.json, blobs/sha256/*) holding just the saved images, each index entry named by its
 * `org.opencontainers.image.ref.name` annotation. skopeo reads it as `oci-archive:FILE[:REF]`.
 *
 * Save is deterministic: entries sorted by name, mtime 0, owner 0:0, fixed modes, so the same
 * images give the same bytes. Load streams the archive, verifies every blob against its name
 * before it can enter the store, refuses absolute paths, `..`, links and special files, checks
 * the whole image graph, and only then moves the blobs in and sets all refs in one index write:
 * a bad archive leaves the store as it was.
 */

const INDEX_TYPES = new Set<string>([MediaTypes.index, MediaTypes.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaTypes.manifest, MediaTypes.dockerManifest]);
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const BLOB_ENTRY = /^blobs\/sha256\/([a-f0-9]{64})$/;
/** index.json and oci-layout are read into memory; a bigger one is not an image index. */
const MAX_JSON_ENTRY = 16 * 1024 * 1024;

export interface ArchiveImage {
  ref: string;
  digest: string;
  mediaType: string;
}

export interface SaveResult {
  file: string;
  images: ArchiveImage[];
  blobs: number;
  /** Total blob bytes written. */
  bytes: number;
}

export interface LoadResult {
  images: ArchiveImage[];
  /** Blobs moved into the store. */
  blobsAdded: number;
  /** Blobs the store already had. */
  blobsPresent: number;
}

/**
 * Every descriptor an image needs (the root, child manifests of an index, configs, layers),
 * each digest once, in discovery order. `readJson` reads a manifest or index by digest.
 * Non-distributable layers that carry `urls` are listed too; callers decide what to do with them.
 */
export async function imageDescriptors(
  root: Descriptor,
  readJson: (d: Descriptor) => Promise<unknown>,
): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    out.push(d);
    if (depth > 8)
      throw new UserError(`image index nesting deeper than 8 at ${d.digest}; this is not a valid image`);
    if (INDEX_TYPES.has(d.mediaType)) {
      const idx = (await readJson(d)) as Partial<Index>;
      if (!Array.isArray(idx.manifests))
        throw new UserError(`${d.digest} is not an image index (no manifests list)`);
      for (const child of idx.manifests) {
        checkDescriptor(child, `manifest list entry of ${d.digest}`);
        await visit(child, depth + 1);
      }
    } else if (MANIFEST_TYPES.has(d.mediaType)) {
      const m = (await readJson(d)) as Partial<Manifest>;
      if (!m.config || !Array.isArray(m.layers))
        throw new UserError(`${d.digest} is not an image manifest (no config or layers)`);
      checkDescriptor(m.config, `config of ${d.digest}`);
      await visit(m.config, depth + 1);
      for (const l of m.layers) {
        checkDescriptor(l, `layer of ${d.digest}`);
        await visit(l, depth + 1);
      }
    } else if (depth === 0) {
      throw new UserError(
        `${d.digest} has media type ${d.mediaType}, which is neither an image manifest nor an index`,
      );
    }
  };
  await visit(root, 0);
  return out;
}

function checkDescriptor(d: unknown, what: string): asserts d is Descriptor {
  const x = d as Partial<Descriptor> | null;
  if (
    !x ||
    typeof x !== "object" ||
    typeof x.mediaType !== "string" ||
    typeof x.digest !== "string" ||
    !DIGEST_RE.test(x.digest) ||
    typeof x.size !== "number" ||
    !(x.size >= 0)
  )
    throw new UserError(
      `${what} is not a valid descriptor (needs mediaType, a sha256 digest and a size): ${JSON.stringify(d)}`,
    );
}

const DIR_HEADER = {
  type: "directory" as const,
  mode: 0o755,
  uid: 0,
  gid: 0,
  uname: "",
  gname: "",
  mtime: new Date(0),
};
const FILE_HEADER = {
  type: "file" as const,
  mode: 0o644,
  uid: 0,
  gid: 0,
  uname: "",
  gname: "",
  mtime: new Date(0),
};

/** Writes `refs` (any reference form) from the store into an OCI archive at `outFile` (atomically). */
export async function saveImages(store: OciLayout, refs: string[], outFile: string): Promise<SaveResult> {
  const problems: string[] = [];
  const roots = new Map<string, Descriptor>();
  for (const r of refs) {
    let ref: string;
    try {
      ref = normalizeReference(r);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    const d = await store.resolve(ref);
    if (!d)
      problems.push(
        `image ${r} is not in the local store (${store.root}); build or pull it first (sealer images lists what is there)`,
      );
    else roots.set(ref, d);
  }
  if (refs.length === 0) problems.push("no images given; name at least one image to save");
  throwIfProblems("cannot save", problems);

  const blobs = new Map<string, Descriptor>();
  for (const [ref, root] of roots) {
    for (const d of await imageDescriptors(root, (x) => store.readJson(x.digest))) {
      if (!(await store.hasBlob(d.digest))) {
        if (d.annotations && (d as Descriptor & { urls?: string[] }).urls) continue;
        problems.push(
          `image ${ref} is incomplete in the store: blob ${d.digest} (${d.mediaType}) is missing; pull or rebuild the image`,
        );
      } else blobs.set(d.digest, d);
    }
  }
  throwIfProblems("cannot save", problems);

  const images: ArchiveImage[] = [...roots]
    .map(([ref, d]) => ({ ref, digest: d.digest, mediaType: d.mediaType }))
    .sort((a, b) => a.ref.localeCompare(b.ref));
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaTypes.index,
    manifests: images.map(({ ref }) => {
      const d = roots.get(ref) as Descriptor;
      return {
        mediaType: d.mediaType,
        digest: d.digest,
        size: d.size,
        ...(d.platform ? { platform: d.platform } : {}),
        annotations: { ...(d.annotations ?? {}), [Annotations.refName]: ref },
      };
    }),
  };

  const dir = path.dirname(path.resolve(outFile));
  await fs.promises.mkdir(dir, { recursive: true });
  const tmp = path.join(
    dir,
    `.${path.basename(outFile)}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`,
  );
  const digests = [...blobs.keys()].sort();
  let total = 0;
  for (const dg of digests) total += (blobs.get(dg) as Descriptor).size;
  const bar = progressTask("save", `saving ${path.basename(outFile)}`, total);
  const pack = tar.pack();
  const writing = pipeline(
    Readable.from(pack as unknown as AsyncIterable<Buffer>),
    fs.createWriteStream(tmp, { mode: 0o644 }),
  );
  let done = 0;
  try {
    await addEntry(pack, { ...DIR_HEADER, name: "blobs/" });
    await addEntry(pack, { ...DIR_HEADER, name: "blobs/sha256/" });
    for (const dg of digests) {
      const file = store.blobPath(dg);
      const size = (await fs.promises.stat(file)).size;
      // Re-hash on the way out: a corrupt store blob must not travel in an archive.
      const hash = crypto.createHash("sha256");
      const meter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          done += chunk.length;
          bar.update(done);
          cb(null, chunk);
        },
      });
      await addEntry(
        pack,
        { ...FILE_HEADER, name: `blobs/sha256/${dg.slice(7)}`, size },
        fs.createReadStream(file).pipe(meter),
      );
      const got = "sha256:" + hash.digest("hex");
      if (got !== dg)
        throw new UserError(
          `blob ${dg} in the store at ${store.root} is corrupt (its content hashes to ${got}); remove the image and pull or rebuild it`,
        );
    }
    await addEntry(pack, { ...FILE_HEADER, name: "index.json" }, Buffer.from(JSON.stringify(index)));
    await addEntry(
      pack,
      { ...FILE_HEADER, name: "oci-layout" },
      Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })),
    );
    pack.finalize();
    await writing;
    await fs.promises.rename(tmp, outFile);
  } catch (err) {
    pack.destroy(err as Error);
    await writing.catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw err;
  } finally {
    bar.end();
  }
  return { file: outFile, images, blobs: digests.length, bytes: total };
}

type TarHeader = Parameters<tar.Pack["entry"]>[0];

function addEntry(pack: tar.Pack, header: TarHeader, body?: Buffer | Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (body === undefined || Buffer.isBuffer(body)) {
      pack.entry(body ? { ...header, size: body.length } : header, body ?? Buffer.alloc(0), (err) =>
        err ? reject(err) : resolve(),
      );
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    writeAll(sink as unknown as Parameters<typeof writeAll>[0], body).catch((err: unknown) => {
      body.destroy();
      reject(err as Error);
    });
  });
}

/**
 * tar-stream 3 uses streamx streams, which Node's pipeline() does not fully understand; this
 * pumps an async iterable into one with back-pressure and ends it.
 */
async function writeAll(
  sink: {
    write(c: Buffer): boolean;
    end(): unknown;
    on(ev: string, f: () => void): unknown;
    off(ev: string, f: () => void): unknown;
    destroyed?: boolean;
  },
  source: AsyncIterable<unknown>,
): Promise<void> {
  for await (const chunk of source) {
    if (sink.destroyed) throw new Error("archive stream closed early");
    if (!sink.write(chunk as Buffer))
      await new Promise<void>((r) => {
        const done = () => {
          sink.off("drain", done);
          sink.off("close", done);
          r();
        };
        sink.on("drain", done);
        sink.on("close", done);
      });
  }
  if (sink.destroyed) throw new Error("archive stream closed early");
  sink.end();
}

/** Why an archive entry name is refused, or undefined when it is a safe relative path. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.includes("\0")) return "contains a NUL byte";
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) return "is an absolute path";
  if (name.split(/[\\/]/).includes("..")) return "climbs out of the archive with ..";
  return undefined;
}

/** "./blobs/sha256/x" -> "blobs/sha256/x"; "blobs/" -> "blobs". */
function cleanName(name: string): string {
  let n = name;
  while (n.startsWith("./")) n = n.slice(2);
  n = n.replace(/\/+/g, "/").replace(/\/$/, "");
  return n === "." ? "" : n;
}

/**
 * Loads every image of an OCI archive (ours or `skopeo copy ... oci-archive:`; plain or gzip
 * tar) into the store. `opts.tag` names the image of a one-image archive (needed when its entry
 * carries no ref name; otherwise it renames it).
 */
export async function loadArchive(
  store: OciLayout,
  file: string,
  opts: { tag?: string } = {},
): Promise<LoadResult> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch {
    throw new UserError(
      `archive ${file} does not exist; give the file written by sealer save (or skopeo copy ... oci-archive:FILE)`,
    );
  }
  const bad = (why: string) =>
    new UserError(`${file} is not a usable OCI archive: ${why}; nothing was loaded`);
  await store.init();
  const staging = new OciLayout(
    path.join(store.tmpDir(), `load-${process.pid}-${crypto.randomBytes(6).toString("hex")}`),
  );
  const staged = new Map<string, number>();
  const jsonEntries = new Map<string, Buffer>();
  let dockerArchive = false;
  const bar = progressTask("load", `loading ${path.basename(file)}`, st.size);
  try {
    const head = Buffer.alloc(2);
    const fh = await fs.promises.open(file, "r");
    try {
      await fh.read(head, 0, 2, 0);
    } finally {
      await fh.close();
    }
    let read = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        read += chunk.length;
        bar.update(read);
        cb(null, chunk);
      },
    });
    const extract = tar.extract();
    const input = fs.createReadStream(file);
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    const feeding = pipeline(
      input,
      meter,
      gzip ? zlib.createGunzip() : new Transform({ transform: (c, _e, cb) => cb(null, c) }),
      (src: AsyncIterable<Buffer>) => writeAll(extract as unknown as Parameters<typeof writeAll>[0], src),
    );
    feeding.catch(() => undefined); // surfaced below, after the entry loop
    try {
      for await (const entry of extract) {
        const h = entry.header;
        const why = unsafeEntryName(h.name);
        if (why) throw bad(`entry "${h.name}" ${why}`);
        const name = cleanName(h.name);
        if (h.type === "symlink" || h.type === "link") {
          const target = h.linkname ?? "";
          const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
          const escapes = target.startsWith("/") || resolved === ".." || resolved.startsWith("../");
          throw bad(
            `entry "${h.name}" is a ${h.type === "link" ? "hard link" : "symlink"} to "${target}"${escapes ? ", which escapes the archive" : "; an OCI archive holds plain files only"}`,
          );
        }
        if (h.type === "directory") {
          entry.resume();
          continue;
        }
        if (h.type !== "file" && h.type !== "contiguous-file")
          throw bad(
            `entry "${h.name}" is a ${h.type ?? "special file"}; an OCI archive holds plain files only`,
          );
        const blob = BLOB_ENTRY.exec(name);
        if (blob) {
          const digest = `sha256:${blob[1] as string}`;
          if (staged.has(digest) || (await store.hasBlob(digest))) {
            entry.resume();
            continue;
          }
          try {
            const r = await staging.putBlobStream(entry as unknown as AsyncIterable<Uint8Array>, {
              digest,
              size: h.size ?? 0,
            });
            staged.set(digest, r.size);
          } catch (err) {
            throw bad(
              `blob ${digest} is corrupt (${(err as Error).message.replace(/; nothing was stored$/, "")})`,
            );
          }
        } else if (name.startsWith("blobs/")) {
          throw bad(
            `entry "${h.name}" is not a sha256 blob (blobs/sha256/<64 hex>); other digest algorithms are not supported`,
          );
        } else if (name === "index.json" || name === "oci-layout") {
          if (jsonEntries.has(name)) throw bad(`${name} appears twice`);
          if ((h.size ?? 0) > MAX_JSON_ENTRY)
            throw bad(`${name} is ${h.size} bytes, too big for an image index`);
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          jsonEntries.set(name, Buffer.concat(chunks));
        } else {
          if (name === "manifest.json" || name === "repositories") dockerArchive = true;
          entry.resume();
        }
      }
    } catch (err) {
      input.destroy();
      extract.destroy();
      await feeding.catch(() => undefined);
      if (err instanceof UserError) throw err;
      throw bad(`it is not a readable tar file (${(err as Error).message})`);
    }
    try {
      await feeding;
    } catch (err) {
      throw bad(`the tar stream is broken (${(err as Error).message})`);
    }

    const layoutJson = jsonEntries.get("oci-layout");
    if (layoutJson) {
      const v = parseJson(layoutJson) as { imageLayoutVersion?: unknown } | undefined;
      if (typeof v?.imageLayoutVersion !== "string" || !v.imageLayoutVersion.startsWith("1."))
        throw bad(`oci-layout is not an OCI image layout 1.x marker`);
    }
    const indexJson = jsonEntries.get("index.json");
    if (!indexJson)
      throw bad(
        dockerArchive
          ? "it is a docker-save archive (manifest.json), not an OCI archive; convert it with skopeo copy docker-archive:FILE oci-archive:NEW"
          : "it has no index.json",
      );
    const index = parseJson(indexJson) as Partial<Index> | undefined;
    if (!index || !Array.isArray(index.manifests)) throw bad("index.json has no manifests list");
    if (index.manifests.length === 0) throw bad("index.json lists no images");
    if (opts.tag && index.manifests.length > 1)
      throw new UserError(
        `--tag names one image, but ${file} holds ${index.manifests.length}; load without --tag and use sealer tag afterwards`,
      );

    // Names first, all problems at once.
    const problems: string[] = [];
    const wanted = new Map<string, Descriptor>();
    index.manifests.forEach((d, i) => {
      try {
        checkDescriptor(d, `index.json entry ${i}`);
      } catch (err) {
        problems.push((err as Error).message);
        return;
      }
      const raw = opts.tag ?? d.annotations?.[Annotations.refName];
      if (!raw) {
        problems.push(
          `index.json entry ${i} (${d.digest}) has no ${Annotations.refName} annotation; load it with --tag NAME:TAG`,
        );
        return;
      }
      let ref: string;
      try {
        ref = normalizeReference(raw);
      } catch (err) {
        problems.push(`index.json entry ${i}: ${(err as Error).message}; load it with --tag NAME:TAG`);
        return;
      }
      const prev = wanted.get(ref);
      if (prev && prev.digest !== d.digest)
        problems.push(`index.json names ${ref} twice, for ${prev.digest} and ${d.digest}`);
      wanted.set(ref, d);
    });
    if (problems.length)
      throw new UserError(
        `${file} is not a usable OCI archive; nothing was loaded:\n${problems.map((p) => ` - ${p}`).join("\n")}`,
        { problems },
      );

    // The whole graph must be present (staged now, or already in the store) with the sizes the descriptors claim.
    const sizeOf = async (digest: string): Promise<number | undefined> => {
      const s = staged.get(digest);
      if (s !== undefined) return s;
      try {
        return (await fs.promises.stat(store.blobPath(digest))).size;
      } catch {
        return undefined;
      }
    };
    const readJson = async (d: Descriptor): Promise<unknown> => {
      const buf = staged.has(d.digest) ? await staging.readBlob(d.digest) : await store.readBlob(d.digest);
      const v = parseJson(buf);
      if (v === undefined) throw bad(`${d.digest} (${d.mediaType}) is not valid JSON`);
      return v;
    };
    const needed = new Set<string>();
    for (const [ref, root] of wanted) {
      let descs: Descriptor[];
      try {
        descs = await imageDescriptors(root, async (d) => {
          const size = await sizeOf(d.digest);
          if (size === undefined) throw bad(`${ref}: the archive lacks ${d.digest} (${d.mediaType})`);
          return readJson(d);
        });
      } catch (err) {
        problems.push(
          (err as Error).message
            .replace(/; nothing was loaded$/, "")
            .replace(/^.* is not a usable OCI archive: /, ""),
        );
        continue;
      }
      for (const d of descs) {
        const size = await sizeOf(d.digest);
        if (size === undefined) problems.push(`${ref}: the archive lacks blob ${d.digest} (${d.mediaType})`);
        else if (size !== d.size)
          problems.push(`${ref}: blob ${d.digest} is ${size} bytes but its descriptor says ${d.size}`);
        else needed.add(d.digest);
      }
    }
    if (problems.length)
      throw new UserError(
        `${file} is not a usable OCI archive; nothing was loaded:\n${problems.map((p) => ` - ${p}`).join("\n")}`,
        { problems },
      );

    // Commit: verified blobs move in (same filesystem: rename), then one index write sets every ref.
    let added = 0;
    for (const dg of [...needed].sort()) {
      if (!staged.has(dg) || (await store.hasBlob(dg))) continue;
      await fs.promises.mkdir(path.dirname(store.blobPath(dg)), { recursive: true });
      await fs.promises.rename(staging.blobPath(dg), store.blobPath(dg));
      added++;
    }
    const images: ArchiveImage[] = [...wanted]
      .map(([ref, d]) => ({ ref, digest: d.digest, mediaType: d.mediaType }))
      .sort((a, b) => a.ref.localeCompare(b.ref));
    await store.updateIndex((idx) => ({
      ...idx,
      manifests: [
        ...idx.manifests.filter((d) => !wanted.has(d.annotations?.[Annotations.refName] ?? "")),
        ...[...wanted].map(([ref, d]) => ({
          mediaType: d.mediaType,
          digest: d.digest,
          size: d.size,
          ...(d.platform ? { platform: d.platform } : {}),
          annotations: { ...(d.annotations ?? {}), [Annotations.refName]: ref },
        })),
      ].sort((a, b) =>
        (a.annotations?.[Annotations.refName] ?? "").localeCompare(
          b.annotations?.[Annotations.refName] ?? "",
        ),
      ),
    }));
    return { images, blobsAdded: added, blobsPresent: needed.size - added };
  } finally {
    bar.end();
    await fs.promises.rm(staging.root, { recursive: true, force: true });
  }
}

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}

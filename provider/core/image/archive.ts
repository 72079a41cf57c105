import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { UserError, throwIfProblems } from "../errors";
import { describeFsError, describeFsWriteError } from "../limits";
import { formatBytes, log } from "../log";
import { cleanStaleTemp, ownedTempPath, removeOnSignal } from "../temp-owner";
import { openArchiveInput } from "./archive-input";
import { ArchiveFormatError, Sink, readTarEntries, writeAll } from "./archive-stream";
import { progressTask } from "../progress";
import { OciLayout } from "./layout";
import { checkLayerStack, type LayerRecord, writeRecords } from "./layer-safety";
import { normalizeReference } from "../common/reference";
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
/**
 * index.json, oci-layout, manifests and indexes are read into memory; like a registry's limit
 * on manifest bodies, anything bigger is refused rather than parsed.
 */
const MAX_JSON = 4 * 1024 * 1024;

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
      if (m.annotations !== undefined && !isStringMap(m.annotations))
        throw new UserError(
          `${d.digest} is not a valid image manifest: its annotations are not a map of strings`,
        );
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
  const why =
    !x || typeof x !== "object" || Array.isArray(x)
      ? "it is not an object"
      : typeof x.mediaType !== "string"
        ? "mediaType is not a string"
        : typeof x.digest !== "string" || !DIGEST_RE.test(x.digest)
          ? "digest is not sha256:<64 hex>"
          : !Number.isSafeInteger(x.size) || (x.size as number) < 0
            ? "size is not a whole number of bytes"
            : x.annotations !== undefined && !isStringMap(x.annotations)
              ? annotationProblem(x.annotations)
              : x.platform !== undefined &&
                  (!x.platform ||
                    typeof x.platform !== "object" ||
                    typeof x.platform.os !== "string" ||
                    typeof x.platform.architecture !== "string")
                ? "platform lacks os and architecture strings"
                : undefined;
  if (why)
    throw new UserError(
      `${what} is not a valid descriptor (${why}): ${clip(JSON.stringify(d) ?? String(d), 300)}`,
    );
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function annotationProblem(v: unknown): string {
  if (!v || typeof v !== "object" || Array.isArray(v)) return "annotations is not a map of strings";
  const [k, bad] = Object.entries(v).find(([, x]) => typeof x !== "string") ?? ["", undefined];
  return `annotation ${k} is ${JSON.stringify(bad)?.slice(0, 80) ?? "not a string"}, not a string`;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return (
    !!v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((s) => typeof s === "string")
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

  // The archive goes to a temp file next to the target, renamed over it when complete: a
  // failed save leaves the old file (or none) and no temp file behind.
  const target = await checkSaveOutput(outFile);
  const dir = path.dirname(target);
  const tmp = path.join(
    dir,
    `.${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`,
  );
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, "wx", 0o644);
  } catch (err) {
    throw saveOutputError(outFile, dir, err);
  }
  const releaseTmp = removeOnSignal(tmp);
  const digests = [...blobs.keys()].sort();
  let total = 0;
  for (const dg of digests) total += (blobs.get(dg) as Descriptor).size;
  const bar = progressTask("save", `saving ${path.basename(outFile)}`, total);
  const pack = tar.pack();
  // Errors of the pack and its entries reach us through addEntry and `writing`; without a
  // listener, a stream destroyed by a failed write would crash the process instead.
  pack.on("error", () => undefined);
  const writing = pipeline(
    Readable.from(pack as unknown as AsyncIterable<Buffer>),
    fh.createWriteStream(),
  ).catch((err: unknown) => {
    throw saveOutputError(outFile, dir, err);
  });
  writing.catch(() => undefined);
  // Settles only when the write fails: raced with each entry so a failed write ends the save at once.
  const writeFailed = writing.then(() => new Promise<never>(() => undefined));
  const add = (header: TarHeader, body?: Buffer | Readable) =>
    Promise.race([addEntry(pack, header, body), writeFailed]);
  let done = 0;
  try {
    await add({ ...DIR_HEADER, name: "blobs/" });
    await add({ ...DIR_HEADER, name: "blobs/sha256/" });
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
      const input = fs.createReadStream(file);
      input.on("error", (err) => meter.destroy(err));
      await add({ ...FILE_HEADER, name: `blobs/sha256/${dg.slice(7)}`, size }, input.pipe(meter));
      const got = "sha256:" + hash.digest("hex");
      if (got !== dg)
        throw new UserError(
          `blob ${dg} in the store at ${store.root} is corrupt (its content hashes to ${got}); remove the image and pull or rebuild it`,
        );
    }
    await add({ ...FILE_HEADER, name: "index.json" }, Buffer.from(JSON.stringify(index)));
    await add(
      { ...FILE_HEADER, name: "oci-layout" },
      Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })),
    );
    pack.finalize();
    await writing;
    await fs.promises.rename(tmp, target).catch((err: unknown) => {
      throw saveOutputError(outFile, dir, err);
    });
  } catch (err) {
    pack.destroy(err as Error);
    // A failed write is the cause of whatever the pack side saw after it.
    const writeErr = await writing.then(
      () => undefined,
      (e: unknown) => e,
    );
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    if (err instanceof UserError) throw err;
    if (writeErr instanceof UserError) throw writeErr;
    throw err;
  } finally {
    releaseTmp();
    bar.end();
  }
  return { file: outFile, images, blobs: digests.length, bytes: total };
}

type TarHeader = Parameters<tar.Pack["entry"]>[0];

/** What a special file is called in a message. */
function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a named pipe";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

/**
 * Checks `-o` before anything is written and returns the path to replace: `outFile`, or the
 * file a symbolic link at `outFile` points to (the link stays). Refuses a directory, a device,
 * a named pipe or a socket (save replaces its target as a whole, which such a file must not
 * be), and a missing parent directory (not created: a typo must not make directories).
 */
async function checkSaveOutput(outFile: string): Promise<string> {
  const abs = path.resolve(outFile);
  const refuse = (why: string) => new UserError(`cannot save to -o ${outFile}: ${why}`);
  const link = await fs.promises.lstat(abs).catch((err: unknown) => err as NodeJS.ErrnoException);
  if (!(link instanceof Error)) {
    let target = abs;
    if (link.isSymbolicLink()) {
      try {
        target = await fs.promises.realpath(abs);
      } catch (err) {
        throw refuse(
          `it is a symbolic link whose target cannot be used (${describeFsError(err)}); remove the link or give another file`,
        );
      }
    }
    const st = link.isSymbolicLink() ? await fs.promises.stat(target) : link;
    if (st.isDirectory())
      throw refuse(
        `it is a directory; give the path of the archive file to write, e.g. -o ${path.join(outFile, "images.tar")}`,
      );
    if (!st.isFile())
      throw refuse(
        `it is ${fileKind(st)}, not a regular file; save replaces the file it writes as a whole, so give the path of a new or existing regular file`,
      );
    return target;
  }
  if (link.code !== "ENOENT") throw refuse(`${describeFsError(link)}; give another path`);
  const dir = path.dirname(abs);
  const st = await fs.promises.stat(dir).catch((err: unknown) => err as NodeJS.ErrnoException);
  if (st instanceof Error)
    throw refuse(
      st.code === "ENOENT"
        ? `its directory ${dir} does not exist; create it first (mkdir -p ${dir}) or give a path in an existing directory`
        : `its directory ${dir} cannot be used (${describeFsError(st)}); give a path in a directory this user can write`,
    );
  if (!st.isDirectory()) throw refuse(`${dir} is not a directory; give a path in an existing directory`);
  return abs;
}

/** A failed write of the archive (temp file, data or the final rename) in plain words. */
function saveOutputError(outFile: string, dir: string, err: unknown): UserError {
  const code = (err as { code?: unknown } | null)?.code;
  const why =
    code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR"
      ? `${describeFsError(err)} (the path changed while saving); check -o and try again`
      : describeFsWriteError(err, dir, "save with -o to");
  return new UserError(`cannot save to -o ${outFile}: ${why}; nothing was written`, { cause: err });
}

function addEntry(pack: tar.Pack, header: TarHeader, body?: Buffer | Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    // The entry's callback reports its end; its 'error' event must be listened to as well,
    // or a pack destroyed under it (a failed write) throws from an event emitter.
    if (body === undefined || Buffer.isBuffer(body)) {
      pack
        .entry(body ? { ...header, size: body.length } : header, body ?? Buffer.alloc(0), (err) =>
          err ? reject(err) : resolve(),
        )
        .on("error", reject);
      return;
    }
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    sink.on("error", (err: Error) => {
      body.destroy();
      reject(err);
    });
    writeAll(sink as unknown as Sink, body).catch((err: unknown) => {
      body.destroy();
      reject(err as Error);
    });
  });
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

/** What reading the archive left in staging. */
interface ReadState {
  /** Verified staged blobs: digest -> size. */
  staged: Map<string, number>;
  /** Blob entries whose content does not match their name: digest -> why. */
  corrupt: Map<string, string>;
  /** index.json and oci-layout. */
  json: Map<string, Buffer>;
  dockerArchive: boolean;
}

/**
 * Loads every image of an OCI archive (ours or `skopeo copy ... oci-archive:`; plain or gzip
 * tar) into the store. `file` is a path (a regular file, a device or a named pipe) or `-` for
 * stdin; it is read once, streaming. `opts.tag` names the image of a one-image archive (needed
 * when its entry carries no ref name; otherwise it renames it).
 *
 * Blobs are staged and verified (sha256 and size) as they stream by; only when the archive
 * ended cleanly and every image's whole graph is present and verified do they move into the
 * store, and one index write sets every ref. Otherwise the staging directory is removed and
 * the store is as it was.
 */
export async function loadArchive(
  store: OciLayout,
  file: string,
  opts: { tag?: string; fifoWaitMs?: number } = {},
): Promise<LoadResult> {
  const input = await openArchiveInput(file, opts.fifoWaitMs);
  const label = input.label;
  const bad = (why: string) =>
    new UserError(`${label} is not a usable OCI archive: ${why}; nothing was loaded`);
  const badAll = (problems: string[]) =>
    new UserError(
      `${label} is not a usable OCI archive; nothing was loaded:\n${problems.map((p) => ` - ${p}`).join("\n")}`,
      { problems },
    );
  const staging = new OciLayout(ownedTempPath(store.tmpDir(), "load"));
  const release = removeOnSignal(staging.root);
  const bar = progressTask("load", `loading ${path.basename(label)}`, input.size);
  try {
    await store.init();
    await cleanStaleTemp(store.tmpDir());
    const state = await readArchive(store, staging, input.stream, bad, (n) => bar.update(n));
    const index = parseIndexJson(state, bad);
    if (opts.tag && index.length > 1)
      throw new UserError(
        `--tag names one image, but ${label} holds ${index.length}; load without --tag and use sealer tag afterwards`,
      );
    const wanted = namedImages(index, opts.tag, badAll);
    const { needed, stacks } = await verifyGraph(store, staging, state, wanted, badAll);

    // A layer stack that could write outside its rootfs is refused before anything moves in.
    // What the check learnt is recorded only after the commit, so a first run does not read
    // every layer again, and a refused load leaves no record behind.
    const records: LayerRecord[] = [];
    for (const { ref, layers } of stacks)
      await checkLayerStack(store, layers, {
        what: `${label}: ${ref}`,
        source: (dg) => (state.staged.has(dg) ? staging : store),
        deferRecords: records,
      }).catch((err: unknown) => {
        throw err instanceof UserError ? new UserError(`${err.message}; nothing was loaded`) : err;
      });

    // Commit: verified blobs move in (same filesystem: rename), then one index write sets every ref.
    let added = 0;
    for (const dg of [...needed].sort()) {
      if (!state.staged.has(dg) || (await store.hasBlob(dg))) continue;
      await fs.promises.mkdir(path.dirname(store.blobPath(dg)), { recursive: true });
      await fs.promises.rename(staging.blobPath(dg), store.blobPath(dg));
      added++;
    }
    await store.setRefs([...wanted]);
    // Only a cache: a store that takes the blobs but not these files has still loaded them.
    await writeRecords(records).catch((err: unknown) =>
      log.warn(`could not record the layer checks of ${label} (${describeFsWriteError(err, store.root)})`),
    );
    const images: ArchiveImage[] = [...wanted]
      .map(([ref, d]) => ({ ref, digest: d.digest, mediaType: d.mediaType }))
      .sort((a, b) => a.ref.localeCompare(b.ref));
    return { images, blobsAdded: added, blobsPresent: needed.size - added };
  } catch (err) {
    if (err instanceof UserError) throw err;
    // Not the archive's fault: the store could not be written (disk full, permissions).
    throw new UserError(
      `loading ${label} failed while writing to the store at ${store.root}; nothing was loaded: ${describeFsWriteError(err, store.root)}`,
      { cause: err },
    );
  } finally {
    bar.end();
    input.stream.destroy();
    await fs.promises.rm(staging.root, { recursive: true, force: true });
    release();
  }
}

/** Streams the archive once, staging and verifying blobs and keeping the two JSON entries. */
async function readArchive(
  store: OciLayout,
  staging: OciLayout,
  source: Readable,
  bad: (why: string) => UserError,
  onBytes: (n: number) => void,
): Promise<ReadState> {
  const state: ReadState = { staged: new Map(), corrupt: new Map(), json: new Map(), dockerArchive: false };
  try {
    await readTarEntries(
      source,
      async (h, entry) => {
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
        if (h.type === "directory") return;
        if (h.type !== "file" && h.type !== "contiguous-file")
          throw bad(
            `entry "${h.name}" is a ${h.type ?? "special file"}; an OCI archive holds plain files only`,
          );
        const blob = BLOB_ENTRY.exec(name);
        if (blob) {
          const digest = `sha256:${blob[1] as string}`;
          if (state.staged.has(digest) || (await store.hasBlob(digest))) return;
          // Staged under the digest its bytes really have; a mismatch is recorded, not thrown,
          // so the report can say which image needs the blob.
          const r = await staging.putBlobStream(entry);
          if (r.digest === digest) {
            state.staged.set(digest, r.size);
            state.corrupt.delete(digest);
          } else state.corrupt.set(digest, `its content hashes to ${r.digest} (${r.size} bytes)`);
        } else if (name.startsWith("blobs/")) {
          throw bad(
            `entry "${h.name}" is not a sha256 blob (blobs/sha256/<64 hex>); other digest algorithms are not supported`,
          );
        } else if (name === "index.json" || name === "oci-layout") {
          if (state.json.has(name)) throw bad(`${name} appears twice`);
          if ((h.size ?? 0) > MAX_JSON)
            throw bad(
              `${name} is ${h.size} bytes, more than the ${formatBytes(MAX_JSON)} an image index may have`,
            );
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          state.json.set(name, Buffer.concat(chunks));
        } else if (name === "manifest.json" || name === "repositories") state.dockerArchive = true;
      },
      { onBytes },
    );
  } catch (err) {
    if (err instanceof ArchiveFormatError) throw bad(err.message);
    throw err;
  }
  return state;
}

/** index.json's entries, after the layout marker and the index itself are checked. */
function parseIndexJson(state: ReadState, bad: (why: string) => UserError): unknown[] {
  const layoutJson = state.json.get("oci-layout");
  if (layoutJson) {
    const v = parseJson(layoutJson) as { imageLayoutVersion?: unknown } | undefined;
    if (typeof v?.imageLayoutVersion !== "string" || !v.imageLayoutVersion.startsWith("1."))
      throw bad(`oci-layout is not an OCI image layout 1.x marker`);
  }
  const indexJson = state.json.get("index.json");
  if (!indexJson)
    throw bad(
      state.dockerArchive
        ? "it is a docker-save archive (manifest.json), not an OCI archive; convert it with skopeo copy docker-archive:FILE oci-archive:NEW"
        : "it has no index.json",
    );
  const index = parseJson(indexJson) as { manifests?: unknown } | undefined;
  if (index === undefined) throw bad("index.json is not valid JSON");
  if (!index || typeof index !== "object" || !Array.isArray(index.manifests))
    throw bad("index.json has no manifests list");
  if (index.manifests.length === 0) throw bad("index.json lists no images");
  return index.manifests as unknown[];
}

/** ref -> root descriptor for every index.json entry; all naming problems at once. */
function namedImages(
  entries: unknown[],
  tag: string | undefined,
  badAll: (problems: string[]) => UserError,
): Map<string, Descriptor> {
  const problems: string[] = [];
  const wanted = new Map<string, Descriptor>();
  entries.forEach((d, i) => {
    try {
      checkDescriptor(d, `index.json entry ${i}`);
    } catch (err) {
      problems.push((err as Error).message);
      return;
    }
    const raw = tag ?? d.annotations?.[Annotations.refName];
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
  if (problems.length) throw badAll(problems);
  return wanted;
}

/**
 * Walks every image's graph over staged and stored blobs; each blob must be present, verified
 * and of the size its descriptor says. Returns the digests the images need and, per image
 * manifest, its layer digests in order (from the parse done here, so nothing is read twice).
 */
async function verifyGraph(
  store: OciLayout,
  staging: OciLayout,
  state: ReadState,
  wanted: Map<string, Descriptor>,
  badAll: (problems: string[]) => UserError,
): Promise<{ needed: Set<string>; stacks: Array<{ ref: string; layers: string[] }> }> {
  const problems: string[] = [];
  const stacks: Array<{ ref: string; layers: string[] }> = [];
  // Parsed manifests and indexes by digest; imageDescriptors has validated them once it returns.
  const parsed = new Map<string, unknown>();
  const sizeOf = async (digest: string): Promise<number | undefined> => {
    const s = state.staged.get(digest);
    if (s !== undefined) return s;
    try {
      return (await fs.promises.stat(store.blobPath(digest))).size;
    } catch {
      return undefined;
    }
  };
  const blobProblem = async (ref: string, d: Descriptor): Promise<string | undefined> => {
    const what = `image ${ref} needs blob ${d.digest} (${d.mediaType})`;
    const corrupt = state.corrupt.get(d.digest);
    if (corrupt) return `${what}, but that blob in the archive is corrupt: ${corrupt}`;
    const size = await sizeOf(d.digest);
    if (size === undefined) return `${what}, which the archive lacks`;
    if (size !== d.size) return `${what}: the blob is ${size} bytes but the descriptor says ${d.size}`;
    return undefined;
  };
  const needed = new Set<string>();
  const referenced = new Set<string>();
  for (const [ref, root] of wanted) {
    let descs: Descriptor[];
    try {
      descs = await imageDescriptors(root, async (d) => {
        referenced.add(d.digest);
        const p = await blobProblem(ref, d);
        if (p) throw new UserError(p);
        if (d.size > MAX_JSON)
          throw new UserError(
            `image ${ref}: ${d.digest} (${d.mediaType}) is ${d.size} bytes, more than the ${formatBytes(MAX_JSON)} a manifest or index may have`,
          );
        const buf = state.staged.has(d.digest)
          ? await staging.readBlob(d.digest)
          : await store.readBlob(d.digest);
        const v = parseJson(buf) as { mediaType?: unknown } | undefined;
        if (v === undefined || typeof v !== "object" || v === null)
          throw new UserError(`image ${ref}: ${d.digest} (${d.mediaType}) is not a JSON object`);
        if (typeof v.mediaType === "string" && v.mediaType !== d.mediaType)
          throw new UserError(
            `image ${ref}: ${d.digest} says it is ${v.mediaType}, but its descriptor says ${d.mediaType}`,
          );
        parsed.set(d.digest, v);
        return v;
      });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(err.message);
      continue;
    }
    for (const d of descs) {
      if (MANIFEST_TYPES.has(d.mediaType))
        stacks.push({ ref, layers: (parsed.get(d.digest) as Manifest).layers.map((l) => l.digest) });
      referenced.add(d.digest);
      const p = await blobProblem(ref, d);
      if (p) problems.push(p);
      else needed.add(d.digest);
    }
  }
  for (const [digest, why] of state.corrupt)
    if (!referenced.has(digest))
      problems.push(`blob ${digest} in the archive is corrupt (${why}); no image references it`);
  if (problems.length) throw badAll(problems);
  return { needed, stacks };
}

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}

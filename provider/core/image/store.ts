/**
 * Reading and managing images in the local store (an OCI layout): resolve a reference to its
 * manifest for a platform, list, inspect, tag, remove, prune. The CLI verbs and the planner's
 * image facts are thin layers over these functions.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ImageNotInStoreError, UserError } from "../errors";
import { ownedTempPath, ownerAlive, removeOnSignal, sizeOf } from "../temp-owner";
import { familiarReference, normalizeReference, parseReference } from "../common/reference";
import { appNameError } from "../kubefile/app-name";
import { clip } from "../kubefile/lexer";
import { OciLayout } from "./layout";
import {
  Annotations,
  ContainerImage,
  Descriptor,
  ImageConfig,
  ImageExtension,
  Index,
  Manifest,
  MediaTypes,
  Platform,
} from "./types";

/** "linux/amd64" for this machine (Node's x64 -> amd64). */
export function hostPlatform(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch === "ia32" ? "386" : process.arch;
  return `linux/${arch}`;
}

export function parsePlatform(p: string): Platform {
  const parts = p.trim().split("/");
  const [os, architecture, variant] = parts;
  if (!os || !architecture || parts.length > 3)
    throw new UserError(`invalid platform "${p}": use os/arch[/variant], e.g. linux/amd64`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? "/" + p.variant : ""}`;
}

function isIndex(mediaType: string | undefined): boolean {
  return mediaType === MediaTypes.index || mediaType === MediaTypes.dockerManifestList;
}

export interface FoundImage {
  /** Normalised reference names pointing at it (one when found by reference). */
  refs: string[];
  descriptor: Descriptor;
}

/**
 * Finds an image by reference ("app:1", "docker.io/library/app:1") or by id (a manifest/index
 * digest "sha256:…" or a unique hex prefix of at least 6 characters).
 */
export async function findImage(layout: OciLayout, nameOrId: string): Promise<FoundImage | undefined> {
  const refs = await layout.listRefs();
  const id = nameOrId.replace(/^sha256:/, "");
  if (/^[a-f0-9]{6,64}$/.test(id)) {
    const matches = refs.filter((r) => r.descriptor.digest.slice("sha256:".length).startsWith(id));
    const digests = new Set(matches.map((m) => m.descriptor.digest));
    if (digests.size > 1)
      throw new UserError(
        `image id "${nameOrId}" is ambiguous (${[...digests].join(", ")}); give more characters`,
      );
    const first = matches[0];
    if (first) return { refs: matches.map((m) => m.ref), descriptor: first.descriptor };
    if (/^[a-f0-9]{64}$/.test(id) || nameOrId.startsWith("sha256:")) return undefined;
  }
  let ref: string;
  try {
    ref = normalizeReference(nameOrId);
  } catch (err) {
    throw new UserError(
      `"${nameOrId}" is neither an image reference nor an image id: ${(err as Error).message}`,
    );
  }
  const hit = refs.find((r) => r.ref === ref);
  return hit ? { refs: [hit.ref], descriptor: hit.descriptor } : undefined;
}

export interface ResolvedManifest {
  /** The normalised reference (or the id given). */
  reference: string;
  /** Digest of the platform manifest. */
  manifestDigest: string;
  manifest: Manifest;
  config: ImageConfig;
  /** Set when the reference points at an index. */
  indexDigest?: string;
  /** The platform of this manifest ("linux/amd64"). */
  platform: string;
  /** All platforms of the image. */
  platforms: string[];
}

/**
 * Resolves a reference to the manifest for `platform` (default: this machine's, else the only
 * or first one). Throws a UserError naming what to do when the image or platform is missing.
 */
export async function resolveManifest(
  layout: OciLayout,
  ref: string,
  platform?: string,
): Promise<ResolvedManifest> {
  const found = await findImage(layout, ref);
  if (!found)
    throw new ImageNotInStoreError(
      ref,
      `image ${ref} not found in the local store (${layout.root}); build it, or run sealer pull ${ref}`,
    );
  const reference = found.refs[0] ?? ref;
  const top = found.descriptor;
  if (isIndex(top.mediaType)) {
    const index = await layout.readJson<Index>(top.digest);
    const entries = index.manifests.filter((m) => m.platform);
    const platforms = entries.map((m) => formatPlatform(m.platform as Platform));
    const want = platform ?? (platforms.includes(hostPlatform()) ? hostPlatform() : platforms[0]);
    const entry = entries.find((m) => formatPlatform(m.platform as Platform) === want);
    if (!entry)
      throw new UserError(
        `image ${reference} has no manifest for platform ${want ?? "(none)"}; it has ${platforms.join(", ") || "none"}`,
      );
    const manifest = await layout.readJson<Manifest>(entry.digest);
    const config = await layout.readJson<ImageConfig>(manifest.config.digest);
    return {
      reference,
      manifestDigest: entry.digest,
      manifest,
      config,
      indexDigest: top.digest,
      platform: want as string,
      platforms,
    };
  }
  const manifest = await layout.readJson<Manifest>(top.digest);
  const config = await layout.readJson<ImageConfig>(manifest.config.digest);
  const own = formatPlatform({
    os: config.os,
    architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
  });
  if (platform && platform !== own)
    throw new UserError(`image ${reference} is built for ${own} only, not ${platform}`);
  return { reference, manifestDigest: top.digest, manifest, config, platform: own, platforms: [own] };
}

/**
 * The sealer extension of a manifest (sealer v0.9+ annotation), or undefined for non-sealer
 * images. App names are re-checked: an image from `sealer load` or a registry may hold any text,
 * and the names become directories and words of launch commands.
 */
export function readExtension(manifest: Manifest, reference: string): ImageExtension | undefined {
  const raw = manifest.annotations?.[Annotations.sealerExtension];
  if (!raw) return undefined;
  const where = `image ${reference}`;
  let ext: ImageExtension;
  try {
    ext = JSON.parse(raw) as ImageExtension;
  } catch {
    throw new UserError(`${where}: its ${Annotations.sealerExtension} annotation is not valid JSON`);
  }
  if (!ext || typeof ext !== "object" || Array.isArray(ext))
    throw new UserError(`${where}: its ${Annotations.sealerExtension} annotation is not a JSON object`);
  const names: unknown[] = [
    ...(Array.isArray(ext.applications) ? ext.applications.map((a) => (a as { name?: unknown })?.name) : []),
    ...(Array.isArray(ext.launch?.app_names) ? ext.launch.app_names : []),
  ];
  for (const name of names) {
    const problem =
      typeof name === "string" ? appNameError(name) : `app name ${clip(String(name), 60)} is not a string`;
    if (problem)
      throw new UserError(
        `${where} names an app that cannot be used: ${problem}; the image was not built by a valid Kubefile, so do not use it`,
      );
  }
  return ext;
}

/**
 * A layer's own annotations (paths it touches, per-path digests), checked: an image from
 * `sealer load` or a registry may hold any text there. Absent ones are absent.
 */
export function readLayerAnnotations(
  layer: Descriptor,
  reference: string,
): { paths?: string[]; groups?: Record<string, string> } {
  const read = (key: string, ok: (v: unknown) => boolean, what: string): unknown => {
    const raw = layer.annotations?.[key];
    if (raw === undefined) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    if (!ok(v))
      throw new UserError(
        `image ${reference}, layer ${layer.digest.slice(0, 19)}: its ${key} annotation is not ${what}; rebuild the image`,
      );
    return v;
  };
  const paths = read(
    Annotations.layerPaths,
    (v) => Array.isArray(v) && v.every((x) => typeof x === "string"),
    "a JSON list of strings",
  ) as string[] | undefined;
  const groups = read(
    Annotations.layerGroups,
    (v) =>
      !!v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      Object.values(v).every((x) => typeof x === "string"),
    "a JSON object of strings",
  ) as Record<string, string> | undefined;
  return { ...(paths ? { paths } : {}), ...(groups ? { groups } : {}) };
}

export function readContainerImages(manifest: Pick<Manifest, "annotations">): ContainerImage[] {
  const raw = manifest.annotations?.[Annotations.sealerContainerImages];
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? (v as ContainerImage[]) : [];
  } catch {
    throw new UserError(`the image's ${Annotations.sealerContainerImages} annotation is not valid JSON`);
  }
}

/** What a build with --allow-incomplete recorded as missing; an image from elsewhere may hold anything. */
export function readIncompleteImages(manifest: Pick<Manifest, "annotations">): string[] {
  const raw = manifest.annotations?.[Annotations.incompleteImages];
  if (!raw) return [];
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new UserError(
      `the image's ${Annotations.incompleteImages} annotation is not a JSON list of strings; rebuild the image`,
    );
  return v as string[];
}

/** Every blob an entry reaches (index -> manifests -> config + layers). */
async function reachableFrom(layout: OciLayout, d: Descriptor, out: Set<string>): Promise<void> {
  if (out.has(d.digest)) return;
  out.add(d.digest);
  if (!(await layout.hasBlob(d.digest))) return;
  if (isIndex(d.mediaType)) {
    const idx = await layout.readJson<Index>(d.digest);
    for (const m of idx.manifests) await reachableFrom(layout, m, out);
  } else if (d.mediaType === MediaTypes.manifest || d.mediaType === MediaTypes.dockerManifest) {
    const m = await layout.readJson<Manifest>(d.digest);
    out.add(m.config.digest);
    for (const l of m.layers) out.add(l.digest);
  }
}

export interface ImageSummary {
  reference: string;
  name: string;
  tag: string;
  /** First 12 hex digits of the manifest (or index) digest. */
  id: string;
  digest: string;
  platforms: string[];
  /** Bytes of manifest(s), configs and layers. */
  size: number;
  /** When the reference was set (store-local; not part of the image digest). */
  created?: string;
}

export async function listImages(layout: OciLayout): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const { ref, descriptor } of await layout.listRefs()) {
    const parsed = parseReference(ref);
    const blobs = new Set<string>();
    await reachableFrom(layout, descriptor, blobs);
    let size = 0;
    for (const b of blobs)
      size += (await fs.promises.stat(layout.blobPath(b)).catch(() => ({ size: 0 }))).size;
    let platforms: string[] = [];
    try {
      platforms = (await resolveManifest(layout, ref)).platforms;
    } catch {
      platforms = [];
    }
    const fam = familiarReference({ ...parsed, tag: undefined, digest: undefined });
    out.push({
      reference: ref,
      name: fam,
      tag: parsed.tag ?? "<none>",
      id: descriptor.digest.slice(7, 19),
      digest: descriptor.digest,
      platforms,
      size,
      ...(descriptor.annotations?.[Annotations.created]
        ? { created: descriptor.annotations[Annotations.created] }
        : {}),
    });
  }
  return out;
}

export interface InspectResult {
  reference: string;
  /** Digest of what the reference points at (manifest, or index for multi-platform). */
  digest: string;
  mediaType: string;
  platforms: string[];
  platform: string;
  manifestDigest: string;
  configDigest: string;
  layers: Array<{ digest: string; size: number; diffID?: string; paths?: string[]; instruction?: string }>;
  labels: Record<string, string>;
  env: string[];
  author?: string;
  history: Array<{ created_by?: string; empty_layer?: boolean }>;
  extension?: ImageExtension;
  containerImages: ContainerImage[];
  /** Built with --allow-incomplete while container images were missing: what and why. */
  incompleteImages?: string[];
}

export async function inspectImage(
  layout: OciLayout,
  ref: string,
  platform?: string,
): Promise<InspectResult> {
  const found = await findImage(layout, ref);
  const r = await resolveManifest(layout, ref, platform);
  const top = found?.descriptor;
  const ext = readExtension(r.manifest, r.reference);
  const incomplete = readIncompleteImages(r.manifest);
  return {
    reference: r.reference,
    digest: top?.digest ?? r.manifestDigest,
    mediaType: top?.mediaType ?? MediaTypes.manifest,
    platforms: r.platforms,
    platform: r.platform,
    manifestDigest: r.manifestDigest,
    configDigest: r.manifest.config.digest,
    layers: r.manifest.layers.map((l, i) => {
      const { paths } = readLayerAnnotations(l, r.reference);
      const instruction = l.annotations?.[Annotations.layerInstruction];
      const diffID = r.config.rootfs?.diff_ids?.[i];
      return {
        digest: l.digest,
        size: l.size,
        ...(diffID ? { diffID } : {}),
        ...(paths ? { paths } : {}),
        ...(instruction ? { instruction } : {}),
      };
    }),
    labels: r.config.config?.Labels ?? {},
    env: r.config.config?.Env ?? [],
    ...(r.config.author ? { author: r.config.author } : {}),
    history: (r.config.history ?? []).map((h) => ({
      ...(h.created_by ? { created_by: h.created_by } : {}),
      ...(h.empty_layer ? { empty_layer: true } : {}),
    })),
    ...(ext ? { extension: ext } : {}),
    containerImages: readContainerImages(r.manifest),
    ...(incomplete.length ? { incompleteImages: incomplete } : {}),
  };
}

export async function tagImage(layout: OciLayout, source: string, target: string): Promise<string> {
  const found = await findImage(layout, source);
  if (!found) throw new UserError(`image ${source} not found in the local store; see sealer images`);
  // A digest names content, not a tag that can be pointed anywhere: docker refuses it too.
  if (parseReference(target).digest)
    throw new UserError(
      `the new name ${target} holds a digest; give a tag instead (e.g. ${target.split("@")[0]}:v1): a digest names what an image holds, it cannot be given to another`,
    );
  const ref = normalizeReference(target);
  // Tagging an image with the name it already has changes nothing (not even its time).
  if ((await layout.resolve(ref))?.digest === found.descriptor.digest) return ref;
  const annotations = { ...(found.descriptor.annotations ?? {}) };
  delete annotations[Annotations.refName];
  annotations[Annotations.created] = new Date().toISOString();
  await layout.setRef(ref, { ...found.descriptor, annotations });
  return ref;
}

/**
 * Removes references. A reference removes just itself. An id (digest or prefix) matching
 * several references needs `force` (it would untag all of them), and so does a reference that
 * `inUse` names a user of (a recorded cluster). Blobs stay until `prune`.
 * Checks every name first, so nothing is removed when any is wrong.
 */
export async function removeImages(
  layout: OciLayout,
  names: string[],
  force = false,
  inUse: (ref: string) => string | undefined = () => undefined,
): Promise<string[]> {
  const toRemove: string[] = [];
  const problems: string[] = [];
  for (const n of names) {
    const found = await findImage(layout, n).catch((err: Error) => {
      problems.push(err.message);
      return null;
    });
    if (found === null) continue;
    if (!found) problems.push(`image ${n} not found in the local store`);
    else if (found.refs.length > 1 && !force)
      problems.push(
        `${n} is referenced by ${found.refs.join(", ")}: remove them by name, or use -f to remove all`,
      );
    else {
      const used = force ? [] : found.refs.flatMap((r) => (inUse(r) ? [`${r} is used by ${inUse(r)}`] : []));
      if (used.length)
        problems.push(`${used.join("; ")}: its next apply needs the image; use -f to remove it anyway`);
      else toRemove.push(...found.refs);
    }
  }
  if (problems.length)
    throw new UserError(
      problems.length === 1
        ? (problems[0] as string)
        : `cannot remove images:\n${problems.map((p) => ` - ${p}`).join("\n")}`,
      { problems },
    );
  const unique = [...new Set(toRemove)];
  for (const r of unique) await layout.removeRef(r);
  return unique;
}

const LEASE_KIND = "lease";

/**
 * A writer's claim (a build; a pull, through withLease) on blobs it is writing before its
 * reference exists: while the lease's process lives, prune keeps every blob modified after the
 * lease started. Reused blobs are touched.
 */
export async function takeLease(
  layout: OciLayout,
): Promise<{ touch(digest: string): Promise<void>; release(): Promise<void> }> {
  await layout.init();
  const file = ownedTempPath(layout.tmpDir(), LEASE_KIND);
  await fs.promises.writeFile(file, String(Date.now()));
  const unregister = removeOnSignal(file);
  return {
    async touch(digest) {
      await layout.refreshBlob(digest);
    },
    async release() {
      await fs.promises.rm(file, { force: true });
      unregister();
    },
  };
}

/**
 * Runs `write` under a lease on `layout`, handing it a view of the same store in which finding a
 * blob (hasBlob) counts as reusing it: a writer that skips a blob it finds stored, as pull does,
 * leaves that blob's time as it was, and prune would take an old unreferenced one before the
 * writer's reference exists. Finding it marks it fresh instead (refreshBlob, as putBlob does),
 * and a blob prune moved away at that moment is reported missing, so the writer stores it again.
 */
export async function withLease<T>(layout: OciLayout, write: (leased: OciLayout) => Promise<T>): Promise<T> {
  const lease = await takeLease(layout);
  try {
    return await write(new LeasedLayout(layout.root));
  } finally {
    await lease.release();
  }
}

class LeasedLayout extends OciLayout {
  override hasBlob(digest: string): Promise<boolean> {
    return this.refreshBlob(digest);
  }
}

/**
 * When the earliest live build lease started (a second earlier, for file systems with coarse
 * times), or Infinity when no build runs. A lease that cannot be read yet (being written) or
 * holds no number protects every blob.
 */
async function earliestLease(layout: OciLayout): Promise<number> {
  let start = Infinity;
  for (const n of await fs.promises.readdir(layout.tmpDir()).catch(() => [] as string[])) {
    if (!n.startsWith(`${LEASE_KIND}-`) || !ownerAlive(n)) continue;
    const text = await fs.promises.readFile(path.join(layout.tmpDir(), n), "utf8").catch(() => "");
    const t = Number(text.trim());
    start = Math.min(start, text.trim() && Number.isFinite(t) ? t - 1000 : -Infinity);
  }
  return start;
}

/** For tests: called where a concurrent build may act, with the blob prune is about to remove. */
export interface PruneHooks {
  /** The blob was found unreferenced and older than every lease; it is still in place. */
  checked?(digest: string): Promise<void>;
  /** The blob was moved out of the store; its fate is not decided yet. */
  moved?(digest: string): Promise<void>;
}

/**
 * Deletes blobs no reference reaches (and temp files of dead processes); returns what it freed.
 *
 * Runs under the index lock, so no reference is set while it decides: a blob an index entry
 * reaches is never removed. A running build holds a lease (takeLease) and refers to its blobs
 * only when it sets its reference, after prune; until then, a blob modified after the earliest
 * live lease started is kept, and a build that reuses a stored blob touches it (putBlob,
 * putBlobFile, lease.touch). A build may start, or reuse a blob, while prune runs; so a blob is
 * first moved out of the store, then the leases are read again and the moved file's time
 * decides. A writer that touched it before the move is seen then (its lease existed before its
 * touch), and one that comes after the move finds it gone and writes it again.
 */
export async function pruneStore(
  layout: OciLayout,
  hooks: PruneHooks = {},
): Promise<{ blobs: number; bytes: number }> {
  let blobs = 0;
  let bytes = 0;
  await layout.updateIndex(async (idx) => {
    const keep = new Set<string>();
    for (const d of idx.manifests) await reachableFrom(layout, d, keep);
    const tmpNames = await fs.promises.readdir(layout.tmpDir()).catch(() => [] as string[]);
    for (const n of tmpNames) {
      // Temp entries of live processes stay; a live lease protects what its build writes.
      if (ownerAlive(n)) continue;
      const file = path.join(layout.tmpDir(), n);
      bytes += await sizeOf(file);
      await fs.promises.rm(file, { recursive: true, force: true });
    }
    const leaseStart = await earliestLease(layout);
    const dir = path.join(layout.root, "blobs", "sha256");
    const trash = ownedTempPath(layout.tmpDir(), "prune");
    const releaseTrash = removeOnSignal(trash);
    try {
      await fs.promises.mkdir(trash, { recursive: true });
      for (const hex of await fs.promises.readdir(dir).catch(() => [] as string[])) {
        const digest = `sha256:${hex}`;
        if (keep.has(digest)) continue;
        const file = path.join(dir, hex);
        const st = await fs.promises.stat(file).catch(() => undefined);
        if (!st || st.mtimeMs >= leaseStart) continue;
        await hooks.checked?.(digest);
        const aside = path.join(trash, hex);
        try {
          await fs.promises.rename(file, aside);
        } catch {
          continue;
        }
        await hooks.moved?.(digest);
        const moved = await fs.promises.stat(aside);
        if (moved.mtimeMs >= (await earliestLease(layout))) {
          // Reused meanwhile by a build: back in place (a copy it wrote again has the same bytes).
          await fs.promises.rename(aside, file);
          continue;
        }
        await fs.promises.rm(aside, { force: true });
        blobs++;
        bytes += moved.size;
      }
    } finally {
      await fs.promises.rm(trash, { recursive: true, force: true });
      releaseTrash();
    }
    return idx;
  });
  return { blobs, bytes };
}

/**
 * Proof, before any byte is unpacked, that a stack of layers stays inside its rootfs.
 *
 * Layers are applied one over another, so a layer that is harmless alone can be dangerous on
 * top of another: layer 1 stores the symlink `d -> /opt/outside` (a symlink target is just
 * stored data, it may point anywhere), layer 2 then holds `d/.wh.victim` or `d/pwned`, and an
 * unpacker that resolves paths through the merged tree deletes or writes outside the rootfs.
 *
 * `checkLayerStack` simulates the merged tree layer by layer, in the order the nodes apply them
 * (a layer's whiteouts against the layers below, then its entries in stream order), and refuses:
 * - any path with a ".." component, and an absolute or ".." hard-link target;
 * - an entry, whiteout, opaque marker or hard-link target whose parent chain passes through a
 *   symlink of the merged tree (an opaque marker also when its directory itself is a symlink);
 * - entry types an unpacker could read differently (anything but file, dir, symlink, hard link,
 *   device, fifo) and global PAX headers that rename later entries.
 * The verdict for a stack is cached on disk by its chain digest (immutable: blobs are
 * content-addressed), so a re-apply of the same image reads no layer.
 *
 * Why GNU tar on a node cannot then escape: the node extracts into a fresh staging directory
 * that holds nothing but these layers, applied in this order, and tar reads only these layers'
 * bytes: streamed from the operator's store in the same command, or a blob on the node whose
 * digest checked out first (a registry's answer, a resumed partial: exec/node-layers). GNU tar refuses members with ".."
 * and strips a leading "/" from names and hard-link targets, so every path it opens is resolved
 * from the staging root; the only way out would be a symlink on the way, and the simulation
 * proves that at the moment each entry is written no parent of its path (nor of a hard-link
 * target) is a symlink. Symlinks an archive creates with an absolute or ".." target are written
 * by GNU tar as placeholder files until the end of that archive, and a directory entry replaces
 * an existing symlink (its default without --keep-directory-symlink), which the simulation
 * mirrors; the node script also removes such a symlink itself before the layer's tar runs, so
 * this does not depend on the tar version.
 */
import * as crypto from "node:crypto";
import * as path from "node:path";
import { UserError } from "../errors";
import { readJsonIfExists, writeJsonAtomic } from "../fsutil";
import type { OciLayout } from "./layout";
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from "./layer";
import type * as tarStream from "tar-stream";
import { gnuTarListing, GnuTarRefused, GnuTarUnavailable, type GnuEntry } from "./gnu-tar-listing";
import { forEachLayerEntry, unsafeEntry } from "./materialize";

/** What a node does for one layer before its tar runs: paths to remove and directories to empty. */
export interface LayerRemovals {
  /**
   * rootfs-relative paths removed before extraction: whiteout targets, and what an entry of
   * another kind replaces (a directory over a file or symlink, a file or symlink over a directory:
   * the upper entry wins, as OCI appliers do; tar alone would refuse a non-empty directory, and a
   * tree linked in with cp refuses every kind change).
   */
  remove: string[];
  /** Directories whose lower contents are hidden (`.wh..wh..opq`). */
  opaque: string[];
  /**
   * An entry is a hard link to a file of a lower layer: the layer cannot be extracted on its own
   * (into a tree of its own), only into the staging rootfs that holds the lower layers.
   */
  linksBelow?: true;
}

/** Bump when the rules change: older verdicts are then recomputed. */
// 2: foreign layers are also read by GNU tar and must agree (verdicts and skeletons of 1 are read again).
// 3: removals name what an entry of another kind replaces, and hard links into lower layers.
const VERDICT_VERSION = 3;

type Kind = "dir" | "file" | "symlink";
interface Node {
  kind: Kind;
  children?: Map<string, Node>;
}

/** The merged tree of the layers so far, as kinds only. */
class MergedTree {
  private readonly root: Node = { kind: "dir", children: new Map() };

  /** The first ancestor of `parts` (not `parts` itself) that is a symlink, or undefined. */
  symlinkAncestor(parts: string[]): string | undefined {
    let n: Node | undefined = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      n = n?.children?.get(parts[i]!);
      if (!n) return undefined;
      if (n.kind === "symlink") return parts.slice(0, i + 1).join("/");
    }
    return undefined;
  }

  get(parts: string[]): Node | undefined {
    let n: Node | undefined = this.root;
    for (const p of parts) n = n?.children?.get(p);
    return n;
  }

  /** Sets `parts` to `kind`, creating missing parents as dirs (what tar does); a non-dir parent becomes a dir. */
  set(parts: string[], kind: Kind): void {
    let n = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      let c = n.children!.get(parts[i]!);
      if (!c || c.kind !== "dir") {
        c = { kind: "dir", children: new Map() };
        n.children!.set(parts[i]!, c);
      }
      n = c;
    }
    const name = parts[parts.length - 1]!;
    const prev = n.children!.get(name);
    if (kind === "dir" && prev?.kind === "dir") return;
    n.children!.set(name, kind === "dir" ? { kind, children: new Map() } : { kind });
  }

  remove(parts: string[]): void {
    this.get(parts.slice(0, -1))?.children?.delete(parts[parts.length - 1]!);
  }

  empty(parts: string[]): void {
    this.get(parts)?.children?.clear();
  }
}

/** Splits a member name into components, or says why it is refused. */
function splitName(name: string): string[] | string {
  const parts = name
    .replace(/^\/+/, "")
    .split("/")
    .filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return 'has a ".." component';
  return parts;
}

/** OCI-style chain digest of a stack: each layer's digest folded over the chain below it. */
export function chainDigest(digests: string[]): string {
  let chain = "";
  for (const d of digests)
    chain = chain ? "sha256:" + crypto.createHash("sha256").update(`${chain} ${d}`).digest("hex") : d;
  return chain;
}

const memo = new Map<string, Promise<LayerRemovals[]>>();

function verdictFile(layout: OciLayout, chain: string): string {
  return path.join(layout.root, "verdicts", `v${VERDICT_VERSION}-${chain.replace(/^sha256:/, "")}.json`);
}

export interface CheckOptions {
  /** Names the image in errors ("image x:y", "base image of Kubefile:1"). */
  what?: string;
  /** Where a layer's blob is read from (default: `layout`), e.g. a load's staging store. */
  source?: (digest: string) => OciLayout;
  /**
   * Collect what would be recorded (verdict, layer skeletons) here instead of writing it: a load
   * that may still be refused writes them with `writeRecords` once its blobs are in the store.
   */
  deferRecords?: LayerRecord[];
}

/** A verdict or skeleton file the check would write. */
export interface LayerRecord {
  file: string;
  value: unknown;
}

async function record(opts: CheckOptions, file: string, value: unknown): Promise<void> {
  if (opts.deferRecords) opts.deferRecords.push({ file, value });
  else await writeJsonAtomic(file, value);
}

/** Writes records a check deferred. */
export async function writeRecords(records: LayerRecord[]): Promise<void> {
  for (const r of records) await writeJsonAtomic(r.file, r.value);
}

/**
 * Refuses (UserError naming the layer and the path) a stack that could write or delete outside
 * its rootfs; returns, per layer, what a node removes before extracting it. Layers oldest first.
 */
export async function checkLayerStack(
  layout: OciLayout,
  digests: string[],
  opts: CheckOptions = {},
): Promise<LayerRemovals[]> {
  if (digests.length === 0) return [];
  const chain = chainDigest(digests);
  let p = memo.get(chain);
  if (!p) {
    p = (async () => {
      const file = verdictFile(layout, chain);
      const cached = await readJsonIfExists<{ layers?: LayerRemovals[] }>(file).catch(() => undefined);
      if (cached?.layers?.length === digests.length) return cached.layers;
      const layers = await simulate(layout, digests, opts);
      await record(opts, file, { chain, layers });
      return layers;
    })();
    memo.set(chain, p);
    p.catch(() => memo.delete(chain));
  }
  return p;
}

/**
 * What the check needs of one layer, in stream order: each entry's name and kind (a hard link
 * with its target). Independent of the layers around it, so it is read once per layer (or
 * recorded by the builder as it writes one) and kept next to the verdicts.
 */
export type Skeleton = Array<[name: string, kind: Kind | "link", link?: string]>;

/** A per-layer problem; `simulate` names the layer's position when it reports it. */
class EntryProblem extends Error {
  constructor(
    readonly entry: string,
    readonly why: string,
  ) {
    super(`entry "${entry}" ${why}`);
  }
}

function skeletonFile(layout: OciLayout, digest: string): string {
  return path.join(
    layout.root,
    "verdicts",
    `v${VERDICT_VERSION}-layer-${digest.replace(/^sha256:/, "")}.json`,
  );
}

/** Records the skeleton of a layer the builder has just written (it knows every entry). */
export async function recordSkeleton(
  layout: OciLayout,
  digest: string,
  entries: Array<{ path: string; type: "file" | "dir" | "symlink" }>,
): Promise<void> {
  await writeJsonAtomic(
    skeletonFile(layout, digest),
    entries.map((e): Skeleton[number] => [e.path, e.type]),
  );
}

async function readSkeleton(src: OciLayout, digest: string): Promise<Skeleton> {
  const sk: Skeleton = [];
  const seen: Array<{ type: tarStream.Header["type"]; name: string; link?: string }> = [];
  const gnu = gnuTarListing(src.blobPath(digest));
  gnu.catch(() => undefined); // awaited below, after this reader finished
  await forEachLayerEntry(
    src,
    digest,
    async (h) => {
      seen.push({ type: h.type, name: h.name, ...(h.linkname !== undefined ? { link: h.linkname } : {}) });
      switch (h.type) {
        case "directory":
          sk.push([h.name, "dir"]);
          return;
        case "symlink":
          sk.push([h.name, "symlink"]);
          return;
        case "link":
          sk.push([h.name, "link", h.linkname ?? ""]);
          return;
        case "file":
        case "contiguous-file":
          // A file member named with a trailing "/" is an old-style directory to GNU tar.
          sk.push([h.name, h.name.endsWith("/") ? "dir" : "file"]);
          return;
        case "character-device":
        case "block-device":
        case "fifo":
          sk.push([h.name, "file"]);
          return;
        default:
          throw new EntryProblem(
            h.name,
            `has the tar type "${h.type ?? "unknown"}", which is not allowed in a layer`,
          );
      }
    },
    { strict: true },
  );
  // An entry the simulation refuses anyway (a ".." component, an absolute hard-link target) gets
  // its own clearer message there; such a skeleton is never accepted, so it may be kept unchecked.
  const refusedAnyway = seen.some(
    (e) =>
      typeof splitName(e.name) === "string" ||
      (e.type === "link" && (typeof splitName(e.link ?? "") === "string" || (e.link ?? "").startsWith("/"))),
  );
  if (!refusedAnyway) sameAsGnuTar(seen, await gnuReading(gnu));
  return sk;
}

async function gnuReading(listing: Promise<GnuEntry[]>): Promise<GnuEntry[]> {
  try {
    return await listing;
  } catch (err) {
    if (err instanceof GnuTarUnavailable)
      throw new UserError(
        `checking a layer built elsewhere needs GNU tar on this machine (${err.message}): the nodes unpack with it; install tar`,
      );
    if (err instanceof GnuTarRefused)
      throw new EntryProblem(
        "(the archive)",
        `is refused by GNU tar (${err.message}); the layer is malformed or crafted`,
      );
    throw err;
  }
}

/** GNU tar's mode character for each type this reader reports. */
const GNU_TYPE: Partial<Record<NonNullable<tarStream.Header["type"]>, string[]>> = {
  file: ["-"],
  "contiguous-file": ["-", "C"],
  directory: ["d"],
  symlink: ["l"],
  link: ["h"],
  "character-device": ["c"],
  "block-device": ["b"],
  fifo: ["p"],
};

/**
 * Refuses a layer whose entries GNU tar reads differently (another count, order, name, type or
 * link target): the simulation would then prove nothing about what the nodes write.
 */
function sameAsGnuTar(
  ours: Array<{ type: tarStream.Header["type"]; name: string; link?: string }>,
  gnu: GnuEntry[],
): void {
  const bare = (b: Buffer) => {
    let i = 0;
    while (i < b.length && b[i] === 0x2f) i++;
    return b.subarray(i);
  };
  for (let i = 0; i < Math.max(ours.length, gnu.length); i++) {
    const o = ours[i];
    const g = gnu[i];
    const differs = (why: string): never => {
      throw new EntryProblem(
        o?.name ?? (g ? g.name.toString("latin1") : "?"),
        `(entry ${i + 1}) is read differently by GNU tar, which unpacks it on the nodes (${why}); the layer is malformed or crafted`,
      );
    };
    if (!o || !g) differs(`GNU tar lists ${gnu.length} entries, the check ${ours.length}`);
    const oName = Buffer.from(o!.name, "utf8");
    const dirByName = o!.type === "file" && o!.name.endsWith("/");
    if (!bare(oName).equals(bare(g!.name)))
      differs(`GNU tar names it ${JSON.stringify(g!.name.toString("latin1"))}`);
    const types = dirByName ? ["-", "d"] : (GNU_TYPE[o!.type ?? "file"] ?? []);
    if (!types.includes(g!.type)) differs(`GNU tar's type is "${g!.type}"`);
    // GNU tar strips a hard link target's leading "/" as it does a name's; a symlink's is data.
    const link = (b: Buffer) => (o!.type === "link" ? bare(b) : b);
    if (
      (o!.type === "symlink" || o!.type === "link") &&
      !link(Buffer.from(o!.link ?? "", "utf8")).equals(link(g!.link ?? Buffer.alloc(0)))
    )
      differs(`GNU tar's link target is ${JSON.stringify((g!.link ?? Buffer.alloc(0)).toString("latin1"))}`);
  }
}

async function skeletonOf(layout: OciLayout, digest: string, opts: CheckOptions): Promise<Skeleton> {
  const file = skeletonFile(layout, digest);
  const cached = await readJsonIfExists<Skeleton>(file).catch(() => undefined);
  if (Array.isArray(cached)) return cached;
  const sk = await readSkeleton(opts.source?.(digest) ?? layout, digest);
  await record(opts, file, sk);
  return sk;
}

async function simulate(layout: OciLayout, digests: string[], opts: CheckOptions): Promise<LayerRemovals[]> {
  const tree = new MergedTree();
  const out: LayerRemovals[] = [];
  for (const [i, digest] of digests.entries()) {
    const where = `${opts.what ? `${opts.what}: ` : ""}layer ${i + 1} of ${digests.length} (${digest})`;
    const refuse = (entry: string, why: string) => unsafeEntry(where, entry, why);
    const sk = await skeletonOf(layout, digest, opts).catch((err: unknown) => {
      if (err instanceof EntryProblem) throw refuse(err.entry, err.why);
      if (err instanceof UserError) throw err;
      throw new UserError(
        `${where} is not a readable layer tar ` +
          `(${err instanceof Error ? err.message.replace(/^reading layer \S+: /, "") : String(err)}); rebuild or re-pull the image`,
      );
    });
    // A layer's whiteouts apply to the layers below, before its own entries (as on the nodes).
    const whiteouts: Array<{ name: string; parts: string[]; opaque: boolean }> = [];
    const entries: Array<{ name: string; parts: string[]; kind: Kind | "link"; link?: string }> = [];
    for (const [name, kind, target] of sk) {
      const parts = splitName(name);
      if (typeof parts === "string") throw refuse(name, parts);
      if (parts.length === 0) continue;
      const base = parts[parts.length - 1]!;
      if (base.startsWith(WHITEOUT_PREFIX)) {
        const opaque = base === OPAQUE_WHITEOUT;
        const target = base.slice(WHITEOUT_PREFIX.length);
        if (!opaque && (target === "" || target === "." || target === ".."))
          throw refuse(name, `whites out "${target}", which names no entry`);
        whiteouts.push({ name, parts, opaque });
      } else if (kind === "link") {
        const t = splitName(target ?? "");
        if ((target ?? "").startsWith("/"))
          throw refuse(name, `is a hard link to the absolute path "${target}"`);
        if (typeof t === "string") throw refuse(name, `is a hard link to "${target}", which ${t}`);
        if (t.length === 0) throw refuse(name, "is a hard link to nothing");
        entries.push({ name, parts, kind, link: t.join("/") });
      } else entries.push({ name, parts, kind });
    }
    const removals: LayerRemovals = { remove: [], opaque: [] };
    const removed = new Set<string>();
    // The node empties opaque directories first, then removes whiteout targets: same order here.
    for (const w of [...whiteouts.filter((x) => x.opaque), ...whiteouts.filter((x) => !x.opaque)]) {
      const dir = w.parts.slice(0, -1);
      const via = tree.symlinkAncestor(w.parts);
      if (via) throw refuse(w.name, `is a whiteout under "${via}", which is a symlink in the layers below`);
      if (w.opaque) {
        if (tree.get(dir)?.kind === "symlink")
          throw refuse(w.name, `marks "${dir.join("/")}" opaque, which is a symlink in the layers below`);
        tree.empty(dir);
        removals.opaque.push(dir.length ? dir.join("/") : ".");
      } else {
        const target = [...dir, w.parts[w.parts.length - 1]!.slice(WHITEOUT_PREFIX.length)];
        tree.remove(target);
        removals.remove.push(target.join("/"));
        removed.add(target.join("/"));
      }
    }
    // An entry of another kind than what the layers below hold at its path replaces it: the node
    // removes that first (only when nothing above it is a symlink, which the entry check needs
    // anyway). A directory over a directory merges.
    for (const e of entries) {
      const key = e.parts.join("/");
      const below = tree.get(e.parts)?.kind;
      if (below === undefined || (e.kind === "dir") === (below === "dir") || tree.symlinkAncestor(e.parts))
        continue;
      // A hard link's kind is its target's: replaced only when that is a directory (refused below).
      if (e.kind === "link") continue;
      if (removed.has(key)) continue;
      removed.add(key);
      removals.remove.push(key);
    }
    const own = new Set<string>();
    for (const e of entries) {
      const via = tree.symlinkAncestor(e.parts);
      if (via) throw refuse(e.name, `lies under "${via}", which is a symlink at that point`);
      let kind: Kind;
      if (e.kind === "link") {
        const t = e.link!.split("/");
        const tvia = tree.symlinkAncestor(t);
        if (tvia) throw refuse(e.name, `is a hard link to "${e.link}", under "${tvia}", which is a symlink`);
        const target = tree.get(t);
        if (!target || target.kind === "dir")
          throw refuse(
            e.name,
            `is a hard link to "${e.link}", which is ${target ? "a directory" : "missing"}`,
          );
        // link(2) does not follow a final symlink: the new name is then that symlink too.
        kind = target.kind;
        if (!own.has(e.link!)) removals.linksBelow = true;
      } else kind = e.kind;
      tree.set(e.parts, kind);
      own.add(e.parts.join("/"));
    }
    out.push(removals);
  }
  return out;
}

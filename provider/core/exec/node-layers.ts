/**
 * Pure pieces of layer distribution: what a node lacks, how its rootfs must be (re)built, and
 * the sh scripts that do it with only sh, coreutils, tar, gzip, find and sha256sum (openssl when present).
 */
import * as path from "node:path";
import { shellQuote as q } from "../ssh/shell";
import { rootfsIntactCmd } from "./footprint";

export interface NodeBlobInventory {
  /** hex -> size of complete (verified) blobs. */
  complete: Map<string, number>;
  /** hex -> size of interrupted uploads. */
  partial: Map<string, number>;
  /** Layers the node's rootfs was built from, oldest first; undefined when none or unreadable. */
  materialised?: string[];
  rootfsExists: boolean;
}

export interface Whiteouts {
  /** Paths (relative to the rootfs) a layer deletes from the layers below. */
  remove: string[];
  /** Directories whose lower contents a layer hides (`.wh..wh..opq`). */
  opaque: string[];
}

export const INVENTORY_MARK = "==sealer-layers-json==";

export function nodePaths(dataRoot: string, cluster: string) {
  return {
    blobs: path.posix.join(dataRoot, "blobs", "sha256"),
    clusterDir: path.posix.join(dataRoot, cluster),
    rootfs: path.posix.join(dataRoot, cluster, "rootfs"),
    layersJson: path.posix.join(dataRoot, cluster, "layers.json"),
    /** The rootfs's file list as distribute left it (exec/footprint). */
    rootfsList: path.posix.join(dataRoot, cluster, "rootfs.files"),
  };
}

/** Lists blob sizes and prints layers.json after a marker. */
export function inventoryScript(dataRoot: string, cluster: string): string {
  const p = nodePaths(dataRoot, cluster);
  return [
    `mkdir -p ${q(p.blobs)} ${q(p.clusterDir)}`,
    `cd ${q(p.blobs)}`,
    `set -- *`,
    `if [ -e "$1" ]; then stat -c '%s %n' -- "$@"; fi`,
    // A rootfs that lost an entry of the file list distribute left beside it (a file removed or
    // resized since) counts as absent, so it is rebuilt rather than kept.
    `if [ -d ${q(p.rootfs)} ] && ${rootfsIntactCmd(p.rootfs, p.rootfsList)}; then echo rootfs=yes; else echo rootfs=no; fi`,
    `echo ${INVENTORY_MARK}`,
    `cat ${q(p.layersJson)} 2>/dev/null || true`,
  ].join("\n");
}

export function parseInventory(stdout: string): NodeBlobInventory {
  const [head, json] = stdout.split(INVENTORY_MARK + "\n");
  const complete = new Map<string, number>();
  const partial = new Map<string, number>();
  let rootfsExists = false;
  for (const line of (head ?? "").split("\n")) {
    if (line === "rootfs=yes") rootfsExists = true;
    const m = /^(\d+) ([a-f0-9]{64})(\.partial)?$/.exec(line.trim());
    if (!m) continue;
    (m[3] ? partial : complete).set(m[2]!, Number(m[1]));
  }
  let materialised: string[] | undefined;
  try {
    const parsed = JSON.parse((json ?? "").trim() || "null") as { layers?: unknown } | null;
    if (parsed && Array.isArray(parsed.layers) && parsed.layers.every((x) => typeof x === "string"))
      materialised = parsed.layers as string[];
  } catch {
    materialised = undefined; // half-written or foreign: rebuild
  }
  return { complete, partial, rootfsExists, ...(materialised ? { materialised } : {}) };
}

export type Materialise = { kind: "none" } | { kind: "append"; from: number } | { kind: "rebuild" };

/**
 * How to bring the rootfs to `desired`:
 * - the same list: nothing;
 * - the node's list is a prefix of `desired` (layers added on top): extract only the new ones;
 * - otherwise (a layer changed at k): rebuild from the node's blob store in a fresh directory and
 *   swap it in. Rebuilding from the base (rather than undoing layers k..n) is the simplest way
 *   to be exactly right when a later layer deleted a file that an earlier one created; it is
 *   local disk work on the node, no byte is sent again.
 */
export function planMaterialise(desired: string[], inv: NodeBlobInventory): Materialise {
  const cur = inv.materialised;
  if (!cur || !inv.rootfsExists) return { kind: "rebuild" };
  if (cur.length === desired.length && cur.every((d, i) => d === desired[i])) return { kind: "none" };
  if (cur.length < desired.length && cur.every((d, i) => d === desired[i]))
    return { kind: "append", from: cur.length };
  return { kind: "rebuild" };
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** sh lines setting `$hasher` to a command that prints the sha256 of stdin as the first 64 characters:
 *  openssl when it is there and gives the right digest of nothing (so a broken or odd build is never used), else sha256sum. */
export const SHA256_HASHER: readonly string[] = [
  `hasher=sha256sum`,
  `if command -v openssl >/dev/null 2>&1 && [ "$(printf '' | openssl dgst -sha256 -r 2>/dev/null | cut -c1-64)" = ${EMPTY_SHA256} ]; then hasher="openssl dgst -sha256 -r"; fi`,
];

/**
 * Appends stdin to `<hex>.partial`, checks size and digest, renames to `<hex>`.
 * Exit 91: short (the partial is kept for the next resume); 92: digest mismatch (the partial is
 * removed); 93: the partial changed size since it was listed (removed).
 * The digest is computed while the bytes arrive (`tee` appends to the partial and passes the
 * bytes on to the hasher, after the bytes already on disk), so verifying costs no second pass
 * over the blob. The hasher is `openssl dgst -sha256` when the node has a working openssl (it
 * uses the CPU's SHA extensions: several times faster than coreutils sha256sum, which was the
 * node's largest CPU cost per byte), else sha256sum.
 */
export function receiveBlobScript(dataRoot: string, hex: string, size: number, offset: number): string {
  const dir = nodePaths(dataRoot, "x").blobs;
  return [
    `set -e`,
    `mkdir -p ${q(dir)}`,
    `cd ${q(dir)}`,
    `rm -f ${hex}.fifo.* ${hex}.sum.*`,
    offset === 0
      ? `: > ${hex}.partial`
      : `[ "$(wc -c < ${hex}.partial)" -eq ${offset} ] || { echo "partial upload of sha256:${hex} changed size under us" >&2; rm -f ${hex}.partial; exit 93; }`,
    `sum=${hex}.sum.$$`,
    ...SHA256_HASHER,
    // head finishes reading the bytes already there before tee appends the rest; a failing tee
    // shows as a short partial below, a failing hasher stops the script (set -e).
    `{ head -c ${offset} ${hex}.partial; tee -a ${hex}.partial; } | $hasher > "$sum"`,
    `got=$(wc -c < ${hex}.partial)`,
    `if [ "$got" -ne ${size} ]; then rm -f "$sum"; echo "short transfer of sha256:${hex}: $got of ${size} bytes" >&2; exit 91; fi`,
    `actual=$(cut -c1-64 "$sum"); rm -f "$sum"`,
    `if [ "$actual" != ${hex} ]; then rm -f ${hex}.partial; echo "digest mismatch for sha256:${hex} (got sha256:$actual): the received bytes were removed" >&2; exit 92; fi`,
    `mv -f ${hex}.partial ${hex}`,
  ].join("\n");
}

function layerScript(blobsDir: string, target: string, digest: string, wh: Whiteouts): string[] {
  const hex = digest.slice("sha256:".length);
  const lines: string[] = [];
  // Whiteouts apply to the layers below, so they go first; the layer's own entries follow.
  for (const d of wh.opaque)
    lines.push(
      `if [ -d ${q(target + "/" + d)} ]; then find ${q(target + "/" + d)} -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi`,
    );
  for (const r of wh.remove) lines.push(`rm -rf ${q(target + "/" + r)}`);
  lines.push(`tar -xf ${q(blobsDir + "/" + hex)} -C ${q(target)} --exclude='.wh.*'`);
  return lines;
}

export interface MaterialiseSteps {
  /** Prepares the target dir (a fresh `rootfs.new` for a rebuild). */
  prologue: string;
  /** One script per layer to extract, in order, starting at `from`. */
  layers: Array<{ index: number; digest: string; script: (wh: Whiteouts) => string }>;
  /** Swaps a rebuilt rootfs in and writes layers.json atomically. */
  epilogue: string;
}

/**
 * The sh scripts that bring the rootfs to `desired` per `plan`. They are separate so layer k can
 * be extracted while layer k+1 is still on the wire.
 *
 * layers.json always tells the truth, whenever a run is cut:
 * - append: each layer script drops layers.json, extracts, then records the layers now in the
 *   rootfs, so a cut between layers resumes with an append and a cut inside one rebuilds;
 * - rebuild: the new tree grows in `rootfs.new` while the old rootfs and its layers.json stay
 *   as they were; the epilogue drops layers.json, swaps the trees and writes the new list.
 */
export function materialiseSteps(
  dataRoot: string,
  cluster: string,
  desired: string[],
  plan: Exclude<Materialise, { kind: "none" }>,
): MaterialiseSteps {
  const p = nodePaths(dataRoot, cluster);
  const from = plan.kind === "append" ? plan.from : 0;
  const target = plan.kind === "append" ? p.rootfs : p.rootfs + ".new";
  const writeList = (layers: string[]) => [
    `printf '%s\\n' ${q(JSON.stringify({ layers }))} > ${q(p.layersJson + ".tmp")}`,
    `mv -f ${q(p.layersJson + ".tmp")} ${q(p.layersJson)}`,
  ];
  const prologue = [`set -e`, `mkdir -p ${q(p.clusterDir)}`];
  if (plan.kind === "rebuild") prologue.push(`rm -rf ${q(target)}`, `mkdir -p ${q(target)}`);
  const layers = desired.slice(from).map((digest, k) => ({
    index: from + k,
    digest,
    script: (wh: Whiteouts) =>
      [
        `set -e`,
        ...(plan.kind === "append" ? [`rm -f ${q(p.layersJson)}`] : []),
        ...layerScript(p.blobs, target, digest, wh),
        ...(plan.kind === "append" ? writeList(desired.slice(0, from + k + 1)) : []),
      ].join("\n") + "\n",
  }));
  const epilogue = [`set -e`];
  if (plan.kind === "rebuild")
    epilogue.push(
      `rm -f ${q(p.layersJson)}`,
      `rm -rf ${q(p.rootfs + ".old")}`,
      `if [ -d ${q(p.rootfs)} ]; then mv ${q(p.rootfs)} ${q(p.rootfs + ".old")}; fi`,
      `mv ${q(target)} ${q(p.rootfs)}`,
      ...writeList(desired),
      `rm -rf ${q(p.rootfs + ".old")}`,
    );
  else epilogue.push(...writeList(desired));
  return { prologue: prologue.join("\n") + "\n", layers, epilogue: epilogue.join("\n") + "\n" };
}

/** Validates and splits a tar entry name into a whiteout, or undefined for ordinary entries. Throws on unsafe names. */
export function classifyWhiteout(
  entryName: string,
): { kind: "opaque"; dir: string } | { kind: "remove"; path: string } | undefined {
  const name = entryName.replace(/^\.\//, "").replace(/\/+$/, "");
  const base = path.posix.basename(name);
  if (!base.startsWith(".wh.")) return undefined;
  const parts = name.split("/");
  if (name.startsWith("/") || parts.some((x) => x === ".." || x === ""))
    throw new Error(`unsafe whiteout entry ${JSON.stringify(entryName)}`);
  const dir = path.posix.dirname(name);
  if (base === ".wh..wh..opq") return { kind: "opaque", dir: dir === "." ? "." : dir };
  const target = base.slice(".wh.".length);
  if (!target || target === "." || target === "..")
    throw new Error(`unsafe whiteout entry ${JSON.stringify(entryName)}`);
  return { kind: "remove", path: dir === "." ? target : `${dir}/${target}` };
}

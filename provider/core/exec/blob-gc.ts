/**
 * Garbage collection of a node's layer blob store (`<dataRoot>/blobs/sha256`). Several clusters
 * may share one host and one store; each names the layers its rootfs was built from in
 * `<dataRoot>/<cluster>/layers.json`. A blob none of them names is garbage: the layers of a
 * deleted cluster, and layers an apply superseded.
 *
 * Another cluster's apply may be writing to the same store while we collect, so a pass:
 * - runs under `<dataRoot>/blobs/gc.lock` (mkdir is atomic): two passes never overlap;
 * - never touches `<hex>.partial` or the transfer's temporary files (only 64-hex names qualify);
 * - collects nothing while another cluster on the host is mid-install (its directory has no
 *   layers.json yet, or a `rootfs.new` rebuild, or its apply lock): its blobs are not named
 *   anywhere yet. The pass says so and the next one (next apply or delete) collects;
 * - when other clusters live on the host, keeps unreferenced blobs written in the last
 *   `graceMinutes` (a blob that arrived for a layer not extracted yet is in no layers.json).
 * With no other cluster on the host every unreferenced blob goes.
 */
import { RESERVED_CLUSTER_NAMES } from "../clusterfile/syntax";
import { shellQuote as q } from "../ssh/shell";
import type { ExecContext } from "./context";

export interface BlobGcResult {
  removed: string[];
  removedBytes: number;
  /** Unreferenced but recent (kept for a concurrent apply). */
  recent: string[];
  /** Set when the pass collected nothing on purpose: "busy" (another pass) or "install in progress". */
  deferred?: string;
}

/** Default age (minutes) below which an unreferenced blob is kept while other clusters share the host. */
export const GC_GRACE_MINUTES = 30;

/** `self`: the cluster running the pass (its own apply lock and layers.json are not "another install"). */
export function blobGcScript(dataRoot: string, self: string, graceMinutes = GC_GRACE_MINUTES): string {
  const dr = q(dataRoot);
  const blobs = q(`${dataRoot}/blobs/sha256`);
  const lock = q(`${dataRoot}/blobs/gc.lock`);
  const trees = q(`${dataRoot}/layers`);
  return [
    `if [ ! -d ${blobs} ] && [ ! -d ${trees} ]; then echo GC-DONE; exit 0; fi`,
    `mkdir -p ${q(`${dataRoot}/blobs`)}`,
    `lock=${lock}`,
    `if ! mkdir "$lock" 2>/dev/null; then echo GC-DEFERRED another blob collection is running; exit 0; fi`,
    `trap 'rmdir "$lock"' EXIT`,
    `others=0; busy=`,
    `for d in ${dr}/*/; do`,
    `  [ -d "$d" ] || continue`,
    // blobs/ and layers/ are the store itself, relay/ the relay's inbox and one-run keys: not clusters.
    `  n=$(basename "$d"); case "$n" in ${RESERVED_CLUSTER_NAMES.join("|")}) continue;; esac`,
    `  [ "$n" = ${q(self)} ] && continue`,
    `  others=$((others+1))`,
    `  if [ ! -f "$d/layers.json" ] || [ -e "$d/rootfs.new" ] || [ -e "$d/apply.lock" ]; then busy="$n"; fi`,
    `done`,
    `if [ -n "$busy" ]; then echo "GC-DEFERRED cluster $busy is being installed or changed on this host"; exit 0; fi`,
    `refs=$(cat ${dr}/*/layers.json 2>/dev/null | grep -o 'sha256:[a-f0-9]\\{64\\}' | cut -c8- | sort -u)`,
    // unused NAME AGEFILE: NAME (a layer's 64-hex digest) is named by no cluster, and AGEFILE is
    // old enough (or no other cluster shares the host); a recent one is reported.
    `unused() {`,
    `  case "$1" in *[!a-f0-9]*) return 1;; esac`,
    `  [ \${#1} -eq 64 ] || return 1`,
    `  if printf '%s\\n' "$refs" | grep -qx "$1"; then return 1; fi`,
    `  if [ "$others" -gt 0 ] && [ -n "$(find "$2" -maxdepth 0 -mmin -${graceMinutes})" ]; then echo "GC-RECENT $1"; return 1; fi`,
    `}`,
    // Only complete blobs: <hex>.partial, .fifo.*, .sum.* and anything foreign are left alone.
    `if cd ${blobs} 2>/dev/null; then for f in *; do`,
    `  unused "$f" "$f" || continue`,
    `  s=$(stat -c %s "$f"); rm -f "$f" && echo "GC-REMOVED $f $s"`,
    `done; fi`,
    // Layers kept as extracted trees: the same rule, the listing's age standing for the tree's.
    `if cd ${trees} 2>/dev/null; then for l in *.list; do`,
    `  [ -e "$l" ] || continue; f=\${l%.list}`,
    `  unused "$f" "$l" || continue`,
    `  s=$(du -sb "$f" 2>/dev/null | cut -f1); rm -f "$l" && rm -rf "$f" && echo "GC-REMOVED $f \${s:-0}"`,
    `done`,
    // What a cut receive left (the layer then came as a blob, or is no longer wanted).
    `for p in *.partial; do [ -d "$p" ] || continue`,
    `  if [ "$others" -gt 0 ] && [ -n "$(find "$p" -maxdepth 0 -mmin -${graceMinutes})" ]; then continue; fi`,
    `  rm -rf "$p"`,
    `done; fi`,
    `echo GC-DONE`,
  ].join("\n");
}

export function parseBlobGc(stdout: string): BlobGcResult {
  const out: BlobGcResult = { removed: [], removedBytes: 0, recent: [] };
  for (const line of stdout.split("\n")) {
    const m = /^GC-(REMOVED|RECENT|DEFERRED) ?(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "DEFERRED") out.deferred = m[2]!;
    else if (m[1] === "RECENT") out.recent.push(`sha256:${m[2]}`);
    else {
      const [hex, size] = m[2]!.split(" ");
      out.removed.push(`sha256:${hex}`);
      out.removedBytes += Number(size) || 0;
    }
  }
  return out;
}

/**
 * One collection pass on a host, logged on that host's lines. Never throws: a failed pass only
 * leaves disk in use (the next pass collects), so it must not fail the delete or apply around it.
 */
export async function collectBlobs(
  ctx: ExecContext,
  ip: string,
  why: string,
): Promise<BlobGcResult | undefined> {
  const hlog = ctx.log(ip);
  let res: BlobGcResult;
  try {
    const r = await ctx.io.run(ip, `blob gc (${why})`, "sh -s", {
      stdin: blobGcScript(ctx.dataRoot, ctx.cluster) + "\n",
      quiet: true,
    });
    res = parseBlobGc(r.stdout);
  } catch (err) {
    hlog.warn(`blob gc (${why}): ${(err as Error).message}; the blobs stay until the next pass`);
    return undefined;
  }
  if (res.deferred) hlog.info(`blob gc (${why}): nothing collected: ${res.deferred}; the next pass collects`);
  else if (res.removed.length || res.recent.length)
    hlog.info(
      `blob gc (${why}): removed ${res.removed.length} unreferenced layer blob(s), ${res.removedBytes} bytes` +
        (res.recent.length ? `; kept ${res.recent.length} written in the last ${GC_GRACE_MINUTES} min` : ""),
    );
  return res;
}

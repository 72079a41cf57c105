/**
 * Footprints: what a step left on a host (files and their sha256, the rootfs's file list), so a
 * drift check can look for exactly that. Handlers return a Footprint; only the executor writes it
 * into the applied state (withFootprint). The shell here is shared by the handlers (recording) and
 * the drift probe (checking), so both hash and list the same way.
 */
import { sha256Hex } from "../fsutil";
import type { AppliedState, HostFootprint } from "../plan/types";
import { shellQuote as q } from "../ssh/shell";
import type { ExecContext } from "./context";

/** Host IP -> what the step left there. */
export type Footprint = Record<string, HostFootprint>;

/**
 * Where host scripts (init-host, container-runtime) put configuration a cluster depends on.
 * Files they write here during the step are recorded; binaries (/usr/bin) are not hashed on every
 * check, and kubelet's own state (/var/lib/kubelet, /etc/kubernetes) is rewritten at run time.
 */
const SCRIPT_CONFIG_PATHS = [
  "/etc/systemd/system",
  "/etc/sysctl.d",
  "/etc/modules-load.d",
  "/etc/containerd",
  "/etc/docker",
  "/etc/crictl.yaml",
  "/etc/default/kubelet",
];

/**
 * Read-only shell: "<sha256>  <path>" for each regular file present, "missing <path>" for each
 * absent one. One sha256sum process for all of them.
 */
export function hashFilesCmd(paths: string[]): string {
  if (paths.length === 0) return ":";
  return [
    `set --`,
    `for f in ${paths.map(q).join(" ")}; do if [ -f "$f" ]; then set -- "$@" "$f"; else printf 'missing %s\\n' "$f"; fi; done`,
    `if [ $# -gt 0 ]; then sha256sum -- "$@" || true; fi`,
  ].join("\n");
}

/** Parses hashFilesCmd / sha256sum output: path -> sha256, or null when missing. */
export function parseHashes(stdout: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const line of stdout.split("\n")) {
    const m = /^\\?([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m) out[m[2]!] = m[1]!;
    else if (line.startsWith("missing ")) out[line.slice("missing ".length)] = null;
  }
  return out;
}

/**
 * Shell that sets L to the file list of `dir`: "path<TAB>size" for every non-directory, C-sorted;
 * empty when the directory is missing.
 */
function treeListCmd(dir: string): string {
  return `L=$(if [ -d ${q(dir)} ]; then cd ${q(dir)} && find . -mindepth 1 ! -type d -printf '%P\\t%s\\n' | LC_ALL=C sort; fi)`;
}

/** Shell: sets L (treeListCmd) and prints "<sha256 of the list> <lines>". */
export function treeDigestCmd(dir: string): string {
  return [
    treeListCmd(dir),
    `if [ -n "$L" ]; then N=$(printf '%s\\n' "$L" | wc -l); else N=0; fi`,
    `echo "$(printf '%s\\n' "$L" | sha256sum | cut -c1-64) $N"`,
  ].join("; ");
}

/** Parses treeDigestCmd's line. */
export function parseTreeDigest(line: string): { digest: string; count: number } | undefined {
  const m = /^([0-9a-f]{64}) (\d+)$/.exec(line.trim());
  return m ? { digest: m[1]!, count: Number(m[2]) } : undefined;
}

/** Shell (L set): the entries of the recorded `list` that L no longer has as they were ("< path\tsize"). */
const lostEntries = (list: string) => `printf '%s\\n' "$L" | diff ${q(list)} - | grep '^< '`;

/**
 * Shell (after treeDigestCmd): "list kept" or "list gone", then for each recorded entry (at most
 * `limit`) that is not in the rootfs as it was: "missing <path>", or "changed <path>" (other size
 * or type). Files added since are no effect gone, and the cluster may add some (pushed images).
 */
export function treeLossCmd(dir: string, list: string, limit = 40): string {
  const at = `${q(dir)}/"$p"`;
  return [
    `if [ -f ${q(list)} ]; then echo 'list kept'; T=$(printf '\\t')`,
    `${lostEntries(list)} | head -n ${limit} | while IFS= read -r l; do p=\${l#< }; p=\${p%"$T"*}; if [ -e ${at} ] || [ -L ${at} ]; then printf 'changed %s\\n' "$p"; else printf 'missing %s\\n' "$p"; fi; done`,
    `else echo 'list gone'; fi`,
  ].join("; ");
}

export interface TreeLoss {
  /** The node still has the list distribute left (else only the digest tells). */
  listKept: boolean;
  missing: string[];
  changed: string[];
}

export function parseTreeLoss(lines: string[]): TreeLoss {
  const out: TreeLoss = { listKept: lines.includes("list kept"), missing: [], changed: [] };
  for (const l of lines) {
    const m = /^(missing|changed) (.+)$/.exec(l);
    if (m) out[m[1] as "missing" | "changed"].push(m[2]!);
  }
  return out;
}

/** Shell condition: no list was kept (a rootfs from before lists), or every listed entry is still as it was. */
export function rootfsIntactCmd(dir: string, list: string): string {
  return `{ [ ! -f ${q(list)} ] || { ${treeListCmd(dir)}; [ -z "$(${lostEntries(list)} | head -n 1)" ]; }; }`;
}

/** path -> sha256 of content the handler wrote itself (no round trip to the host). */
export const hashes = (files: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(files).map(([f, c]) => [f, sha256Hex(c)]));

const presentOnly = (h: Record<string, string | null>): Record<string, string> =>
  Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== null));

/**
 * Runs `run` (a host script) and returns the files it wrote under SCRIPT_CONFIG_PATHS, with their
 * sha256: every file whose status changed after a marker made just before.
 */
async function filesWrittenBy(
  ctx: ExecContext,
  ip: string,
  step: string,
  run: () => Promise<unknown>,
): Promise<Record<string, string>> {
  const marker = (await ctx.sh(ip, step, "mktemp", { quiet: true })).stdout.trim();
  if (!marker.startsWith("/")) throw new Error(`[${ip}] step "${step}": mktemp printed no file name`);
  const drop = `rm -f ${q(marker)}`;
  try {
    await run();
  } catch (err) {
    await ctx.sh(ip, step, drop, { quiet: true, allowFail: true }).catch(() => undefined);
    throw err;
  }
  const r = await ctx.sh(
    ip,
    step,
    `for d in ${SCRIPT_CONFIG_PATHS.map(q).join(" ")}; do [ ! -e "$d" ] || find "$d" -type f -cnewer ${q(marker)} -exec sha256sum -- {} +; done; ${drop}`,
    { quiet: true },
  );
  return presentOnly(parseHashes(r.stdout));
}

/** Runs `run(ip)` on each host (ctx.eachHost) and returns, per host, the files it wrote (filesWrittenBy). */
export async function scriptFootprint(
  ctx: ExecContext,
  hosts: string[],
  step: string,
  run: (ip: string) => Promise<unknown>,
): Promise<Footprint> {
  const fp: Footprint = {};
  await ctx.eachHost(hosts, async (ip) => {
    fp[ip] = { files: await filesWrittenBy(ctx, ip, step, () => run(ip)) };
  });
  return fp;
}

/** Shell: prints treeDigestCmd's line and keeps the list in `list` (replaced atomically) for later diffs. */
export function recordTreeCmd(dir: string, list: string): string {
  const tmp = `${list}.tmp`;
  return `${treeDigestCmd(dir)}\nprintf '%s\\n' "$L" > ${q(tmp)} && mv ${q(tmp)} ${q(list)}`;
}

/**
 * The applied state with `fp` as step `stepId`'s footprint (pure). A file several steps wrote is
 * expected with the content the last of them left: earlier steps' records of it take that hash
 * too, so it is never reported as changed, and when it goes missing every step that wrote it runs
 * again (in plan order: the writer, then the one that edited it).
 */
export function withFootprint(applied: AppliedState, stepId: string, fp: Footprint): AppliedState {
  const hosts = Object.entries(fp).filter(([, h]) => (h.files && Object.keys(h.files).length) || h.tree);
  if (!applied.steps[stepId] || hosts.length === 0) return applied;
  const next = structuredClone(applied);
  for (const [id, other] of Object.entries(next.steps)) {
    if (id === stepId) continue;
    for (const [ip, h] of hosts) {
      const files = other.footprint?.[ip]?.files;
      if (!files) continue;
      for (const [p, sha] of Object.entries(h.files ?? {})) if (p in files) files[p] = sha;
    }
  }
  next.steps[stepId] = { ...next.steps[stepId]!, footprint: Object.fromEntries(hosts) };
  return next;
}

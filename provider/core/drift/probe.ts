/**
 * Drift detection, the probing half: one read-only command per host (bounded concurrency) that
 * prints what the comparison needs, and `kubectl get nodes -o json` on the first master that
 * answers. Nothing on the nodes is changed. A host that cannot be reached is an observation
 * ("unreachable"), never an error of the whole check.
 */
import { settleLimit } from "../common/limit";
import { log } from "../log";
import type { ExecContext } from "../exec/context";
import {
  hashFilesCmd,
  parseHashes,
  parseTreeDigest,
  parseTreeLoss,
  treeDigestCmd,
  treeLossCmd,
} from "../exec/footprint";
import { nodePaths } from "../exec/node-layers";
import { shellQuote as q } from "../ssh/shell";
import { CommandError } from "../ssh";
import {
  parseHostsBlocks,
  parseNodeList,
  type ExpectedHost,
  type HostObservation,
  type NodeList,
} from "./compare";

/** Section marker; files are printed followed by a newline so a marker always starts a line. */
const MARK = "==sealer-drift==";

/** The probe script for one host (pure): sections after markers, every command read-only. */
export function probeScript(o: {
  dataRoot: string;
  cluster: string;
  expected: ExpectedHost;
  registryUrl?: string;
}): string {
  const p = nodePaths(o.dataRoot, o.cluster);
  const hexes = (o.expected.layers ?? []).map((d) => d.slice("sha256:".length));
  const lines = [
    `echo ${MARK}blobs`,
    hexes.length
      ? // A layer kept as an extracted tree (complete with its listing) is in the store as well.
        `for h in ${hexes.join(" ")}; do f=${q(p.blobs)}/$h; if [ -f "$f" ]; then echo "$(wc -c < "$f") $h"; elif [ -f ${q(p.trees)}/$h.list ]; then echo "0 $h"; fi; done`
      : `:`,
    `echo ${MARK}layers`,
    `cat ${q(p.layersJson)} 2>/dev/null; echo`,
    `echo ${MARK}rootfs`,
    `if [ -d ${q(p.rootfs)} ] && [ -n "$(ls -A ${q(p.rootfs)} 2>/dev/null | head -n 1)" ]; then echo yes; else echo no; fi`,
    `echo ${MARK}hosts`,
    `cat /etc/hosts 2>/dev/null; echo`,
    `echo ${MARK}registry`,
    o.registryUrl
      ? `if command -v curl >/dev/null 2>&1; then curl -sk -o /dev/null -w '%{http_code}\\n' --max-time 5 ${q(o.registryUrl)} || true; else echo curl-missing; fi`
      : `:`,
    `echo ${MARK}files`,
    hashFilesCmd([...o.expected.files, ...(o.expected.tree?.files ?? [])].map((f) => f.path)),
    `echo ${MARK}tree`,
    ...(o.expected.tree
      ? [treeDigestCmd(o.expected.tree.dir), treeLossCmd(o.expected.tree.dir, o.expected.tree.list)]
      : [`:`]),
    `echo ${MARK}clusterfile`,
    `if [ -f ${q(p.clusterDir + "/Clusterfile")} ]; then echo yes; else echo no; fi`,
    `echo ${MARK}end`,
  ];
  return lines.join("\n");
}

/** Parses the probe's output (pure). */
export function parseProbe(host: string, cluster: string, stdout: string): HostObservation {
  const sec: Record<string, string> = {};
  let cur: string | undefined;
  for (const line of stdout.split("\n")) {
    if (line.startsWith(MARK)) {
      cur = line.slice(MARK.length);
      sec[cur] = "";
      continue;
    }
    if (cur !== undefined) sec[cur] += line + "\n";
  }
  if (sec.end === undefined) throw new Error(`[${host}] drift probe: output cut short`);
  const blobs: Record<string, number> = {};
  for (const l of (sec.blobs ?? "").split("\n")) {
    const m = /^\s*(\d+) ([a-f0-9]{64})$/.exec(l);
    if (m) blobs[m[2]!] = Number(m[1]);
  }
  let layersJson: string[] | null = null;
  try {
    const j = JSON.parse((sec.layers ?? "").trim() || "null") as { layers?: unknown } | null;
    if (j && Array.isArray(j.layers) && j.layers.every((x) => typeof x === "string"))
      layersJson = j.layers as string[];
  } catch {
    layersJson = null;
  }
  const reg = (sec.registry ?? "").trim();
  const treeLines = (sec.tree ?? "").split("\n").filter(Boolean);
  const digest = parseTreeDigest(treeLines[0] ?? "");
  return {
    host,
    blobs,
    layersJson,
    rootfs: (sec.rootfs ?? "").trim() === "yes",
    blocks: parseHostsBlocks(sec.hosts ?? "", cluster),
    ...(reg ? { registryHttp: reg } : {}),
    clusterfile: (sec.clusterfile ?? "").trim() === "yes",
    files: parseHashes(sec.files ?? ""),
    ...(digest ? { tree: { ...digest, loss: parseTreeLoss(treeLines.slice(1)) } } : {}),
  };
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Probes every expected host; an SSH failure makes that host's observation "unreachable". */
export async function probeHosts(
  ctx: ExecContext,
  expected: ExpectedHost[],
  o: { registryPort: number; concurrency?: number },
): Promise<HostObservation[]> {
  const out: HostObservation[] = [];
  await settleLimit(expected, o.concurrency ?? 16, async (e) => {
    const script = probeScript({
      dataRoot: ctx.dataRoot,
      cluster: ctx.cluster,
      expected: e,
      ...(e.registry ? { registryUrl: `https://${e.host}:${o.registryPort}/v2/` } : {}),
    });
    try {
      const r = await ctx.io.run(e.host, "drift probe", script, { quiet: true, timeoutMs: 60_000 });
      out.push(parseProbe(e.host, ctx.cluster, r.stdout));
    } catch (err) {
      // A reached host whose probe failed (sudo refused...) cannot be checked either; say which.
      const why = err instanceof CommandError ? `probe failed: ${errText(err)}` : errText(err);
      log.forHost(e.host).warn(`drift probe: ${why}`);
      out.push({ host: e.host, unreachable: why, blobs: {}, layersJson: null, rootfs: false, blocks: {} });
    }
  });
  return out.sort(
    (a, b) => expected.findIndex((e) => e.host === a.host) - expected.findIndex((e) => e.host === b.host),
  );
}

/** `kubectl get nodes -o json` through the cluster rootfs's bin/, on the first reachable master. */
export async function probeNodes(ctx: ExecContext, reachable: (ip: string) => boolean): Promise<NodeList> {
  const masters = ctx.masters.filter(reachable);
  if (masters.length === 0)
    return { ok: false, unreachable: true, error: `no master reachable (${ctx.masters.join(", ")})` };
  const errors: string[] = [];
  for (const m of masters) {
    const r = await ctx
      .sh(
        m,
        "drift probe nodes",
        `if [ -f /etc/kubernetes/admin.conf ]; then export KUBECONFIG=/etc/kubernetes/admin.conf; fi; kubectl get nodes -o json`,
        { allowFail: true, quiet: true, timeoutMs: 60_000 },
      )
      .catch((err: unknown) => ({ code: -1, stdout: "", stderr: errText(err) }));
    if (r.code === 0) {
      try {
        return { ok: true, nodes: parseNodeList(r.stdout), from: m };
      } catch (err) {
        errors.push(`${m}: node list unreadable: ${errText(err)}`);
        continue;
      }
    }
    errors.push(
      `${m}: kubectl get nodes exited ${r.code}: ${r.stderr.trim().split("\n").slice(-2).join(" ")}`,
    );
  }
  return { ok: false, unreachable: false, error: errors.join("; ") };
}

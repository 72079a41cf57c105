/**
 * sealer's (v0.5-v0.8) CLUSTERCHECK and ETCD plugins, both acting on master0:
 * - CLUSTERCHECK waits, before the apps are installed, until the cluster is up: sealer's rule is
 *   that kube-system has pods and each pod's first container is ready (pods without container
 *   statuses yet are passed over); we also want every host registered as a Ready node, since the
 *   apps are scheduled onto them. sealer waited up to 15 minutes.
 * - ETCD saves an etcd snapshot with the cluster's own etcd client certificates to the path in
 *   its `on` field (sealer's choice of field), on master0.
 */
import * as path from "node:path";
import { UserError } from "../errors";
import { checkEtcdTools, parseSnapshotSaved, snapshotName, snapshotSaveCmd } from "../lifecycle/backup";
import { poll, PollTimeout, type RetryPolicy } from "../common/retry";
import { log } from "../log";
import type { ExecContext } from "./context";

/** sealer's CLUSTERCHECK gave up after 15 minutes. */
export const CLUSTERCHECK_TIMEOUT_MS = 15 * 60_000;

interface PodJson {
  metadata?: { name?: string };
  name?: string;
  status?: { containerStatuses?: Array<{ ready?: boolean }> };
}
interface NodeJson {
  metadata?: { name?: string };
  name?: string;
  status?: { conditions?: Array<{ type?: string; status?: string }> };
  /** The sandbox API server's flat shape. */
  notReady?: boolean;
}

function items<T>(text: string, what: string): T[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${what}: kubectl printed no JSON`);
  }
  const list = (doc as { items?: unknown } | null)?.items;
  if (!Array.isArray(list)) throw new Error(`${what}: kubectl printed no item list`);
  return list as T[];
}

/** kube-system pods not ready by sealer's rule, or a reason the list says nothing yet. */
export function podsNotReady(podsJson: string): string[] {
  const pods = items<PodJson>(podsJson, "kube-system pods");
  if (pods.length === 0) return ["no pods in kube-system yet"];
  const out: string[] = [];
  for (const p of pods) {
    const first = p.status?.containerStatuses?.[0];
    // A pod still in its init containers has no container statuses: sealer passes over it.
    if (first && first.ready !== true)
      out.push(`pod kube-system/${p.metadata?.name ?? p.name ?? "?"} not ready`);
  }
  return out;
}

/** Nodes not Ready and expected node names missing from `kubectl get nodes -o json`. */
export function nodesNotReady(nodesJson: string, expected: string[]): string[] {
  const nodes = items<NodeJson>(nodesJson, "nodes");
  const out: string[] = [];
  const seen = new Set<string>();
  for (const n of nodes) {
    const name = n.metadata?.name ?? n.name ?? "?";
    seen.add(name);
    const cond = n.status?.conditions?.find((c) => c.type === "Ready");
    const ready = cond ? cond.status === "True" : n.notReady !== true;
    if (!ready) out.push(`node ${name} NotReady`);
  }
  for (const e of expected) if (!seen.has(e)) out.push(`node ${e} not registered`);
  return out;
}

const KUBECONFIG = `if [ -f /etc/kubernetes/admin.conf ]; then export KUBECONFIG=/etc/kubernetes/admin.conf; fi`;

/** The last line of a failed command's stderr, for "still not ready" messages. */
const lastLine = (s: string) => s.trim().split("\n").pop() ?? "";

/**
 * Waits on master0 until kube-system's pods and every host's node are ready; past the timeout
 * fails naming what was still not ready.
 */
export async function runClusterCheck(
  ctx: ExecContext,
  label: string,
  wait: Partial<Pick<RetryPolicy, "minMs" | "maxMs" | "sleep" | "now">> & { maxTotalMs?: number } = {},
): Promise<void> {
  const ip = ctx.master0;
  const hosts = [...ctx.masters, ...ctx.workers];
  const expected = await Promise.all(hosts.map((h) => ctx.nodeName(h)));
  let pending: string[] = [];
  const probe = async (): Promise<true | undefined> => {
    const kubectl = (args: string) =>
      ctx.sh(ip, label, `${KUBECONFIG}; kubectl ${args}`, {
        allowFail: true,
        quiet: true,
        timeoutMs: 60_000,
      });
    const nodes = await kubectl("get nodes -o json");
    const pods = await kubectl("get pods -n kube-system -o json");
    pending = [];
    try {
      if (nodes.code !== 0) pending.push(`kubectl get nodes failed: ${lastLine(nodes.stderr)}`);
      else pending.push(...nodesNotReady(nodes.stdout, expected));
      if (pods.code !== 0) pending.push(`kubectl get pods -n kube-system failed: ${lastLine(pods.stderr)}`);
      else pending.push(...podsNotReady(pods.stdout));
    } catch (err) {
      pending.push((err as Error).message);
    }
    if (pending.length === 0) return true;
    log.forHost(ip).info(`${label}: waiting for the cluster: ${pending.join("; ")}`);
    return undefined;
  };
  const maxTotalMs = wait.maxTotalMs ?? CLUSTERCHECK_TIMEOUT_MS;
  try {
    await poll(probe, "the cluster to be ready", {
      minMs: wait.minMs ?? 5_000,
      maxMs: wait.maxMs ?? 30_000,
      maxTotalMs,
      ...(wait.sleep ? { sleep: wait.sleep } : {}),
      ...(wait.now ? { now: wait.now } : {}),
    });
  } catch (err) {
    // Only the wait running out is ours to word; a failed SSH session says what it is itself.
    if (!(err instanceof PollTimeout)) throw err;
    throw new UserError(
      `[${ip}] step "${label}": the cluster was not ready after ${Math.round(maxTotalMs / 1000)}s (still: ${pending.join("; ") || "no answer"}); check those nodes and pods (kubectl describe) and apply again`,
      { cause: err },
    );
  }
  log.forHost(ip).info(`${label}: cluster is ready`);
}

/**
 * Where the ETCD plugin saves: its `on` (sealer's field for the path) or, when none is given,
 * a timestamped file in the cluster's backups directory on master0.
 */
export function etcdSnapshotPath(on: string | undefined, clusterDir: string, now: Date): string {
  return on?.trim() ? path.posix.normalize(on.trim()) : `${clusterDir}/backups/${snapshotName(now)}`;
}

export async function runEtcdSnapshot(
  ctx: ExecContext,
  label: string,
  on: string | undefined,
  now = new Date(),
): Promise<void> {
  const ip = ctx.master0;
  await checkEtcdTools(ctx, ip, label);
  const remote = etcdSnapshotPath(on, ctx.clusterDir, now);
  const r = await ctx.sh(ip, label, snapshotSaveCmd(remote), { allowFail: true, quiet: true });
  const saved = r.code === 0 ? parseSnapshotSaved(r.stdout) : undefined;
  if (!saved)
    throw new UserError(
      `[${ip}] step "${label}": etcd snapshot to ${remote} failed: ${lastLine(r.stderr) || "no checksum printed"}; check that etcd answers on https://127.0.0.1:2379 and that ${path.posix.dirname(remote)} is writable, then apply again`,
    );
  log.forHost(ip).info(`${label}: etcd snapshot ${remote} (${saved.size} bytes, sha256 ${saved.sha256})`);
}

/**
 * A connection to a recorded cluster for the commands that are not an apply (exec, backup,
 * restore, cert, hooks of delete/rollback): the same ExecContext the step handlers use, so
 * commands run with the cluster env, the image's bin/ on PATH and host+step in every error.
 */
import { applyCluster, type ApplyResult } from "../apply";
import type { ClusterSpec } from "../clusterfile";
import { UserError } from "../errors";
import { ExecContext } from "../exec/context";
import { factsOrEmpty } from "../image/facts";
import { OciLayout } from "../image/layout";
import { dataPaths } from "../paths";
import type { AppliedState } from "../plan/types";
import { SshPool } from "../ssh";
import type { ResolvedCluster } from "./cluster-ref";

/** Options every lifecycle entry point accepts (tests shorten the SSH timeouts, use their own known_hosts). */
export interface LifecycleOptions {
  store?: OciLayout;
  knownHostsFile?: string;
  ssh?: { dialAttempts?: number; dialTimeoutMs?: number; keepaliveIntervalMs?: number };
  commandTimeoutMs?: number;
  /** Data directory (default $SEALER_HOME). */
  home?: string;
}

export async function withSession<T>(
  spec: ClusterSpec,
  applied: AppliedState,
  stateDir: string,
  o: LifecycleOptions,
  fn: (ctx: ExecContext) => Promise<T>,
): Promise<T> {
  const layout = o.store ?? new OciLayout(dataPaths.store(o.home));
  const image = await factsOrEmpty(layout, applied.image?.reference ?? spec.image);
  const pool = new SshPool({
    knownHostsFile: o.knownHostsFile ?? dataPaths.knownHosts(o.home),
    ...(o.ssh ?? {}),
  });
  const ctx = new ExecContext({
    spec,
    image,
    layout,
    pool,
    state: applied,
    stateDir,
    ...(o.commandTimeoutMs ? { commandTimeoutMs: o.commandTimeoutMs } : {}),
  });
  try {
    return await fn(ctx);
  } finally {
    await pool.close();
  }
}

/** Lifecycle edits of a cluster (join, delete, upgrade, rollback) need a cluster kubeadm created. */
export function requireCreated(r: ResolvedCluster): void {
  if (!r.applied.steps["init-master"])
    throw new UserError(
      `cluster ${r.spec.name} has not been created yet (no kubeadm init recorded in ${r.stateDir}): run sealer run or sealer apply first`,
    );
}

/** applyCluster of `spec` against the resolved cluster's recorded state, with the lifecycle options. */
export async function applyWith(
  r: ResolvedCluster,
  spec: ClusterSpec,
  o: LifecycleOptions & { dryRun?: boolean },
): Promise<ApplyResult> {
  return applyCluster({
    spec,
    stateDir: r.stateDir,
    applied: r.applied,
    ...(o.store ? { store: o.store } : {}),
    ...(o.knownHostsFile ? { knownHostsFile: o.knownHostsFile } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
    ...(o.commandTimeoutMs ? { commandTimeoutMs: o.commandTimeoutMs } : {}),
    ...(o.dryRun ? { dryRun: true } : {}),
  });
}

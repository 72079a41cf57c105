/**
 * `sealer join` / `sealer delete -m/-n` (C4): edit the recorded Clusterfile's hosts and apply it.
 * The planner does the rest: new hosts get distribute, init, fresh join material and a join
 * (masters one at a time); removed hosts get pre-clean-host hooks, kubeadm reset, their files
 * removed and `kubectl delete node` from a remaining master; the worker VIP is re-pointed on
 * every worker when the masters change. The same happens through `sealer apply` with an edited
 * Clusterfile. Bad input (unknown IP, the last master) fails before anything is contacted.
 */
import { applyCluster, type ApplyResult } from "../apply";
import { UserError } from "../errors";
import { resolveCluster, recordSpec, type ClusterRef } from "./cluster-ref";
import { addHosts, removeHosts, type HostEdit } from "./hosts-edit";
import type { LifecycleOptions } from "./session";

export type ScaleOptions = ClusterRef &
  LifecycleOptions & { add?: HostEdit; remove?: HostEdit; dryRun?: boolean };

export async function scaleCluster(o: ScaleOptions): Promise<ApplyResult> {
  const r = await resolveCluster(o);
  if (!r.applied.steps["init-master"])
    throw new UserError(
      `cluster ${r.spec.name} has not been created yet (no kubeadm init recorded in ${r.stateDir}): run sealer run or sealer apply first`,
    );
  let spec = r.spec;
  if (o.add) spec = addHosts(spec, o.add);
  if (o.remove) spec = removeHosts(spec, o.remove);
  const res = await applyCluster({
    spec,
    stateDir: r.stateDir,
    applied: r.applied,
    ...(o.store ? { store: o.store } : {}),
    ...(o.knownHostsFile ? { knownHostsFile: o.knownHostsFile } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
    ...(o.commandTimeoutMs ? { commandTimeoutMs: o.commandTimeoutMs } : {}),
    ...(o.dryRun ? { dryRun: true } : {}),
  });
  // Recorded only when the change went through: a failed join is finished by running it again.
  if (!o.dryRun) await recordSpec(spec, o.home);
  return res;
}

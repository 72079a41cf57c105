/**
 * `sealer join` / `sealer delete -m/-n`: edit the recorded Clusterfile's hosts and apply it.
 * The planner does the rest: new hosts get distribute, init, fresh join material and a join
 * (masters one at a time); removed hosts get pre-clean-host hooks, kubeadm reset, their files
 * removed and `kubectl delete node` from a remaining master; the worker VIP is re-pointed on
 * every worker when the masters change. The same happens through `sealer apply` with an edited
 * Clusterfile. Bad input (unknown IP, the last master) fails before anything is contacted.
 */
import type { ApplyResult } from "../apply";
import { resolveCluster, recordSpec, type ClusterRef } from "./cluster-ref";
import { addHosts, removeHosts, type HostEdit } from "./hosts-edit";
import { applyWith, requireCreated, type LifecycleOptions } from "./session";

export type ScaleOptions = ClusterRef &
  LifecycleOptions & { add?: HostEdit; remove?: HostEdit; dryRun?: boolean };

export async function scaleCluster(o: ScaleOptions): Promise<ApplyResult> {
  const r = await resolveCluster(o);
  requireCreated(r);
  let spec = r.spec;
  if (o.add) spec = addHosts(spec, o.add);
  if (o.remove) spec = removeHosts(spec, o.remove);
  const res = await applyWith(r, spec, o);
  // Recorded only when the change went through: a failed join is finished by running it again.
  if (!o.dryRun) await recordSpec(spec, o.home);
  return res;
}

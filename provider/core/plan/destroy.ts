/**
 * The destroy flow (`sealer delete -a`, `pulumi destroy` of a Cluster) as a plan, so
 * `sealer plan --destroy` shows exactly what the delete runs: pre-uninstall hooks, then a
 * clean-host per host (kubeadm reset, registry stopped, runtime uninstalled, our files removed,
 * the node's unreferenced layer blobs collected, the data root removed when no cluster is left
 * in it), then post-uninstall hooks. Hosts come from the Clusterfile AND the recorded state, so
 * a run that died before recording a host still cleans it. Pure.
 */
import { allHosts } from "../clusterfile";
import type { ClusterSpec } from "../clusterfile/types";
import { phaseHookSteps } from "./phase-hooks";
import type { AppliedState, ImagePlugins, Plan, Step } from "./types";

export const CLEAN_HOST_REASON =
  "delete cluster: kubeadm reset, registry stopped, runtime uninstalled, files removed, unreferenced layer blobs collected; the data root goes when no other cluster uses it";

export function destroyHosts(spec: ClusterSpec, applied: AppliedState): string[] {
  return [...new Set([...allHosts(spec), ...Object.keys(applied.hosts)])];
}

/** The clean-host step of one host, as the plan shows it and deleteCluster runs it. */
export function cleanHostStep(ip: string, after: string[] = []): Step {
  return {
    id: `clean-host:${ip}`,
    kind: "clean-host",
    hosts: [ip],
    reason: CLEAN_HOST_REASON,
    key: "",
    after,
  };
}

export function planDestroy(spec: ClusterSpec, applied: AppliedState, imagePlugins?: ImagePlugins): Plan {
  const hosts = destroyHosts(spec, applied);
  const pre = phaseHookSteps(spec, applied, "pre-uninstall", hosts, "delete cluster", imagePlugins);
  const clean = hosts.map((ip) =>
    cleanHostStep(
      ip,
      pre.map((s) => s.id),
    ),
  );
  const post = phaseHookSteps(spec, applied, "post-uninstall", hosts, "delete cluster", imagePlugins).map(
    (s) => ({ ...s, after: clean.map((c) => c.id) }),
  );
  return { cluster: spec.name, steps: [...pre, ...clean, ...post], warnings: [] };
}

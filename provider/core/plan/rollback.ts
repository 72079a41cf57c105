/**
 * The rollback flow (`sealer rollback`) as a plan: the install/upgrade plan back to the image
 * recorded before the last upgrade, with the `upgrade` hooks left out (they are for upgrades),
 * then the `rollback` hooks. A cluster-wide rollback hook (one that picks no hosts) runs once, on master0,
 * like the planner's upgrade hooks. Pure: `sealer plan --rollback` shows it, `sealer rollback`
 * runs it.
 */
import { masters as mastersOf, workers as workersOf } from "../clusterfile";
import type { ClusterSpec } from "../clusterfile/types";
import { phaseHookSteps, type HookStep } from "./phase-hooks";
import { plan, type Desired } from "./planner";
import { effectivePlugins, selectsHosts } from "./plugins";
import type { AppliedState, ImagePlugins, Plan } from "./types";

/** The spec a rollback applies: the previous image, without hooks that only run on upgrade. */
export function rollbackSpec(spec: ClusterSpec, previousImage: string): ClusterSpec {
  return {
    ...spec,
    image: previousImage,
    plugins: spec.plugins
      .map((p) => ({
        ...p,
        actions: p.actions.filter((a) => a !== "upgrade" || p.actions.includes("rollback")),
      }))
      .filter((p) => p.actions.length > 0),
  };
}

/** The rollback hooks, run after the apply went through. */
export function rollbackHookSteps(
  spec: ClusterSpec,
  applied: AppliedState,
  imagePlugins: ImagePlugins | undefined,
): HookStep[] {
  const masters = mastersOf(spec);
  const all = [...masters, ...workersOf(spec)];
  const plugins = effectivePlugins(spec.plugins, imagePlugins);
  const why = `rolled back to ${spec.image}`;
  return phaseHookSteps(spec, applied, "rollback", all, why, imagePlugins).map((s) => {
    const p = plugins.find((x) => x.name === s.plugin);
    return p && !selectsHosts(p) && masters[0] ? { ...s, hosts: [masters[0]] } : s;
  });
}

/** `desired.cluster` is rollbackSpec(...), `desired.image` the previous image's facts. */
export function planRollback(desired: Desired, applied: AppliedState): Plan {
  const p = plan(desired, applied);
  if (p.replace) return p;
  const hooks = rollbackHookSteps(desired.cluster, applied, desired.image.plugins).map((s) => ({
    ...s,
    after: p.steps.map((x) => x.id),
  }));
  return { ...p, steps: [...p.steps, ...hooks] };
}

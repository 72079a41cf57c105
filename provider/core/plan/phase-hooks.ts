/**
 * Hook steps of one lifecycle phase (pre-/post-uninstall, rollback), for the flows built outside
 * the install graph (destroy, rollback). Plugins come from the Clusterfile and the image's
 * plugins/, and pick their hosts by the planner's own rule (pluginHosts: scope, legacy `on`, the
 * IPs a HOSTNAME/LABEL/TAINT plugin lists); a plugin that names none runs on every host given.
 */
import { masters as mastersOf } from "../clusterfile";
import type { ClusterSpec, HookPhase } from "../clusterfile/types";
import { hostIdentities, pluginFacts } from "./host-view";
import { effectivePlugins, pluginHosts, type PluginHostFacts } from "./plugins";
import type { AppliedState, ImagePlugins, Step } from "./types";

export type HookStep = Extract<Step, { kind: "hook" }>;

export function phaseHookSteps(
  spec: ClusterSpec,
  applied: AppliedState,
  phase: HookPhase,
  hosts: string[],
  reason: string,
  imagePlugins?: ImagePlugins,
): HookStep[] {
  const facts = hostFactsIn(spec, applied);
  const master0 = mastersOf(spec)[0] ?? hosts.find((ip) => facts(ip).role === "master") ?? "";
  return effectivePlugins(spec.plugins, imagePlugins)
    .filter((p) => p.actions.includes(phase))
    .map((p) => ({ p, on: pluginHosts(p, phase, hosts, facts, master0) }))
    .filter(({ on }) => on.length > 0)
    .map(({ p, on }) => ({
      id: `hook:${phase}:${p.name}`,
      kind: "hook" as const,
      phase,
      plugin: p.name,
      hosts: on,
      reason: `${phase} hook ${p.name} (${reason})`,
      key: "",
      after: [],
    }));
}

/**
 * Roles and labels of a host: from the planner's host view (the Clusterfile's), else the recorded
 * ones (a host only the state still knows).
 */
export function hostFactsIn(spec: ClusterSpec, applied: AppliedState): (ip: string) => PluginHostFacts {
  const views = hostIdentities(spec);
  return (ip) => pluginFacts(views.get(ip), applied.hosts[ip]);
}

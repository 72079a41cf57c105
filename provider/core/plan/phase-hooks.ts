/**
 * Hook steps of one lifecycle phase (pre-/post-uninstall, rollback), for the flows built outside
 * the install graph (destroy, rollback). Plugins come from the Clusterfile and the image's
 * plugins/, as the planner's own hooks do; an empty scope means every host given.
 */
import type { ClusterSpec, HookPhase } from "../clusterfile/types";
import { effectivePlugins } from "./plugins";
import type { ImagePlugins, Step } from "./types";

export type HookStep = Extract<Step, { kind: "hook" }>;

export function phaseHookSteps(
  spec: ClusterSpec,
  phase: HookPhase,
  hosts: string[],
  rolesOf: (ip: string) => string[],
  reason: string,
  imagePlugins?: ImagePlugins,
): HookStep[] {
  return effectivePlugins(spec.plugins, imagePlugins)
    .filter((p) => p.actions.includes(phase))
    .map((p) => ({
      p,
      on: p.scope.length === 0 ? hosts : hosts.filter((ip) => p.scope.some((s) => rolesOf(ip).includes(s))),
    }))
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

/** Roles of a host: the Clusterfile's, else the recorded ones (a host only the state still knows). */
export function rolesIn(spec: ClusterSpec, applied: { hosts: Record<string, { roles?: string[] }> }) {
  return (ip: string): string[] =>
    spec.hosts.find((h) => h.ips.includes(ip))?.roles ?? applied.hosts[ip]?.roles ?? [];
}

/**
 * Per host, before any Kubernetes step: distribute, the pre-init-host hooks, init-host (the
 * image's host scripts), container-runtime and host-aliases.
 */
import type { PlanContext } from "../context";
import { NodeList, type StepNode } from "../nodes";
import { distributeNode } from "./distribute";
import { hostHooks } from "./hooks";

/** The id of the delete-node step: hosts that change role are re-added after their removal. */
export const REMOVAL = "delete-node";

/** The container runtime the hosts use: Clusterfile, else the image label, else containerd. */
export function runtimeOf(ctx: Pick<PlanContext, "spec" | "image">): "docker" | "containerd" {
  return ctx.spec.containerRuntime?.type ?? ctx.image.containerRuntime ?? "containerd";
}

export interface HostsPhase {
  nodes: StepNode[];
  /** Each host's last step so far (what its next steps wait for). */
  lastOfHost: Map<string, string>;
}

/** `after`: the pre-install/pre-scaleup hooks every host waits for. */
export function hostSteps(ctx: PlanContext, after: string[]): HostsPhase {
  const out = new NodeList();
  const runtime = runtimeOf(ctx);
  const runtimePart = ctx.shared("runtime", () => runtime, `container runtime is ${runtime}`);
  const aliasesPart = ctx.shared("hostAliases", () => ctx.spec.hostAliases, "hostAliases changed");
  const lastOfHost = new Map<string, string>();
  for (const ip of ctx.all) {
    const common = { newReason: ctx.hostNew(ip), force: ctx.force(ip) };
    const dist = out.add(distributeNode(ctx, ip, [...after, ...(ctx.roleChanged.has(ip) ? [REMOVAL] : [])]));
    const pre = hostHooks(ctx, out, "pre-init-host", ip, [dist]);
    const init = out.add({
      ...common,
      step: { id: `init-host:${ip}`, kind: "init-host", hosts: [ip] },
      parts: [
        ctx.layerPart("layers:host-init", (c) => c === "host-init", "scripts/, etc/, bin/", ip),
        ...ctx.envParts(ip, "init-host", (c) => c === "host-init", true),
      ],
      deps: [dist, ...pre],
    });
    let last = out.add({
      ...common,
      step: { id: `container-runtime:${ip}`, kind: "container-runtime", hosts: [ip], runtime },
      parts: [
        runtimePart,
        ctx.layerPart("layers:runtime", (c) => c === "runtime", "cri/, scripts/<runtime>.sh", ip),
        ...ctx.envParts(ip, "container-runtime", (c) => c === "runtime", true),
      ],
      deps: [init],
    });
    // Kept while recorded, so removing the last alias rewrites /etc/hosts without it.
    if (ctx.spec.hostAliases.length > 0 || ctx.applied.steps[`host-aliases:${ip}`])
      last = out.add({
        ...common,
        step: { id: `host-aliases:${ip}`, kind: "host-aliases", hosts: [ip] },
        parts: [aliasesPart],
        deps: [last],
      });
    lastOfHost.set(ip, last);
  }
  return { nodes: out.nodes, lastOfHost };
}

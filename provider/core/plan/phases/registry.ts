/**
 * The registry on the registry hosts (an external registry: the push, from master0), then the
 * registry client on every host: hosts entry for the registry domain, CA trust, mirrors.
 */
import type { PlanContext } from "../context";
import { hash, type Part } from "../keys";
import { NodeList, type StepNode } from "../nodes";

/** Where the registry runs: master0 (external, or a local registry that is not HA), else every master. */
export function registryHosts(ctx: Pick<PlanContext, "spec" | "master0" | "masters">): string[] {
  const r = ctx.spec.registry;
  if (r.externalRegistry) return [ctx.master0];
  return r.localRegistry?.ha === false ? [ctx.master0] : ctx.masters;
}

/** The registry settings part (the kubeadm config names the registry too). */
export function registryPart(ctx: PlanContext): Part {
  return ctx.shared("registry", () => ctx.spec.registry, "registry settings changed");
}

/** `lastOfHost`: each host's last step so far; returned advanced to its registry-client step. */
export function registrySteps(
  ctx: PlanContext,
  hostTails: ReadonlyMap<string, string>,
): { nodes: StepNode[]; lastOfHost: Map<string, string> } {
  const out = new NodeList();
  const lastOfHost = new Map(hostTails);
  const reg = ctx.spec.registry;
  const settings = registryPart(ctx);
  const regHosts = registryHosts(ctx);
  const regIds = regHosts.map((ip) =>
    out.add({
      step: { id: `registry:${ip}`, kind: "registry", hosts: [ip] },
      parts: [settings, ctx.layerPart("layers:registry", (c) => c === "registry", "registry/")],
      deps: [lastOfHost.get(ip) ?? ""],
      newReason: reg.externalRegistry
        ? `push the image's container images to ${reg.externalRegistry.domain} (${ctx.clusterNew})`
        : ctx.hostNew(ip),
      force: ctx.force(ip),
    }),
  );
  const hostsPart = ctx.shared(
    "registry-hosts",
    () => [...regHosts].sort(),
    `registry hosts changed (${regHosts.join(", ")})`,
  );
  for (const ip of ctx.all)
    lastOfHost.set(
      ip,
      out.add({
        step: { id: `registry-client:${ip}`, kind: "registry-client", hosts: [ip] },
        parts: [
          settings,
          hostsPart,
          { name: "role", hash: hash(ctx.role(ip)), desc: `role of ${ip} changed` },
          ...ctx.envParts(ip, "registry-client", () => false, false),
        ],
        deps: [lastOfHost.get(ip) ?? "", ...regIds],
        newReason: ctx.hostNew(ip),
        force: ctx.force(ip),
      }),
    );
  return { nodes: out.nodes, lastOfHost };
}

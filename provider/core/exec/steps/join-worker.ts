/** join-worker: kubeadm join on the workers, in parallel (bounded). */
import { compareNode, expectNode } from "../../drift/expect-node";
import { joinHost } from "../kubeadm-node";
import type { HostFacts, StepKindDef } from "./kind";

export const joinWorker: StepKindDef<"join-worker"> = {
  async run(ctx, step) {
    const hosts: Record<string, HostFacts> = {};
    await ctx.eachHost(step.hosts, async (ip) => {
      hosts[ip] = { nodeName: await joinHost(ctx, ip, false) };
    });
    return { hosts, ...(ctx.join ? { secrets: { ...ctx.join } } : {}) };
  },
  record(_next, step, kit) {
    for (const ip of step.hosts) {
      kit.setKube(ip);
      kit.host(ip).roles = kit.roles(ip);
    }
  },
  probe: {
    expect: (p) => (p.worker ? expectNode(p, "join-worker", `join-worker:${p.ip}`) : {}),
    compare: (e, _o, nodes) => compareNode("join-worker", e, nodes),
  },
};

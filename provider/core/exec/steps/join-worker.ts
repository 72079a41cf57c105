/** join-worker: kubeadm join on the workers, in parallel (bounded). */
import { compareNode, expectNode } from "../../drift/expect-node";
import { joinHost, joined, recordJoined } from "../../kube/join";
import type { StepKindDef } from "./kind";

export const joinWorker: StepKindDef<"join-worker"> = {
  async run(ctx, step) {
    const names: Record<string, string> = {};
    await ctx.eachHost(step.hosts, async (ip) => {
      names[ip] = await joinHost(ctx, ip, false);
    });
    return joined(ctx, names);
  },
  record: (_next, step, kit) => recordJoined(step, kit),
  probe: {
    expect: (p) => (p.worker ? expectNode(p, "join-worker", `join-worker:${p.ip}`) : {}),
    compare: (e, _o, nodes) => compareNode("join-worker", e, nodes),
  },
};

/** join-master: kubeadm join --control-plane, strictly one master at a time (etcd membership changes must not overlap). */
import { compareNode, expectNode } from "../../drift/expect-node";
import { joinHost, joined, recordJoined } from "../../kube/join";
import type { StepKindDef } from "./kind";

export const joinMaster: StepKindDef<"join-master"> = {
  async run(ctx, step) {
    const names: Record<string, string> = {};
    for (const ip of step.hosts) names[ip] = await joinHost(ctx, ip, true);
    return joined(ctx, names);
  },
  record: (_next, step, kit) => recordJoined(step, kit),
  // master0's apiserver line and node belong to init-master.
  probe: {
    expect: (p) => {
      const id = `join-master:${p.ip}`;
      if (p.worker || (p.master0 && p.recorded("init-master")) || !p.recorded(id)) return {};
      return {
        blocks: [{ tag: "apiserver", lines: [`${p.ip} ${p.layout.apiserverDomain}`], steps: [id] }],
        ...(p.master0 ? {} : expectNode(p, "join-master", id)),
      };
    },
    compare: (e, _o, nodes) => compareNode("join-master", e, nodes),
  },
};

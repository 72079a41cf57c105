/** join-master: kubeadm join --control-plane, strictly one master at a time (etcd membership changes must not overlap). */
import { compareNode, expectNode } from "../../drift/expect-node";
import { joinHost } from "../kubeadm-node";
import type { HostFacts, StepKindDef } from "./kind";

export const joinMaster: StepKindDef<"join-master"> = {
  async run(ctx, step) {
    const hosts: Record<string, HostFacts> = {};
    for (const ip of step.hosts) hosts[ip] = { nodeName: await joinHost(ctx, ip, true) };
    return { hosts, ...(ctx.join ? { secrets: { ...ctx.join } } : {}) };
  },
  record(_next, step, kit) {
    for (const ip of step.hosts) {
      kit.setKube(ip);
      kit.host(ip).roles = kit.roles(ip);
    }
  },
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

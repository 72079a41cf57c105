/** upgrade-master: kubeadm upgrade apply on master0 (upgraded first), kubeadm upgrade node on the other masters, one at a time. */
import { shellQuote } from "../../ssh";
import { upgradeNode } from "../../kube/upgrade";
import type { StepKindDef } from "./kind";

export const upgradeMaster: StepKindDef<"upgrade-master"> = {
  async run(ctx, step) {
    const label = `upgrade-master ${step.version}`;
    for (const ip of step.hosts) {
      const first = step.first && ip === ctx.master0;
      await upgradeNode(
        ctx,
        ip,
        label,
        first ? `kubeadm upgrade apply ${shellQuote(step.version)} -y` : "kubeadm upgrade node",
      );
    }
    return {};
  },
  record(_next, step, kit) {
    for (const ip of step.hosts) {
      const h = kit.host(ip);
      h.kubeKey = step.key;
      h.kubeVersion = step.version;
    }
    // Upgrades are tracked on the host (kubeKey), not as step records.
    return "untracked";
  },
};

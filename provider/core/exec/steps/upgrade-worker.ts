/** upgrade-worker: kubeadm upgrade node on the workers in bounded batches. */
import { upgradeNode } from "../../kube/upgrade";
import type { StepKindDef } from "./kind";
import { upgradeMaster } from "./upgrade-master";

export const upgradeWorker: StepKindDef<"upgrade-worker"> = {
  async run(ctx, step) {
    const label = `upgrade-worker ${step.version}`;
    // At most a third of the workers (at least one) disrupted at once.
    const batch = Math.max(1, Math.floor(step.hosts.length / 3));
    await ctx.eachHost(step.hosts, (ip) => upgradeNode(ctx, ip, label, "kubeadm upgrade node"), batch);
    return {};
  },
  // The same record as a master's: the host's kubeKey and version.
  record: (next, step, kit) =>
    upgradeMaster.record(next, { ...step, kind: "upgrade-master", first: false }, kit),
};

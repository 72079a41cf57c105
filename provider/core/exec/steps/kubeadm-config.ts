/** kubeadm-config: the merged kubeadm init config written on master0 (named for master0's node). */
import { initConfigYaml } from "../../kube/kubeadm-config";
import { initConfigPath, withNodeName } from "../../kube/join";
import { keyOnly, type StepKindDef } from "./kind";

export const kubeadmConfig: StepKindDef<"kubeadm-config"> = {
  async run(ctx) {
    const cfg = await ctx.kubeadm("kubeadm-config");
    const text = await withNodeName(ctx, ctx.master0, initConfigYaml(cfg));
    await ctx.put(ctx.master0, "kubeadm-config", initConfigPath(ctx), text, 0o600);
    ctx.log(ctx.master0).info(`kubeadm-config: wrote ${initConfigPath(ctx)}`);
    return {};
  },
  record: keyOnly,
};

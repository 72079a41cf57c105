/** launch-cmds: CMDS, the Clusterfile's cmd or a legacy CMD, on master0. */
import { runOnMaster0 } from "../master-cmds";
import { keyOnly, type StepKindDef } from "./kind";

export const launchCmds: StepKindDef<"launch-cmds"> = {
  async run(ctx, step) {
    await runOnMaster0(ctx, "launch-cmds", step.cmds);
    return {};
  },
  record: keyOnly,
};

/** launch-app: an app's launch commands on master0 with the app's env (APPENV). */
import { runOnMaster0 } from "../master-cmds";
import { keyOnly, type StepKindDef } from "./kind";

export const launchApp: StepKindDef<"launch-app"> = {
  async run(ctx, step) {
    const app = ctx.image.apps.find((a) => a.name === step.app);
    await runOnMaster0(ctx, `launch-app ${step.app}`, step.cmds, app?.env ?? {});
    return {};
  },
  record: keyOnly,
};

/** container-runtime: the image's scripts/<cri>.sh on every host. */
import { UserError } from "../../errors";
import { scriptFootprint } from "../footprint";
import { keyOnly, type StepKindDef } from "./kind";

export const containerRuntime: StepKindDef<"container-runtime"> = {
  async run(ctx, step) {
    const script = `scripts/${step.runtime}.sh`;
    const footprint = await scriptFootprint(ctx, step.hosts, "container-runtime", async (ip) => {
      const has = await ctx.sh(ip, "container-runtime", `test -f ${script}`, {
        allowFail: true,
        quiet: true,
      });
      if (has.code !== 0)
        throw new UserError(
          `[${ip}] step "container-runtime": the image has no ${script}; build the image with a ${step.runtime} install script or set spec.containerRuntime.type to the runtime the image ships`,
        );
      return ctx.sh(ip, "container-runtime", `sh ${script}`);
    });
    return { footprint };
  },
  record: keyOnly,
};

/** init-host: the image's host init scripts, in the order sealer runs them, each only when present. */
import { shellQuote } from "../../ssh";
import { scriptFootprint } from "../footprint";
import { keyOnly, type StepKindDef } from "./kind";

const INIT_SCRIPTS = ["scripts/init.sh", "scripts/kubelet-pre-start.sh", "scripts/init-kube.sh"];

export const initHost: StepKindDef<"init-host"> = {
  async run(ctx, step) {
    const script = INIT_SCRIPTS.map((s) => `if [ -f ${s} ]; then echo "running ${s}"; sh ${s}; fi`).join(
      " && ",
    );
    const footprint = await scriptFootprint(ctx, step.hosts, "init-host", (ip) =>
      ctx.sh(ip, "init-host", `mkdir -p /etc/kubernetes ${shellQuote(ctx.clusterDir)} && ${script}`),
    );
    return { footprint };
  },
  record: keyOnly,
};

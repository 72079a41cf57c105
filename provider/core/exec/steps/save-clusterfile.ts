/** save-clusterfile: the merged Clusterfile (secrets left out) to master0, configmap kube-system/sealer-clusterfile, and the local state dir. */
import { dumpClusterfile } from "../../clusterfile";
import { saveClusterfileCmd } from "../../kube/commands";
import { saveClusterfileTo } from "../../state";
import { drift } from "../../drift/check";
import { hashes } from "../footprint";
import type { StepKindDef } from "./kind";

export const saveClusterfile: StepKindDef<"save-clusterfile"> = {
  async run(ctx) {
    const text = dumpClusterfile(ctx.spec);
    const remote = `${ctx.clusterDir}/Clusterfile`;
    await ctx.put(ctx.master0, "save-clusterfile", remote, text, 0o600);
    await ctx.sh(ctx.master0, "save-clusterfile", saveClusterfileCmd(remote));
    // Locally last, once the cluster has it (a failure above leaves the local record as it was),
    // with its secrets in their own 0600 file (`sealer join/delete` reload them); on the cluster without.
    await saveClusterfileTo(ctx.stateDir, ctx.spec);
    return { footprint: { [ctx.master0]: { files: hashes({ [remote]: text }) } } };
  },
  record(next, _step, { desired }) {
    const img = {
      reference: desired.image.reference,
      manifestDigest: desired.image.manifestDigest,
      kubeVersion: desired.image.kubeVersion,
    };
    if (next.image && next.image.manifestDigest !== img.manifestDigest) next.previousImage = next.image;
    next.image = img;
    next.dataRoot = desired.cluster.dataRoot;
  },
  // States from before footprints: only the Clusterfile's presence can be checked.
  probe: {
    expect: ({ applied, master0 }) => ({
      clusterfile:
        master0 && !!applied.steps["save-clusterfile"] && !applied.steps["save-clusterfile"].footprint,
    }),
    compare: (e, o) =>
      !e.clusterfile
        ? []
        : [
            o.clusterfile
              ? { check: "clusterfile", status: "ok" }
              : drift("clusterfile", "the saved Clusterfile on master0", "missing", ["save-clusterfile"]),
          ],
  },
};

/**
 * save-clusterfile: the merged Clusterfile to master0 and kube-system/sealer-clusterfile, last.
 * Keyed by the spec without what is not saved on the cluster, and by the image.
 */
import type { PlanContext } from "../context";
import { hash } from "../keys";
import type { StepNode } from "../nodes";

export function saveClusterfileStep(ctx: PlanContext, after: string[]): StepNode<"save-clusterfile"> {
  const { spec, image } = ctx;
  return {
    step: { id: "save-clusterfile", kind: "save-clusterfile", hosts: [ctx.master0] },
    parts: [
      {
        name: "spec",
        // ssh credentials are not saved on the cluster (they stay on this machine), nor how
        // layers travel: every distribution mode plans the same steps with the same keys.
        hash: hash({
          ...spec,
          ssh: undefined,
          distribution: undefined,
          hosts: spec.hosts.map((h) => ({ ...h, ssh: undefined })),
        }),
        desc: "Clusterfile changed",
      },
      {
        name: "image",
        hash: hash([image.reference, image.manifestDigest]),
        desc: `image is now ${image.reference}`,
      },
    ],
    deps: after,
    newReason: ctx.existing
      ? "not applied yet"
      : "new cluster: save the Clusterfile on master0 and in kube-system/sealer-clusterfile",
  };
}

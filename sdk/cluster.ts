import * as pulumi from "@pulumi/pulumi";
import { resources } from "../provider/shared/descriptors";
import { dynamicProvider } from "./provider-shim";
import { MODULE, resourceOptions, resourceProps } from "./base";
import { ClusterImage } from "./cluster-image";
import { Infra } from "./infra";
import type { Ssh, Step } from "./types";

export interface ClusterArgs {
  /** Cluster name (default: the Clusterfile's, else the resource name). Changing it replaces the cluster. */
  name?: pulumi.Input<string>;
  /** Image reference, or a ClusterImage (then its digest is tracked too). */
  image: pulumi.Input<string> | ClusterImage;
  /** Expected image digest: a rebuilt image with the same tag is a change. Set for you when `image` is a ClusterImage. */
  imageDigest?: pulumi.Input<string>;
  /** Master IPs, master0 first. Override the Clusterfile's hosts. */
  masters?: pulumi.Input<pulumi.Input<string>[]>;
  /** Worker IPs. */
  workers?: pulumi.Input<pulumi.Input<string>[]>;
  /** Host IP -> identity (Host.identity; from `infra` when given): a host made anew is reinstalled. */
  hostIds?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** SDK convenience: take masters, workers and ssh from an Infra. */
  infra?: Infra;
  /** Login for the hosts (overrides the Clusterfile's ssh). */
  ssh?: pulumi.Input<Ssh>;
  /** Clusterfile: YAML text, or an object (the Cluster document; add `documents` for Config/Plugin/kubeadm). */
  clusterfile?: pulumi.Input<string | Record<string, unknown>>;
  /** Cluster env (overrides the Clusterfile's). */
  env?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Data root on the nodes (default /var/lib/sealer). Changing it replaces the cluster. */
  dataRoot?: pulumi.Input<string>;
}

const COMPUTED_INPUTS = ["plan", "providerVersion"] as const;

/**
 * A Kubernetes cluster run from a cluster image onto hosts over SSH. An update runs only the
 * steps the change affects; a preview lists them in `plan`.
 */
export class Cluster extends pulumi.dynamic.Resource {
  declare public readonly clusterName: pulumi.Output<string>;
  /** Applied state: image, hosts, step keys. */
  declare public readonly applied: pulumi.Output<Record<string, unknown>>;
  /** Steps the last create/update ran. */
  declare public readonly steps: pulumi.Output<Step[]>;
  /** Steps left after a failed create/update. */
  declare public readonly pending: pulumi.Output<Step[]>;
  /** admin kubeconfig. Secret. */
  declare public readonly kubeconfig: pulumi.Output<string | undefined>;
  /** Join token, certificate key, CA hash. Secret. */
  declare public readonly joinSecrets: pulumi.Output<Record<string, string> | undefined>;
  /** The steps the update will run (computed in check; shown by previews). */
  declare public readonly plan: pulumi.Output<string[]>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.CustomResourceOptions) {
    const desc = resources.Cluster;
    const image = args.image instanceof ClusterImage ? args.image.reference : args.image;
    const imageDigest =
      args.image instanceof ClusterImage ? (args.imageDigest ?? args.image.digest) : args.imageDigest;
    const inputs: Record<string, unknown> = {
      ...args,
      image,
      imageDigest,
      masters: args.masters ?? args.infra?.masterIps,
      workers: args.workers ?? args.infra?.workerIps,
      hostIds: args.hostIds ?? args.infra?.hostIds,
      ssh: args.ssh ?? args.infra?.sshLogin,
      defaultName: name,
    };
    delete inputs.infra;
    const dependsOn = args.image instanceof ClusterImage ? [args.image] : [];
    const o = resourceOptions(desc, opts);
    super(
      dynamicProvider("cluster"),
      name,
      resourceProps(desc, inputs, COMPUTED_INPUTS),
      {
        ...o,
        dependsOn: pulumi
          .output(o.dependsOn ?? [])
          .apply((d) => [...(Array.isArray(d) ? d : [d]), ...dependsOn]),
      },
      MODULE,
      desc.typeName,
    );
  }
}

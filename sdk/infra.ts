import * as pulumi from "@pulumi/pulumi";
import { resources } from "../provider/shared/descriptors";
import { dynamicProvider } from "./provider-shim";
import { MODULE, resourceOptions, resourceProps } from "./base";
import type { AlicloudInfra, Host, LocalInfra, NodeGroup, Ssh } from "./types";

export interface InfraArgs {
  /** `local` (network-namespace nodes on this machine, root required) or `alicloud`. Changing it replaces. */
  provider: pulumi.Input<"local" | "alicloud">;
  /** Name for tags and node names (default: the resource name). Changing it replaces. */
  name?: pulumi.Input<string>;
  masters: pulumi.Input<NodeGroup>;
  nodes?: pulumi.Input<NodeGroup>;
  local?: pulumi.Input<LocalInfra>;
  alicloud?: pulumi.Input<AlicloudInfra>;
  /** Login for the created hosts; a key pair is generated when none is given. */
  ssh?: pulumi.Input<Ssh>;
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

const COMPUTED_INPUTS = ["providerVersion"] as const;

/** Hosts for a cluster. Scale by changing the counts; the resource adds or removes hosts in place. */
export class Infra extends pulumi.dynamic.Resource {
  /** Master hosts, master0 first. */
  declare public readonly masterHosts: pulumi.Output<Host[]>;
  /** Worker hosts. */
  declare public readonly workerHosts: pulumi.Output<Host[]>;
  declare public readonly sshUser: pulumi.Output<string>;
  /** Secret. */
  declare public readonly sshPrivateKey: pulumi.Output<string | undefined>;
  /** Secret. */
  declare public readonly sshPassword: pulumi.Output<string | undefined>;
  declare public readonly state: pulumi.Output<unknown>;

  constructor(name: string, args: InfraArgs, opts?: pulumi.CustomResourceOptions) {
    const desc = resources.Infra;
    const inputs = { ...args, name: args.name ?? name } as unknown as Record<string, unknown>;
    super(
      dynamicProvider("infra"),
      name,
      resourceProps(desc, inputs, COMPUTED_INPUTS),
      resourceOptions(desc, opts),
      MODULE,
      desc.typeName,
    );
  }

  /** Master IPs (private), master0 first: feeds Cluster.masters. */
  get masterIps(): pulumi.Output<string[]> {
    return this.masterHosts.apply((hs) => hs.map((h) => h.privateIp));
  }

  /** Worker IPs (private): feeds Cluster.workers. */
  get workerIps(): pulumi.Output<string[]> {
    return this.workerHosts.apply((hs) => hs.map((h) => h.privateIp));
  }

  /** Host IP -> identity, ready for Cluster.hostIds: a host made anew is reinstalled. */
  get hostIds(): pulumi.Output<Record<string, string>> {
    return pulumi
      .all([this.masterHosts, this.workerHosts])
      .apply(([ms, ws]) =>
        Object.fromEntries([...ms, ...ws].flatMap((h) => (h.identity ? [[h.privateIp, h.identity]] : []))),
      );
  }

  /** The SSH login of the hosts, ready for Cluster.ssh. */
  get sshLogin(): pulumi.Output<Ssh> {
    return pulumi
      .all([this.sshUser, this.sshPrivateKey, this.sshPassword])
      .apply(([user, privateKey, password]) => ({ user, privateKey, password }) as Ssh);
  }
}

/** Shapes of the object-typed inputs and outputs (schema.json `types`). */
import type * as pulumi from "@pulumi/pulumi";

export interface Host {
  id?: string;
  privateIp: string;
  publicIp?: string;
  role: "master" | "node";
  /** What changes when the host is made anew (instance ID; local: node name and host key fingerprint). */
  identity?: string;
}

export interface Ssh {
  /** Login user (default root). A non-root user needs sudo. */
  user?: pulumi.Input<string>;
  /** Password (also used for sudo). Secret. */
  password?: pulumi.Input<string>;
  /** Private key text. Secret. */
  privateKey?: pulumi.Input<string>;
  passphrase?: pulumi.Input<string>;
  port?: pulumi.Input<number>;
}

export interface RegistryAuth {
  username: pulumi.Input<string>;
  password: pulumi.Input<string>;
}

export interface NodeGroup {
  count: pulumi.Input<number>;
  instanceType?: pulumi.Input<string>;
  cpu?: pulumi.Input<number>;
  memoryGiB?: pulumi.Input<number>;
  systemDiskGiB?: pulumi.Input<number>;
  dataDisksGiB?: pulumi.Input<pulumi.Input<number>[]>;
}

export interface LocalInfra {
  subnet?: pulumi.Input<string>;
  sudoUser?: pulumi.Input<string>;
}

export interface AlicloudInfra {
  region: pulumi.Input<string>;
  zone?: pulumi.Input<string>;
  vpcId?: pulumi.Input<string>;
  vswitchId?: pulumi.Input<string>;
  securityGroupId?: pulumi.Input<string>;
  cidr?: pulumi.Input<string>;
  sshCidr?: pulumi.Input<string>;
  eip?: pulumi.Input<boolean>;
  imageId: pulumi.Input<string>;
  keyPairName?: pulumi.Input<string>;
  accessKeyId?: pulumi.Input<string>;
  /** Secret. */
  accessKeySecret?: pulumi.Input<string>;
  ecsEndpoint?: pulumi.Input<string>;
  vpcEndpoint?: pulumi.Input<string>;
  batchSize?: pulumi.Input<number>;
  rateLimitPerMinute?: pulumi.Input<number>;
  /** Wait until SSH answers on every instance (default true). */
  waitForSsh?: pulumi.Input<boolean>;
}

export interface AppMetadata {
  name: string;
  type: string;
}

export interface ImageMetadata {
  imageType: "kube-installer" | "app-installer";
  kubeVersion?: string;
  containerRuntime?: string;
  apps: AppMetadata[];
  launch?: { appNames?: string[]; cmds?: string[]; legacyCmds?: string[] };
  env?: Record<string, string>;
  platforms: string[];
}

/** A container image cached inside a cluster image. */
export interface CachedImage {
  /** Original reference (also when it was pulled through a mirror). */
  image: string;
  /** Digest of the cached manifest. */
  digest?: string;
  /** e.g. `linux/amd64`. */
  platform?: string;
  /** App that needs it, when known. */
  app?: string;
}

export interface Step {
  id: string;
  kind: string;
  hosts: string[];
  reason: string;
}

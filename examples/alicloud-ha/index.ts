/**
 * Alibaba Cloud, HA: 3 masters and N workers. The network (VPC, VSwitch, security group and its
 * rules) is managed by @pulumi/alicloud and fed into Infra by ID; Infra creates the ECS
 * instances in batches; Cluster runs a real base image (examples/real-base, binaries supplied by
 * you) onto them; a @pulumi/command remote.Command checks the result on master0 afterwards.
 *
 *   pulumi config set alicloud:region cn-hangzhou
 *   pulumi config set zone cn-hangzhou-h
 *   pulumi config set imageId ubuntu_22_04_x64_20G_alibase_20240130.vhd
 *   pulumi config set adminCidr 203.0.113.0/24          # who may reach 22 and 6443
 *   pulumi config set --secret rootPassword '...'
 *   pulumi config set workers 3
 *   pulumi up
 *
 * Credentials: ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET for both the
 * alicloud provider and Infra.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as alicloud from "@pulumi/alicloud";
import * as command from "@pulumi/command";
import { Cluster, ClusterImage, Infra } from "../../sdk";

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return dir;
}

const config = new pulumi.Config();
const region = new pulumi.Config("alicloud").require("region");
const zone = config.require("zone");
const adminCidr = config.require("adminCidr");
const rootPassword = config.requireSecret("rootPassword");
const workers = config.getNumber("workers") ?? 3;

// ---- network, owned by the alicloud provider ----
const vpc = new alicloud.vpc.Network("vpc", { vpcName: "sealer-ha", cidrBlock: "172.16.0.0/16" });
const vswitch = new alicloud.vpc.Switch("vswitch", {
  vswitchName: "sealer-ha",
  vpcId: vpc.id,
  cidrBlock: "172.16.0.0/20",
  zoneId: zone,
});
const sg = new alicloud.ecs.SecurityGroup("sg", { securityGroupName: "sealer-ha", vpcId: vpc.id });
const rules = [
  ["ssh", "22/22", adminCidr],
  ["apiserver", "6443/6443", adminCidr],
  // Cluster-internal traffic (etcd, kubelet, registry, VIP) within the VPC.
  ["internal", "1/65535", "172.16.0.0/16"],
].map(
  ([name, portRange, cidrIp]) =>
    new alicloud.ecs.SecurityGroupRule(name!, {
      type: "ingress",
      ipProtocol: "tcp",
      nicType: "intranet",
      policy: "accept",
      portRange,
      cidrIp,
      securityGroupId: sg.id,
    }),
);

// ---- hosts ----
const hosts = new Infra(
  "hosts",
  {
    provider: "alicloud",
    name: "sealer-ha",
    masters: { count: 3, instanceType: config.get("masterType") ?? "ecs.g7.xlarge", systemDiskGiB: 60 },
    nodes: { count: workers, cpu: 4, memoryGiB: 16, systemDiskGiB: 60 },
    alicloud: {
      region,
      zone,
      vpcId: vpc.id,
      vswitchId: vswitch.id,
      securityGroupId: sg.id,
      imageId: config.require("imageId"),
      eip: true,
    },
    ssh: { password: rootPassword },
    tags: { owner: "platform-team" },
  },
  { dependsOn: rules },
);

// ---- image and cluster ----
const image = new ClusterImage("k8s", {
  context: path.join(repoRoot(), "examples/real-base"),
  tag: config.get("imageTag") ?? "my-k8s:v1.28.2",
  buildArgs: { KubeVersion: "v1.28.2" },
});

const cluster = new Cluster("ha", {
  name: "sealer-ha",
  image,
  infra: hosts,
  // Registry on every master (HA), workers reach the masters through the IPVS VIP.
  clusterfile: {
    apiVersion: "sealer.io/v2",
    kind: "Cluster",
    metadata: { name: "sealer-ha" },
    spec: { registry: { localRegistry: { domain: "sea.hub", port: 5000, ha: true } } },
  },
});

// ---- smoke check on master0 after every cluster change ----
const master0 = hosts.masterHosts.apply((m) => m[0]!);
const smoke = new command.remote.Command(
  "smoke",
  {
    connection: {
      host: master0.apply((m) => m.publicIp ?? m.privateIp),
      user: "root",
      password: rootPassword,
    },
    create: "kubectl get nodes -o wide && kubectl -n kube-system get pods",
    triggers: [cluster.applied],
  },
  { dependsOn: [cluster] },
);

export const masterIps = hosts.masterIps;
export const workerIps = hosts.workerIps;
export const master0PublicIp = master0.apply((m) => m.publicIp);
export const smokeOutput = smoke.stdout;
export const kubeconfig = cluster.kubeconfig;

import * as yaml from "js-yaml";
import { z } from "zod";
import { UserError } from "../../errors";
import type { AlicloudInfraSpec, GroupSpec } from "./types";

/**
 * The machine request of a v1-style Clusterfile (`sealer.aliyun.com/v1alpha1`, provider
 * ALI_CLOUD), turned into an AlicloudInfraSpec. Only the fields infra needs are read; the rest of
 * the document (image, network CIDRs, certSANS ...) belongs to the cluster layer and is ignored here.
 *
 *   spec.masters / spec.nodes: { count, cpu, memory (GiB), systemDisk (GiB), dataDisks: [GiB], instanceType }
 *   spec.ssh.passwd         -> instance password
 *   spec.alicloud (ours)    : { region, zoneId, imageId, keyPairName, vpcId, vSwitchId, securityGroupId, cidr, sshCidr, eip, rateLimitPerMinute, batchSize, tags }
 *   metadata.annotations    : sealer's sea.aliyun.com/{RegionID,ZoneID,VpcID,VSwitchID,SecurityGroupID,ImageID} are honoured too.
 *
 * The Clusterfile model (provider/core/clusterfile) exposes the same request as `spec.infra`
 * ({ provider, masters, nodes }); `fromMachineRequest` below takes that shape as well.
 */
const group = z
  .object({
    count: z.coerce.number().int().min(0),
    cpu: z.coerce.number().int().min(1).optional(),
    memory: z.coerce.number().positive().optional(),
    systemDisk: z.coerce.number().int().optional(),
    dataDisks: z.array(z.coerce.number().int()).optional(),
    instanceType: z.string().optional(),
  })
  .loose();

const alicloud = z
  .object({
    region: z.string().optional(),
    zoneId: z.string().optional(),
    imageId: z.string().optional(),
    keyPairName: z.string().optional(),
    vpcId: z.string().optional(),
    vSwitchId: z.string().optional(),
    securityGroupId: z.string().optional(),
    cidr: z.string().optional(),
    sshCidr: z.string().optional(),
    eip: z.boolean().optional(),
    rateLimitPerMinute: z.number().positive().optional(),
    batchSize: z.number().int().optional(),
    tags: z.record(z.string(), z.string()).optional(),
  })
  .strict();

const doc = z.object({
  apiVersion: z.string(),
  kind: z.literal("Cluster"),
  metadata: z
    .object({ name: z.string().min(1), annotations: z.record(z.string(), z.string()).optional() })
    .loose(),
  spec: z
    .object({
      provider: z.string().optional(),
      masters: group,
      nodes: group.optional(),
      ssh: z.object({ passwd: z.string().optional() }).loose().optional(),
      alicloud: alicloud.optional(),
    })
    .loose(),
});

export interface MachineRequestLike {
  count: number;
  cpu?: number;
  memory?: number;
  systemDisk?: number;
  dataDisks?: number[];
  instanceType?: string;
}

export function fromMachineRequest(m: MachineRequestLike | undefined): GroupSpec {
  if (!m) return { count: 0 };
  const g: GroupSpec = { count: m.count };
  if (m.instanceType) g.instanceType = m.instanceType;
  if (m.cpu !== undefined) g.cpu = m.cpu;
  if (m.memory !== undefined) g.memoryGiB = m.memory;
  if (m.systemDisk !== undefined) g.systemDiskGiB = m.systemDisk;
  if (m.dataDisks) g.dataDisksGiB = m.dataDisks;
  return g;
}

export interface InfraOverrides {
  region?: string;
  endpoint?: string;
  imageId?: string;
  sshCidr?: string;
  masters?: number;
  nodes?: number;
}

/** Parses the Clusterfile text (first Cluster document) into a spec; every problem reported at once. */
export function infraSpecFromClusterfile(
  text: string,
  file: string,
  over: InfraOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): AlicloudInfraSpec {
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (err) {
    throw new UserError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const cluster = docs.find((d) => (d as { kind?: unknown } | null)?.kind === "Cluster");
  if (!cluster) throw new UserError(`${file}: no document of kind Cluster`);
  const parsed = doc.safeParse(cluster);
  if (!parsed.success)
    throw new UserError(
      `${file}: invalid Cluster for sealer infra:\n${parsed.error.issues.map((i) => ` - ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n")}`,
      {
        problems: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`),
      },
    );
  const d = parsed.data;
  const problems: string[] = [];
  const provider = (d.spec.provider ?? "ALI_CLOUD").toUpperCase();
  if (provider !== "ALI_CLOUD" && provider !== "ALICLOUD")
    problems.push(
      `spec.provider: "${d.spec.provider}" — sealer infra creates Alibaba Cloud machines only (ALI_CLOUD)`,
    );
  const ann = d.metadata.annotations ?? {};
  const a = d.spec.alicloud ?? {};
  const region =
    over.region ??
    a.region ??
    ann["sea.aliyun.com/RegionID"] ??
    env.ALIBABA_CLOUD_REGION_ID ??
    env.ALICLOUD_REGION;
  if (!region) problems.push("region: give --region, spec.alicloud.region or ALIBABA_CLOUD_REGION_ID");
  const imageId = over.imageId ?? a.imageId ?? ann["sea.aliyun.com/ImageID"];
  if (!imageId)
    problems.push("imageId: give --image-id or spec.alicloud.imageId (an ECS image in the region)");
  if (problems.length > 0)
    throw new UserError(`${file}: cannot create infra:\n${problems.map((p) => ` - ${p}`).join("\n")}`, {
      problems,
    });

  const masters = fromMachineRequest(d.spec.masters);
  const nodes = fromMachineRequest(d.spec.nodes);
  if (over.masters !== undefined) masters.count = over.masters;
  if (over.nodes !== undefined) nodes.count = over.nodes;
  const network: NonNullable<AlicloudInfraSpec["network"]> = {};
  const vpcId = a.vpcId ?? ann["sea.aliyun.com/VpcID"];
  const vSwitchId = a.vSwitchId ?? ann["sea.aliyun.com/VSwitchID"];
  const sgId = a.securityGroupId ?? ann["sea.aliyun.com/SecurityGroupID"];
  if (vpcId) network.vpcId = vpcId;
  if (vSwitchId) network.vSwitchId = vSwitchId;
  if (sgId) network.securityGroupId = sgId;
  if (a.cidr) network.cidr = a.cidr;
  const sshCidr = over.sshCidr ?? a.sshCidr;
  if (sshCidr) network.sshCidr = sshCidr;

  const spec: AlicloudInfraSpec = {
    cluster: d.metadata.name,
    region: region ?? "",
    imageId: imageId ?? "",
    masters,
    nodes,
    network,
  };
  const zone = a.zoneId ?? ann["sea.aliyun.com/ZoneID"];
  if (zone) spec.zoneId = zone;
  if (over.endpoint) spec.endpoint = { ecs: over.endpoint, vpc: over.endpoint };
  if (a.keyPairName) spec.keyPairName = a.keyPairName;
  if (d.spec.ssh?.passwd) spec.password = d.spec.ssh.passwd;
  if (a.eip !== undefined) spec.eip = a.eip;
  if (a.rateLimitPerMinute !== undefined) spec.rateLimitPerMinute = a.rateLimitPerMinute;
  if (a.batchSize !== undefined) spec.batchSize = a.batchSize;
  if (a.tags) spec.tags = a.tags;
  return spec;
}

import * as crypto from "node:crypto";
import { log as rootLog, registerSecret, type Logger } from "../../log";
import { poll } from "../../common/retry";
import { UserError } from "../../errors";
import { AlicloudClient, type Params } from "./client";
import { resolveCredentials } from "./credentials";
import { AlicloudApiError, isNotFound } from "./errors";
import {
  API_BATCH_MAX,
  chunked,
  chunks,
  clientToken,
  deficit,
  ownedByDeployment,
  rankInstanceTypes,
  surplus,
  TAG_CLUSTER,
  TAG_DEPLOYMENT,
  TAG_ROLE,
  validateSpec,
  vSwitchCidr,
} from "./plan";
import { waitForTcp } from "./ssh-wait";
import type {
  AlicloudInfraSpec,
  ApplyOptions,
  DestroyOptions,
  GroupSpec,
  InfraState,
  InstanceRecord,
  Role,
} from "./types";

/**
 * A failed apply or destroy. `state` is what exists at the moment of failure (also the last value
 * given to onState): every resource in it is ours and tagged, so a later destroy removes it and a
 * later apply continues from it. Nothing is left that the state does not name.
 */
export class InfraApplyError extends Error {
  override readonly name = "InfraApplyError";
  constructor(
    message: string,
    readonly state: InfraState,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/** Errors from RunInstances after which the next instance-type candidate is tried. */
const TYPE_FALLBACK_CODES = [
  "OperationDenied.NoStock",
  "Zone.NotOnSale",
  "InvalidInstanceType.NotSupported",
  "InvalidInstanceType.ValueNotSupported",
  "InvalidInstanceType.ZoneNotSupported",
  "InvalidResourceType.NotSupported",
  "ResourceNotAvailable",
];

interface Ctx {
  spec: AlicloudInfraSpec;
  client: AlicloudClient;
  state: InfraState;
  log: Logger;
  save: () => Promise<void>;
}

function emptyState(): InfraState {
  return { created: { vpc: false, vSwitch: false, securityGroup: false }, instances: [] };
}

/** 16 random hex digits: unique per deployment, short enough for tags and token inputs. */
function newDeploymentId(): string {
  return crypto.randomBytes(8).toString("hex");
}

/** The deployment's ID; every call that creates something needs it. */
function deploymentOf(state: InfraState): string {
  if (!state.deploymentId) throw new Error("infra state has no deployment ID");
  return state.deploymentId;
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function makeClient(spec: AlicloudInfraSpec, log: Logger): AlicloudClient {
  const t = spec.tuning ?? {};
  return new AlicloudClient({
    region: spec.region,
    credentials: resolveCredentials(spec.credentials),
    endpoint: spec.endpoint,
    rateLimitPerMinute: spec.rateLimitPerMinute,
    retries: t.retries,
    minBackoffMs: t.minBackoffMs,
    maxBackoffMs: t.maxBackoffMs,
    requestTimeoutMs: t.requestTimeoutMs,
    signatureVersion: t.signatureVersion,
    log,
  });
}

/**
 * Creates the network (unless given), then instances per role to the wanted counts in batches,
 * waits until they are Running with private IPs, adds the EIP to master0 when asked, and waits
 * for SSH when asked. Also scales: surplus instances are removed newest first, never master0.
 * Re-running with the returned state skips what is done.
 */
export async function applyInfra(
  spec: AlicloudInfraSpec,
  prev: InfraState | undefined,
  opts: ApplyOptions = {},
): Promise<InfraState> {
  validateSpec(spec);
  registerSecret(spec.password);
  const log = opts.log ?? rootLog;
  const client = makeClient(spec, log);
  const state = prev ? clone(prev) : emptyState();
  const ctx: Ctx = { spec, client, state, log, save: async () => opts.onState?.(clone(state)) };
  const fresh = !prev || (prev.instances.length === 0 && !prev.vpcId);
  try {
    if (!state.deploymentId) {
      // Saved before the first call that creates anything, so a run that dies after it retries
      // with the same ID (same tokens, its instances recognised as its own).
      state.deploymentId = newDeploymentId();
      await ctx.save();
    }
    await ensureNetwork(ctx);
    await adoptTagged(ctx);
    await waitPending(ctx);
    await scaleIn(ctx);
    await createMissing(ctx);
    await ensureEip(ctx);
    if (opts.waitForSsh) {
      const port = opts.sshPort ?? 22;
      const t = spec.tuning?.sshTimeoutMs ?? 5 * 60_000;
      await Promise.all(
        state.instances.map((i) => {
          const host = opts.sshAddress === "public" && i.publicIp ? i.publicIp : i.privateIp;
          return waitForTcp(host, port, { timeoutMs: t, log: log.forHost(host) });
        }),
      );
    }
    log.info(
      `infra ${spec.cluster}: ${state.instances.filter((i) => i.role === "master").length} masters, ${state.instances.filter((i) => i.role === "node").length} nodes ready (${client.totalAttempts()} API calls)`,
    );
    return clone(state);
  } catch (err) {
    const what = err instanceof Error ? err.message : String(err);
    if (opts.rollbackOnFailure && fresh) {
      log.warn(`infra ${spec.cluster}: create failed (${what}); deleting what this run created`);
      try {
        await destroyWith(ctx);
      } catch (cleanupErr) {
        throw new InfraApplyError(
          `creating infra for ${spec.cluster}: ${what}; cleanup also failed: ${(cleanupErr as Error).message}`,
          clone(state),
          err,
        );
      }
    }
    throw new InfraApplyError(`creating infra for ${spec.cluster}: ${what}`, clone(state), err);
  } finally {
    client.close();
  }
}

/**
 * What of `state` still exists (`pulumi refresh`): the recorded instances DescribeInstances no
 * longer lists are dropped. Nothing is created, changed or deleted; the next apply makes up the
 * counts again.
 */
export async function refreshInfra(
  spec: AlicloudInfraSpec,
  state: InfraState,
  opts: { log?: typeof rootLog } = {},
): Promise<InfraState> {
  const log = opts.log ?? rootLog;
  const client = makeClient(spec, log);
  const st = clone(state);
  const ctx: Ctx = { spec, client, state: st, log, save: async () => undefined };
  try {
    const found = await describeByIds(
      ctx,
      st.instances.map((i) => i.id),
    );
    const gone = st.instances.filter((i) => !found.has(i.id));
    for (const i of gone)
      log.warn(`infra ${spec.cluster}: instance ${i.id} (${i.privateIp}) no longer exists`);
    st.instances = st.instances.filter((i) => found.has(i.id));
    return st;
  } finally {
    client.close();
  }
}

/** Deletes in reverse order: EIP, instances, security group, VSwitch, VPC — each only if we created it. */
export async function destroyInfra(
  spec: AlicloudInfraSpec,
  state: InfraState,
  opts: DestroyOptions = {},
): Promise<void> {
  const log = opts.log ?? rootLog;
  const client = makeClient(spec, log);
  const st = clone(state);
  const ctx: Ctx = { spec, client, state: st, log, save: async () => opts.onState?.(clone(st)) };
  try {
    await destroyWith(ctx);
  } catch (err) {
    throw new InfraApplyError(
      `deleting infra of ${spec.cluster}: ${err instanceof Error ? err.message : String(err)}`,
      clone(st),
      err,
    );
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Network

function tagParams(ctx: Ctx, extra: Record<string, string> = {}, prefix = "Tag"): Params {
  const tags: Record<string, string> = {
    ...(ctx.spec.tags ?? {}),
    [TAG_CLUSTER]: ctx.spec.cluster,
    [TAG_DEPLOYMENT]: deploymentOf(ctx.state),
    ...extra,
  };
  const out: Params = {};
  Object.keys(tags)
    .sort()
    .forEach((k, i) => {
      out[`${prefix}.${i + 1}.Key`] = k;
      out[`${prefix}.${i + 1}.Value`] = tags[k];
    });
  return out;
}

/** Polls `probe` until it returns a value: waits pollMin, then ×1.5 each time up to pollMax. */
function pollUntil<T>(ctx: Ctx, what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const t = ctx.spec.tuning ?? {};
  return poll(probe, what, {
    factor: 1.5,
    minMs: t.pollMinMs ?? 1000,
    maxMs: t.pollMaxMs ?? 5000,
    maxTotalMs: t.pollTimeoutMs ?? 10 * 60_000,
  });
}

async function ensureNetwork(ctx: Ctx): Promise<void> {
  const { spec, client, state } = ctx;
  const net = spec.network ?? {};
  const region = spec.region;
  const cidr = net.cidr ?? "172.16.0.0/16";

  if (net.vpcId) state.vpcId = net.vpcId;
  if (!state.vpcId) {
    const r = await client.call<{ VpcId: string }>("vpc", "CreateVpc", {
      RegionId: region,
      CidrBlock: cidr,
      VpcName: `${spec.cluster}-vpc`,
      Description: `sealer cluster ${spec.cluster}`,
      ClientToken: clientToken(deploymentOf(state), "vpc", 0, 0),
      ...tagParams(ctx),
    });
    state.vpcId = r.VpcId;
    state.created.vpc = true;
    await ctx.save();
    ctx.log.info(`created VPC ${r.VpcId} (${cidr})`);
  }
  const vpcId = state.vpcId;
  if (state.created.vpc) {
    await pollUntil(ctx, `VPC ${vpcId} to become Available`, async () => {
      const r = await client.call<{ Vpcs?: { Vpc?: Array<{ VpcId: string; Status: string }> } }>(
        "vpc",
        "DescribeVpcs",
        { RegionId: region, VpcId: vpcId },
      );
      return r.Vpcs?.Vpc?.find((v) => v.VpcId === vpcId && v.Status === "Available");
    });
  }

  if (net.vSwitchId) state.vSwitchId = net.vSwitchId;
  if (state.vSwitchId && !state.zoneId) {
    const id = state.vSwitchId;
    const r = await client.call<{ VSwitches?: { VSwitch?: Array<{ VSwitchId: string; ZoneId: string }> } }>(
      "vpc",
      "DescribeVSwitches",
      { RegionId: region, VSwitchId: id },
    );
    const vs = r.VSwitches?.VSwitch?.find((v) => v.VSwitchId === id);
    if (!vs) throw new UserError(`network.vSwitchId ${id}: not found in region ${region}`);
    if (spec.zoneId && spec.zoneId !== vs.ZoneId)
      throw new UserError(
        `zoneId ${spec.zoneId} differs from the zone of VSwitch ${id} (${vs.ZoneId}); drop zoneId or pick a VSwitch in that zone`,
      );
    state.zoneId = vs.ZoneId;
  }
  if (!state.zoneId) state.zoneId = spec.zoneId ?? (await chooseZone(ctx));
  if (!state.vSwitchId) {
    const vsCidr = vSwitchCidr(cidr);
    const r = await client.call<{ VSwitchId: string }>("vpc", "CreateVSwitch", {
      RegionId: region,
      ZoneId: state.zoneId,
      VpcId: vpcId,
      CidrBlock: vsCidr,
      VSwitchName: `${spec.cluster}-vsw`,
      ClientToken: clientToken(deploymentOf(state), "vswitch", 0, 0),
      ...tagParams(ctx),
    });
    state.vSwitchId = r.VSwitchId;
    state.created.vSwitch = true;
    await ctx.save();
    ctx.log.info(`created VSwitch ${r.VSwitchId} (${vsCidr}, ${state.zoneId})`);
  }
  const vsw = state.vSwitchId;
  if (state.created.vSwitch) {
    await pollUntil(ctx, `VSwitch ${vsw} to become Available`, async () => {
      const r = await client.call<{ VSwitches?: { VSwitch?: Array<{ VSwitchId: string; Status: string }> } }>(
        "vpc",
        "DescribeVSwitches",
        { RegionId: region, VSwitchId: vsw },
      );
      return r.VSwitches?.VSwitch?.find((v) => v.VSwitchId === vsw && v.Status === "Available");
    });
  }

  if (net.securityGroupId) state.securityGroupId = net.securityGroupId;
  if (!state.securityGroupId) {
    const r = await client.call<{ SecurityGroupId: string }>("ecs", "CreateSecurityGroup", {
      RegionId: region,
      VpcId: vpcId,
      SecurityGroupName: `${spec.cluster}-sg`,
      Description: `sealer cluster ${spec.cluster}: ssh and kube-apiserver`,
      ClientToken: clientToken(deploymentOf(state), "sg", 0, 0),
      ...tagParams(ctx),
    });
    state.securityGroupId = r.SecurityGroupId;
    state.created.securityGroup = true;
    await ctx.save();
    ctx.log.info(`created security group ${r.SecurityGroupId}`);
  }
  if (state.created.securityGroup && !state.sgRules) {
    const src = net.sshCidr ?? "";
    if (src === "0.0.0.0/0")
      ctx.log.warn(
        `security group ${state.securityGroupId}: ports 22 and 6443 open to the whole internet (network.sshCidr 0.0.0.0/0)`,
      );
    await client.call("ecs", "AuthorizeSecurityGroup", {
      RegionId: region,
      SecurityGroupId: state.securityGroupId,
      "Permissions.1.IpProtocol": "TCP",
      "Permissions.1.PortRange": "22/22",
      "Permissions.1.SourceCidrIp": src,
      "Permissions.1.Policy": "accept",
      "Permissions.1.Description": "ssh",
      "Permissions.2.IpProtocol": "TCP",
      "Permissions.2.PortRange": "6443/6443",
      "Permissions.2.SourceCidrIp": src,
      "Permissions.2.Policy": "accept",
      "Permissions.2.Description": "kube-apiserver",
      ClientToken: clientToken(deploymentOf(state), "sg-rules", 0, 0),
    });
    state.sgRules = true;
    await ctx.save();
  }
}

async function chooseZone(ctx: Ctx): Promise<string> {
  const r = await ctx.client.call<{
    Zones?: {
      Zone?: Array<{
        ZoneId: string;
        AvailableResourceCreation?: { ResourceTypes?: string[] };
        AvailableInstanceTypes?: { InstanceTypes?: string[] };
      }>;
    };
  }>("ecs", "DescribeZones", {
    RegionId: ctx.spec.region,
    InstanceChargeType: "PostPaid",
  });
  const want = [ctx.spec.masters.instanceType, ctx.spec.nodes.instanceType].filter((x): x is string => !!x);
  const zones = (r.Zones?.Zone ?? [])
    .filter((z) => {
      const res = z.AvailableResourceCreation?.ResourceTypes;
      if (res && !(res.includes("Instance") && res.includes("VSwitch"))) return false;
      const types = z.AvailableInstanceTypes?.InstanceTypes;
      return !types || want.every((t) => types.includes(t));
    })
    .map((z) => z.ZoneId)
    .sort();
  const zone = zones[0];
  if (!zone)
    throw new UserError(
      `region ${ctx.spec.region}: no zone offers ${want.join(", ") || "instances and VSwitches"}; set zoneId or choose other instance types`,
    );
  ctx.log.info(`using zone ${zone}`);
  return zone;
}

// ---------------------------------------------------------------------------------------------
// Instances

interface ApiInstance {
  InstanceId: string;
  Status: string;
  CreationTime?: string;
  InstanceType?: string;
  VpcAttributes?: { PrivateIpAddress?: { IpAddress?: string[] }; VpcId?: string; VSwitchId?: string };
  PublicIpAddress?: { IpAddress?: string[] };
  EipAddress?: { IpAddress?: string; AllocationId?: string };
  Tags?: { Tag?: Array<{ TagKey: string; TagValue: string }> };
}

interface DescribeInstancesResult {
  Instances?: { Instance?: ApiInstance[] };
  TotalCount?: number;
  NextToken?: string;
}

/** DescribeInstances for up to 100 IDs per call. */
async function describeByIds(ctx: Ctx, ids: string[]): Promise<Map<string, ApiInstance>> {
  const out = new Map<string, ApiInstance>();
  for (const group of chunked(ids, API_BATCH_MAX)) {
    const r = await ctx.client.call<DescribeInstancesResult>("ecs", "DescribeInstances", {
      RegionId: ctx.spec.region,
      InstanceIds: JSON.stringify(group),
      PageSize: API_BATCH_MAX,
    });
    for (const i of r.Instances?.Instance ?? []) out.set(i.InstanceId, i);
  }
  return out;
}

/**
 * Every instance of this deployment that exists (NextToken paging): asked for by cluster tag,
 * deployment tag and network, and each answer checked again by ownedByDeployment, so another
 * deployment under the same cluster name is never taken for ours.
 */
async function describeOwned(ctx: Ctx): Promise<ApiInstance[]> {
  const { state } = ctx;
  if (!state.deploymentId || !state.vpcId || !state.vSwitchId) return [];
  const out: ApiInstance[] = [];
  let token: string | undefined;
  do {
    const r = await ctx.client.call<DescribeInstancesResult>("ecs", "DescribeInstances", {
      RegionId: ctx.spec.region,
      VpcId: state.vpcId,
      VSwitchId: state.vSwitchId,
      "Tag.1.Key": TAG_CLUSTER,
      "Tag.1.Value": ctx.spec.cluster,
      "Tag.2.Key": TAG_DEPLOYMENT,
      "Tag.2.Value": state.deploymentId,
      MaxResults: API_BATCH_MAX,
      NextToken: token,
    });
    out.push(
      ...(r.Instances?.Instance ?? []).filter((i) =>
        ownedByDeployment(state, ctx.spec.cluster, {
          vpcId: i.VpcAttributes?.VpcId,
          vSwitchId: i.VpcAttributes?.VSwitchId,
          tags: Object.fromEntries((i.Tags?.Tag ?? []).map((t) => [t.TagKey, t.TagValue])),
        }),
      ),
    );
    token = r.NextToken || undefined;
  } while (token);
  return out;
}

function roleOf(i: ApiInstance): Role | undefined {
  const v = i.Tags?.Tag?.find((t) => t.TagKey === TAG_ROLE)?.TagValue;
  return v === "master" || v === "node" ? v : undefined;
}

/**
 * Instances of this deployment that are not in the state were created by a run that died before
 * it could save: take them over (as pending) instead of creating more and leaking them.
 */
async function adoptTagged(ctx: Ctx): Promise<void> {
  const known = new Set([
    ...ctx.state.instances.map((i) => i.id),
    ...(ctx.state.pending ?? []).map((p) => p.id),
  ]);
  const found = (await describeOwned(ctx)).filter(
    (i) => !known.has(i.InstanceId) && i.Status !== "Stopping" && i.Status !== "Deleted",
  );
  if (found.length === 0) return;
  found.sort((a, b) =>
    (a.CreationTime ?? "") + a.InstanceId < (b.CreationTime ?? "") + b.InstanceId ? -1 : 1,
  );
  for (const i of found) {
    const role = roleOf(i);
    if (!role) continue;
    ctx.log.warn(
      `instance ${i.InstanceId} (${role}) is tagged for cluster ${ctx.spec.cluster}, deployment ${ctx.state.deploymentId} but missing from the state: adopting it`,
    );
    (ctx.state.pending ??= []).push({
      id: i.InstanceId,
      role,
      clientToken: "adopted",
      instanceType: i.InstanceType,
    });
  }
  await ctx.save();
}

/** Polls DescribeInstances (≤100 IDs per call, back-off with jitter) until every pending instance is Running with a private IP. */
async function waitPending(ctx: Ctx): Promise<void> {
  const pending = ctx.state.pending ?? [];
  if (pending.length === 0) return;
  const ready = new Map<string, ApiInstance>();
  await pollUntil(ctx, `${pending.length} instances to be Running`, async () => {
    const left = pending.filter((p) => !ready.has(p.id)).map((p) => p.id);
    const got = await describeByIds(ctx, left);
    for (const id of left) {
      const i = got.get(id);
      if (i && i.Status === "Running" && i.VpcAttributes?.PrivateIpAddress?.IpAddress?.[0]) ready.set(id, i);
    }
    return ready.size === pending.length ? true : undefined;
  });
  for (const p of pending) {
    const i = ready.get(p.id);
    if (!i) continue;
    const rec: InstanceRecord = {
      id: p.id,
      role: p.role,
      privateIp: i.VpcAttributes?.PrivateIpAddress?.IpAddress?.[0] ?? "",
      createdAt: i.CreationTime ?? new Date().toISOString(),
      clientToken: p.clientToken,
    };
    const pub = i.EipAddress?.IpAddress || i.PublicIpAddress?.IpAddress?.[0];
    if (pub) rec.publicIp = pub;
    if (p.instanceType ?? i.InstanceType) rec.instanceType = p.instanceType ?? i.InstanceType;
    ctx.state.instances.push(rec);
  }
  // Keep master0 first and each role in creation order (the order RunInstances returned them).
  ctx.state.instances = [
    ...ctx.state.instances.filter((i) => i.role === "master"),
    ...ctx.state.instances.filter((i) => i.role === "node"),
  ];
  delete ctx.state.pending;
  await ctx.save();
}

async function candidateTypes(ctx: Ctx, role: Role, g: GroupSpec): Promise<string[]> {
  if (g.instanceType) return [g.instanceType];
  const cpu = g.cpu ?? 2;
  const mem = g.memoryGiB ?? 4;
  type AR = {
    AvailableZones?: {
      AvailableZone?: Array<{
        ZoneId: string;
        AvailableResources?: {
          AvailableResource?: Array<{
            Type: string;
            SupportedResources?: {
              SupportedResource?: Array<{ Value: string; Status: string; StatusCategory?: string }>;
            };
          }>;
        };
      }>;
    };
  };
  const inStock = (r: AR): string[] =>
    (r.AvailableZones?.AvailableZone ?? [])
      .filter((z) => z.ZoneId === ctx.state.zoneId)
      .flatMap((z) => z.AvailableResources?.AvailableResource ?? [])
      .filter((a) => a.Type === "InstanceType")
      .flatMap((a) => a.SupportedResources?.SupportedResource ?? [])
      .filter((s) => s.Status === "Available" && s.StatusCategory !== "WithoutStock")
      .map((s) => s.Value);
  const base = {
    RegionId: ctx.spec.region,
    ZoneId: ctx.state.zoneId,
    DestinationResource: "InstanceType",
    InstanceChargeType: "PostPaid",
    IoOptimized: "optimized",
  };
  const exact = [
    ...new Set(
      inStock(
        await ctx.client.call<AR>("ecs", "DescribeAvailableResource", { ...base, Cores: cpu, Memory: mem }),
      ),
    ),
  ].sort();
  if (exact.length > 0) return exact.slice(0, 5);
  // Nothing with exactly that shape in stock: the smallest larger types that are.
  const available = new Set(inStock(await ctx.client.call<AR>("ecs", "DescribeAvailableResource", base)));
  const types: Array<{ id: string; cpu: number; memoryGiB: number }> = [];
  let token: string | undefined;
  do {
    const r = await ctx.client.call<{
      InstanceTypes?: {
        InstanceType?: Array<{ InstanceTypeId: string; CpuCoreCount: number; MemorySize: number }>;
      };
      NextToken?: string;
    }>("ecs", "DescribeInstanceTypes", {
      MinimumCpuCoreCount: cpu,
      MinimumMemorySize: mem,
      MaxResults: 100,
      NextToken: token,
    });
    for (const t of r.InstanceTypes?.InstanceType ?? [])
      types.push({ id: t.InstanceTypeId, cpu: t.CpuCoreCount, memoryGiB: t.MemorySize });
    token = r.NextToken || undefined;
  } while (token);
  const ranked = rankInstanceTypes(types, { cpu, memoryGiB: mem }).filter((t) => available.has(t));
  if (ranked.length === 0)
    throw new UserError(
      `${role}s: no instance type with ≥ ${cpu} vCPU and ≥ ${mem} GiB is in stock in ${ctx.state.zoneId}; set instanceType or another zone`,
    );
  return ranked.slice(0, 5);
}

async function createMissing(ctx: Ctx): Promise<void> {
  const { spec, state } = ctx;
  const need = deficit(state, { master: spec.masters.count, node: spec.nodes.count });
  const batchSize = spec.batchSize ?? API_BATCH_MAX;
  for (const role of ["master", "node"] as const) {
    if (need[role] === 0) continue;
    const g = role === "master" ? spec.masters : spec.nodes;
    const types = await candidateTypes(ctx, role, g);
    for (const [batch, amount] of chunks(need[role], batchSize).entries())
      await runBatch(ctx, role, g, types, batch, amount);
  }
  await waitPending(ctx);
}

async function runBatch(
  ctx: Ctx,
  role: Role,
  g: GroupSpec,
  types: string[],
  batch: number,
  amount: number,
): Promise<void> {
  const { spec, state } = ctx;
  let lastErr: unknown;
  for (const type of types) {
    const generation = state.generation ?? 0;
    const token = clientToken(deploymentOf(state), `${role}:${type}`, batch, generation);
    const params: Params = {
      RegionId: spec.region,
      ZoneId: state.zoneId,
      ImageId: spec.imageId,
      InstanceType: type,
      SecurityGroupId: state.securityGroupId,
      VSwitchId: state.vSwitchId,
      InstanceName: `${spec.cluster}-${role}-`,
      HostName: `${spec.cluster}-${role}-`,
      UniqueSuffix: true,
      InstanceChargeType: "PostPaid",
      InternetMaxBandwidthOut: 0,
      Password: spec.password,
      KeyPairName: spec.keyPairName,
      "SystemDisk.Category": "cloud_essd",
      "SystemDisk.Size": g.systemDiskGiB,
      Amount: amount,
      MinAmount: amount,
      ClientToken: token,
      ...tagParams(ctx, { [TAG_ROLE]: role }),
    };
    for (const [i, size] of (g.dataDisksGiB ?? []).entries()) {
      params[`DataDisk.${i + 1}.Size`] = size;
      params[`DataDisk.${i + 1}.Category`] = "cloud_essd";
      params[`DataDisk.${i + 1}.DeleteWithInstance`] = true;
    }
    try {
      const r = await ctx.client.call<{ InstanceIdSets?: { InstanceIdSet?: string[] } }>(
        "ecs",
        "RunInstances",
        params,
      );
      const ids = r.InstanceIdSets?.InstanceIdSet ?? [];
      (state.pending ??= []).push(...ids.map((id) => ({ id, role, clientToken: token, instanceType: type })));
      state.generation = generation + 1;
      await ctx.save();
      ctx.log.info(`RunInstances ${role}s: ${ids.length} × ${type} (${ids.join(", ")})`);
      return;
    } catch (err) {
      if (
        err instanceof AlicloudApiError &&
        TYPE_FALLBACK_CODES.some((c) => err.code === c || err.code.startsWith(c + ".")) &&
        types.length > 1
      ) {
        ctx.log.warn(`${type} not available for ${role}s (${err.code}); trying the next candidate`);
        lastErr = err;
        continue;
      }
      throw err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(`no instance type could be created for ${role}s`);
}

/** Deletes instances (≤100 per call, forced) and waits until DescribeInstances no longer lists them. */
async function deleteInstances(ctx: Ctx, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  for (const group of chunked(ids, API_BATCH_MAX)) {
    const params: Params = { RegionId: ctx.spec.region, Force: true };
    group.forEach((id, i) => (params[`InstanceId.${i + 1}`] = id));
    try {
      await ctx.client.call("ecs", "DeleteInstances", params);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // One ID of the group is already gone: delete the ones that still exist.
      const still = [...(await describeByIds(ctx, group)).keys()];
      if (still.length > 0) {
        const p2: Params = { RegionId: ctx.spec.region, Force: true };
        still.forEach((id, i) => (p2[`InstanceId.${i + 1}`] = id));
        await ctx.client.call("ecs", "DeleteInstances", p2).catch((e: unknown) => {
          if (!isNotFound(e)) throw e;
        });
      }
    }
  }
  await pollUntil(ctx, `${ids.length} instances to be deleted`, async () =>
    (await describeByIds(ctx, ids)).size === 0 ? true : undefined,
  );
}

async function scaleIn(ctx: Ctx): Promise<void> {
  const victims = surplus(ctx.state, { master: ctx.spec.masters.count, node: ctx.spec.nodes.count });
  if (victims.length === 0) return;
  ctx.log.info(`scaling in: deleting ${victims.map((v) => `${v.id} (${v.role} ${v.privateIp})`).join(", ")}`);
  await deleteInstances(
    ctx,
    victims.map((v) => v.id),
  );
  const gone = new Set(victims.map((v) => v.id));
  ctx.state.instances = ctx.state.instances.filter((i) => !gone.has(i.id));
  await ctx.save();
}

// ---------------------------------------------------------------------------------------------
// EIP

async function ensureEip(ctx: Ctx): Promise<void> {
  const { spec, state, client } = ctx;
  const master0 = state.instances.find((i) => i.role === "master");
  if (!spec.eip) {
    if (state.eip?.created) await releaseEip(ctx);
    return;
  }
  if (!master0) return;
  if (!state.eip) {
    const r = await client.call<{ AllocationId: string; EipAddress: string }>("vpc", "AllocateEipAddress", {
      RegionId: spec.region,
      Bandwidth: 5,
      InternetChargeType: "PayByTraffic",
      Name: `${spec.cluster}-master0`,
      ClientToken: clientToken(deploymentOf(state), "eip", 0, state.generation ?? 0),
    });
    state.eip = { allocationId: r.AllocationId, ip: r.EipAddress, created: true };
    await ctx.save();
  }
  const eip = state.eip;
  if (eip.instanceId === master0.id) return;
  await client.call("vpc", "AssociateEipAddress", {
    RegionId: spec.region,
    AllocationId: eip.allocationId,
    InstanceId: master0.id,
    InstanceType: "EcsInstance",
    ClientToken: clientToken(deploymentOf(state), `eip-assoc:${master0.id}`, 0, 0),
  });
  await pollUntil(ctx, `EIP ${eip.ip} to be bound to ${master0.id}`, async () =>
    (await eipStatus(ctx, eip.allocationId)) === "InUse" ? true : undefined,
  );
  eip.instanceId = master0.id;
  master0.publicIp = eip.ip;
  await ctx.save();
  ctx.log.info(`EIP ${eip.ip} bound to master0 ${master0.id}`);
}

async function eipStatus(ctx: Ctx, allocationId: string): Promise<string | undefined> {
  const r = await ctx.client.call<{
    EipAddresses?: { EipAddress?: Array<{ AllocationId: string; Status: string }> };
  }>("vpc", "DescribeEipAddresses", { RegionId: ctx.spec.region, AllocationId: allocationId });
  return r.EipAddresses?.EipAddress?.find((e) => e.AllocationId === allocationId)?.Status;
}

async function releaseEip(ctx: Ctx): Promise<void> {
  const eip = ctx.state.eip;
  if (!eip) return;
  const ignoreNotFound = (e: unknown) => {
    if (!isNotFound(e)) throw e;
  };
  if (eip.instanceId) {
    await ctx.client
      .call("vpc", "UnassociateEipAddress", {
        RegionId: ctx.spec.region,
        AllocationId: eip.allocationId,
        InstanceId: eip.instanceId,
        InstanceType: "EcsInstance",
      })
      .catch(ignoreNotFound);
    await pollUntil(ctx, `EIP ${eip.ip} to be unbound`, async () => {
      const s = await eipStatus(ctx, eip.allocationId);
      return s === undefined || s === "Available" ? true : undefined;
    });
    const m = ctx.state.instances.find((i) => i.id === eip.instanceId);
    if (m && m.publicIp === eip.ip) delete m.publicIp;
    delete eip.instanceId;
    await ctx.save();
  }
  if (eip.created !== false)
    await ctx.client
      .call("vpc", "ReleaseEipAddress", { RegionId: ctx.spec.region, AllocationId: eip.allocationId })
      .catch(ignoreNotFound);
  delete ctx.state.eip;
  await ctx.save();
}

// ---------------------------------------------------------------------------------------------
// Destroy

async function destroyWith(ctx: Ctx): Promise<void> {
  const { state, spec, client } = ctx;
  const ignoreNotFound = (e: unknown) => {
    if (!isNotFound(e)) throw e;
  };
  await releaseEip(ctx);
  // Ours: what the state names, plus this deployment's instances a run that died unsaved left.
  const ids = new Set([...state.instances.map((i) => i.id), ...(state.pending ?? []).map((p) => p.id)]);
  for (const i of await describeOwned(ctx)) ids.add(i.InstanceId);
  if (ids.size > 0) {
    ctx.log.info(`deleting ${ids.size} instances`);
    await deleteInstances(ctx, [...ids]);
  }
  state.instances = [];
  delete state.pending;
  await ctx.save();
  if (state.securityGroupId && state.created.securityGroup) {
    await client
      .call("ecs", "DeleteSecurityGroup", { RegionId: spec.region, SecurityGroupId: state.securityGroupId })
      .catch(ignoreNotFound);
    ctx.log.info(`deleted security group ${state.securityGroupId}`);
  }
  delete state.securityGroupId;
  state.created.securityGroup = false;
  delete state.sgRules;
  await ctx.save();
  if (state.vSwitchId && state.created.vSwitch) {
    await client
      .call("vpc", "DeleteVSwitch", { RegionId: spec.region, VSwitchId: state.vSwitchId })
      .catch(ignoreNotFound);
    ctx.log.info(`deleted VSwitch ${state.vSwitchId}`);
  }
  delete state.vSwitchId;
  state.created.vSwitch = false;
  await ctx.save();
  if (state.vpcId && state.created.vpc) {
    await client
      .call("vpc", "DeleteVpc", { RegionId: spec.region, VpcId: state.vpcId })
      .catch(ignoreNotFound);
    ctx.log.info(`deleted VPC ${state.vpcId}`);
  }
  delete state.vpcId;
  state.created.vpc = false;
  delete state.zoneId;
  await ctx.save();
}

import { throwIfProblems } from "../../errors";
import { sha256Hex } from "../../fsutil";
import type { AlicloudInfraSpec, InfraState, InstanceRecord, Role } from "./types";

/**
 * Pure decisions of the provisioner: what to create, what to remove, which tokens to use.
 * No I/O here, so these are table-tested.
 */

/** Tags on everything we create: the cluster name, the deployment's ID, an instance's role. */
export const TAG_CLUSTER = "sealer-cluster";
export const TAG_DEPLOYMENT = "sealer-deployment";
export const TAG_ROLE = "sealer-role";

/** Max instances per RunInstances / DeleteInstances / DescribeInstances call (API limit). */
export const API_BATCH_MAX = 100;

/**
 * Idempotency token of one mutating call. Deterministic in (deployment, what, batch, generation):
 * a retried or re-run call of the same deployment sends the same token and Alibaba answers with
 * the result of the first call instead of creating again. The deployment ID (random per create,
 * kept in the state) makes a later deployment under the same cluster name send new tokens; with
 * the name alone, a re-create would be answered with the resources of the deleted deployment.
 * ASCII, ≤ 64 characters as the API requires.
 */
export function clientToken(deployment: string, what: string, batch: number, generation: number): string {
  return `sealer-${sha256Hex(`${deployment}\0${what}\0${batch}\0${generation}`).slice(0, 48)}`;
}

/** What an instance as DescribeInstances lists it shows of its ownership. */
export interface InstanceOwnership {
  vpcId?: string;
  vSwitchId?: string;
  tags: Record<string, string>;
}

/**
 * Whether an instance that the state does not list belongs to this deployment: it carries the
 * cluster tag and this deployment's ID tag, and sits in this deployment's VPC and VSwitch. Anything
 * else (another deployment under the same cluster name, one made by hand, one from a version
 * without deployment IDs) is never adopted or deleted.
 */
export function ownedByDeployment(state: InfraState, cluster: string, i: InstanceOwnership): boolean {
  if (!state.deploymentId || !state.vpcId || !state.vSwitchId) return false;
  return (
    i.tags[TAG_CLUSTER] === cluster &&
    i.tags[TAG_DEPLOYMENT] === state.deploymentId &&
    i.vpcId === state.vpcId &&
    i.vSwitchId === state.vSwitchId
  );
}

/** Splits n into chunks of at most size: 250/100 -> [100, 100, 50]. */
export function chunks(n: number, size: number): number[] {
  const out: number[] = [];
  for (let left = n; left > 0; left -= size) out.push(Math.min(size, left));
  return out;
}

export function chunked<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Instances of a role, in state order (the provisioner keeps it oldest first). */
export function byRole(state: InfraState, role: Role): InstanceRecord[] {
  return state.instances.filter((i) => i.role === role);
}

/**
 * Which instances to delete to reach the counts: per role the newest first, never master0
 * (the first master: it holds the cluster's init state and the EIP).
 */
export function surplus(state: InfraState, counts: Record<Role, number>): InstanceRecord[] {
  const out: InstanceRecord[] = [];
  for (const role of ["master", "node"] as const) {
    const have = byRole(state, role);
    const removable = role === "master" ? have.slice(1) : have;
    const n = Math.max(0, have.length - counts[role]);
    out.push(...removable.slice(removable.length - Math.min(n, removable.length)).reverse());
  }
  return out;
}

/** Missing instances per role. */
export function deficit(state: InfraState, counts: Record<Role, number>): Record<Role, number> {
  const pending = (role: Role) => (state.pending ?? []).filter((p) => p.role === role).length;
  return {
    master: Math.max(0, counts.master - byRole(state, "master").length - pending("master")),
    node: Math.max(0, counts.node - byRole(state, "node").length - pending("node")),
  };
}

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

export function isCidr(s: string): boolean {
  const m = CIDR.exec(s);
  return !!m && m.slice(1, 5).every((x) => Number(x) <= 255) && Number(m[5]) <= 32;
}

/** The VSwitch CIDR inside a VPC CIDR we create: the first /20 of it, or the whole block when it is smaller. */
export function vSwitchCidr(vpcCidr: string): string {
  const m = CIDR.exec(vpcCidr);
  if (!m) return vpcCidr;
  const bits = Number(m[5]);
  if (bits >= 20) return vpcCidr;
  return `${m[1]}.${m[2]}.${m[3]}.${m[4]}/20`;
}

/** Checks the spec, collecting every problem; throws one UserError. */
export function validateSpec(spec: AlicloudInfraSpec): void {
  const p: string[] = [];
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(spec.cluster))
    p.push(
      `cluster: "${spec.cluster}" must be lower-case letters, digits and '-' (it names and tags every resource)`,
    );
  if (!spec.region) p.push("region: required (e.g. cn-hangzhou)");
  if (!spec.imageId) p.push("imageId: required (an ECS image ID in this region)");
  for (const role of ["masters", "nodes"] as const) {
    const g = spec[role];
    if (!Number.isInteger(g.count) || g.count < 0)
      p.push(`${role}.count: must be a whole number ≥ 0, got ${g.count}`);
    if (!g.instanceType && g.count > 0 && (g.cpu === undefined || g.memoryGiB === undefined))
      p.push(`${role}: give instanceType, or cpu and memoryGiB so a type can be chosen`);
    if (g.cpu !== undefined && (!Number.isInteger(g.cpu) || g.cpu < 1))
      p.push(`${role}.cpu: must be a whole number ≥ 1`);
    if (g.memoryGiB !== undefined && !(g.memoryGiB > 0)) p.push(`${role}.memoryGiB: must be > 0`);
    if (g.systemDiskGiB !== undefined && (g.systemDiskGiB < 20 || g.systemDiskGiB > 2048))
      p.push(`${role}.systemDiskGiB: must be 20..2048`);
    for (const [i, d] of (g.dataDisksGiB ?? []).entries())
      if (!(d >= 20 && d <= 32768)) p.push(`${role}.dataDisksGiB[${i}]: must be 20..32768`);
    if ((g.dataDisksGiB ?? []).length > 16) p.push(`${role}.dataDisksGiB: at most 16 data disks`);
  }
  if (spec.masters.count < 1) p.push("masters.count: at least one master is needed");
  if (!spec.keyPairName && !spec.password)
    p.push("give keyPairName or password so the instances can be logged into");
  if (spec.password && !isEcsPassword(spec.password))
    p.push(
      "password: 8-30 characters with at least three of: lower case, upper case, digits, special characters (ECS rule)",
    );
  const n = spec.network ?? {};
  if (n.vSwitchId && !n.vpcId) p.push("network.vSwitchId: give network.vpcId with it");
  if (n.securityGroupId && !n.vpcId) p.push("network.securityGroupId: give network.vpcId with it");
  if (n.cidr !== undefined && !isCidr(n.cidr)) p.push(`network.cidr: "${n.cidr}" is not a CIDR block`);
  if (n.sshCidr !== undefined && !isCidr(n.sshCidr))
    p.push(`network.sshCidr: "${n.sshCidr}" is not a CIDR block`);
  if (!n.securityGroupId && n.sshCidr === undefined)
    p.push(
      "network.sshCidr: required when the security group is created — the CIDR allowed to reach ports 22 and 6443 (e.g. 203.0.113.0/24); write 0.0.0.0/0 explicitly to open them to the internet",
    );
  if (
    spec.batchSize !== undefined &&
    !(Number.isInteger(spec.batchSize) && spec.batchSize >= 1 && spec.batchSize <= API_BATCH_MAX)
  )
    p.push(`batchSize: must be 1..${API_BATCH_MAX}`);
  if (spec.rateLimitPerMinute !== undefined && !(spec.rateLimitPerMinute > 0))
    p.push("rateLimitPerMinute: must be > 0");
  throwIfProblems(`Invalid Alibaba Cloud infra for cluster ${spec.cluster}`, p);
}

/** Orders instance-type candidates: fewest vCPUs, then least memory, then name (deterministic). */
export function rankInstanceTypes(
  types: Array<{ id: string; cpu: number; memoryGiB: number }>,
  want: { cpu: number; memoryGiB: number },
): string[] {
  return types
    .filter((t) => t.cpu >= want.cpu && t.memoryGiB >= want.memoryGiB)
    .sort((a, b) => a.cpu - b.cpu || a.memoryGiB - b.memoryGiB || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((t) => t.id);
}

/** ECS instance password rule: 8-30 characters from at least three classes. */
export function isEcsPassword(pw: string): boolean {
  if (pw.length < 8 || pw.length > 30) return false;
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[()`~!@#$%^&*\-_+=|{}[\]:;'<>,.?/]/].filter((r) =>
    r.test(pw),
  ).length;
  return classes >= 3;
}

/**
 * Dynamic provider of Infra: hosts for a cluster.
 * - `alicloud`: applyInfra/destroyInfra (core/infra/alicloud). Every mutating step reports the
 *   state through onState; when a create/update fails, what exists goes back to the engine as
 *   partial state, so the next `pulumi up` adopts it and `pulumi destroy` removes it.
 * - `local`: network-namespace nodes on this machine (core/infra/local), root required.
 */
import * as fs from "node:fs";
import type { AlicloudInfraSpec, GroupSpec, InfraState } from "../core/infra/alicloud/types";
import type { CreateLocalNodesOptions } from "../core/infra/local/types";
import {
  type CheckFailure,
  PartialStateError,
  changedKeys,
  compact,
  containsUnknown,
  errorMessage,
  isUnknown,
  reveal,
  secret,
} from "./common";
import { given, inputTypeFailures, SSH_INPUT_TYPES, type InputTypes } from "./input-types";

export interface InfraInputs {
  provider: "local" | "alicloud";
  name: string;
  masters: GroupSpec;
  nodes?: GroupSpec;
  local?: { subnet?: string; sudoUser?: string };
  alicloud?: {
    region: string;
    zone?: string;
    vpcId?: string;
    vswitchId?: string;
    securityGroupId?: string;
    cidr?: string;
    sshCidr?: string;
    eip?: boolean;
    imageId: string;
    keyPairName?: string;
    accessKeyId?: string;
    accessKeySecret?: string;
    ecsEndpoint?: string;
    vpcEndpoint?: string;
    batchSize?: number;
    rateLimitPerMinute?: number;
    waitForSsh?: boolean;
  };
  ssh?: { user?: string; password?: string; privateKey?: string; passphrase?: string; port?: number };
  tags?: Record<string, string>;
  providerVersion?: string;
}

export interface HostOut {
  id: string;
  privateIp: string;
  publicIp?: string;
  role: "master" | "node";
  /** Changes when the host is made anew (a Cluster then reinstalls it). */
  identity?: string;
}

/** Provider state kept in the `state` output; what delete and scale work from. */
export type InfraStateOut =
  | { kind: "alicloud"; alicloud: InfraState }
  | { kind: "local"; prefix: string; nodes: Array<{ name: string; ip: string; keyPath: string }> };

type LocalModule = typeof import("../core/infra/local");
type AlicloudModule = typeof import("../core/infra/alicloud");

// ---- pure ----

const INPUT_TYPES: InputTypes = {
  name: ["string", "lower-case letters, digits and dashes"],
  masters: ["mapping", "{ count: 1 }"],
  nodes: ["mapping", "{ count: 2 }"],
  local: ["mapping", "{ subnet }"],
  "local.subnet": ["string", "e.g. 10.1.2.0/24"],
  "local.sudoUser": ["string", "a user name"],
  alicloud: ["mapping", "{ region, imageId }"],
  ...SSH_INPUT_TYPES,
  tags: ["stringMap", '{ team: "web" }'],
};

/** Inputs whose values a failure never repeats. */
const SECRETS = new Set(["ssh", "alicloud"]);

export function validateInputs(i: InfraInputs): CheckFailure[] {
  const f = inputTypeFailures(i as unknown as Record<string, unknown>, INPUT_TYPES, SECRETS);
  if (f.length > 0) return f;
  const count = (v: unknown): boolean =>
    isUnknown(v) || (typeof v === "number" && Number.isInteger(v) && v >= 0);
  if (i.provider === undefined)
    f.push({ property: "provider", reason: 'provider is required: "local" or "alicloud"' });
  else if (!isUnknown(i.provider) && i.provider !== "local" && i.provider !== "alicloud")
    f.push({
      property: "provider",
      reason: `provider must be "local" or "alicloud", not ${given(i.provider, true)}`,
    });
  if (!i.masters || isUnknown(i.masters)) {
    if (!isUnknown(i.masters))
      f.push({ property: "masters", reason: "masters is required: { count: 1 } or more" });
  } else if (!count(i.masters.count) || i.masters.count === 0)
    f.push({ property: "masters.count", reason: "masters.count must be a whole number ≥ 1" });
  if (i.nodes && !isUnknown(i.nodes) && !count(i.nodes.count))
    f.push({ property: "nodes.count", reason: "nodes.count must be a whole number ≥ 0" });
  if (typeof i.name === "string" && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(i.name))
    f.push({
      property: "name",
      reason: `name ${JSON.stringify(i.name)} must be lower-case letters, digits and dashes`,
    });
  if (i.provider === "local") {
    if (typeof i.name === "string" && i.name.length > 12)
      f.push({
        property: "name",
        reason: `local node prefix ${i.name} is longer than 12 characters; set a shorter name`,
      });
    if (i.alicloud) f.push({ property: "alicloud", reason: "alicloud settings given but provider is local" });
  }
  if (i.provider === "alicloud") {
    if (!i.alicloud)
      f.push({ property: "alicloud", reason: "provider alicloud needs alicloud: { region, imageId, ... }" });
    else if (!isUnknown(i.alicloud)) {
      if (!i.alicloud.region)
        f.push({ property: "alicloud.region", reason: "alicloud.region is required, e.g. cn-hangzhou" });
      if (!i.alicloud.imageId)
        f.push({ property: "alicloud.imageId", reason: "alicloud.imageId is required (an OS image ID)" });
      if (!i.alicloud.securityGroupId && !i.alicloud.sshCidr && !isUnknown(i.alicloud.securityGroupId))
        f.push({
          property: "alicloud.sshCidr",
          reason: "give alicloud.sshCidr (who may reach 22 and 6443) or an existing alicloud.securityGroupId",
        });
    }
    if (i.local) f.push({ property: "local", reason: "local settings given but provider is alicloud" });
  }
  return f;
}

export function normaliseInputs(i: InfraInputs): InfraInputs {
  return compact({
    ...i,
    nodes: i.nodes ?? { count: 0 },
    tags: i.tags && Object.keys(i.tags).length > 0 ? i.tags : undefined,
  }) as InfraInputs;
}

export function alicloudSpec(i: InfraInputs): AlicloudInfraSpec {
  const a = i.alicloud!;
  const group = (g: GroupSpec | undefined) =>
    compact({
      count: g?.count ?? 0,
      instanceType: g?.instanceType,
      cpu: g?.cpu,
      memoryGiB: g?.memoryGiB,
      systemDiskGiB: g?.systemDiskGiB,
      dataDisksGiB: g?.dataDisksGiB,
    });
  return compact({
    cluster: i.name,
    region: a.region,
    zoneId: a.zone,
    endpoint:
      a.ecsEndpoint || a.vpcEndpoint ? compact({ ecs: a.ecsEndpoint, vpc: a.vpcEndpoint }) : undefined,
    credentials:
      a.accessKeyId && a.accessKeySecret
        ? { accessKeyId: a.accessKeyId, accessKeySecret: a.accessKeySecret }
        : undefined,
    network: compact({
      vpcId: a.vpcId,
      vSwitchId: a.vswitchId,
      securityGroupId: a.securityGroupId,
      cidr: a.cidr,
      sshCidr: a.sshCidr,
    }),
    masters: group(i.masters),
    nodes: group(i.nodes),
    imageId: a.imageId,
    keyPairName: a.keyPairName,
    password: i.ssh?.password,
    tags: i.tags,
    eip: a.eip,
    batchSize: a.batchSize,
    rateLimitPerMinute: a.rateLimitPerMinute,
  }) as AlicloudInfraSpec;
}

export function hostsOfAlicloud(s: InfraState): { masters: HostOut[]; workers: HostOut[] } {
  const toHost = (r: InfraState["instances"][number]): HostOut =>
    compact({ id: r.id, privateIp: r.privateIp, publicIp: r.publicIp, role: r.role, identity: r.id });
  const masters = s.instances.filter((r) => r.role === "master").map(toHost);
  if (s.eip && masters[0] && s.eip.instanceId === masters[0].id)
    masters[0] = { ...masters[0], publicIp: s.eip.ip };
  return { masters, workers: s.instances.filter((r) => r.role === "node").map(toHost) };
}

/**
 * Outputs: the inputs echoed exactly as given (Diff compares the old outputs with the new
 * inputs, so an output under an input's name that differs from it is a change on every
 * preview), then what was made. `sshUser` is the login the hosts take.
 */
function outputsOf(
  i: InfraInputs,
  st: InfraStateOut,
  hosts: { masters: HostOut[]; workers: HostOut[] },
  privateKey?: string,
  sshUser: string = i.ssh?.user ?? "root",
): Record<string, unknown> {
  return compact({
    ...i,
    ssh: secret(i.ssh),
    alicloud: secret(i.alicloud),
    masterHosts: hosts.masters,
    workerHosts: hosts.workers,
    sshUser,
    sshPrivateKey: secret(privateKey ?? i.ssh?.privateKey),
    sshPassword: secret(i.ssh?.password),
    state: st,
  });
}

function resourceId(i: InfraInputs): string {
  return `${i.provider}:${i.name}`;
}

/** After a partial create/update the state has fewer hosts than asked for (or pending ones): resume. */
export function shortOf(olds: Record<string, unknown>): boolean {
  const o = olds as unknown as InfraInputs & {
    masterHosts?: unknown[];
    workerHosts?: unknown[];
    state?: InfraStateOut;
  };
  if (o.state?.kind === "alicloud" && (o.state.alicloud.pending?.length ?? 0) > 0) return true;
  return (
    (o.masterHosts?.length ?? 0) !== (o.masters?.count ?? 0) ||
    (o.workerHosts?.length ?? 0) !== (o.nodes?.count ?? 0)
  );
}

// ---- alicloud ----

async function applyAlicloud(
  id: string,
  i: InfraInputs,
  prev: InfraState | undefined,
): Promise<Record<string, unknown>> {
  const ali = require("../core/infra/alicloud") as AlicloudModule;
  let last = prev;
  try {
    const s = await ali.applyInfra(alicloudSpec(i), prev, {
      onState: async (x) => {
        last = x;
      },
      waitForSsh: i.alicloud?.waitForSsh !== false,
      ...(i.ssh?.port ? { sshPort: i.ssh.port } : {}),
    });
    return outputsOf(i, { kind: "alicloud", alicloud: s }, hostsOfAlicloud(s));
  } catch (err) {
    const st = (err as { state?: InfraState }).state ?? last;
    if (st && (st.instances.length > 0 || st.vpcId || (st.pending?.length ?? 0) > 0 || st.securityGroupId)) {
      throw new PartialStateError(
        id,
        outputsOf(i, { kind: "alicloud", alicloud: st }, hostsOfAlicloud(st)),
        [errorMessage(err)],
        { cause: err },
      );
    }
    throw err;
  }
}

// ---- local ----

function localModule(): LocalModule {
  return require("../core/infra/local") as LocalModule;
}

async function applyLocal(i: InfraInputs): Promise<Record<string, unknown>> {
  const total = i.masters.count + (i.nodes?.count ?? 0);
  await localModule().createLocalNodes(
    compact({
      count: total,
      prefix: i.name,
      subnet: i.local?.subnet,
      sudoUser: i.local?.sudoUser ? { name: i.local.sudoUser, password: i.ssh?.password } : undefined,
      rootPassword: i.ssh?.password,
    }) as CreateLocalNodesOptions,
  );
  return localOutputs(i);
}

/** Outputs from the nodes as they exist now (listed from the local node manager's state). */
async function localOutputs(i: InfraInputs): Promise<Record<string, unknown>> {
  const nodes = (await localModule().listLocalNodes(i.name)).sort((a, b) =>
    a.name.localeCompare(b.name, undefined, { numeric: true }),
  );
  // A node made anew under the same name and address has a new host key.
  const { createHash } = require("node:crypto") as typeof import("node:crypto");
  const hosts = nodes.map((n, k): HostOut => ({
    id: n.name,
    privateIp: n.ip,
    role: k < i.masters.count ? "master" : "node",
    identity: `${n.name}@${createHash("sha256").update(n.hostKeyPub).digest("hex").slice(0, 16)}`,
  }));
  const key = nodes[0] ? fs.readFileSync(nodes[0].keyPath, "utf8") : undefined;
  const st: InfraStateOut = {
    kind: "local",
    prefix: i.name,
    nodes: nodes.map((n) => ({ name: n.name, ip: n.ip, keyPath: n.keyPath })),
  };
  return outputsOf(
    i,
    st,
    { masters: hosts.filter((h) => h.role === "master"), workers: hosts.filter((h) => h.role === "node") },
    key,
    i.ssh?.user ?? i.local?.sudoUser ?? "root",
  );
}

// ---- the provider ----

const IN_PLACE_KEYS = ["masters", "nodes", "ssh", "tags", "local", "providerVersion"] as const;

export const provider = {
  async check(_olds: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    const news = reveal(newsRaw) as unknown as InfraInputs;
    const failures = validateInputs(news);
    const inputs = normaliseInputs(news) as unknown as Record<string, unknown>;
    // Secret inputs stay in their envelopes if the engine sent them so.
    for (const k of ["ssh", "alicloud"]) if (newsRaw[k] !== undefined) inputs[k] = newsRaw[k];
    return failures.length > 0 ? { inputs, failures } : { inputs };
  },

  async diff(_id: string, oldsRaw: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    const olds = reveal(oldsRaw);
    const news = reveal(newsRaw);
    const replaces = changedKeys(olds, news, ["provider", "name"]);
    // Local nodes are created as one group (core/infra/local): a different count is a new group.
    if (news.provider === "local") replaces.push(...changedKeys(olds, news, ["masters", "nodes", "local"]));
    const oa = (olds.alicloud ?? {}) as Record<string, unknown>;
    const na = (news.alicloud ?? {}) as Record<string, unknown>;
    // Region/zone/network identity cannot move in place.
    for (const k of changedKeys(oa, na, [
      "region",
      "zone",
      "vpcId",
      "vswitchId",
      "securityGroupId",
      "cidr",
      "imageId",
    ]))
      replaces.push(`alicloud.${k}`);
    const changed = changedKeys(olds, news, IN_PLACE_KEYS);
    const aliChanged = changedKeys(oa, na, [
      "eip",
      "keyPairName",
      "sshCidr",
      "batchSize",
      "rateLimitPerMinute",
      "ecsEndpoint",
      "vpcEndpoint",
    ]);
    const unknown = containsUnknown(news);
    return {
      changes: replaces.length + changed.length + aliChanged.length > 0 || unknown || shortOf(olds),
      replaces,
      deleteBeforeReplace: replaces.length > 0,
    };
  },

  async create(inputsRaw: Record<string, unknown>) {
    const i = reveal(inputsRaw) as unknown as InfraInputs;
    const id = resourceId(i);
    switch (i.provider) {
      case "alicloud":
        return { id, outs: await applyAlicloud(id, i, undefined) };
      case "local":
        return { id, outs: await createLocalWithCleanup(i) };
      default: {
        const never: never = i.provider;
        throw new Error(`unknown infra provider ${String(never)}`);
      }
    }
  },

  /**
   * refresh. Local nodes are listed again: none left means the resource is gone (a blank id: the
   * engine drops it and the next `up` creates it); fewer than recorded come back as the hosts
   * that exist, so the next `up` shows the Infra short and says what to do. Alicloud instances
   * are described again: the ones gone are dropped from the state, and the next `up` creates the
   * missing ones in the deployment's network.
   */
  async read(id: string, propsRaw: Record<string, unknown>) {
    const p = reveal(propsRaw) as unknown as InfraInputs & { state?: InfraStateOut };
    if (
      p.provider === "alicloud" &&
      p.state?.kind === "alicloud" &&
      Array.isArray(p.state.alicloud?.instances)
    ) {
      const ali = require("../core/infra/alicloud") as AlicloudModule;
      const st = await ali.refreshInfra(alicloudSpec(p), p.state.alicloud);
      return { id, props: outputsOf(p, { kind: "alicloud", alicloud: st }, hostsOfAlicloud(st)) };
    }
    if (p.provider !== "local" || typeof p.name !== "string") return { id, props: propsRaw };
    const prefix = p.state?.kind === "local" && typeof p.state.prefix === "string" ? p.state.prefix : p.name;
    if ((await localModule().listLocalNodes(prefix)).length === 0) return { id: "", props: {} };
    return { id, props: await localOutputs({ ...p, name: prefix }) };
  },

  async update(id: string, oldsRaw: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    const olds = reveal(oldsRaw) as unknown as InfraInputs & { state?: InfraStateOut };
    const i = reveal(newsRaw) as unknown as InfraInputs;
    switch (i.provider) {
      case "alicloud":
        return {
          outs: await applyAlicloud(id, i, olds.state?.kind === "alicloud" ? olds.state.alicloud : undefined),
        };
      case "local": {
        // diff replaces local infra when the counts change (local nodes are made as one group).
        // The nodes are listed, not taken from the old state: some may be gone since.
        const now = (await localModule().listLocalNodes(i.name)).length;
        const want = i.masters.count + (i.nodes?.count ?? 0);
        if (now !== want)
          throw new Error(
            `local infra ${i.name}: ${now} of its ${want} node(s) exist; local nodes are made as one group, so they cannot be added back one by one: run \`pulumi refresh\` (with none left, the next \`pulumi up\` creates them again) or \`pulumi up --replace\` on this Infra`,
          );
        return { outs: await localOutputs(i) };
      }
      default: {
        const never: never = i.provider;
        throw new Error(`unknown infra provider ${String(never)}`);
      }
    }
  },

  async delete(_id: string, propsRaw: Record<string, unknown>) {
    const p = reveal(propsRaw) as unknown as InfraInputs & { state?: InfraStateOut };
    if (p.provider === "alicloud") {
      if (p.state?.kind !== "alicloud") return;
      const ali = require("../core/infra/alicloud") as AlicloudModule;
      await ali.destroyInfra(alicloudSpec(p), p.state.alicloud);
      return;
    }
    await localModule().deleteLocalNodes(p.state?.kind === "local" ? p.state.prefix : p.name);
  },
};

/** A local create that fails removes the nodes it made: there is no resource id to hand back yet. */
async function createLocalWithCleanup(i: InfraInputs): Promise<Record<string, unknown>> {
  try {
    return await applyLocal(i);
  } catch (err) {
    await localModule()
      .deleteLocalNodes(i.name)
      .catch(() => undefined);
    throw err;
  }
}

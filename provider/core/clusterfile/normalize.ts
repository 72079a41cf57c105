import { DEFAULT_NODE_DATA_ROOT } from "../paths";
import { canonicalIp, compareIps, ipFamily } from "./ip";
import { Secret } from "./secret";
import type { ClusterSpec, Env, HostSpec, SshSettings } from "./types";

export const DEFAULTS = {
  sshUser: "root",
  sshPort: 22,
  registryDomain: "sea.hub",
  registryPort: 5000,
  dataRoot: DEFAULT_NODE_DATA_ROOT,
} as const;

/** What normalizeCluster accepts: a ClusterSpec whose hosts may list several IPs and whose optional parts may be missing. */
export type ClusterInput = Omit<Partial<ClusterSpec>, "ssh" | "hosts"> & {
  name: string;
  image: string;
  ssh?: Partial<SshSettings>;
  hosts?: Array<Partial<HostSpec> & { ips: string[] }>;
};

/**
 * Brings a cluster to normal form (see types.ts). Idempotent: normalizeCluster(normalizeCluster(x))
 * equals normalizeCluster(x). Assumes the input passed validation (IPs parse, roles present).
 */
export function normalizeCluster(input: ClusterInput): ClusterSpec {
  const ssh: SshSettings = {
    user: input.ssh?.user || DEFAULTS.sshUser,
    port: input.ssh?.port ?? DEFAULTS.sshPort,
  };
  if (input.ssh?.passwd) ssh.passwd = input.ssh.passwd;
  if (input.ssh?.pk) ssh.pk = input.ssh.pk;
  if (input.ssh?.pkData) ssh.pkData = input.ssh.pkData;
  if (input.ssh?.pkPasswd) ssh.pkPasswd = input.ssh.pkPasswd;

  const env = sortEnv(input.env ?? {});

  const masters: HostSpec[] = [];
  const workers: HostSpec[] = [];
  const seen = new Set<string>();
  for (const h of input.hosts ?? []) {
    for (const rawIp of h.ips) {
      const ip = ipFamily(rawIp) ? canonicalIp(rawIp) : rawIp;
      if (seen.has(ip)) continue; // validation reports duplicates; normal form keeps the first
      seen.add(ip);
      const host: HostSpec = {
        ips: [ip],
        roles: [...new Set(h.roles ?? [])].sort(),
        ssh: sshOverrides(h.ssh ?? {}, ssh),
        env: envOverrides(h.env ?? {}, env),
        labels: sortRecord(h.labels ?? {}),
        taints: [...new Set(h.taints ?? [])].sort(),
      };
      (host.roles.includes("master") ? masters : workers).push(host);
    }
  }
  workers.sort((a, b) => compareIps(a.ips[0] ?? "", b.ips[0] ?? ""));

  const out: ClusterSpec = {
    name: input.name,
    image: input.image,
    env,
    cmd: [...(input.cmd ?? [])],
    appNames: [...(input.appNames ?? [])],
    ssh,
    hosts: [...masters, ...workers],
    hostAliases: (input.hostAliases ?? [])
      .map((a) => ({ ip: ipFamily(a.ip) ? canonicalIp(a.ip) : a.ip, hostnames: [...a.hostnames] }))
      .sort((a, b) => compareIps(a.ip, b.ip) || cmp(a.hostnames.join(","), b.hostnames.join(","))),
    registry: normalizeRegistry(input.registry),
    dataRoot: trimSlash(input.dataRoot || DEFAULTS.dataRoot),
    configs: [...(input.configs ?? [])].sort((a, b) => cmp(a.name, b.name)),
    plugins: [...(input.plugins ?? [])]
      .map((p) => ({ ...p, actions: [...new Set(p.actions)].sort(), scope: [...new Set(p.scope)].sort() }))
      .sort((a, b) => cmp(a.name, b.name)),
    kubeadm: { ...(input.kubeadm ?? {}) },
  };
  if (input.distribution) out.distribution = input.distribution;
  if (input.containerRuntime) out.containerRuntime = { type: input.containerRuntime.type };
  if (input.application) out.application = input.application;
  if (input.infra) out.infra = input.infra;
  return out;
}

function normalizeRegistry(r: ClusterSpec["registry"] | undefined): ClusterSpec["registry"] {
  if (r?.externalRegistry) {
    const e = r.externalRegistry;
    return {
      externalRegistry: dropUndefined({
        domain: e.domain,
        port: e.port || 443,
        username: e.username || undefined,
        password: e.password,
      }),
    };
  }
  const l = r?.localRegistry;
  return {
    localRegistry: dropUndefined({
      domain: l?.domain || DEFAULTS.registryDomain,
      port: l?.port || DEFAULTS.registryPort,
      ha: l?.ha ?? true,
      insecure: l?.insecure ?? false,
      username: l?.username || undefined,
      password: l?.password,
      cert: l?.cert
        ? { dnsNames: [...new Set(l.cert.dnsNames)].sort(), ips: [...new Set(l.cert.ips)].sort(compareIps) }
        : undefined,
    }),
  };
}

/** A host override equal to the cluster value means nothing: drop it so equal meanings compare equal. */
function sshOverrides(h: Partial<SshSettings>, cluster: SshSettings): Partial<SshSettings> {
  const out: Partial<SshSettings> = {};
  if (h.user && h.user !== cluster.user) out.user = h.user;
  if (h.port !== undefined && h.port !== cluster.port) out.port = h.port;
  if (h.pk && h.pk !== cluster.pk) out.pk = h.pk;
  for (const k of ["passwd", "pkData", "pkPasswd"] as const) {
    const v = h[k];
    if (v instanceof Secret && !v.equals(cluster[k])) out[k] = v;
  }
  return out;
}

function envOverrides(h: Env, cluster: Env): Env {
  const out: Env = {};
  for (const k of Object.keys(h).sort()) {
    const v = h[k] ?? [];
    const c = cluster[k];
    if (c && c.length === v.length && c.every((x, i) => x === v[i])) continue;
    out[k] = [...v];
  }
  return out;
}

export function sortEnv(env: Env): Env {
  const out: Env = {};
  for (const k of Object.keys(env).sort()) out[k] = [...(env[k] ?? [])];
  return out;
}

function sortRecord(r: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k] ?? "";
  return out;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * The Clusterfile model: load (YAML with line numbers, every kind, v1 conversion), CLI flags,
 * normal form, accessors, and dump. Others code against these names.
 */
import * as yaml from "js-yaml";
import { loadClusterfile } from "./load";
import { sortEnv } from "./normalize";
import type { ClusterSpec, Env, HostSpec, SshSettings } from "./types";

export * from "./types";
export { Secret, isSecret, secretOf } from "./secret";
export { loadClusterfile, whereInClusterfile, CLUSTER_V1_VERSIONS, CLUSTER_V2_VERSIONS } from "./load";
export { clusterFromFlags, parseIpList, DEFAULT_CLUSTER_NAME, type ClusterFlags } from "./flags";
export { normalizeCluster, DEFAULTS, type ClusterInput } from "./normalize";
export { dumpClusterfile } from "./dump";
export { parseTaint, parseEnvEntry, checkLabelKey, checkLabelValue, type Taint } from "./syntax";
export { canonicalIp, compareIps, expandRange, ipFamily } from "./ip";

/** Master IPs in order: master0 (the first master listed) first. */
export function masters(spec: ClusterSpec): string[] {
  return spec.hosts.filter((h) => h.roles.includes("master")).flatMap((h) => h.ips);
}

/** Worker IPs (numeric order in normal form). */
export function workers(spec: ClusterSpec): string[] {
  return spec.hosts.filter((h) => !h.roles.includes("master")).flatMap((h) => h.ips);
}

export function master0(spec: ClusterSpec): string | undefined {
  return masters(spec)[0];
}

export function allHosts(spec: ClusterSpec): string[] {
  return spec.hosts.flatMap((h) => h.ips);
}

export function findHost(spec: ClusterSpec, ip: string): HostSpec | undefined {
  return spec.hosts.find((h) => h.ips.includes(ip));
}

/** The host's ssh settings: its overrides merged over spec.ssh. */
export function hostSsh(spec: ClusterSpec, ip: string): SshSettings {
  return sshOf(spec, findHost(spec, ip));
}

/** The ssh settings of a host group: its overrides merged over spec.ssh. */
export function sshOf(spec: ClusterSpec, host: HostSpec | undefined): SshSettings {
  return { ...spec.ssh, ...(host?.ssh ?? {}) };
}

/**
 * The env a host sees, merged once by sealer's rule: the image's ENV at the bottom, spec.env
 * over it, the host group's env over both — key by key, a higher level's list replacing the
 * lower one's whole (sealer prepends the image's ENV to spec.env, then merges each host's env
 * over that, keeping the host's value for a key both set). No host (`undefined`): the cluster's
 * env, which is what cluster-wide values (the worker VIP) are read from.
 */
export function mergedEnv(
  spec: ClusterSpec,
  host: HostSpec | undefined,
  imageEnv: Record<string, string> = {},
): Env {
  const out: Env = {};
  for (const [k, v] of Object.entries(imageEnv)) out[k] = [v];
  return sortEnv(Object.assign(out, spec.env, host?.env ?? {}));
}

/** The host's env as strings; several values are joined with ';' (as written in a Clusterfile). */
export function hostEnv(
  spec: ClusterSpec,
  ip: string,
  imageEnv?: Record<string, string>,
): Record<string, string> {
  return envStrings(mergedEnv(spec, findHost(spec, ip), imageEnv));
}

/** The cluster-wide env as strings (image ENV < spec.env): what sealer's GetClusterEnv gives. */
export function clusterEnv(spec: ClusterSpec, imageEnv?: Record<string, string>): Record<string, string> {
  return envStrings(mergedEnv(spec, undefined, imageEnv));
}

/** Env values as strings: several values are joined with ';' (as written in a Clusterfile). */
export function envStrings(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = v.join(";");
  return out;
}

/**
 * A Clusterfile given as objects (Pulumi inputs, JSON): one document or a list of documents,
 * validated exactly like a file. Problem locations name `file` (default "clusterfile") and the
 * line of the YAML rendering of the objects, plus the path, which is what a user can act on.
 */
export function clusterFromObject(
  value: unknown,
  opts: { file?: string } = {},
): { spec: ClusterSpec; warnings: string[] } {
  const docs = Array.isArray(value) ? value : [value];
  const text = docs.map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true })).join("---\n");
  return loadClusterfile(text, { file: opts.file ?? "clusterfile" });
}

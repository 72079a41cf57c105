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
  const h = findHost(spec, ip);
  return { ...spec.ssh, ...(h?.ssh ?? {}) };
}

/** The host's env as lists: the host's keys replace the cluster's, key by key (sealer's mergeList). */
export function hostEnvValues(spec: ClusterSpec, ip: string): Env {
  const h = findHost(spec, ip);
  return sortEnv({ ...spec.env, ...(h?.env ?? {}) });
}

/** The host's env as strings; several values are joined with ';' (as written in a Clusterfile). */
export function hostEnv(spec: ClusterSpec, ip: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(hostEnvValues(spec, ip))) out[k] = v.join(";");
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

/**
 * Syntax rules shared by the Clusterfile loader and the CLI flags: Kubernetes label keys and
 * values, taints (kubectl syntax), env entries, role names, cluster names, paths.
 * Each check returns an error message, or undefined when the text is valid.
 */
import { ipFamily } from "./ip";

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Label key: `[prefix/]name`, prefix a DNS subdomain ≤ 253, name ≤ 63 alphanumerics with -_. inside. */
export function checkLabelKey(key: string): string | undefined {
  if (key === "") return "label key is empty";
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix === "" || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))
      return `label key "${key}": prefix "${prefix}" must be a lowercase DNS subdomain (e.g. example.com)`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name))
    return `label key "${key}": name part must be 1-63 characters, alphanumerics with '-', '_' or '.' inside`;
  return undefined;
}

export function checkLabelValue(key: string, value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > 63 || !NAME.test(value))
    return `label "${key}": value "${value}" must be at most 63 characters, alphanumerics with '-', '_' or '.' inside`;
  return undefined;
}

export const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;

export interface Taint {
  key: string;
  value?: string;
  effect?: (typeof TAINT_EFFECTS)[number];
  /** Trailing '-': remove the taint. */
  remove: boolean;
}

/** kubectl taint syntax: `k=v:Effect`, `k:Effect`, `k=:Effect`, each with an optional trailing `-`, and `k-` (remove every effect of k). */
export function parseTaint(text: string): Taint | string {
  let s = text.trim();
  const remove = s.endsWith("-");
  if (remove) s = s.slice(0, -1);
  const colon = s.lastIndexOf(":");
  if (colon < 0) {
    if (!remove)
      return `taint "${text}" needs an effect: "key=value:NoSchedule", "key:NoExecute" or "key:NoSchedule-" to remove`;
    const kerr = checkLabelKey(s);
    return kerr ? `taint "${text}": ${kerr}` : { key: s, remove };
  }
  const kv = s.slice(0, colon);
  const effect = s.slice(colon + 1);
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect))
    return `taint "${text}": effect "${effect}" must be one of ${TAINT_EFFECTS.join(", ")}`;
  const eq = kv.indexOf("=");
  const key = eq >= 0 ? kv.slice(0, eq) : kv;
  const value = eq >= 0 ? kv.slice(eq + 1) : undefined;
  const kerr = checkLabelKey(key);
  if (kerr) return `taint "${text}": ${kerr.replace(/^label key/, "key")}`;
  if (value !== undefined && checkLabelValue(key, value))
    return `taint "${text}": value "${value}" must be at most 63 characters, alphanumerics with '-', '_' or '.' inside`;
  return { key, value, effect: effect as Taint["effect"], remove };
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * `KEY=VALUE` (VALUE may be empty and may contain '='; ';' separates several values). Messages
 * never repeat a value, nor an entry without '=': env often holds tokens, and problems are shown.
 */
export function parseEnvEntry(text: string): { key: string; values: string[] } | string {
  const eq = text.indexOf("=");
  if (eq < 0)
    return `is not KEY=VALUE (there is no "="; the text is not repeated here, in case it is a secret)`;
  const key = text.slice(0, eq);
  if (!ENV_KEY.test(key))
    return `env key "${key.length > 60 ? `${key.slice(0, 60)}…` : key}" must start with a letter or '_' and contain only letters, digits, '_', '.', '-'`;
  const values = text.slice(eq + 1).split(";");
  const bad = checkEnvValue(key, values);
  if (bad) return `${key}: ${bad}`;
  return { key, values };
}

/**
 * Env keys the tool itself reads, whose values become part of commands run as root on nodes
 * (the worker VIP goes into `ip addr` and `ipvsadm`): checked wherever env is written (a
 * Clusterfile, `-e`, a Kubefile's ENV) and again for an image built elsewhere.
 */
export function checkEnvValue(key: string, values: string[]): string | undefined {
  if (key === "IPvsVIPv4" && (values.length !== 1 || ipFamily(values[0]!) !== 4))
    return `IPvsVIPv4 must be one IPv4 address (the workers' virtual IP of the API server), e.g. IPvsVIPv4=10.103.97.2`;
  return undefined;
}

const ROLE = /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/;
export function checkRole(role: string): string | undefined {
  if (!ROLE.test(role)) return `role "${role}" must be lowercase alphanumerics with '-', '_' or '.' inside`;
  return undefined;
}

/** The cluster name names a directory locally and on nodes: keep it to a DNS-label-like name. */
export function checkClusterName(name: string): string | undefined {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 63)
    return `cluster name "${name}" must be 1-63 lowercase alphanumerics, '-' or '.', starting and ending with an alphanumeric`;
  // A cluster's directory on the nodes is <dataRoot>/<name>, beside the shared layer store.
  if (RESERVED_CLUSTER_NAMES.includes(name))
    return `cluster name "${name}" is reserved: <dataRoot>/${name} on the nodes holds the layer store shared by all clusters; pick another name`;
  return undefined;
}

/** Directories under a node's data root that are not clusters (exec/node-layers, exec/relay). */
export const RESERVED_CLUSTER_NAMES: readonly string[] = ["blobs", "layers", "relay"];

export function checkHostname(name: string): string | undefined {
  if (
    name.length === 0 ||
    name.length > 253 ||
    !/^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/.test(name)
  )
    return `"${name}" is not a valid host name`;
  return undefined;
}

/** A path inside the rootfs: relative, no "..", no empty segments. */
export function checkRelativePath(p: string): string | undefined {
  if (p === "" || p.startsWith("/"))
    return `path "${p}" must be relative to the cluster rootfs (e.g. etc/my.yaml)`;
  if (p.split("/").some((seg) => seg === ".." || seg === ""))
    return `path "${p}" must not contain ".." or empty segments`;
  return undefined;
}

export function checkAbsolutePath(p: string): string | undefined {
  if (!p.startsWith("/")) return `"${p}" must be an absolute path`;
  if (p === "/") return `"${p}" must not be the root directory`;
  if (p.split("/").some((seg) => seg === "..")) return `"${p}" must not contain ".."`;
  return undefined;
}

export function parsePort(v: string | number | null | undefined): number | undefined | string {
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "number" ? v : /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    return `port ${JSON.stringify(v)} must be an integer from 1 to 65535`;
  return n;
}

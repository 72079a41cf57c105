import { Secret } from "./secret";
import type { ClusterSpec, SshSettings } from "./types";

/** The secret SSH fields of a cluster or of one host. */
export interface SshSecrets {
  passwd?: string;
  pkData?: string;
  pkPasswd?: string;
}

/**
 * Every secret of a spec, by where it belongs: the cluster's SSH settings, each host's SSH
 * overrides (by its IP; in normal form every host entry has exactly one), the registry password.
 * The cluster record keeps these in a file of their own, so the recorded Clusterfile can be shown
 * or shared without them.
 */
export interface ClusterSecrets {
  ssh?: SshSecrets;
  hosts?: Record<string, SshSecrets>;
  registry?: { password: string };
}

const SSH_SECRET_KEYS = ["passwd", "pkData", "pkPasswd"] as const;

function sshSecrets(s: Partial<SshSettings>): SshSecrets | undefined {
  const out: SshSecrets = {};
  for (const k of SSH_SECRET_KEYS) {
    const v = s[k];
    if (v) out[k] = v.reveal();
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function withSshSecrets<T extends Partial<SshSettings>>(s: T, sec: SshSecrets | undefined): T {
  if (!sec) return s;
  const out = { ...s };
  for (const k of SSH_SECRET_KEYS) {
    const v = sec[k];
    if (typeof v === "string" && v !== "") out[k] = new Secret(v);
  }
  return out;
}

export function clusterSecrets(spec: ClusterSpec): ClusterSecrets {
  const out: ClusterSecrets = {};
  const ssh = sshSecrets(spec.ssh);
  if (ssh) out.ssh = ssh;
  for (const h of spec.hosts) {
    const sec = sshSecrets(h.ssh);
    for (const ip of sec ? h.ips : []) (out.hosts ??= {})[ip] = sec as SshSecrets;
  }
  const reg = spec.registry.externalRegistry ?? spec.registry.localRegistry;
  if (reg?.password) out.registry = { password: reg.password.reveal() };
  return out;
}

export function hasSecrets(s: ClusterSecrets): boolean {
  return s.ssh !== undefined || Object.keys(s.hosts ?? {}).length > 0 || s.registry !== undefined;
}

/** The spec with the recorded secrets put back where they belong (a recorded value wins). */
export function withSecrets(spec: ClusterSpec, s: ClusterSecrets): ClusterSpec {
  const registry = { ...spec.registry };
  const password = s.registry?.password ? new Secret(s.registry.password) : undefined;
  if (password && registry.externalRegistry)
    registry.externalRegistry = { ...registry.externalRegistry, password };
  else if (password && registry.localRegistry)
    registry.localRegistry = { ...registry.localRegistry, password };
  return {
    ...spec,
    ssh: withSshSecrets(spec.ssh, s.ssh),
    hosts: spec.hosts.map((h) => {
      const ip = h.ips[0];
      return { ...h, ssh: withSshSecrets(h.ssh, ip === undefined ? undefined : s.hosts?.[ip]) };
    }),
    registry,
  };
}

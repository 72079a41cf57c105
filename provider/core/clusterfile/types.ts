import type { Secret } from "./secret";

/**
 * The normalised cluster model every front door produces (Clusterfile, CLI flags, Pulumi
 * inputs) and everything downstream consumes (planner, executor, state).
 *
 * Normal form (normalizeCluster):
 * - defaults filled: ssh user root / port 22, registry sea.hub:5000 HA local, dataRoot
 *   /var/lib/sealer, containerRuntime left to the image when not set;
 * - one host entry per IP (`ips` has exactly one element), masters first in the order they
 *   were listed (master0 = the first master listed: order carries meaning), then workers in
 *   numeric IP order (order carries none);
 * - IPs in canonical text (IPv6 compressed, lowercase);
 * - env: keys sorted; values are LISTS in the order given. `K=a;b` and `K=a` + `K=b` both
 *   mean K = [a, b] (sealer's ConvertEnv semantics: repeated keys and ';' append);
 * - a host's ssh/env keep only the values that differ from the cluster's (an override equal
 *   to the cluster value means nothing), labels sorted, taints and roles sorted, configs and
 *   plugins sorted by name, hostAliases sorted by IP.
 * So two Clusterfiles that mean the same thing normalise to equal values (no perpetual diffs).
 */
export type Env = Record<string, string[]>;

export interface SshSettings {
  user: string;
  passwd?: Secret;
  /** Path of a private key file on the machine running sealer. */
  pk?: string;
  /** Inline private key (PEM). */
  pkData?: Secret;
  pkPasswd?: Secret;
  port: number;
}

export interface HostSpec {
  /** Exactly one IP in normal form (the Clusterfile shape is kept for familiarity). */
  ips: string[];
  /** Contains exactly one of "master" | "node"; other roles (e.g. "db") are kept for plugin scopes. */
  roles: string[];
  /** Overrides of spec.ssh for this host only. */
  ssh: Partial<SshSettings>;
  /** Overrides of spec.env for this host only (per key: the host's list replaces the cluster's). */
  env: Env;
  labels: Record<string, string>;
  /** kubectl taint syntax: "k=v:Effect", "k:Effect", trailing "-" removes. */
  taints: string[];
}

export interface HostAlias {
  ip: string;
  hostnames: string[];
}

export interface LocalRegistry {
  domain: string;
  port: number;
  /** true: a registry on every master (workers reach it through the VIP); false: master0 only. */
  ha: boolean;
  insecure: boolean;
  username?: string;
  password?: Secret;
  cert?: { dnsNames: string[]; ips: string[] };
}

export interface ExternalRegistry {
  domain: string;
  port: number;
  username?: string;
  password?: Secret;
}

/** Exactly one of the two is set in normal form. */
export interface RegistrySpec {
  localRegistry?: LocalRegistry;
  externalRegistry?: ExternalRegistry;
}

export type ConfigStrategy = "overwrite" | "merge";
export type ConfigProcess = "value" | "toJson" | "toBase64" | "toSecret";

export interface ConfigDoc {
  name: string;
  /** Relative to the cluster rootfs (or to application/apps/<appName>/ when appName is set). */
  path: string;
  data: string;
  strategy: ConfigStrategy;
  /** Pipeline of processors, in order ("value|toJson" => ["value", "toJson"]). */
  process: ConfigProcess[];
  appName?: string;
}

export type PluginType = "SHELL" | "HOSTNAME" | "LABEL" | "TAINT" | "CLUSTERCHECK" | "ETCD";

export const HOOK_PHASES = [
  "pre-install",
  "post-install",
  "pre-init-host",
  "post-init-host",
  "pre-clean-host",
  "post-clean-host",
  "pre-uninstall",
  "post-uninstall",
  "pre-scaleup",
  "post-scaleup",
  "upgrade-host",
  "upgrade",
  "rollback",
] as const;
export type HookPhase = (typeof HOOK_PHASES)[number];

export interface PluginDoc {
  name: string;
  type: PluginType;
  /** Phases, sorted and de-duplicated. */
  actions: HookPhase[];
  /** Roles whose hosts run it; empty = every host (sealer's docs say so; see sealer issue 795). */
  scope: string[];
  /**
   * Legacy (sealer v0.5-v0.8) host selector: a label selector, master/node/master0, or IPs; for an
   * ETCD plugin, the absolute path on master0 its snapshot is saved to (as in sealer).
   */
  on?: string;
  /**
   * Written for sealer <= 0.8 (PascalCase actions, `on`, or the type as metadata.name), whose
   * SHELL plugins ran on every host at every phase unless `on` said otherwise; v2 plugins run
   * cluster phases on master0 instead.
   */
  legacy?: true;
  data: string;
}

export interface ApplicationDoc {
  name: string;
  cmds: string[];
  launchApps: string[];
  configs: Array<{
    name: string;
    env: Env;
    files: Array<{ path: string; strategy: ConfigStrategy; data: string }>;
    launchCmds?: string[];
  }>;
}

/** Raw kubeadm documents (deep-merged over the image's etc/kubeadm.yml by the runtime). */
export interface KubeadmDocs {
  init?: Record<string, unknown>;
  cluster?: Record<string, unknown>;
  join?: Record<string, unknown>;
  kubelet?: Record<string, unknown>;
  kubeProxy?: Record<string, unknown>;
}

export interface MachineRequest {
  count: number;
  cpu?: number;
  memory?: number;
  systemDisk?: number;
  dataDisks?: number[];
}

/** A v1 Clusterfile that asked for machines by count: the Infra layer creates them. */
export interface InfraRequest {
  provider: string;
  masters: MachineRequest;
  nodes: MachineRequest;
}

/** How layer blobs reach the hosts (our Clusterfile extension `spec.distribution`). */
export const DISTRIBUTION_MODES = ["ssh", "relay", "registry"] as const;
export type DistributionMode = (typeof DISTRIBUTION_MODES)[number];

export interface ClusterSpec {
  name: string;
  image: string;
  env: Env;
  cmd: string[];
  appNames: string[];
  ssh: SshSettings;
  hosts: HostSpec[];
  containerRuntime?: { type: "docker" | "containerd" };
  hostAliases: HostAlias[];
  registry: RegistrySpec;
  dataRoot: string;
  /** How layer blobs reach the hosts; absent: registry when one the nodes reach is usable, else ssh. */
  distribution?: DistributionMode;
  configs: ConfigDoc[];
  plugins: PluginDoc[];
  application?: ApplicationDoc;
  kubeadm: KubeadmDocs;
  /** Present when the hosts are still to be created (v1 count-only Clusterfile). */
  infra?: InfraRequest;
}

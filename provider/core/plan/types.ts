/**
 * The contract between the planner (pure), the executor (SSH) and the front doors (CLI, Pulumi).
 *
 *   plan(desired, applied) -> Plan          // pure: no I/O, no clock, no randomness
 *   execute(plan.steps) -> after each step: recordStep(applied, step) and save
 *
 * Every step carries `key`: a hash of exactly the inputs it depends on (layer digests of the
 * paths it reads, the Clusterfile fields it uses, its hosts). The applied state remembers, per
 * step id, the key it last ran with; the planner plans a step when its key differs or it never
 * ran. So "re-apply only what changed" is a comparison of keys, and a second apply with nothing
 * changed plans zero steps. Which inputs feed which key is the impact table (plan/impact.ts).
 */
import type { PluginDoc } from "../clusterfile/types";
import type { AppType } from "../image/types";

/** Plugins an image ships (plugins/*.yaml|yml) and a digest of the rest of plugins/. */
export interface ImagePlugins {
  /** Plugin documents in name order; `file` is the image path they came from. */
  docs: Array<PluginDoc & { file: string }>;
  /** sha256 over the other files under plugins/ (scripts a hook may call); "" when none. */
  filesHash: string;
}

/** What the planner needs to know about the image (read from the store, never from nodes). */
export interface ImageFacts {
  /** Normalised reference, e.g. "docker.io/library/my-saas:1.0". */
  reference: string;
  /** Digest of the manifest for the platform(s) in use (or of the index). */
  manifestDigest: string;
  /** Layers, oldest/base first. */
  layers: LayerFacts[];
  imageType: "kube-installer" | "app-installer";
  /** e.g. "v1.28.2"; from the cluster-runtime-version label. */
  kubeVersion?: string;
  containerRuntime?: "docker" | "containerd";
  apps: AppFacts[];
  /** LAUNCH app names / CMDS commands / legacy CMD lines as built. */
  launch: { appNames?: string[]; cmds?: string[]; legacyCmds?: string[] };
  /** ENV baked into the image (Clusterfile env overrides). */
  env: Record<string, string>;
  /** Platforms present ("linux/amd64", ...). */
  platforms: string[];
  /** The platform `layers` belong to (absent when unknown, e.g. facts made up for a delete). */
  platform?: string;
  /**
   * Multi-platform images: every platform's manifest digest and layers (the entry for `platform`
   * repeats `layers`). The planner gives each host the layers of its own platform.
   */
  variants?: Record<string, { manifestDigest: string; layers: LayerFacts[] }>;
  /**
   * The image's `plugins/` directory, read from its layers. With it each hook step is keyed by
   * its own plugin's content; without it (facts from before it was read) every hook step keys on
   * the layers touching plugins/.
   */
  plugins?: ImagePlugins;
  /**
   * Optional: for each file that reads env (`.tmpl` files, and scripts if the builder scans them),
   * the env keys it uses, e.g. { "etc/kubeadm.yml.tmpl": ["PodCIDR", "SvcCIDR"] }. With it an env
   * change re-runs only the steps that read those files; without it the planner assumes every
   * template-consuming step uses every key (and says so in the reason).
   */
  templateEnvKeys?: Record<string, string[]>;
}

export interface LayerFacts {
  digest: string;
  size: number;
  /** Rootfs path prefixes the layer changes, dirs ending in "/" ("application/apps/web/", "etc/"). */
  paths: string[];
  /**
   * A digest per path of `paths` over the layer's entries under it. With it, a step keys on the
   * content of the paths it reads; without it (layers built before), on the layer's digest.
   */
  groups?: Record<string, string>;
}

export interface AppFacts {
  name: string;
  type: AppType;
  /** Files relative to application/apps/<name>/. */
  files: string[];
  cmds?: string[];
  env?: Record<string, string>;
}

export type Role = "master" | "node";

/** Step kinds, in the order a full install runs them. */
export type StepKind =
  | "distribute" // send missing layer blobs to hosts, materialise the rootfs from the first layer the node lacks, render .tmpl + Config docs
  | "hook" // a Plugin (SHELL/HOSTNAME/LABEL/TAINT) at a phase, on the hosts in its scope
  | "init-host" // host init scripts from the image (scripts/, etc/): kernel params, kubelet files
  | "container-runtime" // scripts/<cri>.sh
  | "host-aliases" // /etc/hosts entries from spec.hostAliases
  | "registry" // start the registry on registry hosts with data from registry/, TLS cert, htpasswd
  | "registry-client" // on every host: hosts entry for the registry domain, CA trust, mirrors
  | "kubeadm-config" // render the merged kubeadm config on master0
  | "init-master" // kubeadm init on master0
  | "join-master" // kubeadm join --control-plane, one master per step (serial)
  | "join-worker" // kubeadm join on workers (parallel, bounded)
  | "worker-vip" // IPVS VIP -> masters on every worker + lvscare static pod
  | "node-labels" // role labels, host labels and taints
  | "launch-app" // run an app's launch commands on master0
  | "launch-cmds" // CMDS / Clusterfile cmd / legacy CMD on master0
  | "upgrade-master" // kubeadm upgrade apply (master0) / node (other masters), drain/uncordon
  | "upgrade-worker" // kubeadm upgrade node on workers in bounded batches
  | "clean-host" // pre-clean hooks run separately; kubeadm reset -f, remove data root, runtime uninstall
  | "delete-node" // kubectl delete node <names> from a remaining master
  | "save-clusterfile"; // the merged Clusterfile to master0 and configmap kube-system/sealer-clusterfile

export interface StepBase {
  /** Stable, unique within a plan: e.g. "join-worker:10.0.0.5", "launch-app:web". */
  id: string;
  kind: StepKind;
  /** Target hosts (IPs). */
  hosts: string[];
  /** Human reason: "layer sha256:ab12… changed application/apps/web/", "host 10.0.0.7 added as node". */
  reason: string;
  /** Hash of this step's inputs (see above); recorded in the applied state when the step succeeds. */
  key: string;
  /** Ids of steps in this plan that must finish first. */
  after: string[];
  /**
   * Hashes of the step's named inputs (the parts its key is made of). recordStep stores them so
   * the next plan can say which input changed. Optional: a step without them still records its key.
   */
  parts?: Record<string, string>;
}

export type Step =
  | (StepBase & {
      kind: "distribute";
      layers: string[];
      /** The host's platform these layers are for (recorded as AppliedHost.platform). */
      platform?: string;
    })
  | (StepBase & { kind: "hook"; phase: string; plugin: string })
  | (StepBase & { kind: "init-host" })
  | (StepBase & { kind: "container-runtime"; runtime: "docker" | "containerd" })
  | (StepBase & { kind: "host-aliases" })
  | (StepBase & { kind: "registry" })
  | (StepBase & { kind: "registry-client" })
  | (StepBase & { kind: "kubeadm-config" })
  | (StepBase & { kind: "init-master" })
  | (StepBase & { kind: "join-master" })
  | (StepBase & { kind: "join-worker" })
  | (StepBase & { kind: "worker-vip"; masters: string[] })
  | (StepBase & { kind: "node-labels" })
  | (StepBase & { kind: "launch-app"; app: string; cmds: string[] })
  | (StepBase & { kind: "launch-cmds"; cmds: string[] })
  | (StepBase & { kind: "upgrade-master"; version: string; first: boolean })
  | (StepBase & { kind: "upgrade-worker"; version: string })
  | (StepBase & { kind: "clean-host" })
  | (StepBase & { kind: "delete-node"; nodes: string[] })
  | (StepBase & { kind: "save-clusterfile" });

export interface Plan {
  cluster: string;
  /** In execution order; `after` gives the partial order the executor may exploit. */
  steps: Step[];
  /** Non-fatal notes (e.g. "kubeadm ClusterConfiguration changed: requires replacement"). */
  warnings: string[];
  /** Set when the change cannot be applied in place (cluster name or data root changed). */
  replace?: string;
}

/** What the last applies did, as recorded after every successful step. */
export interface AppliedState {
  version: 1;
  cluster: string;
  dataRoot?: string;
  image?: { reference: string; manifestDigest: string; kubeVersion?: string };
  /** The image before the last upgrade (for rollback). */
  previousImage?: { reference: string; manifestDigest: string; kubeVersion?: string };
  hosts: Record<string, AppliedHost>;
  /** Step id -> the key it last ran with (and the hashes of its named inputs, for reasons). */
  steps: Record<string, StepRecord>;
  /**
   * Values fixed when the cluster was created (PodCIDR, SvcCIDR, dnsDomain, container runtime):
   * a change to one of them cannot be applied in place, the planner sets plan.replace.
   */
  immutable?: Record<string, string>;
  /**
   * Step id -> what a drift check found gone (core/drift): set when the record was forgotten so
   * the next plan re-runs the step with "drift: <note>" as its reason; cleared when it runs.
   */
  drift?: Record<string, string>;
  /** Join material etc. Secret: never logged; a secret output in Pulumi. */
  secrets?: { token?: string; certificateKey?: string; caCertHash?: string; kubeconfig?: string };
}

/** One step's record: the key it last ran with, and what it left on each host. */
export interface StepRecord {
  key: string;
  hosts: string[];
  parts?: Record<string, string>;
  /**
   * Host IP -> what the step left there (set by the executor from the handler's report). A drift
   * check looks for exactly this; absent (older states, steps that leave nothing checkable): no
   * file is checked for the step.
   */
  footprint?: Record<string, HostFootprint>;
}

/** What one step left on one host. */
export interface HostFootprint {
  /** Absolute path -> sha256 (hex) of each file the step wrote and the cluster does not rewrite. */
  files?: Record<string, string>;
  /**
   * distribute: the materialised rootfs's file list ("path<TAB>size" lines, C-sorted) as a sha256
   * and a line count; `list` is where the node keeps that list, so a check can name what changed.
   */
  tree?: { dir: string; digest: string; count: number; list: string };
}

export interface AppliedHost {
  roles: Role[];
  platform?: string;
  /**
   * Layer digests present in the node's blob store. recordStep(distribute) sets it to the
   * image's layers IN ORDER (the rootfs was materialised from them); a changed list re-plans
   * distribute, and its reason names the layers from the first index that differs.
   */
  layers: string[];
  /** Hash of the Kubernetes inputs (version, kube binaries, kubeadm config) the host was installed or last upgraded with. */
  kubeKey?: string;
  kubeVersion?: string;
  /** Kubernetes node name the host joined with (set by the executor). */
  nodeName?: string;
  /** Labels and taints the executor last set from the Clusterfile (so removed ones are removed). */
  labels?: Record<string, string>;
  taints?: string[];
}

export function emptyApplied(cluster: string): AppliedState {
  return { version: 1, cluster, hosts: {}, steps: {} };
}

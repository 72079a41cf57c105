/**
 * THE impact table: which steps a change can affect. One place, documented, tested row by row
 * (tests/unit/plan-impact.test.ts). The planner never decides impact anywhere else: every step's
 * key is built from the inputs this table assigns to it, so a change re-runs exactly the steps
 * whose inputs it touches.
 *
 * Layer paths are classified by prefix (layers carry the rootfs paths they change, dirs end
 * in "/", see ImageFacts.layers[].paths). A path may fall in several classes when it is a
 * shallow directory ("etc/" could hold kubeadm.yml or host files, so it counts as both).
 *
 * | layer path                                   | class        | steps whose key includes it |
 * |----------------------------------------------|--------------|-----------------------------|
 * | application/apps/<a>/…                       | app:<a>      | launch-app:<a>; launch-cmds when its commands name the app dir |
 * | application/ (shallower)                     | app:*        | every launch-app, launch-cmds |
 * | manifests/…                                  | manifests    | launch-cmds; launch-app whose commands mention manifests/ |
 * | charts/…                                     | charts       | launch-cmds; launch-app whose commands mention charts/ |
 * | registry/…, images/…                         | registry     | registry (on the registry hosts; push to an external registry) |
 * | bin/kubeadm, bin/kubelet, bin/kubectl, bin/kube* | kube-bin | upgrade flow on an existing cluster (upgrade-master, upgrade-worker); nothing else |
 * | bin/… (other), statics/…                     | host-bin / host-init | init-host on every host |
 * | scripts/<docker|containerd>.sh, scripts/uninstall-*, cri/… | runtime | container-runtime on every host |
 * | scripts/… (other), etc/… (other)             | host-init    | init-host on every host |
 * | etc/kubeadm*                                 | kubeadm      | kubeadm-config; upgrade-master on an existing cluster (upgrade with config) |
 * | plugins/*.yaml (Plugin documents)             | plugins      | the hook steps of the plugin whose document changed (ImageFacts.plugins); every hook step when the facts lack it |
 * | plugins/… (other files: scripts hooks call)  | plugins      | every hook step |
 * | anything else (Kubefile, README, …)          | other        | none but distribute |
 * | any layer at all                             | (all)        | distribute on every host (the reason names the layers from the first that differs) |
 *
 * Re-running init-host and container-runtime when scripts/, etc/ or cri/ change is AUTOMATIC:
 * sealer's contract is that these scripts are idempotent (they run again on every scale-up), and
 * "re-apply only what changed" means running them exactly when their content changed. The plan
 * shows them with the layer that caused them before anything runs.
 *
 * Clusterfile fields (the other half of the table, applied in planner.ts):
 * | field                          | steps |
 * |--------------------------------|-------|
 * | hosts added                    | distribute, init-host, container-runtime, host-aliases, registry(-client), join (masters one at a time, workers in parallel), node-labels, worker-vip; pre/post-scaleup hooks |
 * | hosts removed                  | pre-clean-host hooks, clean-host, delete-node (from a remaining master), post-clean-host hooks; worker-vip when a master goes |
 * | masters changed                | worker-vip on every worker (re-point), registry-client (HA registry hosts), kubeadm-config |
 * | host labels / taints / roles   | node-labels of that host only |
 * | env                            | the steps whose templates or commands use the key (ImageFacts.templateEnvKeys; all template-consuming steps when absent) and the recognised keys' steps (ENV_CONSUMERS) |
 * | registry                       | registry, registry-client |
 * | hostAliases                    | host-aliases |
 * | ssh credentials                | none |
 * | cmd / appNames / Application   | launch-cmds / launch-app |
 * | Config documents               | distribute (rendered into the rootfs) and the steps that read the file's path (by the layer table above) |
 * | Plugin documents               | that plugin's hook steps |
 * | kubeadm InitConfiguration/JoinConfiguration | kubeadm-config (affects hosts joined from now on) |
 * | kubeadm Cluster/Kubelet/KubeProxy configuration | kubeadm-config; upgrade with config on an existing cluster; networking.podSubnet/serviceSubnet/dnsDomain => replacement |
 * | image kube version             | upgrade flow (existing cluster) instead of init/join |
 * | containerRuntime.type, name, dataRoot, PodCIDR, SvcCIDR | replacement (plan.replace) on an existing cluster |
 * | image reference only (same digest) | save-clusterfile |
 */

export type LayerClass =
  | `app:${string}`
  | "app:*"
  | "manifests"
  | "charts"
  | "registry"
  | "kube-bin"
  | "host-init"
  | "runtime"
  | "kubeadm"
  | "plugins"
  | "other";

const RUNTIME_SCRIPTS = /^scripts\/(docker|containerd|uninstall-[^/]*|cri[^/]*)(\.sh)?$/;

/** Classes of one rootfs path (a file, or a directory ending in "/"). */
export function classifyPath(p: string): LayerClass[] {
  const path = p.replace(/^\/+|^\.\//, "");
  if (path === "" || path === "/") return ALL_CLASSES;
  const [top, second] = path.split("/");
  const isDir = (n: number) => path.split("/").filter(Boolean).length <= n && path.endsWith("/");
  switch (top) {
    case "application":
      if (second === "apps") {
        const app = path.split("/")[2];
        return app ? [`app:${app}`] : ["app:*"];
      }
      return ["app:*"];
    case "manifests":
      return ["manifests"];
    case "charts":
      return ["charts"];
    case "registry":
    case "images":
      return ["registry"];
    case "plugins":
      return ["plugins"];
    case "cri":
      return ["runtime"];
    case "bin":
      if (isDir(1)) return ["kube-bin", "host-init"];
      return second?.startsWith("kube") ? ["kube-bin"] : ["host-init"];
    case "scripts":
      if (isDir(1)) return ["runtime", "host-init"];
      return RUNTIME_SCRIPTS.test(path.replace(/\/$/, "")) ? ["runtime"] : ["host-init"];
    case "etc":
      if (isDir(1)) return ["kubeadm", "host-init"];
      return second?.startsWith("kubeadm") ? ["kubeadm"] : ["host-init"];
    case "statics":
      // audit-policy and friends are read by the apiserver through the kubeadm config too.
      return ["host-init", "kubeadm"];
    default:
      return ["other"];
  }
}

const ALL_CLASSES: LayerClass[] = [
  "app:*",
  "manifests",
  "charts",
  "registry",
  "kube-bin",
  "host-init",
  "runtime",
  "kubeadm",
  "plugins",
];

/** Does a layer class reach an app's launch? (app:* reaches every app.) */
export function classTouchesApp(c: LayerClass, app: string): boolean {
  return c === `app:${app}` || c === "app:*";
}

/**
 * Env keys sealer itself interprets, and the steps that read them (beyond templates).
 * Keys not listed here reach a step only through templates (ImageFacts.templateEnvKeys) or
 * through `$KEY` / `${KEY}` in the step's own commands.
 */
export const ENV_CONSUMERS: Record<
  string,
  Array<"kubeadm-config" | "worker-vip" | "registry-client" | "container-runtime" | "init-host">
> = {
  PodCIDR: ["kubeadm-config"],
  SvcCIDR: ["kubeadm-config"],
  CertSANs: ["kubeadm-config"],
  UseIPasNodeName: ["kubeadm-config"],
  IPvsVIPv4: ["kubeadm-config", "worker-vip", "registry-client"],
  CgroupDriver: ["container-runtime", "init-host"],
  HostIP: ["init-host"],
};

export const DEFAULT_VIP = "10.103.97.2";

/** `$KEY` and `${KEY}` references in command text. */
export function envRefs(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g)) if (m[1]) out.add(m[1]);
  return [...out];
}

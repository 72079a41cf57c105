/**
 * The kubeadm configuration for a cluster (pure). Sources, later ones winning:
 *   1. built-in defaults (so an image without etc/kubeadm.yml still works),
 *   2. the image's etc/kubeadm.yml (after .tmpl rendering),
 *   3. the Clusterfile's kubeadm documents (InitConfiguration, ClusterConfiguration,
 *      JoinConfiguration, KubeletConfiguration, KubeProxyConfiguration), deep-merged by kind,
 *   4. the forced fields sealer also forces, because the install depends on them:
 *      advertiseAddress = master0, controlPlaneEndpoint = apiserver.cluster.local:6443,
 *      imageRepository = the cluster registry, certSANs include the VIP, the masters and
 *      apiserver.cluster.local, kube-proxy's IPVS excludes the VIP.
 */
import * as yaml from "js-yaml";
import { UserError } from "../errors";
import { deepMerge } from "../exec/templates";

export const APISERVER_DOMAIN = "apiserver.cluster.local";
export const DEFAULT_VIP = "10.103.97.2";
export const API_PORT = 6443;

export const KUBEADM_KINDS = [
  "InitConfiguration",
  "ClusterConfiguration",
  "JoinConfiguration",
  "KubeletConfiguration",
  "KubeProxyConfiguration",
] as const;
export type KubeadmKind = (typeof KUBEADM_KINDS)[number];

const API_VERSION: Record<KubeadmKind, string> = {
  InitConfiguration: "kubeadm.k8s.io/v1beta3",
  ClusterConfiguration: "kubeadm.k8s.io/v1beta3",
  JoinConfiguration: "kubeadm.k8s.io/v1beta3",
  KubeletConfiguration: "kubelet.config.k8s.io/v1beta1",
  KubeProxyConfiguration: "kubeproxy.config.k8s.io/v1alpha1",
};

type Doc = Record<string, unknown>;

export interface KubeadmInputs {
  /** Text of the image's etc/kubeadm.yml after rendering, if the image has one. */
  imageConfig?: string;
  /** The Clusterfile's kubeadm documents, parsed. */
  clusterDocs: unknown[];
  master0: string;
  masters: string[];
  /** "sea.hub:5000". */
  registry: string;
  kubeVersion?: string;
  env: Record<string, string>;
}

export interface KubeadmConfig {
  /** The merged documents, by kind. */
  docs: Record<KubeadmKind, Doc>;
  vip: string;
}

function defaults(): Record<KubeadmKind, Doc> {
  return {
    InitConfiguration: {
      localAPIEndpoint: { bindPort: API_PORT },
      nodeRegistration: { criSocket: "unix:///run/containerd/containerd.sock" },
    },
    ClusterConfiguration: {
      networking: { podSubnet: "100.64.0.0/10", serviceSubnet: "10.96.0.0/22" },
      apiServer: { certSANs: [] },
    },
    JoinConfiguration: { nodeRegistration: { criSocket: "unix:///run/containerd/containerd.sock" } },
    KubeletConfiguration: { cgroupDriver: "systemd" },
    KubeProxyConfiguration: { mode: "ipvs", ipvs: { excludeCIDRs: [] } },
  };
}

function docsByKind(list: unknown[], where: string): Partial<Record<KubeadmKind, Doc>> {
  const out: Partial<Record<KubeadmKind, Doc>> = {};
  for (const d of list) {
    if (!d || typeof d !== "object") continue;
    const kind = (d as Doc).kind as string | undefined;
    if (!kind || !(KUBEADM_KINDS as readonly string[]).includes(kind)) continue;
    const k = kind as KubeadmKind;
    out[k] = deepMerge(out[k] ?? {}, d) as Doc;
  }
  if (Object.keys(out).length === 0 && list.length > 0 && where === "image") return out;
  return out;
}

/** Merges all sources and forces the fields the install relies on. */
export function kubeadmConfig(inp: KubeadmInputs): KubeadmConfig {
  let imageDocs: unknown[] = [];
  if (inp.imageConfig !== undefined) {
    try {
      imageDocs = yaml.loadAll(inp.imageConfig);
    } catch (err) {
      throw new UserError(`etc/kubeadm.yml in the image is not YAML: ${(err as Error).message}`);
    }
  }
  const fromImage = docsByKind(imageDocs, "image");
  const fromCluster = docsByKind(inp.clusterDocs, "clusterfile");
  const base = defaults();
  const docs = {} as Record<KubeadmKind, Doc>;
  for (const k of KUBEADM_KINDS) docs[k] = deepMerge(deepMerge(base[k], fromImage[k]), fromCluster[k]) as Doc;

  const env = inp.env;
  const vip = env.IPvsVIPv4 || DEFAULT_VIP;
  const set = (doc: Doc, pathKeys: string[], value: unknown) => {
    let cur: Doc = doc;
    for (const p of pathKeys.slice(0, -1)) {
      const next = cur[p];
      if (!next || typeof next !== "object" || Array.isArray(next)) cur[p] = {};
      cur = cur[p] as Doc;
    }
    cur[pathKeys[pathKeys.length - 1]!] = value;
  };
  const get = (doc: Doc, pathKeys: string[]): unknown =>
    pathKeys.reduce<unknown>((c, p) => (c && typeof c === "object" ? (c as Doc)[p] : undefined), doc);

  const init = docs.InitConfiguration;
  set(init, ["localAPIEndpoint", "advertiseAddress"], inp.master0);
  if (get(init, ["localAPIEndpoint", "bindPort"]) === undefined)
    set(init, ["localAPIEndpoint", "bindPort"], API_PORT);

  const cc = docs.ClusterConfiguration;
  set(cc, ["controlPlaneEndpoint"], `${APISERVER_DOMAIN}:${API_PORT}`);
  set(cc, ["imageRepository"], inp.registry);
  if (inp.kubeVersion) set(cc, ["kubernetesVersion"], inp.kubeVersion);
  if (env.PodCIDR) set(cc, ["networking", "podSubnet"], env.PodCIDR);
  if (env.SvcCIDR) set(cc, ["networking", "serviceSubnet"], env.SvcCIDR);
  const sans = new Set<string>(
    ((get(cc, ["apiServer", "certSANs"]) as unknown[] | undefined) ?? []).map(String),
  );
  for (const s of ["127.0.0.1", "localhost", APISERVER_DOMAIN, vip, ...inp.masters]) sans.add(s);
  for (const s of (env.CertSANs ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean))
    sans.add(s);
  set(cc, ["apiServer", "certSANs"], [...sans]);

  const kp = docs.KubeProxyConfiguration;
  const excl = new Set<string>(
    ((get(kp, ["ipvs", "excludeCIDRs"]) as unknown[] | undefined) ?? []).map(String),
  );
  excl.add(`${vip}/32`);
  set(kp, ["ipvs", "excludeCIDRs"], [...excl]);

  if (env.CgroupDriver) set(docs.KubeletConfiguration, ["cgroupDriver"], env.CgroupDriver);

  for (const k of KUBEADM_KINDS) {
    docs[k].apiVersion = docs[k].apiVersion ?? API_VERSION[k];
    docs[k].kind = k;
  }
  return { docs, vip };
}

function dump(docs: Doc[]): string {
  return docs.map((d) => yaml.dump(orderHead(d), { lineWidth: -1, noRefs: true })).join("---\n");
}

function orderHead(d: Doc): Doc {
  const { apiVersion, kind, ...rest } = d;
  return { apiVersion, kind, ...rest };
}

/** The file `kubeadm init --config` reads on master0. */
export function initConfigYaml(
  cfg: KubeadmConfig,
  secrets?: { token: string; certificateKey: string },
): string {
  const d = cfg.docs;
  const init = secrets
    ? {
        ...d.InitConfiguration,
        bootstrapTokens: [
          {
            token: secrets.token,
            ttl: "24h0m0s",
            usages: ["signing", "authentication"],
            groups: ["system:bootstrappers:kubeadm:default-node-token"],
          },
        ],
        certificateKey: secrets.certificateKey,
      }
    : d.InitConfiguration;
  return dump([init, d.ClusterConfiguration, d.KubeletConfiguration, d.KubeProxyConfiguration]);
}

/**
 * The file `kubeadm join --config` reads on one host: masters advertise their own address and
 * join the control plane with the certificate key; workers reach the API through `endpoint`
 * (the VIP when worker-vip runs, as sealer does).
 */
export function joinConfigYaml(
  cfg: KubeadmConfig,
  host: { ip: string; master: boolean; endpoint: string },
  join: { token: string; caCertHash: string; certificateKey?: string },
): string {
  const j = deepMerge({}, cfg.docs.JoinConfiguration) as Doc;
  j.discovery = deepMerge((j.discovery as Doc | undefined) ?? {}, {
    bootstrapToken: { apiServerEndpoint: host.endpoint, token: join.token, caCertHashes: [join.caCertHash] },
    timeout: "5m0s",
  });
  if (host.master) {
    j.controlPlane = deepMerge((j.controlPlane as Doc | undefined) ?? {}, {
      localAPIEndpoint: { advertiseAddress: host.ip, bindPort: API_PORT },
      certificateKey: join.certificateKey,
    });
  } else delete j.controlPlane;
  return dump([j, cfg.docs.KubeletConfiguration]);
}

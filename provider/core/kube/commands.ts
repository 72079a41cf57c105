/**
 * Kubernetes specifics as shell text run on the nodes (pure). The commands are the real
 * kubeadm/kubectl command lines; the sandbox image's stand-ins accept the same ones.
 */
import { shellQuote } from "../ssh/shell";
import { parseTaintSpec } from "../runtime/taints";

export const ROLE_LABEL_MASTER = "node-role.kubernetes.io/control-plane";
export const ROLE_LABEL_WORKER = "node-role.kubernetes.io/worker";

export interface JoinMaterial {
  token: string;
  caCertHash: string;
  certificateKey?: string;
}

/** Pulls the join material out of `kubeadm init` / `token create --print-join-command` output. */
export function parseJoinOutput(text: string): Partial<JoinMaterial> {
  const flat = text.replace(/\\\s*\n\s*/g, " ");
  const out: Partial<JoinMaterial> = {};
  const token = /--token\s+(\S+)/.exec(flat)?.[1];
  const hash = /--discovery-token-ca-cert-hash\s+(\S+)/.exec(flat)?.[1];
  const key =
    /--certificate-key\s+([0-9a-f]{64})/.exec(flat)?.[1] ??
    /Using certificate key:\s*\n?\s*([0-9a-f]{64})/.exec(text)?.[1];
  if (token) out.token = token;
  if (hash) out.caCertHash = hash;
  if (key) out.certificateKey = key;
  return out;
}

/** The certificate key printed by `kubeadm init phase upload-certs --upload-certs`. */
export function parseCertificateKey(text: string): string | undefined {
  return /Using certificate key:\s*\n?\s*([0-9a-f]{64})/.exec(text)?.[1];
}

export function kubeadmInitCmd(configPath: string): string {
  return `kubeadm init --config ${shellQuote(configPath)} --upload-certs`;
}

export function kubeadmJoinCmd(configPath: string): string {
  return `kubeadm join --config ${shellQuote(configPath)}`;
}

/** Whether kubeadm already ran on the node (a retried step must not init/join twice). */
export const KUBELET_CONF = "/etc/kubernetes/kubelet.conf";
export const ADMIN_CONF = "/etc/kubernetes/admin.conf";

/**
 * kubectl commands that bring a node's labels and taints to the desired set. `previous` is what
 * we set last time, so labels and taints removed from the Clusterfile are removed from the node
 * (and nothing the user set by hand is touched).
 */
export function labelTaintCmds(
  node: string,
  desired: { labels: Record<string, string>; taints: string[] },
  previous: { labels: Record<string, string>; taints: string[] } = { labels: {}, taints: [] },
): string[] {
  const cmds: string[] = [];
  const n = shellQuote(node);
  const set = Object.entries(desired.labels).map(([k, v]) => shellQuote(`${k}=${v}`));
  const drop = Object.keys(previous.labels)
    .filter((k) => !(k in desired.labels))
    .map((k) => shellQuote(`${k}-`));
  if (set.length || drop.length)
    cmds.push(`kubectl label node ${n} --overwrite ${[...set, ...drop].join(" ")}`);
  const add: string[] = [];
  const remove: string[] = [];
  for (const t of desired.taints) {
    const p = parseTaintSpec(t);
    if (p.remove) remove.push(p.text);
    else add.push(p.text);
  }
  const desiredKeys = new Set(add.map((t) => parseTaintSpec(t).keyEffect));
  for (const t of previous.taints) {
    const p = parseTaintSpec(t);
    if (!p.remove && !desiredKeys.has(p.keyEffect)) remove.push(p.keyEffect);
  }
  if (add.length) cmds.push(`kubectl taint node ${n} --overwrite ${add.map(shellQuote).join(" ")}`);
  // Removing a taint that is not there fails in kubectl; the removals are best effort.
  for (const r of [...new Set(remove)])
    cmds.push(`kubectl taint node ${n} ${shellQuote(`${r}-`)} 2>/dev/null || true`);
  return cmds;
}

/** The saved Clusterfile as configmap kube-system/sealer-clusterfile. */
export function saveClusterfileCmd(file: string): string {
  return `kubectl -n kube-system create configmap sealer-clusterfile --from-file=Clusterfile=${shellQuote(file)} --dry-run=client -o yaml | kubectl apply -f -`;
}

/** Lifecycle steps: upgrade-master, upgrade-worker, clean-host, delete-node (the kubeadm flows of REFERENCE §5). */
import type { Step } from "../../plan/types";
import { removeClusterHostsBlocksCmd } from "../../runtime/hosts-file";
import { shellQuote } from "../../ssh";
import { collectBlobs } from "../blob-gc";
import type { ExecContext } from "../context";
import { API_PORT } from "../kubeadm-config";
import { registryBehindVip } from "./kube";
import { KUBELET_REGISTRY_CONFIG, externalRegistryHost } from "../../lifecycle/external-registry";
import { CONTAINERD_AUTH_FILE, containerdHostsDirs } from "../../runtime/registry";

const restartKubelet =
  "if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload && systemctl restart kubelet; fi";

export async function runUpgradeMaster(
  ctx: ExecContext,
  step: Extract<Step, { kind: "upgrade-master" }>,
): Promise<void> {
  // One master at a time; drain/uncordon from master0 (which is upgraded first).
  for (const ip of step.hosts) {
    const name = await ctx.nodeName(ip);
    const label = `upgrade-master ${step.version}`;
    await ctx.sh(
      ctx.master0,
      label,
      `kubectl drain ${shellQuote(name)} --ignore-daemonsets --delete-emptydir-data`,
    );
    const first = step.first && ip === ctx.master0;
    await ctx.sh(
      ip,
      label,
      first ? `kubeadm upgrade apply ${shellQuote(step.version)} -y` : "kubeadm upgrade node",
      { env: { SANDBOX_NODE_NAME: name } },
    );
    await ctx.sh(ip, label, restartKubelet);
    await ctx.sh(ctx.master0, label, `kubectl uncordon ${shellQuote(name)}`);
  }
}

export async function runUpgradeWorker(
  ctx: ExecContext,
  step: Extract<Step, { kind: "upgrade-worker" }>,
): Promise<void> {
  const label = `upgrade-worker ${step.version}`;
  // Bounded batches: at most a third of the workers (at least one) disrupted at once.
  const batch = Math.max(1, Math.floor(step.hosts.length / 3));
  await ctx.eachHost(
    step.hosts,
    async (ip) => {
      const name = await ctx.nodeName(ip);
      await ctx.sh(
        ctx.master0,
        label,
        `kubectl drain ${shellQuote(name)} --ignore-daemonsets --delete-emptydir-data`,
      );
      await ctx.sh(ip, label, "kubeadm upgrade node", { env: { SANDBOX_NODE_NAME: name } });
      await ctx.sh(ip, label, restartKubelet);
      await ctx.sh(ctx.master0, label, `kubectl uncordon ${shellQuote(name)}`);
    },
    batch,
  );
}

/**
 * clean-host: kubeadm reset, the registry stopped, the runtime uninstalled (the image's
 * uninstall script when present), our /etc/hosts blocks and registry client files removed, and
 * the cluster's directory under the data root deleted. Unreachable hosts fail the step: the
 * caller (delete) decides whether to skip them.
 */
export async function runCleanHost(
  ctx: ExecContext,
  step: Extract<Step, { kind: "clean-host" }>,
): Promise<void> {
  const reg = ctx.registryAddress();
  const hp = reg.external ? externalRegistryHost(reg.domain, reg.port) : `${reg.domain}:${reg.port}`;
  const cri = ctx.spec.containerRuntime?.type ?? ctx.image.containerRuntime ?? "containerd";
  const vip = ctx.vip();
  const cleanCmd = (ip: string) => {
    // Only workers have them (a removed host's role comes from the recorded state).
    const master = ctx.isMaster(ip) || !!ctx.state.hosts[ip]?.roles?.includes("master");
    const vipPorts = master ? [] : [API_PORT, ...(registryBehindVip(ctx) ? [reg.port] : [])];
    return [
      `if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f; fi`,
      `if [ -f ${shellQuote(ctx.clusterDir + "/registry/registry.pid")} ]; then kill "$(cat ${shellQuote(ctx.clusterDir + "/registry/registry.pid")})" 2>/dev/null || true; fi`,
      `if [ -f scripts/uninstall-${cri}.sh ]; then sh scripts/uninstall-${cri}.sh; fi`,
      `if [ -f scripts/clean-kube.sh ]; then sh scripts/clean-kube.sh; fi`,
      // A worker's virtual servers (API server, HA registry): sealer's tool or plain ipvsadm.
      ...(vipPorts.length
        ? [
            `if [ -x bin/seautil ]; then ${vipPorts.map((p) => `seautil ipvs --vs ${vip}:${p} -C`).join("; ")}; fi`,
            `if command -v ipvsadm >/dev/null 2>&1; then ${vipPorts.map((p) => `ipvsadm -D -t ${vip}:${p} 2>/dev/null`).join("; ")}; true; fi`,
          ]
        : []),
      `ip link del sealer-vip 2>/dev/null || true`,
      `rm -rf ${[...containerdHostsDirs(hp), `/etc/docker/certs.d/${hp}`].map(shellQuote).join(" ")} /etc/kubernetes/manifests/kube-lvscare.yaml`,
      // The registry's pull credentials (registry-client wrote them for kubelet: an external
      // registry, or the cluster's own registry with htpasswd).
      ...(reg.external || (reg.username && reg.password)
        ? [`rm -f ${KUBELET_REGISTRY_CONFIG} ${CONTAINERD_AUTH_FILE}`]
        : []),
      removeClusterHostsBlocksCmd(ctx.cluster),
      `cd / && rm -rf ${shellQuote(ctx.clusterDir)}`,
    ].join("; ");
  };
  await ctx.eachHost(step.hosts, async (ip) => {
    await ctx.sh(ip, "clean-host", cleanCmd(ip));
    // The cluster's layers.json is gone with its directory: its blobs are garbage unless another
    // cluster on the host uses them.
    await collectBlobs(ctx, ip, "cluster removed from the host");
  });
}

export async function runDeleteNode(
  ctx: ExecContext,
  step: Extract<Step, { kind: "delete-node" }>,
): Promise<void> {
  const from = step.hosts[0] ?? ctx.master0;
  const names = step.nodes.map((n) => ctx.state.hosts[n]?.nodeName ?? n);
  if (names.length)
    await ctx.sh(from, "delete-node", `kubectl delete node ${names.map(shellQuote).join(" ")}`);
}

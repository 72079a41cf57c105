/**
 * clean-host: kubeadm reset, the registry stopped, the runtime uninstalled (the image's
 * uninstall script when present), our /etc/hosts blocks and registry client files removed, and
 * the cluster's directory under the data root deleted. Unreachable hosts fail the step: the
 * caller (delete) decides whether to skip them.
 */
import { KUBELET_REGISTRY_CONFIG, externalRegistryHost } from "../../lifecycle/external-registry";
import { removeClusterHostsBlocksCmd } from "../../runtime/hosts-file";
import { CONTAINERD_AUTH_FILE, containerdHostsDirs } from "../../runtime/registry";
import { shellQuote } from "../../ssh";
import { collectBlobs } from "../blob-gc";
import type { ExecContext } from "../context";
import { API_PORT } from "../../kube/kubeadm-config";
import { keyOnly, type Observed, type StepKindDef, type StepOf } from "./kind";

async function run(ctx: ExecContext, step: StepOf<"clean-host">): Promise<Observed> {
  const reg = ctx.registryAddress();
  const hp = reg.external ? externalRegistryHost(reg.domain, reg.port) : `${reg.domain}:${reg.port}`;
  const cri = ctx.spec.containerRuntime?.type ?? ctx.image.containerRuntime ?? "containerd";
  const vip = ctx.vip();
  const cleanCmd = (ip: string) => {
    // Only workers have them (a removed host's role comes from the recorded state).
    const master = ctx.isMaster(ip) || !!ctx.state.hosts[ip]?.roles?.includes("master");
    const vipPorts = master ? [] : [API_PORT, ...(ctx.registryBehindVip() ? [reg.port] : [])];
    return [
      `if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f; fi`,
      `if [ -f ${shellQuote(ctx.clusterDir + "/registry/registry.pid")} ]; then kill "$(cat ${shellQuote(ctx.clusterDir + "/registry/registry.pid")})" 2>/dev/null || true; fi`,
      `if [ -f scripts/uninstall-${cri}.sh ]; then sh scripts/uninstall-${cri}.sh; fi`,
      `if [ -f scripts/clean-kube.sh ]; then sh scripts/clean-kube.sh; fi`,
      // A worker's virtual servers (API server, HA registry): sealer's tool or plain ipvsadm.
      ...(vipPorts.length
        ? [
            `if [ -x bin/seautil ]; then ${vipPorts.map((p) => `seautil ipvs --vs ${shellQuote(`${vip}:${p}`)} -C`).join("; ")}; fi`,
            `if command -v ipvsadm >/dev/null 2>&1; then ${vipPorts.map((p) => `ipvsadm -D -t ${shellQuote(`${vip}:${p}`)} 2>/dev/null`).join("; ")}; true; fi`,
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
  return {};
}

export const cleanHost: StepKindDef<"clean-host"> = { run, record: keyOnly };

/**
 * worker-vip: on every worker an IPVS virtual server VIP:6443 -> every master:6443 and the
 * lvscare static pod that keeps it (sealer's design), and apiserver.cluster.local -> VIP.
 * Where IPVS is unavailable (no ip_vs module, or no ipvsadm), the step fails with that reason.
 */
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { shellQuote as q } from "../../ssh/shell";
import type { ExecContext } from "../context";
import { hashes, type Footprint } from "../footprint";
import { APISERVER_DOMAIN, API_PORT } from "../../kube/kubeadm-config";
import { keyOnly, type Observed, type StepKindDef, type StepOf } from "./kind";

/**
 * The commands that set a worker's virtual servers `vip:port` -> every master: sealer's own tool
 * when the image ships it (bin/seautil ipvs), else ipvsadm on the host. Every word is quoted.
 */
export function workerVipCommands(
  vip: string,
  masters: string[],
  services: Array<{ port: number; healthPath: string }>,
): { seautil: string; ipvsadm: string } {
  const seautil = services
    .map(
      (sv) =>
        `seautil ipvs --vs ${q(`${vip}:${sv.port}`)} ${masters.map((m) => `--rs ${q(`${m}:${sv.port}`)}`).join(" ")} --health-path ${q(sv.healthPath)} --health-schem https --run-once`,
    )
    .join(" && ");
  const ipvsadm = [
    `command -v ipvsadm >/dev/null || { echo "neither bin/seautil in the image nor ipvsadm on this host; install ipvsadm (Debian: apt-get install ipvsadm)" >&2; exit 1; }`,
    `{ ip link show sealer-vip >/dev/null 2>&1 || ip link add sealer-vip type dummy; }`,
    `ip addr replace ${q(`${vip}/32`)} dev sealer-vip`,
    `ip link set sealer-vip up`,
    ...services.flatMap((sv) => [
      `{ ipvsadm -D -t ${q(`${vip}:${sv.port}`)} 2>/dev/null || true; }`,
      `ipvsadm -A -t ${q(`${vip}:${sv.port}`)} -s rr`,
      ...masters.map((m) => `ipvsadm -a -t ${q(`${vip}:${sv.port}`)} -r ${q(`${m}:${sv.port}`)} -m`),
    ]),
  ].join(" && ");
  return { seautil, ipvsadm };
}

async function run(ctx: ExecContext, step: StepOf<"worker-vip">): Promise<Observed> {
  const cfg = await ctx.kubeadm("worker-vip");
  const vip = cfg.vip;
  const masters = step.masters.length ? step.masters : ctx.masters;
  const reg = ctx.registryAddress();
  // The API server, and the registry on :5000 when it runs on every master (HA): workers reach
  // both through the VIP, so adding or removing a master re-points them here.
  const services = [{ name: "kube-lvscare", port: API_PORT, healthPath: "/healthz" }];
  if (ctx.registryBehindVip())
    services.push({ name: "kube-lvscare-registry", port: reg.port, healthPath: "/v2/" });
  const rsArgs = (port: number) => masters.map((m) => `--rs, "${m}:${port}"`).join(", ");
  const manifest = [
    "apiVersion: v1",
    "kind: Pod",
    "metadata: { name: kube-lvscare, namespace: kube-system, labels: { component: kube-lvscare, tier: control-plane } }",
    "spec:",
    "  hostNetwork: true",
    "  priorityClassName: system-node-critical",
    "  containers:",
    ...services.flatMap((sv) => [
      `  - name: ${sv.name}`,
      `    image: ${reg.domain}:${reg.port}/sealerio/lvscare:v4.1.3`,
      `    command: [/usr/bin/lvscare]`,
      `    args: [care, --vs, "${vip}:${sv.port}", --health-path, ${sv.healthPath}, --health-schem, https, ${rsArgs(sv.port)}]`,
      "    securityContext: { privileged: true }",
    ]),
    "",
  ].join("\n");
  const lvscare = "/etc/kubernetes/manifests/kube-lvscare.yaml";
  const footprint: Footprint = {};
  await ctx.eachHost(step.hosts, async (ip) => {
    const { seautil, ipvsadm } = workerVipCommands(vip, masters, services);
    await ctx.sh(ip, "worker-vip", `if [ -x bin/seautil ]; then ${seautil}; else ${ipvsadm}; fi`);
    await ctx.put(ip, "worker-vip", lvscare, manifest, 0o644);
    footprint[ip] = { files: hashes({ [lvscare]: manifest }) };
    await ctx.sh(
      ip,
      "worker-vip",
      setHostsBlockCmd(ctx.cluster, "apiserver", [{ ip: vip, names: [APISERVER_DOMAIN] }]),
    );
    ctx
      .log(ip)
      .info(`worker-vip: ${vip}:${services.map((sv) => sv.port).join(",")} -> ${masters.join(", ")}`);
  });
  return { footprint };
}

export const workerVip: StepKindDef<"worker-vip"> = {
  run,
  record: keyOnly,
  probe: {
    expect: ({ ip, layout, recorded, worker }) =>
      worker && recorded(`worker-vip:${ip}`)
        ? {
            blocks: [
              {
                tag: "apiserver",
                lines: [`${layout.vip} ${layout.apiserverDomain}`],
                steps: [`worker-vip:${ip}`],
              },
            ],
          }
        : {},
  },
};

/** Kubernetes steps: kubeadm-config, init-master, join-master, join-worker, node-labels, worker-vip. */
import { findHost } from "../../clusterfile";
import type { Step } from "../../plan/types";
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { randomBytes } from "node:crypto";
import {
  ADMIN_CONF,
  KUBELET_CONF,
  ROLE_LABEL_WORKER,
  kubeadmInitCmd,
  kubeadmJoinCmd,
  labelTaintCmds,
  parseJoinOutput,
} from "../../runtime/kube";
import type { ExecContext } from "../context";
import { hashes, type Footprint } from "../footprint";
import { APISERVER_DOMAIN, API_PORT, initConfigYaml, joinConfigYaml } from "../kubeadm-config";

const initConfigPath = (ctx: ExecContext) => `${ctx.clusterDir}/kubeadm/kubeadm-init.yaml`;
const joinConfigPath = (ctx: ExecContext) => `${ctx.clusterDir}/kubeadm/kubeadm-join.yaml`;

async function withNodeName(ctx: ExecContext, ip: string, step: string, yamlText: string): Promise<string> {
  // kubeadm refuses --node-name together with --config: the name goes into nodeRegistration.
  const name = await ctx.nodeName(ip);
  void step;
  return yamlText.replace(/^nodeRegistration:\n/m, `nodeRegistration:\n  name: ${name}\n`);
}

export async function runKubeadmConfig(
  ctx: ExecContext,
  _step: Extract<Step, { kind: "kubeadm-config" }>,
): Promise<void> {
  const cfg = await ctx.kubeadm("kubeadm-config");
  const text = await withNodeName(ctx, ctx.master0, "kubeadm-config", initConfigYaml(cfg));
  await ctx.put(ctx.master0, "kubeadm-config", initConfigPath(ctx), text, 0o600);
  ctx.log(ctx.master0).info(`kubeadm-config: wrote ${initConfigPath(ctx)}`);
}

function recordSecrets(
  ctx: ExecContext,
  m: { token?: string; caCertHash?: string; certificateKey?: string; kubeconfig?: string },
): void {
  for (const v of Object.values(m)) ctx.secret(v);
  ctx.state.secrets = {
    ...(ctx.state.secrets ?? {}),
    ...Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined)),
  };
}

export async function runInitMaster(
  ctx: ExecContext,
  _step: Extract<Step, { kind: "init-master" }>,
): Promise<void> {
  const m0 = ctx.master0;
  const step = "init-master";
  await ctx.sh(m0, step, setHostsBlockCmd(ctx.cluster, "apiserver", [{ ip: m0, names: [APISERVER_DOMAIN] }]));
  const done = await ctx.sh(m0, step, `test -f ${ADMIN_CONF}`, { allowFail: true, quiet: true });
  if (done.code === 0) {
    // kubeadm init already ran (an earlier apply stopped before recording it): take fresh join material instead.
    ctx
      .log(m0)
      .info(`init-master: ${ADMIN_CONF} exists, kubeadm init already ran; refreshing the join material`);
    await refreshJoin(ctx);
  } else {
    // The token and certificate key are made here and registered as secrets before kubeadm
    // prints them, so they never reach a log.
    const token = ctx.secret(newToken())!;
    const certificateKey = ctx.secret(randomBytes(32).toString("hex"))!;
    const cfg = await ctx.kubeadm(step);
    const text = await withNodeName(ctx, m0, step, initConfigYaml(cfg, { token, certificateKey }));
    await ctx.put(m0, step, initConfigPath(ctx), text, 0o600);
    const r = await ctx.sh(m0, step, kubeadmInitCmd(initConfigPath(ctx)));
    const j = parseJoinOutput(r.stdout);
    if (!j.caCertHash)
      throw new Error(
        `[${m0}] step "${step}": kubeadm init succeeded but printed no join command with the CA hash`,
      );
    recordSecrets(ctx, { token, certificateKey, caCertHash: j.caCertHash });
    ctx.freshJoin = true;
  }
  const kubeconfig = await ctx.read(m0, step, ADMIN_CONF);
  if (kubeconfig) recordSecrets(ctx, { kubeconfig });
  ctx.state.hosts[m0] = {
    ...(ctx.state.hosts[m0] ?? { roles: ["master"], layers: [] }),
    nodeName: await ctx.nodeName(m0),
  };
}

/** A new bootstrap token and certificate key from master0 (both expire: never reuse old ones). */
async function refreshJoin(ctx: ExecContext): Promise<void> {
  const m0 = ctx.master0;
  const token = ctx.secret(newToken())!;
  const certificateKey = ctx.secret(randomBytes(32).toString("hex"))!;
  const t = await ctx.sh(m0, "join material", `kubeadm token create ${token} --print-join-command`, {
    quiet: true,
  });
  const j = parseJoinOutput(t.stdout);
  await ctx.sh(
    m0,
    "join material",
    `kubeadm init phase upload-certs --upload-certs --certificate-key ${certificateKey}`,
    { quiet: true },
  );
  if (!j.caCertHash)
    throw new Error(`[${m0}] step "join material": could not read the CA hash from kubeadm's output`);
  recordSecrets(ctx, { token, caCertHash: j.caCertHash, certificateKey });
  ctx.freshJoin = true;
}

/** A bootstrap token in kubeadm's format [a-z0-9]{6}.[a-z0-9]{16}. */
export function newToken(): string {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  const pick = (n: number) => Array.from(randomBytes(n), (b) => abc[b % abc.length]).join("");
  return `${pick(6)}.${pick(16)}`;
}

async function joinMaterial(
  ctx: ExecContext,
): Promise<{ token: string; caCertHash: string; certificateKey: string }> {
  if (!ctx.freshJoin) await refreshJoin(ctx);
  const s = ctx.state.secrets ?? {};
  if (!s.token || !s.caCertHash || !s.certificateKey) throw new Error("join material missing after refresh");
  return { token: s.token, caCertHash: s.caCertHash, certificateKey: s.certificateKey };
}

async function joinHost(ctx: ExecContext, ip: string, master: boolean): Promise<void> {
  const step = master ? "join-master" : "join-worker";
  const log = ctx.log(ip);
  const name = await ctx.nodeName(ip);
  // Masters join through master0 and point at themselves afterwards; workers go through the VIP
  // when worker-vip already set apiserver.cluster.local up, else through master0.
  const pointTo = setHostsBlockCmd(ctx.cluster, "apiserver", [
    { ip: ctx.master0, names: [APISERVER_DOMAIN] },
  ]);
  if (master) await ctx.sh(ip, step, pointTo);
  else
    await ctx.sh(
      ip,
      step,
      `grep -qxF '# BEGIN sealer:${ctx.cluster}:apiserver' /etc/hosts || { ${pointTo}; }`,
    );
  const joined = await ctx.sh(ip, step, `test -f ${KUBELET_CONF}`, { allowFail: true, quiet: true });
  if (joined.code === 0) {
    log.info(`${step}: ${KUBELET_CONF} exists, the node already joined`);
  } else {
    const m = await joinMaterial(ctx);
    const cfg = await ctx.kubeadm(step);
    const text = await withNodeName(
      ctx,
      ip,
      step,
      joinConfigYaml(
        cfg,
        { ip, master, endpoint: `${APISERVER_DOMAIN}:${API_PORT}` },
        master ? m : { token: m.token, caCertHash: m.caCertHash },
      ),
    );
    await ctx.put(ip, step, joinConfigPath(ctx), text, 0o600);
    await ctx.sh(ip, step, kubeadmJoinCmd(joinConfigPath(ctx)));
  }
  if (master)
    await ctx.sh(ip, step, setHostsBlockCmd(ctx.cluster, "apiserver", [{ ip, names: [APISERVER_DOMAIN] }]));
  ctx.state.hosts[ip] = {
    ...(ctx.state.hosts[ip] ?? { roles: [master ? "master" : "node"], layers: [] }),
    nodeName: name,
  };
}

export async function runJoinMaster(
  ctx: ExecContext,
  step: Extract<Step, { kind: "join-master" }>,
): Promise<void> {
  // Strictly one at a time: etcd membership changes must not overlap.
  for (const ip of step.hosts) await joinHost(ctx, ip, true);
}

export async function runJoinWorker(
  ctx: ExecContext,
  step: Extract<Step, { kind: "join-worker" }>,
): Promise<void> {
  await ctx.eachHost(step.hosts, (ip) => joinHost(ctx, ip, false));
}

export async function runNodeLabels(
  ctx: ExecContext,
  step: Extract<Step, { kind: "node-labels" }>,
): Promise<void> {
  const cmds: string[] = [];
  const updates: Array<{ ip: string; labels: Record<string, string>; taints: string[] }> = [];
  for (const ip of step.hosts) {
    const h = findHost(ctx.spec, ip);
    const labels: Record<string, string> = {
      ...(ctx.isMaster(ip) ? {} : { [ROLE_LABEL_WORKER]: "" }),
      ...(h?.labels ?? {}),
    };
    const taints = h?.taints ?? [];
    const prev = ctx.state.hosts[ip];
    cmds.push(
      ...labelTaintCmds(
        await ctx.nodeName(ip),
        { labels, taints },
        { labels: prev?.labels ?? {}, taints: prev?.taints ?? [] },
      ),
    );
    updates.push({ ip, labels, taints });
  }
  if (cmds.length) await ctx.sh(ctx.master0, "node-labels", cmds.join(" && "));
  for (const u of updates) {
    const cur = ctx.state.hosts[u.ip] ?? { roles: [ctx.isMaster(u.ip) ? "master" : "node"], layers: [] };
    ctx.state.hosts[u.ip] = {
      ...cur,
      labels: u.labels,
      taints: u.taints.filter((t) => !t.endsWith("-")),
      nodeName: await ctx.nodeName(u.ip),
    };
  }
}

/** Workers reach the local registry through the VIP when it runs on every master (HA). */
export function registryBehindVip(ctx: ExecContext): boolean {
  return ctx.registryBehindVip();
}

/**
 * worker-vip: on every worker an IPVS virtual server VIP:6443 -> every master:6443 and the
 * lvscare static pod that keeps it (sealer's design), and apiserver.cluster.local -> VIP.
 * Where IPVS is unavailable (no ip_vs module, or no ipvsadm), the step fails with that reason.
 */
export async function runWorkerVip(
  ctx: ExecContext,
  step: Extract<Step, { kind: "worker-vip" }>,
): Promise<Footprint> {
  const cfg = await ctx.kubeadm("worker-vip");
  const vip = cfg.vip;
  const masters = step.masters.length ? step.masters : ctx.masters;
  const reg = ctx.registryAddress();
  // The API server, and the registry on :5000 when it runs on every master (HA): workers reach
  // both through the VIP, so adding or removing a master re-points them here.
  const services = [{ name: "kube-lvscare", port: API_PORT, healthPath: "/healthz" }];
  if (registryBehindVip(ctx))
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
  const fp: Footprint = {};
  await ctx.eachHost(step.hosts, async (ip) => {
    // sealer's own tool when the image ships it (bin/seautil ipvs), else ipvsadm on the host.
    const seautil = services
      .map(
        (sv) =>
          `seautil ipvs --vs ${vip}:${sv.port} ${masters.map((m) => `--rs ${m}:${sv.port}`).join(" ")} --health-path ${sv.healthPath} --health-schem https --run-once`,
      )
      .join(" && ");
    const ipvsadm = [
      `command -v ipvsadm >/dev/null || { echo "neither bin/seautil in the image nor ipvsadm on this host; install ipvsadm (Debian: apt-get install ipvsadm)" >&2; exit 1; }`,
      `{ ip link show sealer-vip >/dev/null 2>&1 || ip link add sealer-vip type dummy; }`,
      `ip addr replace ${vip}/32 dev sealer-vip`,
      `ip link set sealer-vip up`,
      ...services.flatMap((sv) => [
        `{ ipvsadm -D -t ${vip}:${sv.port} 2>/dev/null || true; }`,
        `ipvsadm -A -t ${vip}:${sv.port} -s rr`,
        ...masters.map((m) => `ipvsadm -a -t ${vip}:${sv.port} -r ${m}:${sv.port} -m`),
      ]),
    ].join(" && ");
    await ctx.sh(ip, "worker-vip", `if [ -x bin/seautil ]; then ${seautil}; else ${ipvsadm}; fi`);
    await ctx.put(ip, "worker-vip", lvscare, manifest, 0o644);
    fp[ip] = { files: hashes({ [lvscare]: manifest }) };
    await ctx.sh(
      ip,
      "worker-vip",
      setHostsBlockCmd(ctx.cluster, "apiserver", [{ ip: vip, names: [APISERVER_DOMAIN] }]),
    );
    ctx
      .log(ip)
      .info(`worker-vip: ${vip}:${services.map((sv) => sv.port).join(",")} -> ${masters.join(", ")}`);
  });
  return fp;
}

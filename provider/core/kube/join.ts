/**
 * The node side of kubeadm: where the init/join configs go on a node, the node's name in them,
 * the join material (made or fetched once per apply) and the join flow masters and workers share.
 */
import { randomBytes } from "node:crypto";
import { setHostsBlockCmd } from "../runtime/hosts-file";
import { KUBELET_CONF, kubeadmJoinCmd, parseJoinOutput, type JoinMaterial } from "./commands";
import type { ExecContext } from "../exec/context";
import { APISERVER_DOMAIN, API_PORT, joinConfigYaml } from "./kubeadm-config";
import type { HostFacts, Observed, RecordKit } from "../exec/steps/kind";

export const initConfigPath = (ctx: ExecContext): string => `${ctx.clusterDir}/kubeadm/kubeadm-init.yaml`;
const joinConfigPath = (ctx: ExecContext) => `${ctx.clusterDir}/kubeadm/kubeadm-join.yaml`;

/** kubeadm refuses --node-name together with --config: the name goes into nodeRegistration. */
export async function withNodeName(ctx: ExecContext, ip: string, yamlText: string): Promise<string> {
  const name = await ctx.nodeName(ip);
  return yamlText.replace(/^nodeRegistration:\n/m, `nodeRegistration:\n  name: ${name}\n`);
}

/** A bootstrap token in kubeadm's format [a-z0-9]{6}.[a-z0-9]{16}. */
export function newToken(): string {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  const pick = (n: number) => Array.from(randomBytes(n), (b) => abc[b % abc.length]).join("");
  return `${pick(6)}.${pick(16)}`;
}

/** A new token and certificate key, registered as secrets before any command can print them. */
export function newJoinSecrets(ctx: ExecContext): { token: string; certificateKey: string } {
  return { token: ctx.secret(newToken())!, certificateKey: ctx.secret(randomBytes(32).toString("hex"))! };
}

/** A new bootstrap token and certificate key from master0 (both expire: never reuse old ones). */
export async function refreshJoin(ctx: ExecContext): Promise<Required<JoinMaterial>> {
  const m0 = ctx.master0;
  const { token, certificateKey } = newJoinSecrets(ctx);
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
  ctx.secret(j.caCertHash);
  ctx.join = { token, caCertHash: j.caCertHash, certificateKey };
  return ctx.join;
}

/** Joins one host (idempotent: a host whose kubelet.conf exists is not joined again); its node name. */
export async function joinHost(ctx: ExecContext, ip: string, master: boolean): Promise<string> {
  const step = master ? "join-master" : "join-worker";
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
    ctx.log(ip).info(`${step}: ${KUBELET_CONF} exists, the node already joined`);
  } else {
    const m = ctx.join ?? (await refreshJoin(ctx));
    const cfg = await ctx.kubeadm(step);
    const text = await withNodeName(
      ctx,
      ip,
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
  return name;
}

/** What a join observed: each host's node name, and the join material it made or refreshed. */
export function joined(ctx: ExecContext, nodeNames: Record<string, string>): Observed {
  const hosts: Record<string, HostFacts> = {};
  for (const [ip, nodeName] of Object.entries(nodeNames)) hosts[ip] = { nodeName };
  return { hosts, ...(ctx.join ? { secrets: { ...ctx.join } } : {}) };
}

/** What a join leaves in the applied state: each joined host's Kubernetes key and its roles. */
export function recordJoined(step: { hosts: string[] }, kit: RecordKit): void {
  for (const ip of step.hosts) {
    kit.setKube(ip);
    kit.host(ip).roles = kit.roles(ip);
  }
}

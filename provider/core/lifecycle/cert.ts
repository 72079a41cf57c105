/**
 * `sealer cert --alt-names a,b`: adds SANs to the API server certificate on every master
 * (kubeadm's `init phase certs apiserver --apiserver-cert-extra-sans`, the old certificate kept
 * beside it), restarts the API server static pod, checks the new certificate names them, and
 * records them as the cluster's CertSANs env so masters joined later get them too (the next
 * apply re-renders only the kubeadm config).
 */
import { applyCluster, type ApplyResult } from "../apply";
import { ipFamily } from "../clusterfile";
import { throwIfProblems, UserError } from "../errors";
import { shellQuote } from "../ssh";
import { resolveCluster, recordSpec, type ClusterRef } from "./cluster-ref";
import { ranSteps, type RanStep } from "./ran-steps";
import { withSession, type LifecycleOptions } from "./session";

const DNS = /^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

/** Parses and checks `--alt-names` (comma list of DNS names and IPs); all problems at once. */
export function parseAltNames(text: string): string[] {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const problems: string[] = [];
  if (items.length === 0)
    problems.push("give at least one name or IP: --alt-names api.example.com,10.0.0.10");
  for (const it of items) {
    let ip = false;
    try {
      ip = ipFamily(it) !== undefined && ipFamily(it) !== null;
    } catch {
      ip = false;
    }
    if (!ip && !DNS.test(it.toLowerCase())) problems.push(`"${it}" is neither an IP address nor a DNS name`);
  }
  throwIfProblems("--alt-names", problems);
  return [...new Set(items.map((i) => i.toLowerCase()))];
}

export function currentCertSans(env: Record<string, string[]>): string[] {
  return (env.CertSANs ?? [])
    .flatMap((v) => v.split(/[,;]/))
    .map((s) => s.trim())
    .filter(Boolean);
}

export async function addCertSans(
  o: ClusterRef & LifecycleOptions & { altNames: string[]; now?: Date },
): Promise<{ steps: RanStep[]; sans: string[]; apply: ApplyResult }> {
  const r = await resolveCluster(o);
  if (!r.applied.steps["init-master"])
    throw new UserError(
      `cluster ${r.spec.name} has not been created yet: run sealer run or sealer apply first`,
    );
  const sans = [...new Set([...currentCertSans(r.spec.env), ...o.altNames])];
  const stamp = (o.now ?? new Date()).toISOString().replace(/[-:.]/g, "");
  const steps: RanStep[] = [];
  await withSession(r.spec, r.applied, r.stateDir, o, async (ctx) => {
    const cfg = await ctx.kubeadm("cert");
    // One master at a time: the others keep serving while an API server restarts.
    for (const ip of ctx.masters) {
      const started = Date.now();
      const all = [...new Set([...sans, "apiserver.cluster.local", cfg.vip, ...ctx.masters, "127.0.0.1"])];
      const pki = "/etc/kubernetes/pki";
      const keep = `${pki}/sealer-cert-${stamp}`;
      const cmd = [
        `set -e`,
        `mkdir -p ${shellQuote(keep)}`,
        `for f in apiserver.crt apiserver.key; do if [ -f ${pki}/$f ]; then mv ${pki}/$f ${shellQuote(keep)}/; fi; done`,
        `kubeadm init phase certs apiserver --apiserver-advertise-address ${shellQuote(ip)} --apiserver-cert-extra-sans ${shellQuote(all.join(","))}`,
        // The kubelet restarts a static pod whose manifest goes away and comes back.
        `if [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]; then mv /etc/kubernetes/manifests/kube-apiserver.yaml ${shellQuote(keep)}/kube-apiserver.yaml && sleep 1 && mv ${shellQuote(keep)}/kube-apiserver.yaml /etc/kubernetes/manifests/; fi`,
        `openssl x509 -in ${pki}/apiserver.crt -noout -ext subjectAltName`,
      ].join("\n");
      const out = await ctx.sh(ip, "cert", cmd);
      const missing = o.altNames.filter(
        (n) =>
          !new RegExp(`(DNS|IP Address):${n.replace(/[.*]/g, (c) => `\\${c}`)}(,|$|\\s)`, "i").test(
            out.stdout,
          ),
      );
      if (missing.length)
        throw new UserError(
          `[${ip}] step "cert": the new API server certificate does not name ${missing.join(", ")}; check the names (kubeadm drops ones it cannot use) and run sealer cert again`,
          { exitCode: 1 },
        );
      steps.push({
        kind: "cert",
        hosts: [ip],
        reason: `apiserver certificate re-issued with ${o.altNames.join(", ")}`,
        durationMs: Date.now() - started,
      });
    }
  });
  const spec = { ...r.spec, env: { ...r.spec.env, CertSANs: [sans.join(",")] } };
  const apply = await applyCluster({
    spec,
    stateDir: r.stateDir,
    ...(o.store ? { store: o.store } : {}),
    ...(o.knownHostsFile ? { knownHostsFile: o.knownHostsFile } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
  });
  await recordSpec(spec, o.home);
  return {
    steps: [...steps, ...ranSteps(apply)],
    sans,
    apply,
  };
}

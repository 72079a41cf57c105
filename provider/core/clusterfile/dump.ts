import * as yaml from "js-yaml";
import { LEGACY_ACTION_OF } from "./build";
import { Secret } from "./secret";
import type { ClusterSpec, Env, HostSpec, PluginDoc, SshSettings } from "./types";

/**
 * The spec back out as a Clusterfile (sealer.io/v2 + Config/Plugin/Application/kubeadm docs).
 * Secrets are written only with `{ secrets: true }` (a complete Clusterfile to hand back to a
 * user); otherwise they are left out entirely, not masked, so the output is still a valid
 * Clusterfile — what the cluster record and master0 keep, the secrets going to a file of their
 * own (spec-secrets.ts). Hosts with identical settings are grouped back into one entry.
 */
export function dumpClusterfile(spec: ClusterSpec, opts: { secrets?: boolean } = {}): string {
  const sec = (s: Secret | undefined) => (s && opts.secrets ? s.reveal() : undefined);
  const ssh = (s: Partial<SshSettings>) =>
    clean({
      user: s.user,
      passwd: sec(s.passwd),
      pk: s.pk,
      pkData: sec(s.pkData),
      pkPasswd: sec(s.pkPasswd),
      port: s.port === undefined ? undefined : String(s.port),
    });

  const groups: Array<{ host: HostSpec; ips: string[] }> = [];
  for (const h of spec.hosts) {
    const last = groups[groups.length - 1];
    if (last && sameSettings(last.host, h, opts.secrets === true)) last.ips.push(...h.ips);
    else groups.push({ host: h, ips: [...h.ips] });
  }
  const reg = spec.registry.externalRegistry
    ? {
        externalRegistry: clean({
          ...spec.registry.externalRegistry,
          password: sec(spec.registry.externalRegistry.password),
        }),
      }
    : spec.registry.localRegistry
      ? {
          localRegistry: clean({
            ...spec.registry.localRegistry,
            password: sec(spec.registry.localRegistry.password),
            cert: spec.registry.localRegistry.cert
              ? { subjectAltName: spec.registry.localRegistry.cert }
              : undefined,
          }),
        }
      : undefined;
  const cluster = doc(
    "Cluster",
    spec.name,
    clean({
      image: spec.image,
      env: envList(spec.env),
      cmd: spec.cmd.length ? spec.cmd : undefined,
      appNames: spec.appNames.length ? spec.appNames : undefined,
      ssh: ssh(spec.ssh),
      hosts: groups.map(({ host, ips }) =>
        clean({
          ips,
          roles: host.roles,
          ssh: Object.keys(host.ssh).length ? ssh(host.ssh) : undefined,
          env: envList(host.env),
          labels: Object.keys(host.labels).length ? host.labels : undefined,
          taints: host.taints.length ? host.taints : undefined,
        }),
      ),
      containerRuntime: spec.containerRuntime,
      hostAliases: spec.hostAliases.length ? spec.hostAliases : undefined,
      registry: reg,
      dataRoot: spec.dataRoot,
      distribution: spec.distribution,
    }),
  );
  const docs: unknown[] = [cluster];
  for (const c of spec.configs)
    docs.push(
      doc(
        "Config",
        c.name,
        clean({
          path: c.path,
          data: c.data,
          strategy: c.strategy,
          process: c.process.length ? c.process.join("|") : undefined,
          appName: c.appName,
        }),
      ),
    );
  for (const p of spec.plugins) {
    const byName = legacyByName(p);
    docs.push(
      doc(
        "Plugin",
        byName ?? p.name,
        clean({
          type: byName ? undefined : p.type,
          // A legacy plugin is written with legacy action names so it reads back as legacy.
          action:
            (p.legacy ? p.actions.map((a) => LEGACY_ACTION_OF[a] ?? a) : p.actions).join("|") || undefined,
          scope: p.scope.join("|") || undefined,
          on: p.on,
          data: p.data,
        }),
      ),
    );
  }
  if (spec.application) {
    const a = spec.application;
    docs.push(
      doc(
        "Application",
        a.name,
        clean({
          cmds: a.cmds.length ? a.cmds : undefined,
          launchApps: a.launchApps.length ? a.launchApps : undefined,
          configs: a.configs.length
            ? a.configs.map((c) =>
                clean({
                  name: c.name,
                  env: envList(c.env),
                  files: c.files.length ? c.files : undefined,
                  launch: c.launchCmds ? { cmds: c.launchCmds } : undefined,
                }),
              )
            : undefined,
        }),
      ),
    );
  }
  for (const k of ["init", "cluster", "join", "kubelet", "kubeProxy"] as const)
    if (spec.kubeadm[k]) docs.push(spec.kubeadm[k]);
  return docs.map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true })).join("---\n");
}

/** One sealer.io/v2 document. */
/**
 * A legacy plugin reads back as legacy from its `on`, a legacy action name, or (sealer <= 0.4)
 * a name that is its type and no `type` field. When only the last made it legacy, and none of
 * its phases has a legacy name (upgrade, rollback...), that form is the one to write: the name
 * without the "#2" the loader adds to repeated names, which it adds again in the same order.
 */
function legacyByName(p: PluginDoc): string | undefined {
  if (!p.legacy || p.on !== undefined || p.actions.some((a) => LEGACY_ACTION_OF[a])) return undefined;
  const base = p.name.replace(/#\d+$/, "");
  return base.toUpperCase() === p.type ? base : undefined;
}

function doc(kind: string, name: string, spec: Record<string, unknown>) {
  return { apiVersion: "sealer.io/v2", kind, metadata: { name }, spec };
}

function envList(env: Env): string[] | undefined {
  const out = Object.entries(env).map(([k, v]) => `${k}=${v.join(";")}`);
  return out.length ? out : undefined;
}

/**
 * Whether two adjacent hosts can share one entry. Every secret is compared the same way: by
 * fingerprint when secrets are written (else one host's key or password would be lost), by
 * presence otherwise.
 */
function sameSettings(a: HostSpec, b: HostSpec, secrets: boolean): boolean {
  const sec = (s: Secret | undefined) => (s ? (secrets ? s.fingerprint() : 1) : 0);
  const key = (h: HostSpec) =>
    JSON.stringify([
      h.roles,
      h.env,
      h.labels,
      h.taints,
      { ...h.ssh, passwd: sec(h.ssh.passwd), pkData: sec(h.ssh.pkData), pkPasswd: sec(h.ssh.pkPasswd) },
    ]);
  return key(a) === key(b);
}

function clean<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** registry (start it on the registry hosts) and registry-client (every host trusts and finds it). */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Step } from "../../plan/types";
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import {
  ensureRegistryPki,
  htpasswdLine,
  registryClientCmd,
  registryClientFiles,
  registryLayout,
  restoreRegistryPki,
  startRegistryCmd,
  type RegistryPki,
} from "../../runtime/registry";
import type { ExecContext } from "../context";
import { hashes, type Footprint } from "../footprint";
import {
  configureExternalRegistryClients,
  pushCachedImages,
  putRegistryCredentials,
} from "../../lifecycle/external-registry";

/** The cluster CA: local copy, else master0's copy (another machine recovering), else new. */
async function pki(ctx: ExecContext, step: string): Promise<RegistryPki> {
  const dir = path.join(ctx.stateDir, "pki");
  if (!fs.existsSync(path.join(dir, "ca.key"))) {
    const remoteCa = await ctx.read(ctx.master0, step, `${ctx.clusterDir}/pki/ca.crt`);
    const remoteKey =
      remoteCa === undefined ? undefined : await ctx.read(ctx.master0, step, `${ctx.clusterDir}/pki/ca.key`);
    if (remoteCa !== undefined && remoteKey !== undefined)
      await restoreRegistryPki(dir, { "ca.crt": remoteCa, "ca.key": remoteKey });
  }
  const reg = ctx.registryAddress();
  const l = ctx.spec.registry.localRegistry;
  return ensureRegistryPki(dir, {
    cluster: ctx.cluster,
    dnsNames: [reg.domain, ...(l?.cert?.dnsNames ?? [])],
    ips: [...ctx.registryHosts(), ...(l?.cert?.ips ?? [])],
  });
}

export async function runRegistry(
  ctx: ExecContext,
  step: Extract<Step, { kind: "registry" }>,
): Promise<Footprint | void> {
  const reg = ctx.registryAddress();
  if (reg.external) {
    // Nothing to start: the image's cached container images go to the external registry instead.
    await pushCachedImages({
      layout: ctx.layout,
      layers: ctx.image.layers,
      domain: reg.domain,
      port: reg.port,
      ...(reg.username ? { username: reg.username } : {}),
      ...(reg.password ? { password: reg.password } : {}),
      scratchDir: ctx.stateDir,
    });
    return;
  }
  const p = await pki(ctx, "registry");
  // master0 keeps the CA so another machine can recover the cluster's PKI.
  await ctx.put(ctx.master0, "registry", `${ctx.clusterDir}/pki/ca.crt`, p.caCert, 0o644);
  await ctx.put(ctx.master0, "registry", `${ctx.clusterDir}/pki/ca.key`, p.caKey, 0o600);
  const withAuth = !!(reg.username && reg.password);
  const htpasswd = withAuth ? await htpasswdLine(reg.username!, reg.password!) : undefined;
  const layout = registryLayout(ctx.clusterDir, withAuth);
  const caFiles = { [`${ctx.clusterDir}/pki/ca.crt`]: p.caCert, [`${ctx.clusterDir}/pki/ca.key`]: p.caKey };
  const fp: Footprint = {};
  await ctx.eachHost(step.hosts, async (ip) => {
    await ctx.put(ip, "registry", layout.cert, p.cert, 0o644);
    await ctx.put(ip, "registry", layout.key, p.key, 0o600);
    if (htpasswd && layout.htpasswd) await ctx.put(ip, "registry", layout.htpasswd, htpasswd, 0o600);
    // The registry host resolves the domain to itself.
    await ctx.sh(ip, "registry", setHostsBlockCmd(ctx.cluster, "registry", [{ ip, names: [reg.domain] }]));
    await ctx.sh(
      ip,
      "registry",
      startRegistryCmd({
        rootfs: ctx.rootfs,
        layout,
        listen: `${ip}:${reg.port}`,
        domain: reg.domain,
        port: reg.port,
      }),
    );
    // The process is checked by asking it (/v2/); its log and pid file change while it runs.
    fp[ip] = {
      files: hashes({
        [layout.cert]: p.cert,
        [layout.key]: p.key,
        ...(htpasswd && layout.htpasswd ? { [layout.htpasswd]: htpasswd } : {}),
        ...(ip === ctx.master0 ? caFiles : {}),
      }),
    };
  });
  return fp;
}

export async function runRegistryClient(
  ctx: ExecContext,
  step: Extract<Step, { kind: "registry-client" }>,
): Promise<Footprint | void> {
  const reg = ctx.registryAddress();
  if (reg.external) return configureExternalRegistryClients(ctx, step.hosts);
  const caCert = reg.external ? undefined : (await pki(ctx, "registry-client")).caCert;
  const creds = reg.username && reg.password ? { username: reg.username, password: reg.password } : undefined;
  const fp: Footprint = {};
  await ctx.eachHost(step.hosts, async (ip) => {
    if (!reg.external) {
      const to = ctx.registryTargetFor(ip);
      await ctx.sh(
        ip,
        "registry-client",
        setHostsBlockCmd(ctx.cluster, "registry", [{ ip: to, names: [reg.domain] }]),
      );
    }
    if (caCert) {
      const files = { domain: reg.domain, port: reg.port, caCert };
      await ctx.sh(ip, "registry-client", registryClientCmd(files));
      fp[ip] = { files: hashes(registryClientFiles(files)) };
    }
    // The registry runs with htpasswd: pulls need the credentials (image names say domain:port).
    if (creds) await putRegistryCredentials(ctx, ip, `${reg.domain}:${reg.port}`, creds);
  });
  return fp;
}

/** The cluster's registry CA and certificate, as the registry and registry-client steps use them. */
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureRegistryPki, restoreRegistryPki, type RegistryPki } from "../runtime/registry";
import type { ExecContext } from "./context";

/** The cluster CA: local copy, else master0's copy (another machine recovering), else new. */
export async function registryPki(ctx: ExecContext, step: string): Promise<RegistryPki> {
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

/**
 * Per-host platform: `uname -m` on each host the applied state has no platform for, mapped
 * to the OCI platform name (x86_64 -> linux/amd64, aarch64 -> linux/arm64, ...). apply probes
 * once, before planning; distribute records the result (AppliedState.hosts[ip].platform), so the
 * next plan of a known host needs no probe. Read-only on the host.
 */
import { UserError } from "../errors";
import { platformOfMachine } from "../image/facts";
import type { AppliedState } from "../plan/types";
import type { ExecContext } from "./context";

/** Hosts of the cluster whose platform nothing recorded yet (new hosts, states from before platforms were recorded). */
export function hostsWithoutPlatform(ips: string[], applied: AppliedState): string[] {
  return ips.filter((ip) => !applied.hosts[ip]?.platform);
}

/** Probes `ips` (bounded concurrency); every host whose machine is not recognised is named in one error. */
export async function probeHostPlatforms(ctx: ExecContext, ips: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const unknown: string[] = [];
  await ctx.eachHost(ips, async (ip) => {
    const r = await ctx.sh(ip, "probe platform", "uname -m", { quiet: true });
    const machine = r.stdout.trim();
    const p = platformOfMachine(machine);
    if (p) out[ip] = p;
    else unknown.push(`${ip} (uname -m: ${JSON.stringify(machine)})`);
  });
  if (unknown.length)
    throw new UserError(
      `cannot tell the platform of host(s) ${unknown.sort().join(", ")}: sealer knows x86_64, aarch64, armv7l, armv6l, i686, ppc64le, s390x, riscv64, mips64(el), loongarch64`,
    );
  return out;
}

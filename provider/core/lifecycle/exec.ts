/** `sealer exec [-r role] CMD`: a command on the cluster's hosts, output prefixed by host. */
import type { ExecContext } from "../exec/context";
import { resolveCluster, type ClusterRef } from "./cluster-ref";
import { hostsByRole } from "./hosts-edit";
import { withSession, type LifecycleOptions } from "./session";

export interface HostOutput {
  host: string;
  /** Exit code; -1 when the host could not be reached (then `error` says why). */
  code: number;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Each line of `text` as "[host] line" (a trailing newline does not make an empty line). */
export function prefixLines(host: string, text: string): string {
  if (text === "") return "";
  const lines = text.replace(/\n$/, "").split("\n");
  return lines.map((l) => `[${host}] ${l}`).join("\n") + "\n";
}

export type ExecOptions = ClusterRef &
  LifecycleOptions & { command: string; role?: string; hosts?: string[]; onHost?: (r: HostOutput) => void };

export async function execOnHosts(
  ctx: ExecContext,
  hosts: string[],
  command: string,
  onHost?: (r: HostOutput) => void,
): Promise<HostOutput[]> {
  const out: HostOutput[] = [];
  await ctx.eachHost(hosts, async (ip) => {
    let r: HostOutput;
    try {
      const res = await ctx.sh(ip, "exec", command, { allowFail: true, quiet: true });
      r = { host: ip, code: res.code, stdout: res.stdout, stderr: res.stderr };
    } catch (err) {
      r = { host: ip, code: -1, stdout: "", stderr: "", error: (err as Error).message };
    }
    out.push(r);
    onHost?.(r);
  });
  const order = new Map(hosts.map((h, i) => [h, i]));
  return out.sort((a, b) => (order.get(a.host) ?? 0) - (order.get(b.host) ?? 0));
}

export async function execOnCluster(o: ExecOptions): Promise<HostOutput[]> {
  const r = await resolveCluster(o);
  const hosts = o.hosts ?? hostsByRole(r.spec, o.role);
  return withSession(r.spec, r.applied, r.stateDir, o, (ctx) => execOnHosts(ctx, hosts, o.command, o.onHost));
}

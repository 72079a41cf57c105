/**
 * `sealer delete -a` (C5): every node reset, the registry stopped, the runtime uninstalled, what
 * the tool wrote removed — also after a failed or half-finished run (sealer issues 1906, 1050,
 * 1509, 1802). The hosts come from the recorded state AND the Clusterfile (a run that died
 * before recording a host still cleans it); each reachable host is cleaned by the clean-host
 * step (which checks what is there rather than trusting the record), then its data root is
 * probed and removed when no other cluster uses it. Unreachable hosts are reported and
 * skipped, not fatal; the local state is kept until every host was cleaned, so the command can
 * be run again when they are back.
 */
import { effectivePlugins } from "../plan/plugins";
import { allHosts, type ClusterSpec, type HookPhase } from "../clusterfile";
import { deleteCluster } from "../apply";
import type { ExecContext } from "../exec/context";
import { runStep } from "../exec/steps";
import { log } from "../log";
import type { AppliedState, ImagePlugins, Step } from "../plan/types";
import { shellQuote } from "../ssh";
import { recordSpec, resolveCluster, type ClusterRef } from "./cluster-ref";
import { withSession, type LifecycleOptions } from "./session";

export interface RanStep {
  kind: string;
  hosts: string[];
  reason: string;
}

export interface DeleteAllResult {
  cluster: string;
  steps: RanStep[];
  cleaned: string[];
  skipped: Array<{ host: string; error: string }>;
  /** Hosts whose data root was removed entirely (no other cluster left in it). */
  dataRootRemoved: string[];
}

/** Hook steps of a phase, in plugin name order; empty scope = every host given (sealer issue 795). */
export function phaseHookSteps(
  spec: ClusterSpec,
  phase: HookPhase,
  hosts: string[],
  rolesOf: (ip: string) => string[],
  reason: string,
  /** The image's plugins/ (ctx.image.plugins): they run too, as the planner's hooks do. */
  imagePlugins?: ImagePlugins,
): Array<Extract<Step, { kind: "hook" }>> {
  return effectivePlugins(spec.plugins, imagePlugins)
    .filter((p) => p.actions.includes(phase))
    .map((p) => ({
      p,
      on: p.scope.length === 0 ? hosts : hosts.filter((ip) => p.scope.some((s) => rolesOf(ip).includes(s))),
    }))
    .filter(({ on }) => on.length > 0)
    .map(({ p, on }) => ({
      id: `hook:${phase}:${p.name}`,
      kind: "hook" as const,
      phase,
      plugin: p.name,
      hosts: on,
      reason: `${phase} hook ${p.name} (${reason})`,
      key: "",
      after: [],
    }));
}

/** Shell that removes the data root when only shared leftovers (the blob store) remain. */
export function dataRootProbeCmd(dataRoot: string, cluster: string): string {
  const dr = shellQuote(dataRoot);
  return [
    `if [ ! -d ${dr} ]; then echo DATA-ROOT-ABSENT; exit 0; fi`,
    `rm -rf ${shellQuote(`${dataRoot}/${cluster}`)}`,
    `others=$(find ${dr} -mindepth 1 -maxdepth 1 ! -name blobs | wc -l)`,
    `if [ "$others" -eq 0 ]; then rm -rf ${dr} && echo DATA-ROOT-REMOVED; else echo "DATA-ROOT-KEPT $others"; fi`,
  ].join("; ");
}

async function reachable(
  ctx: ExecContext,
  hosts: string[],
): Promise<{ up: string[]; down: Array<{ host: string; error: string }> }> {
  const up: string[] = [];
  const down: Array<{ host: string; error: string }> = [];
  await ctx.eachHost(hosts, async (ip) => {
    try {
      await ctx.pool.exec(ctx.target(ip), "true", { step: "delete: reach host", logLevel: "debug" });
      up.push(ip);
    } catch (err) {
      down.push({ host: ip, error: (err as Error).message });
    }
  });
  return { up: hosts.filter((h) => up.includes(h)), down };
}

async function runHooks(
  ctx: ExecContext,
  steps: Array<Extract<Step, { kind: "hook" }>>,
  ran: RanStep[],
): Promise<void> {
  for (const s of steps) {
    try {
      await runStep(ctx, s);
      ran.push({ kind: s.kind, hosts: s.hosts, reason: s.reason });
    } catch (err) {
      // Cleaning goes on: a broken hook must not leave the cluster half deleted.
      log.warn(`${s.id}: ${(err as Error).message} (continuing the delete)`);
      ran.push({ kind: s.kind, hosts: s.hosts, reason: `${s.reason}: FAILED, continued` });
    }
  }
}

export async function deleteAll(o: ClusterRef & LifecycleOptions): Promise<DeleteAllResult> {
  const r = await resolveCluster(o);
  const spec = r.spec;
  const applied: AppliedState = r.applied;
  const hosts = [...new Set([...allHosts(spec), ...Object.keys(applied.hosts)])];
  const rolesOf = (ip: string): string[] =>
    spec.hosts.find((h) => h.ips.includes(ip))?.roles ?? applied.hosts[ip]?.roles ?? [];
  const steps: RanStep[] = [];
  const dataRoot = applied.dataRoot ?? spec.dataRoot;

  const { up, down } = await withSession(spec, applied, r.stateDir, o, async (ctx) => {
    const reach = await reachable(ctx, hosts);
    for (const d of reach.down) log.forHost(d.host).warn(`unreachable, skipped: ${d.error}`);
    await runHooks(
      ctx,
      phaseHookSteps(spec, "pre-uninstall", reach.up, rolesOf, "delete cluster", ctx.image.plugins),
      steps,
    );
    return reach;
  });

  const del = await deleteCluster({
    spec: { ...spec, dataRoot },
    applied: {
      ...applied,
      hosts: Object.fromEntries(
        Object.entries(applied.hosts).filter(([ip]) => up.includes(ip) || !hosts.includes(ip)),
      ),
    },
    stateDir: r.stateDir,
    ...(o.store ? { store: o.store } : {}),
    ...(o.knownHostsFile ? { knownHostsFile: o.knownHostsFile } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
    unreachable: down,
  });
  // Hosts found unreachable above are not dialed again; any that failed since are skipped too.
  const skipped = [...down];
  for (const s of del.skipped) if (!skipped.some((x) => x.host === s.host)) skipped.push(s);
  const cleaned = del.cleaned.filter((h) => !skipped.some((s) => s.host === h));
  for (const ip of cleaned)
    steps.push({
      kind: "clean-host",
      hosts: [ip],
      reason: "delete cluster: kubeadm reset, registry stopped, runtime uninstalled, files removed",
    });

  const dataRootRemoved: string[] = [];
  if (cleaned.length) {
    await withSession({ ...spec, dataRoot }, applied, r.stateDir, o, async (ctx) => {
      await ctx.eachHost(cleaned, async (ip) => {
        const out = await ctx.pool.exec(ctx.target(ip), dataRootProbeCmd(dataRoot, spec.name), {
          step: "delete: data root",
          logLevel: "debug",
        });
        if (out.stdout.includes("DATA-ROOT-REMOVED")) dataRootRemoved.push(ip);
      });
      await runHooks(
        ctx,
        phaseHookSteps(spec, "post-uninstall", cleaned, rolesOf, "delete cluster", ctx.image.plugins),
        steps,
      );
    });
  }
  if (skipped.length) {
    // Keep the record (deleteCluster saved what is left) so the next delete -a finishes the job.
    await recordSpec(spec, o.home);
  }
  return {
    cluster: spec.name,
    steps,
    cleaned,
    skipped: skipped.sort((a, b) => a.host.localeCompare(b.host)),
    dataRootRemoved: dataRootRemoved.sort(),
  };
}

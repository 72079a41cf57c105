/**
 * Destroying a whole cluster — `sealer delete -a` and `pulumi destroy` of a Cluster run this one
 * function: every node reset, the registry stopped, the runtime uninstalled, what the tool wrote
 * removed, the node's unreferenced layer blobs collected — also after a failed or half-finished
 * run. The steps are planDestroy's (what `sealer plan --destroy` shows): pre-uninstall hooks,
 * clean-host per host, then the data root removed where no other cluster is left in it, then
 * post-uninstall hooks. Unreachable hosts are reported and skipped, not fatal; the local state is
 * kept until every host was cleaned, so the command can be run again when they are back.
 */
import { NODE_STORE_DIRS } from "../exec/node-layers";
import type { RanStep } from "./ran-steps";
import type { ClusterSpec } from "../clusterfile";
import { deleteCluster } from "../apply";
import type { ExecContext } from "../exec/context";
import { runStep } from "../exec/steps";
import { factsOrEmpty } from "../image/facts";
import { OciLayout } from "../image/layout";
import { log } from "../log";
import { dataPaths } from "../paths";
import { destroyHosts, planDestroy } from "../plan/destroy";
import type { HookStep } from "../plan/phase-hooks";
import type { AppliedState, Plan } from "../plan/types";
import { shellQuote } from "../ssh";
import { recordSpec, resolveCluster, type ClusterRef } from "./cluster-ref";
import { withSession, type LifecycleOptions } from "./session";

export interface DeleteAllResult {
  cluster: string;
  /** The destroy plan the run followed (what `sealer plan --destroy` printed). */
  plan: Plan;
  steps: RanStep[];
  cleaned: string[];
  skipped: Array<{ host: string; error: string }>;
  /** Hosts whose data root was removed entirely (no other cluster left in it). */
  dataRootRemoved: string[];
}

/** Shell that removes the data root when only shared leftovers (the layer store) remain. */
export function dataRootProbeCmd(dataRoot: string, cluster: string): string {
  const dr = shellQuote(dataRoot);
  return [
    `if [ ! -d ${dr} ]; then echo DATA-ROOT-ABSENT; exit 0; fi`,
    `rm -rf ${shellQuote(`${dataRoot}/${cluster}`)}`,
    `others=$(find ${dr} -mindepth 1 -maxdepth 1 ${NODE_STORE_DIRS.map((d) => `! -name ${d}`).join(" ")} | wc -l)`,
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
      await ctx.io.run(ip, "delete: reach host", "true", { quiet: true });
      up.push(ip);
    } catch (err) {
      down.push({ host: ip, error: (err as Error).message });
    }
  });
  return { up: hosts.filter((h) => up.includes(h)), down };
}

/** The plan's hook steps of `phase`, narrowed to `on`. */
function hooksOf(p: Plan, phase: string, on: string[]): HookStep[] {
  return p.steps
    .filter((s): s is HookStep => s.kind === "hook" && s.phase === phase)
    .map((s) => ({ ...s, hosts: s.hosts.filter((h) => on.includes(h)) }))
    .filter((s) => s.hosts.length > 0);
}

async function runHooks(ctx: ExecContext, steps: HookStep[], ran: RanStep[]): Promise<void> {
  for (const s of steps) {
    const started = Date.now();
    try {
      await runStep(ctx, s);
      ran.push({ kind: s.kind, hosts: s.hosts, reason: s.reason, durationMs: Date.now() - started });
    } catch (err) {
      // Cleaning goes on: a broken hook must not leave the cluster half deleted.
      log.warn(`${s.id}: ${(err as Error).message} (continuing the delete)`);
      ran.push({
        kind: s.kind,
        hosts: s.hosts,
        reason: `${s.reason}: FAILED, continued`,
        durationMs: Date.now() - started,
      });
    }
  }
}

export interface DestroyOptions extends LifecycleOptions {
  spec: ClusterSpec;
  applied: AppliedState;
  /** Where the cluster's local state lives (removed once every host is clean). */
  stateDir: string;
}

/** The one destroy of a cluster (CLI `delete -a` and Pulumi's delete). */
export async function destroyCluster(o: DestroyOptions): Promise<DeleteAllResult> {
  const applied = o.applied;
  const dataRoot = applied.dataRoot ?? o.spec.dataRoot;
  const spec = { ...o.spec, dataRoot };
  const hosts = destroyHosts(spec, applied);
  const steps: RanStep[] = [];

  const { up, down, plan } = await withSession(spec, applied, o.stateDir, o, async (ctx) => {
    const plan = planDestroy(spec, applied, ctx.image.plugins);
    for (const s of plan.steps) log.info(`destroy plan: ${s.id} [${s.hosts.join(",")}]: ${s.reason}`);
    const reach = await reachable(ctx, hosts);
    for (const d of reach.down) log.forHost(d.host).warn(`unreachable, skipped: ${d.error}`);
    await runHooks(ctx, hooksOf(plan, "pre-uninstall", reach.up), steps);
    return { ...reach, plan };
  });

  const del = await deleteCluster({
    spec,
    applied: {
      ...applied,
      hosts: Object.fromEntries(
        Object.entries(applied.hosts).filter(([ip]) => up.includes(ip) || !hosts.includes(ip)),
      ),
    },
    stateDir: o.stateDir,
    ...(o.store ? { store: o.store } : {}),
    ...(o.knownHostsFile ? { knownHostsFile: o.knownHostsFile } : {}),
    ...(o.ssh ? { ssh: o.ssh } : {}),
    unreachable: down,
  });
  // Hosts found unreachable above are not dialed again; any that failed since are skipped too.
  const skipped = [...down];
  for (const s of del.skipped) if (!skipped.some((x) => x.host === s.host)) skipped.push(s);
  const cleaned = del.cleaned.filter((h) => !skipped.some((s) => s.host === h));
  for (const s of plan.steps)
    if (s.kind === "clean-host" && cleaned.includes(s.hosts[0]!))
      steps.push({
        kind: s.kind,
        hosts: s.hosts,
        reason: s.reason,
        durationMs: del.durations[s.hosts[0]!] ?? 0,
      });

  const dataRootRemoved: string[] = [];
  if (cleaned.length) {
    await withSession(spec, applied, o.stateDir, o, async (ctx) => {
      await ctx.eachHost(cleaned, async (ip) => {
        const out = await ctx.io.run(ip, "delete: data root", dataRootProbeCmd(dataRoot, spec.name), {
          quiet: true,
        });
        if (out.stdout.includes("DATA-ROOT-REMOVED")) dataRootRemoved.push(ip);
      });
      await runHooks(ctx, hooksOf(plan, "post-uninstall", cleaned), steps);
    });
  }
  return {
    cluster: spec.name,
    plan,
    steps,
    cleaned,
    skipped: skipped.sort((a, b) => a.host.localeCompare(b.host)),
    dataRootRemoved: dataRootRemoved.sort(),
  };
}

/** What `sealer delete -a` would run on the recorded (or given) cluster: `sealer plan --destroy`. */
export async function planDeleteAll(o: ClusterRef & LifecycleOptions): Promise<Plan> {
  const r = await resolveCluster(o);
  const layout = o.store ?? new OciLayout(dataPaths.store(o.home));
  // The same image facts the destroy's session reads (its plugins/ define hooks too).
  const image = await factsOrEmpty(layout, r.applied.image?.reference ?? r.spec.image);
  return planDestroy(
    { ...r.spec, dataRoot: r.applied.dataRoot ?? r.spec.dataRoot },
    r.applied,
    image.plugins,
  );
}

/** `sealer delete -a`: the recorded (or given) cluster destroyed. */
export async function deleteAll(o: ClusterRef & LifecycleOptions): Promise<DeleteAllResult> {
  const r = await resolveCluster(o);
  const res = await destroyCluster({ ...o, spec: r.spec, applied: r.applied, stateDir: r.stateDir });
  // Keep the record (deleteCluster saved what is left) so the next delete -a finishes the job.
  if (res.skipped.length) await recordSpec(r.spec, o.home);
  return res;
}

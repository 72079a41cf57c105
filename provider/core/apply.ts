/**
 * The library entry for running a cluster image onto hosts (used by the CLI's run/apply and
 * by the Pulumi Cluster resource):
 *   image facts (local store) + Clusterfile -> plan against the recorded state -> execute over
 *   SSH, saving the state after every step (locally, 0600, atomic; and a copy on master0).
 * Nothing is contacted when the plan is empty: a second apply with nothing changed runs zero
 * steps and opens no connection.
 */
import * as fs from "node:fs";
import type { ClusterSpec, DistributionMode } from "./clusterfile";
import { UserError } from "./errors";
import { ExecContext, emptyStats, type ExecStats } from "./exec/context";
import { ApplyError, executeSteps } from "./exec/executor";
import { acquireApplyLock } from "./exec/lock";
import { probeHostPlatforms } from "./exec/host-platform";
import { runStep } from "./exec/steps";
import { factsOrEmpty } from "./image/facts";
import { OciLayout } from "./image/layout";
import { log, registerSecret } from "./log";
import { summarizeRun, type RunSummary } from "./progress";
import { dataPaths, ensureSealerHome } from "./paths";
import { cleanHostStep, destroyHosts } from "./plan/destroy";
import { planDigest } from "./plan/digest";
import type { Desired } from "./plan/planner";
import { recordStep } from "./exec/record";
import { emptyApplied, type AppliedState, type ImageFacts, type Plan, type Step } from "./plan/types";
import { assembleDesired, planInstall, planningImage } from "./session";
import { SshPool } from "./ssh";
import { clusterDir, hasSavedClusterfile, loadStateFrom, saveClusterfile, saveStateTo } from "./state";

export { ApplyError } from "./exec/executor";

export interface ApplyOptions {
  spec: ClusterSpec;
  /** Image to run (default spec.image); must be in the local store. */
  imageRef?: string;
  /** The local image store (default: the data dir's). */
  store?: OciLayout;
  /** Where this cluster's state lives locally (default <data dir>/clusters/<name>). */
  stateDir?: string;
  /** The applied state to plan against (default: the saved one). */
  applied?: AppliedState;
  /** Called with the state after every successful step (Pulumi keeps it as outputs). */
  onState?: (s: AppliedState) => void | Promise<void>;
  /** Plan only. */
  dryRun?: boolean;
  /** known_hosts file (default <data dir>/known_hosts). */
  knownHostsFile?: string;
  /** Hosts handled at once inside a step (default 8). */
  concurrency?: number;
  /** SSH dial attempts / per-attempt timeout (tests shorten them). */
  ssh?: { dialAttempts?: number; dialTimeoutMs?: number; keepaliveIntervalMs?: number };
  /** Per-command timeout on the nodes (default 10 min). */
  commandTimeoutMs?: number;
  /** Steps run at once (default 8); 1 runs the plan strictly in order. */
  parallelSteps?: number;
  /** Relay distribution: layer blobs go once to `via` (a host of the cluster; default master0), which forwards them. */
  relay?: { via?: string; fanout?: number };
  /** Run only if the plan computed now has this digest (planDigest; printed by `sealer plan`). */
  planDigest?: string;
  /** How layer blobs travel: ssh, relay or registry (default: spec.distribution, else registry when usable). */
  distribution?: DistributionMode;
}

export interface ApplyResult {
  plan: Plan;
  ran: Step[];
  state: AppliedState;
  stats: ExecStats;
  image: ImageFacts;
  /** Steps, time per phase, bytes sent per host (empty when nothing ran). */
  summary: RunSummary;
}

/** Plans (and unless dryRun, applies) the cluster. */
export async function applyCluster(o: ApplyOptions): Promise<ApplyResult> {
  const spec = o.spec;
  const layout = o.store ?? new OciLayout(dataPaths.store());
  const ref = o.imageRef ?? spec.image;
  if (!ref)
    throw new UserError(
      `cluster ${spec.name}: no image: set spec.image in the Clusterfile or pass IMAGE to sealer run`,
    );
  const image = await planningImage(layout, ref, spec);
  const stateDir = o.stateDir ?? clusterDir(spec.name);
  const applied = o.applied ?? (await loadStateFrom(stateDir)) ?? emptyApplied(spec.name);
  for (const v of Object.values(applied.secrets ?? {})) registerSecret(v);
  const stats = emptyStats();
  // Dialed only when a host is probed or a step runs.
  let pool = undefined as SshPool | undefined;
  const newContext = (p: SshPool, hostPlatforms?: Record<string, string>) =>
    new ExecContext({
      spec,
      image,
      layout,
      pool: p,
      state: applied,
      stateDir,
      ...(hostPlatforms ? { hostPlatforms } : {}),
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      ...(o.commandTimeoutMs ? { commandTimeoutMs: o.commandTimeoutMs } : {}),
      ...(o.relay ? { relay: relayOption(spec, o.relay) } : {}),
      ...(o.distribution ? { distribution: o.distribution } : {}),
    });
  // Each host gets the layers of its own platform. Hosts without a recorded platform are probed
  // (`uname -m`, read-only) before planning; a dry run never contacts a host and plans such
  // hosts with the image's default platform (the reason says so), like sealer plan and the
  // Pulumi preview do.
  const probe = async (ips: string[]) => {
    pool = new SshPool({ knownHostsFile: o.knownHostsFile ?? dataPaths.knownHosts(), ...(o.ssh ?? {}) });
    return probeHostPlatforms(newContext(pool), ips);
  };
  let desired: Desired;
  let plan: Plan;
  try {
    desired = await assembleDesired({ spec, image, applied, ...(o.dryRun ? {} : { probe }) });
    plan = planInstall(desired, applied);
  } catch (err) {
    await pool?.close();
    throw err;
  }
  if (plan.replace) {
    await pool?.close();
    throw new UserError(`cluster ${spec.name}: ${plan.replace}`);
  }
  if (o.planDigest !== undefined && planDigest(plan) !== o.planDigest) {
    await pool?.close();
    throw new UserError(
      `cluster ${spec.name}: the plan now has digest ${planDigest(plan)}, not the reviewed ${o.planDigest}: the cluster, its recorded state, the image or the Clusterfile changed since that plan was made. Nothing was changed; run sealer plan again, review it, and apply with its digest.`,
    );
  }
  for (const w of plan.warnings) log.warn(w);
  // The recorded Clusterfile is what was applied, never merely what was asked for: a run refused
  // by the lock or failing before its first step (wrong password, host down) leaves it as it was.
  // A first install records it once its first step finished, so a run that dies halfway is still
  // found by name (sealer delete -a --cluster-name) with every host; any other run records it when
  // every step finished. Callers that pass their own stateDir (sealer join/upgrade/rollback)
  // record the Clusterfile themselves once the change went through.
  const recordSpec = !o.dryRun && o.stateDir === undefined;
  // Library and Pulumi callers record into the data directory too: it is made 0700 like the CLI makes it.
  if (recordSpec) ensureSealerHome();
  let firstInstall = recordSpec && !(await hasSavedClusterfile(spec.name));
  if (o.dryRun || plan.steps.length === 0) {
    await pool?.close();
    if (plan.steps.length === 0) log.info(`cluster ${spec.name}: nothing to do (0 steps)`);
    return { plan, ran: [], state: applied, stats, image, summary: summarizeRun([], 0, {}) };
  }

  pool ??= new SshPool({ knownHostsFile: o.knownHostsFile ?? dataPaths.knownHosts(), ...(o.ssh ?? {}) });
  const ctx = newContext(pool, desired.hostPlatforms);
  let release: (() => Promise<void>) | undefined;
  try {
    const m0 = { ip: ctx.master0, sshUser: ctx.target(ctx.master0).user };
    release = await acquireApplyLock(ctx.io, m0, ctx.clusterDir, spec.name);
    const save = async (s: AppliedState) => {
      await saveStateTo(stateDir, s);
      if (firstInstall) {
        firstInstall = false;
        await saveClusterfile(spec);
      }
      // The copy on master0 lets another machine recover the cluster; losing it is not fatal.
      try {
        await ctx.put(
          ctx.master0,
          "save state",
          `${ctx.clusterDir}/state.json`,
          JSON.stringify(s, null, 2) + "\n",
          0o600,
        );
      } catch (err) {
        log.forHost(ctx.master0).warn(`could not save the state copy on master0: ${(err as Error).message}`);
      }
      await o.onState?.(s);
    };
    const started = Date.now();
    const ran = await executeSteps(ctx, plan.steps, {
      record: (a, s, observed) => recordStep(a, s, desired, observed),
      save,
      ...(o.parallelSteps ? { parallelSteps: o.parallelSteps } : {}),
    });
    if (recordSpec) await saveClusterfile(spec);
    log.info(
      `cluster ${spec.name}: ${ran.length} step(s) ran; ${ctx.stats.sentBlobs} blob(s), ${ctx.stats.sentBytes} bytes sent`,
    );
    const timings = ran.map((s) => ({ ...s, durationMs: ctx.stats.durations[s.id] ?? 0 }));
    const summary = summarizeRun(timings, Date.now() - started, ctx.stats.perHost, ctx.stats.pushedBytes);
    return { plan, ran, state: ctx.state, stats: ctx.stats, image, summary };
  } catch (err) {
    if (err instanceof ApplyError) throw err;
    // A failure before any step (lock, dial): keep the state the caller had.
    const e = err instanceof Error ? err : new Error(String(err));
    (e as Error & { state?: AppliedState }).state = ctx.state;
    throw e;
  } finally {
    if (release)
      await release().catch((err: unknown) =>
        log.forHost(ctx.master0).warn(`could not release the apply lock: ${(err as Error).message}`),
      );
    await ctx.pool.close();
  }
}

export interface DeleteOptions {
  spec: ClusterSpec;
  applied?: AppliedState;
  onState?: (s: AppliedState) => void | Promise<void>;
  store?: OciLayout;
  stateDir?: string;
  knownHostsFile?: string;
  ssh?: ApplyOptions["ssh"];
  /** Hosts the caller already found unreachable: reported as skipped without dialing them again. */
  unreachable?: Array<{ host: string; error: string }>;
}

/**
 * Deletes the whole cluster: clean-host on every host (kubeadm reset, registry stopped, runtime
 * uninstalled, our files removed). Unreachable hosts are reported and skipped, not fatal; the
 * local state goes when every host was cleaned. Works after a failed or half-finished apply.
 */
export async function deleteCluster(o: DeleteOptions): Promise<{
  cleaned: string[];
  skipped: Array<{ host: string; error: string }>;
  /** How long each cleaned host's clean-host took (ms). */
  durations: Record<string, number>;
}> {
  const spec = o.spec;
  const stateDir = o.stateDir ?? clusterDir(spec.name);
  const applied = o.applied ?? (await loadStateFrom(stateDir)) ?? emptyApplied(spec.name);
  const layout = o.store ?? new OciLayout(dataPaths.store());
  // The image may be gone from the store: cleaning needs only the scripts already on the nodes.
  const image = await factsOrEmpty(layout, applied.image?.reference ?? spec.image, spec.image);
  const skipped: Array<{ host: string; error: string }> = [...(o.unreachable ?? [])];
  const hosts = destroyHosts(spec, applied).filter((ip) => !skipped.some((s) => s.host === ip));
  const pool = new SshPool({ knownHostsFile: o.knownHostsFile ?? dataPaths.knownHosts(), ...(o.ssh ?? {}) });
  const ctx = new ExecContext({ spec, image, layout, pool, state: applied, stateDir });
  const cleaned: string[] = [];
  const durations: Record<string, number> = {};
  try {
    await Promise.all(
      hosts.map(async (ip) => {
        const started = Date.now();
        try {
          await runStep(ctx, cleanHostStep(ip));
          durations[ip] = Date.now() - started;
          cleaned.push(ip);
          delete ctx.state.hosts[ip];
          await o.onState?.(ctx.state);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          log.forHost(ip).warn(`not cleaned: ${msg}`);
          skipped.push({ host: ip, error: msg });
        }
      }),
    );
  } finally {
    await pool.close();
  }
  if (skipped.length === 0) await fs.promises.rm(stateDir, { recursive: true, force: true });
  else await saveStateTo(stateDir, ctx.state);
  return { cleaned: cleaned.sort(), skipped, durations };
}

/** The relay must be one of the cluster's hosts (its SSH settings come from the Clusterfile). */
function relayOption(
  spec: ClusterSpec,
  r: { via?: string; fanout?: number },
): { via?: string; fanout?: number } {
  const ips = spec.hosts.flatMap((h) => h.ips);
  if (r.via !== undefined && !ips.includes(r.via))
    throw new UserError(`--relay ${r.via}: not a host of cluster ${spec.name} (hosts: ${ips.join(", ")})`);
  if (r.fanout !== undefined && !(Number.isInteger(r.fanout) && r.fanout >= 1))
    throw new UserError(`relay fan-out must be a whole number >= 1 (got ${r.fanout})`);
  return r;
}

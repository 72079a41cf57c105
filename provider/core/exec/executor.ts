/**
 * Runs a plan's steps:
 * - in plan order, honouring `after`; consecutive steps of a kind that touches disjoint hosts
 *   (join-worker, per-host init, ...) run at the same time (bounded); join-master never does;
 * - after every successful step: record it in the applied state, with what the handler reports
 *   it left on the hosts (its footprint, for drift checks), and save (locally and on master0)
 *   before any step after it starts, so a failed apply resumes at the first unfinished step;
 *   steps that finish together share one save;
 * - the first failure stops the apply (steps already running finish and are recorded) with one
 *   ApplyError: the step, the host it failed on and the cause (e.g. the SSH layer's CommandError
 *   with exit code and output tail) as fields. This is the only place a step failure is wrapped.
 */
import { isHostFailure, StepError } from "../errors";
import { log } from "../log";
import type { AppliedState, Step } from "../plan/types";
import { formatDuration } from "../progress";
import type { ExecContext } from "./context";
import { PARALLEL_KINDS, SERIAL_KINDS, runStep } from "./steps";
import type { Observed } from "./steps/kind";

export interface ExecuteOptions {
  /** recordStep (exec/record.ts): the applied state after `step` succeeded with what its handler observed. */
  record: (applied: AppliedState, step: Step, observed: Observed) => AppliedState;
  /** Persists the state (local file, copy on master0, Pulumi outputs...). Called after every step. */
  save: (applied: AppliedState) => Promise<void>;
  /** Steps run at once (default 8; the SSH pool bounds channels per host too). */
  parallelSteps?: number;
  /** Runs one step (default: the handlers in steps/); tests pass their own. Returns what it observed. */
  run?: (ctx: ExecContext, step: Step) => Promise<Observed | void>;
}

/**
 * An apply that stopped: the step that failed, the host it failed on (when the failure names
 * one, or the step has only one) and the cause, as fields; `state` is what was recorded up to
 * the failure and `ran` the steps that finished.
 */
export class ApplyError extends StepError {
  override readonly name: string = "ApplyError";
  constructor(
    override readonly step: Step,
    host: string | undefined,
    cause: unknown,
    readonly state: AppliedState,
    readonly ran: Step[],
  ) {
    super(
      step,
      host,
      cause,
      `\n${ran.length} step(s) finished and are recorded; fix the cause and run the same command again: it continues with the remaining steps.`,
    );
  }
}

/** The host a failure happened on: the one the SSH layer names, else the step's only host. */
function failedHost(step: Step, reason: unknown): string | undefined {
  if (isHostFailure(reason)) return reason.host;
  return step.hosts.length === 1 ? step.hosts[0] : undefined;
}

export async function executeSteps(ctx: ExecContext, steps: Step[], opts: ExecuteOptions): Promise<Step[]> {
  const ran: Step[] = [];
  const done = new Set<string>();
  const ids = new Set(steps.map((s) => s.id));
  const limit = opts.parallelSteps ?? 8;
  // Saves never overlap (one state file) and are shared: a step waits for a save that starts
  // after its record; steps finishing while a save runs share the next one, so hosts finishing
  // together cost one save instead of one each (a save writes the whole state, here and on master0).
  let saving: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;
  const saveLatest = (): Promise<void> => {
    if (queued) return queued;
    const p = saving
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return opts.save(ctx.state);
      });
    queued = p;
    saving = p;
    return p;
  };

  const runOne = async (step: Step): Promise<void> => {
    const started = Date.now();
    log.info(`==> ${step.kind}${step.hosts.length ? ` on ${step.hosts.join(", ")}` : ""}: ${step.reason}`);
    let observed: Observed | void;
    try {
      observed = await (opts.run ?? runStep)(ctx, step);
    } finally {
      ctx.stats.durations[step.id] = Date.now() - started;
    }
    ctx.state = opts.record(ctx.state, step, observed ?? {});
    await saveLatest();
    done.add(step.id);
    ran.push(step);
    log.info(`<== ${step.id} done in ${formatDuration(ctx.stats.durations[step.id]!)}`);
  };

  // DAG scheduling: a step starts when every step it depends on (`after`) is done; join-master
  // steps also wait for every earlier join-master (one at a time, in plan order). After the
  // first failure nothing new starts; running steps finish (and are recorded).
  const started = new Set<string>();
  const running = new Map<string, Promise<void>>();
  let failure: { step: Step; reason: unknown } | undefined;
  const ready = (s: Step, idx: number): boolean => {
    if (s.after.some((a) => ids.has(a) && !done.has(a))) return false;
    if (SERIAL_KINDS.has(s.kind)) {
      for (let j = 0; j < idx; j++)
        if (SERIAL_KINDS.has(steps[j]!.kind) && !done.has(steps[j]!.id)) return false;
    }
    return true;
  };
  for (;;) {
    if (!failure) {
      for (let idx = 0; idx < steps.length && running.size < limit; idx++) {
        const s = steps[idx]!;
        if (started.has(s.id) || !ready(s, idx)) continue;
        // Steps the plan lists earlier on the same host keep their order even without a declared dependency.
        if (
          steps
            .slice(0, idx)
            .some(
              (e) =>
                !done.has(e.id) && e.hosts.some((h) => s.hosts.includes(h)) && !PARALLEL_KINDS.has(s.kind),
            )
        )
          continue;
        started.add(s.id);
        running.set(
          s.id,
          runOne(s).then(
            () => void running.delete(s.id),
            (reason: unknown) => {
              running.delete(s.id);
              failure ??= { step: s, reason };
            },
          ),
        );
      }
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  if (failure)
    throw new ApplyError(
      failure.step,
      failedHost(failure.step, failure.reason),
      failure.reason,
      ctx.state,
      ran,
    );
  const notRun = steps.filter((s) => !done.has(s.id));
  if (notRun.length)
    throw new Error(
      `plan order: steps ${notRun.map((s) => s.id).join(", ")} never became ready (their dependencies are missing or circular)`,
    );
  return ran;
}

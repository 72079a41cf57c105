/**
 * Runs a plan's steps (REFERENCE §5 order, as the planner emitted them):
 * - in plan order, honouring `after`; consecutive steps of a kind that touches disjoint hosts
 *   (join-worker, per-host init, ...) run at the same time (bounded); join-master never does;
 * - after every successful step: record it in the applied state and save (locally and on
 *   master0) before the next one starts, so a failed apply resumes at the first unfinished step;
 * - the first failure stops the apply (steps already running finish and are recorded) with an
 *   error naming host, step, exit code and the output tail (CommandError from the SSH layer).
 */
import { UserError, wrap } from "../errors";
import { log } from "../log";
import type { AppliedState, Step } from "../plan/types";
import type { ExecContext } from "./context";
import { PARALLEL_KINDS, runStep } from "./steps";

export interface ExecuteOptions {
  /** The planner's recordStep: the applied state after `step` succeeded. */
  record: (applied: AppliedState, step: Step) => AppliedState;
  /** Persists the state (local file, copy on master0, Pulumi outputs...). Called after every step. */
  save: (applied: AppliedState) => Promise<void>;
  /** Steps run at once when consecutive steps may overlap (default 4). */
  parallelSteps?: number;
}

/** An apply that stopped: `state` is what was recorded up to the failure. */
export class ApplyError extends Error {
  override readonly name: string = "ApplyError";
  constructor(
    message: string,
    readonly state: AppliedState,
    readonly step: Step,
    readonly ran: Step[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export async function executeSteps(ctx: ExecContext, steps: Step[], opts: ExecuteOptions): Promise<Step[]> {
  const ran: Step[] = [];
  const done = new Set<string>();
  const ids = new Set(steps.map((s) => s.id));
  const limit = opts.parallelSteps ?? 4;
  let saving: Promise<void> = Promise.resolve();

  const runOne = async (step: Step): Promise<void> => {
    const started = Date.now();
    log.info(`==> ${step.kind}${step.hosts.length ? ` on ${step.hosts.join(", ")}` : ""}: ${step.reason}`);
    await runStep(ctx, step);
    ctx.state = opts.record(ctx.state, step);
    // Saves are chained so concurrent steps never write the state file at the same time.
    const snapshot = ctx.state;
    saving = saving.then(() => opts.save(snapshot));
    await saving;
    done.add(step.id);
    ran.push(step);
    log.debug(`<== ${step.id} done in ${Date.now() - started} ms`);
  };

  let i = 0;
  while (i < steps.length) {
    const first = steps[i]!;
    const batch: Step[] = [first];
    if (PARALLEL_KINDS.has(first.kind)) {
      // Extend with the following steps of the same kind whose dependencies are already done
      // (dependencies inside the batch would need an order: stop there).
      for (let j = i + 1; j < steps.length && batch.length < limit; j++) {
        const s = steps[j]!;
        if (s.kind !== first.kind || s.after.some((a) => ids.has(a) && !done.has(a))) break;
        batch.push(s);
      }
    }
    for (const s of batch) {
      const missing = s.after.filter((a) => ids.has(a) && !done.has(a));
      if (missing.length) throw new Error(`plan order: step ${s.id} runs before ${missing.join(", ")} it depends on`);
    }
    const results = await Promise.allSettled(batch.map(runOne));
    const failed = results.findIndex((r) => r.status === "rejected");
    if (failed >= 0) {
      const step = batch[failed]!;
      const reason = (results[failed] as PromiseRejectedResult).reason;
      const msg = reason instanceof Error ? reason.message : String(reason);
      // The SSH layer's errors already name host and step; add the step id when they do not.
      const text = /step "/.test(msg) ? msg : wrap(`step ${step.id}`, reason).message;
      const hint = `\n${ran.length} step(s) finished and are recorded; fix the cause and run the same command again: it continues with the remaining steps.`;
      const err = new ApplyError(text + hint, ctx.state, step, ran, { cause: reason });
      if (reason instanceof UserError) Object.defineProperty(err, "exitCode", { value: reason.exitCode });
      throw err;
    }
    i += batch.length;
  }
  return ran;
}

import type { ApplyResult } from "../apply";

/** One step a command ran, as the CLI reports it (table and --json). */
export interface RanStep {
  kind: string;
  hosts: string[];
  reason: string;
  durationMs: number;
}

/** The steps an apply ran, with how long each took. */
export function ranSteps(res: Pick<ApplyResult, "ran" | "stats">): RanStep[] {
  return res.ran.map((s) => ({
    kind: s.kind,
    hosts: s.hosts,
    reason: s.reason,
    durationMs: res.stats.durations[s.id] ?? 0,
  }));
}

import type { ApplyResult } from "../core/apply";
import { formatBytes } from "../core/log";
import { formatDuration, type RunSummary } from "../core/progress";

/** CLI output helpers: data goes to stdout (JSON with --json), logs go to stderr. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  process.stdout.write([line(headers), ...rows.map(line)].join("\n") + "\n");
}

/** Collects repeatable options: `-e a=1 -e b=2`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** One step of a run as the CLI reports it (table and --json). */
export interface RanStep {
  kind: string;
  hosts: string[];
  reason: string;
  durationMs: number;
}

export function ranSteps(res: Pick<ApplyResult, "ran" | "stats">): RanStep[] {
  return res.ran.map((s) => ({
    kind: s.kind,
    hosts: s.hosts,
    reason: s.reason,
    durationMs: res.stats.durations[s.id] ?? 0,
  }));
}

export function printSteps(steps: RanStep[]): void {
  printTable(
    ["STEP", "HOSTS", "TIME", "REASON"],
    steps.map((s) => [s.kind, s.hosts.join(","), formatDuration(s.durationMs), s.reason]),
  );
}

/** The end-of-run summary: steps, time per phase (step kind), bytes sent per host. */
export function printSummary(cluster: string, s: RunSummary): void {
  process.stdout.write(
    `\ncluster ${cluster}: ${s.steps} step(s) in ${formatDuration(s.wallMs)}; sent ${s.sent.sentBlobs} blob(s), ${formatBytes(s.sent.sentBytes)} to the hosts${s.pushedBytes ? `, ${formatBytes(s.pushedBytes)} to the registry they fetched from` : ""}\n\n`,
  );
  printTable(
    ["PHASE", "STEPS", "TIME"],
    s.phases.map((p) => [p.kind, String(p.steps), formatDuration(p.ms)]),
  );
  process.stdout.write("\n");
  printTable(
    ["HOST", "STEPS", "TIME", "SENT"],
    s.hosts.map((h) => [
      h.host,
      String(h.steps),
      formatDuration(h.ms),
      `${formatBytes(h.sentBytes)} (${h.sentBlobs} blob(s))`,
    ]),
  );
}

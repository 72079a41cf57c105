/**
 * Progress as plain log lines, for output that is not a terminal (CI logs, the Pulumi engine):
 * each running task gets at most one line per interval, plus one when a long one ends, never a
 * partial or rewritten line.
 */
import { formatBytes, log } from "../log";
import { onProgress, type ProgressEvent, type ProgressListener } from "./events";

export interface RateEstimate {
  /** Bytes per second since the task started. */
  rate: number;
  /** Seconds left at that rate, when the total is known and bytes are moving. */
  etaSeconds?: number;
}

export function estimate(done: number, total: number | undefined, elapsedMs: number): RateEstimate {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  if (total === undefined || rate <= 0 || done >= total) return { rate };
  return { rate, etaSeconds: Math.ceil((total - done) / rate) };
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
}

/** A task's figures as text, shared by log lines and terminal bars: "12 MiB/40 MiB", "4.10 MiB/s", "ETA 7.0s" or "". */
export function progressFigures(
  e: Pick<ProgressEvent, "done" | "total">,
  elapsedMs: number,
): { amount: string; rate: string; eta: string } {
  const est = estimate(e.done, e.total, elapsedMs);
  return {
    amount: e.total !== undefined ? `${formatBytes(e.done)}/${formatBytes(e.total)}` : formatBytes(e.done),
    rate: `${formatBytes(Math.round(est.rate))}/s`,
    eta: est.etaSeconds !== undefined ? `ETA ${formatDuration(est.etaSeconds * 1000)}` : "",
  };
}

/** "label 12 MiB/40 MiB 30% 4.10 MiB/s ETA 7.0s" (no host: the logger adds it). */
export function progressLine(e: ProgressEvent, elapsedMs: number): string {
  const f = progressFigures(e, elapsedMs);
  const pct = e.total ? ` ${Math.floor((e.done / e.total) * 100)}%` : "";
  if (e.kind === "end")
    return `${e.phase} ${e.label}: ${formatBytes(e.done)} in ${formatDuration(elapsedMs)} (${f.rate})`;
  return `${e.phase} ${e.label} ${f.amount}${pct} ${f.rate}${f.eta ? ` ${f.eta}` : ""}`;
}

/**
 * A listener that writes `progressLine`s through `write(host, line)`: one per task per
 * `intervalMs` while it runs, and one when it ends; tasks shorter than the interval print
 * nothing (a run of many small blobs stays quiet).
 */
export function periodicLines(
  write: (host: string | undefined, line: string) => void,
  intervalMs: number,
  now: () => number = Date.now,
): ProgressListener {
  const tasks = new Map<string, { started: number; last: number }>();
  return (e) => {
    const t = now();
    if (e.kind === "start") {
      tasks.set(e.id, { started: t, last: t });
      return;
    }
    const task = tasks.get(e.id) ?? { started: t, last: t };
    tasks.set(e.id, task);
    if (e.kind === "end") {
      tasks.delete(e.id);
      if (e.done > 0 && t - task.started >= intervalMs) write(e.host, progressLine(e, t - task.started));
      return;
    }
    if (t - task.last < intervalMs) return;
    task.last = t;
    write(e.host, progressLine(e, t - task.started));
  };
}

/** Logs every task's progress at info, at most once per `intervalMs` per task; returns the unsubscribe function. */
export function logProgress(intervalMs: number): () => void {
  return onProgress(periodicLines((host, line) => (host ? log.forHost(host) : log).info(line), intervalMs));
}

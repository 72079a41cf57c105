/**
 * Draws the core's progress events for a CLI user: on a terminal, one live bar per task
 * (bytes, rate, ETA; distribution tasks named by host) with log lines printed above the bars;
 * anywhere else (a pipe, a CI log) plain periodic lines through the logger, never control
 * characters.
 */
import { MultiBar, type SingleBar } from "cli-progress";
import { setLogSink } from "../core/log";
import {
  logProgress,
  onProgress,
  progressFigures,
  type ProgressEvent,
  type ProgressListener,
} from "../core/progress";

/** How often a running task prints a line when stderr is not a terminal. */
const LINE_INTERVAL_MS = 5000;

export function attachProgress(
  stream: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): () => void {
  const mode = env.SEALER_PROGRESS ?? (stream.isTTY && env.CI !== "true" ? "bars" : "lines");
  if (mode === "off") return () => undefined;
  if (mode !== "bars") return logProgress(LINE_INTERVAL_MS);
  const bars = barsListener(stream);
  const off = onProgress(bars);
  return () => {
    off();
    bars.stop();
  };
}

function payloadOf(e: ProgressEvent, started: number): Record<string, string> {
  const { amount, rate, eta } = progressFigures(e, Date.now() - started);
  // `eta` is a token cli-progress fills itself (whole seconds, "NULL" before it knows): ours
  // goes under another name so the bar shows the same "ETA 7.0s" as the log lines.
  return { label: `${e.host ? `[${e.host}] ` : ""}${e.phase} ${e.label}`, amount, rate, etaText: eta };
}

/** Live bars; the multibar exists only while a task runs, so logs between tasks print as usual. */
function barsListener(stream: NodeJS.WriteStream): ProgressListener & { stop: () => void } {
  let multi: MultiBar | undefined;
  let restoreSink: (() => void) | undefined;
  const bars = new Map<string, { bar: SingleBar; started: number }>();
  const stop = () => {
    multi?.stop();
    multi = undefined;
    bars.clear();
    restoreSink?.();
    restoreSink = undefined;
  };
  const listener = (e: ProgressEvent) => {
    if (e.kind === "end") {
      const b = bars.get(e.id);
      if (!b) return;
      bars.delete(e.id);
      multi?.remove(b.bar);
      if (bars.size === 0) stop();
      return;
    }
    let b = bars.get(e.id);
    if (!b) {
      if (!multi) {
        const m = new MultiBar({
          stream,
          format: "{label} {bar} {percentage}% {amount} {rate} {etaText}",
          barsize: 24,
          hideCursor: true,
          clearOnComplete: true,
          autopadding: true,
        });
        multi = m;
        const prev = setLogSink({ write: (line) => m.log(line + "\n") });
        restoreSink = () => void setLogSink(prev);
      }
      b = { bar: multi.create(e.total ?? e.done, e.done, payloadOf(e, Date.now())), started: Date.now() };
      bars.set(e.id, b);
    }
    b.bar.setTotal(e.total ?? Math.max(e.done, 1));
    b.bar.update(e.done, payloadOf(e, b.started));
  };
  return Object.assign(listener, { stop });
}

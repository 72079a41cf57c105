/**
 * Progress events, the plain-line renderer, distribution's adapter and the run summary, with a
 * fake clock (no timing assertions).
 */
import * as assert from "node:assert/strict";
import {
  estimate,
  onProgress,
  periodicLines,
  progressTask,
  summarizeRun,
  type ProgressEvent,
} from "../../provider/core/progress";
import { distributeProgress } from "../../provider/core/progress/distribute";
import { parseKubefile } from "../../provider/core/kubefile/parser";

function collect(): { events: ProgressEvent[]; off: () => void } {
  const events: ProgressEvent[] = [];
  const off = onProgress((e) => events.push(e));
  return { events, off };
}

describe("progress events", () => {
  it("a task emits start, updates only when the count changes, and one end", () => {
    const { events, off } = collect();
    const t = progressTask("push", "abc", 100);
    t.update(10);
    t.update(10);
    t.update(100);
    t.end();
    t.end();
    t.update(5);
    off();
    assert.deepEqual(
      events.map((e) => [e.kind, e.done, e.total]),
      [
        ["start", 0, 100],
        ["update", 10, 100],
        ["update", 100, 100],
        ["end", 100, 100],
      ],
    );
    assert.ok(events.every((e) => e.phase === "push" && e.id === events[0]!.id && e.label === "abc"));
  });

  it("a failing listener never breaks the work or the other listeners", () => {
    const { events, off } = collect();
    const offBad = onProgress(() => {
      throw new Error("display broke");
    });
    progressTask("build", "x", 1).end();
    offBad();
    off();
    assert.equal(events.length, 2);
  });

  it("rate and ETA from bytes and elapsed time", () => {
    assert.deepEqual(estimate(50, 100, 1000), { rate: 50, etaSeconds: 1 });
    assert.deepEqual(estimate(100, 100, 1000), { rate: 100 });
    assert.deepEqual(estimate(0, 100, 0), { rate: 0 });
    assert.deepEqual(estimate(10, undefined, 2000), { rate: 5 });
  });

  it("plain lines: at most one per task per interval, one at the end of a long task, host passed through", () => {
    let now = 0;
    const lines: Array<[string | undefined, string]> = [];
    const l = periodicLines(
      (h, line) => lines.push([h, line]),
      1000,
      () => now,
    );
    const ev = (kind: ProgressEvent["kind"], done: number): ProgressEvent => ({
      phase: "distribute",
      id: "t1",
      label: "0123456789ab",
      host: "10.0.0.2",
      kind,
      done,
      total: 4096,
    });
    l(ev("start", 0));
    now = 500;
    l(ev("update", 1024));
    now = 1000;
    l(ev("update", 2048));
    now = 1500;
    l(ev("update", 3072));
    now = 2000;
    l(ev("end", 4096));
    // A task shorter than the interval prints nothing.
    l({ ...ev("start", 0), id: "t2" });
    now = 2500;
    l({ ...ev("end", 4096), id: "t2" });
    assert.deepEqual(lines, [
      ["10.0.0.2", "distribute 0123456789ab 2 KiB/4 KiB 50% 2 KiB/s ETA 1.0s"],
      ["10.0.0.2", "distribute 0123456789ab: 4 KiB in 2.0s (2 KiB/s)"],
    ]);
  });

  it("a transfer line writes sizes as limit messages do: one format", () => {
    const lines: string[] = [];
    let now = 0;
    const l = periodicLines(
      (_h, line) => lines.push(line),
      1000,
      () => now,
    );
    const ev = (kind: ProgressEvent["kind"], done: number): ProgressEvent => ({
      kind,
      id: "t",
      phase: "pull",
      label: "blob",
      done,
      total: 3 * 1024 * 1024,
    });
    l(ev("start", 0));
    now = 2000;
    l(ev("update", 1024 * 1024));
    // The Kubefile limit message says "at most 1 MiB": a megabyte in flight reads the same.
    const refusal = (() => {
      try {
        parseKubefile(`FROM scratch\n${"LABEL a=b\n".repeat(110_000)}`, { file: "Kubefile" });
      } catch (err) {
        return (err as Error).message;
      }
    })();
    assert.equal(/at most (\S+ \S+)/.exec(refusal ?? "")?.[1], "1 MiB", refusal);
    assert.match(lines[0] ?? "", /^pull blob 1 MiB\/3 MiB 33% 512 KiB\/s ETA /, lines[0]);
  });

  it("distribution's per-host callback becomes one task per blob per host", () => {
    const { events, off } = collect();
    const cb = distributeProgress();
    const a = `sha256:${"a".repeat(64)}`;
    const b = `sha256:${"b".repeat(64)}`;
    cb({ host: "h1", phase: "list" });
    cb({ host: "h1", phase: "send", digest: a, bytes: 5, total: 10 });
    cb({ host: "h2", phase: "send", digest: a, bytes: 10, total: 10, via: "h1" });
    cb({ host: "h1", phase: "send", digest: a, bytes: 10, total: 10 });
    cb({ host: "h1", phase: "send", digest: b, bytes: 3, total: 3 });
    cb({ host: "h1", phase: "sent" });
    cb({ host: "h2", phase: "done" });
    off();
    assert.ok(events.every((e) => e.phase === "distribute"));
    assert.deepEqual(
      events.map((e) => [e.host, e.kind, e.label, e.done]),
      [
        ["h1", "start", "aaaaaaaaaaaa", 0],
        ["h1", "update", "aaaaaaaaaaaa", 5],
        ["h2", "start", "aaaaaaaaaaaa via h1", 0],
        ["h2", "update", "aaaaaaaaaaaa via h1", 10],
        ["h1", "update", "aaaaaaaaaaaa", 10],
        ["h1", "end", "aaaaaaaaaaaa", 10],
        ["h1", "start", "bbbbbbbbbbbb", 0],
        ["h1", "update", "bbbbbbbbbbbb", 3],
        ["h1", "end", "bbbbbbbbbbbb", 3],
        ["h2", "end", "aaaaaaaaaaaa via h1", 10],
      ],
    );
  });

  it("the run summary: steps, busy time per phase, bytes per host", () => {
    const s = summarizeRun(
      [
        { id: "distribute", kind: "distribute", hosts: ["10.0.0.10", "10.0.0.9"], durationMs: 300 },
        { id: "init-host:10.0.0.9", kind: "init-host", hosts: ["10.0.0.9"], durationMs: 100 },
        { id: "init-host:10.0.0.10", kind: "init-host", hosts: ["10.0.0.10"], durationMs: 50 },
        { id: "save-clusterfile", kind: "save-clusterfile", hosts: [], durationMs: 5 },
      ],
      420,
      { "10.0.0.9": { sentBlobs: 2, sentBytes: 1000 }, "10.0.0.10": { sentBlobs: 1, sentBytes: 10 } },
    );
    assert.equal(s.steps, 4);
    assert.equal(s.wallMs, 420);
    assert.deepEqual(s.phases, [
      { kind: "distribute", steps: 1, ms: 300 },
      { kind: "init-host", steps: 2, ms: 150 },
      { kind: "save-clusterfile", steps: 1, ms: 5 },
    ]);
    assert.deepEqual(s.sent, { sentBlobs: 3, sentBytes: 1010 });
    assert.equal(s.pushedBytes, 0);
    assert.deepEqual(s.hosts, [
      { host: "10.0.0.9", steps: 2, ms: 400, sentBlobs: 2, sentBytes: 1000 },
      { host: "10.0.0.10", steps: 2, ms: 350, sentBlobs: 1, sentBytes: 10 },
    ]);
  });
});

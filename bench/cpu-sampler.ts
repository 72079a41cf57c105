/**
 * Where CPU time went while something ran, without perf: every process's utime+stime from
 * /proc/<pid>/stat, sampled every `everyMs` and summed by command name (the nodes' sshd, tar,
 * python3… share this machine's PID space), plus the whole machine's busy time from /proc/stat.
 * A process that exits between two samples loses at most its last interval.
 */
import * as fs from "node:fs";

const TICK = 100; // USER_HZ on Linux

/** The operator (a `sealer` CLI process) apart from other node processes (other users' tests, say). */
const sealerPids = new Map<number, boolean>();
function isSealer(pid: number): boolean {
  let v = sealerPids.get(pid);
  if (v === undefined) {
    try {
      v = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("bin/sealer.js");
    } catch {
      v = false;
    }
    sealerPids.set(pid, v);
  }
  return v;
}

/** A process sample; `start` (its start time in ticks since boot) tells a reused pid apart. */
interface ProcSample {
  comm: string;
  ticks: number;
  start: number;
}

function readProcs(): Map<number, ProcSample> {
  const out = new Map<number, ProcSample>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(")");
    const pid = Number(name);
    const name0 = stat.slice(stat.indexOf("(") + 1, close);
    const comm = name0 === "node" && isSealer(pid) ? "sealer (operator)" : name0;
    const f = stat.slice(close + 2).split(" ");
    out.set(pid, { comm, ticks: Number(f[11]) + Number(f[12]), start: Number(f[19]) });
  }
  return out;
}

function machineBusy(): number {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return f.reduce((a, b) => a + b, 0) - idle;
}

export interface CpuReport {
  /** CPU seconds by command name, of processes that used any during the run. */
  byComm: Map<string, number>;
  /** Busy CPU seconds of the whole machine (all cores, every process, other users too). */
  machineSeconds: number;
}

/** Starts sampling; the returned stop() gives the CPU seconds used since, by command name. */
export function sampleCpu(everyMs = 200): { stop: () => CpuReport } {
  const start = readProcs();
  const last = new Map<number, ProcSample>();
  const busy0 = machineBusy();
  const tick = () => {
    for (const [pid, p] of readProcs()) last.set(pid, p);
  };
  const timer = setInterval(tick, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      const byComm = new Map<string, number>();
      for (const [pid, p] of last) {
        const before = start.get(pid);
        // The same process (pid and start time), not the same name: a kernel worker renames
        // itself with the work it does, and counting its whole life made "kworker" the top entry.
        const used = p.ticks - (before && before.start === p.start ? before.ticks : 0);
        const comm = pid === process.pid ? "bench (this process)" : p.comm;
        if (used > 0) byComm.set(comm, (byComm.get(comm) ?? 0) + used / TICK);
      }
      return { byComm, machineSeconds: (machineBusy() - busy0) / TICK };
    },
  };
}

/**
 * "sshd 3.10s, python3 1.20s, …" for the names that used at least `min` seconds; kernel workers
 * (writeback among them) summed as "kworker". With `gib`, also per GiB moved.
 */
export function formatCpu(r: CpuReport, gib?: number, min = 0.05): string {
  const grouped = new Map<string, number>();
  for (const [c, sec] of r.byComm) {
    const k = c.startsWith("kworker/") ? "kworker" : c;
    grouped.set(k, (grouped.get(k) ?? 0) + sec);
  }
  const per = (sec: number) => (gib ? ` (${(sec / gib).toFixed(2)}/GiB)` : "");
  const parts = [...grouped]
    .filter(([, sec]) => sec >= min)
    .sort((a, b) => b[1] - a[1])
    .map(([c, sec]) => `${c} ${sec.toFixed(2)}s${per(sec)}`);
  return `machine busy ${r.machineSeconds.toFixed(2)} CPU-s${per(r.machineSeconds)}; ${parts.join(", ")}`;
}

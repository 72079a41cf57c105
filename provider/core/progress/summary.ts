/**
 * The summary a run ends with: how many steps ran, the time spent per step kind (phase), and
 * the bytes that left this machine, per host. Computed from the executor's records only.
 */
export interface StepTiming {
  id: string;
  kind: string;
  hosts: string[];
  durationMs: number;
}

export interface HostBytes {
  sentBlobs: number;
  sentBytes: number;
}

export interface RunSummary {
  steps: number;
  wallMs: number;
  /** Per step kind, in first-run order. Steps of a kind may overlap, so `ms` is busy time, not wall time. */
  phases: Array<{ kind: string; steps: number; ms: number }>;
  sent: HostBytes;
  /** Bytes pushed once to the registry the nodes fetched from (registry distribution). */
  pushedBytes: number;
  hosts: Array<{ host: string; steps: number; ms: number } & HostBytes>;
}

export function summarizeRun(
  timings: StepTiming[],
  wallMs: number,
  perHost: Record<string, HostBytes>,
  pushedBytes = 0,
): RunSummary {
  const phases = new Map<string, { kind: string; steps: number; ms: number }>();
  const hosts = new Map<string, { host: string; steps: number; ms: number } & HostBytes>();
  const host = (h: string) => {
    let e = hosts.get(h);
    if (!e) hosts.set(h, (e = { host: h, steps: 0, ms: 0, sentBlobs: 0, sentBytes: 0 }));
    return e;
  };
  for (const t of timings) {
    const p = phases.get(t.kind) ?? { kind: t.kind, steps: 0, ms: 0 };
    p.steps++;
    p.ms += t.durationMs;
    phases.set(t.kind, p);
    for (const h of t.hosts) {
      const e = host(h);
      e.steps++;
      e.ms += t.durationMs;
    }
  }
  const sent: HostBytes = { sentBlobs: 0, sentBytes: 0 };
  for (const [h, b] of Object.entries(perHost)) {
    const e = host(h);
    e.sentBlobs += b.sentBlobs;
    e.sentBytes += b.sentBytes;
    sent.sentBlobs += b.sentBlobs;
    sent.sentBytes += b.sentBytes;
  }
  return {
    steps: timings.length,
    wallMs,
    phases: [...phases.values()],
    sent,
    pushedBytes,
    hosts: [...hosts.values()].sort((a, b) => a.host.localeCompare(b.host, "en", { numeric: true })),
  };
}

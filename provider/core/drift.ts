/**
 * Drift detection: probe every host of a recorded cluster over SSH (read-only, one command per
 * host, bounded concurrency, plus one `kubectl get nodes` on a master) and report,
 * per host and check, ok | drifted (expected, found, the recorded steps whose effect is gone) |
 * unreachable | unknown. `forgetSteps` then drops those records so the next plan re-runs exactly
 * them, with "drift: …" as the reason.
 *
 * What is probed on a host: the effects of the recorded steps, including each step's footprint
 * (the files it left, exec/footprint.ts). Pure comparison: drift/compare.ts; probing: drift/probe.ts.
 */
import type { ClusterSpec } from "./clusterfile";
import { ExecContext } from "./exec/context";
import { APISERVER_DOMAIN } from "./kube/kubeadm-config";
import { factsOrEmpty } from "./image/facts";
import { OciLayout } from "./image/layout";
import { dataPaths } from "./paths";
import type { AppliedState } from "./plan/types";
import { SshPool } from "./ssh";
import {
  buildReport,
  driftNotes,
  expectations,
  forgetSteps,
  type ClusterLayout,
  type DriftReport,
} from "./drift/compare";
import { probeHosts, probeNodes } from "./drift/probe";

export * from "./drift/compare";

export interface CheckOptions {
  spec: ClusterSpec;
  applied: AppliedState;
  store?: OciLayout;
  knownHostsFile?: string;
  /** SSH dial attempts / per-attempt timeout (a probe gives up sooner than an apply: 2 x 5 s). */
  ssh?: { dialAttempts?: number; dialTimeoutMs?: number };
  /** Hosts probed at once (default 16). */
  concurrency?: number;
}

export function layoutOf(ctx: ExecContext): ClusterLayout {
  const reg = ctx.registryAddress();
  return {
    cluster: ctx.cluster,
    masters: ctx.masters,
    workers: ctx.workers,
    registryHosts: ctx.registryHosts(),
    registryTargets: Object.fromEntries(
      [...ctx.masters, ...ctx.workers].map((ip) => [ip, ctx.registryTargetFor(ip)]),
    ),
    registryDomain: reg.domain,
    localRegistry: !reg.external,
    hostAliases: ctx.spec.hostAliases.map((a) => ({ ip: a.ip, names: a.hostnames })),
    vip: ctx.vip(),
    apiserverDomain: APISERVER_DOMAIN,
  };
}

/** Probes the cluster's hosts and compares them with the applied state. */
export async function checkDrift(o: CheckOptions): Promise<DriftReport> {
  const layout = o.store ?? new OciLayout(dataPaths.store());
  const image = await factsOrEmpty(layout, o.applied.image?.reference ?? o.spec.image);
  const pool = new SshPool({
    knownHostsFile: o.knownHostsFile ?? dataPaths.knownHosts(),
    dialAttempts: o.ssh?.dialAttempts ?? 2,
    dialTimeoutMs: o.ssh?.dialTimeoutMs ?? 5000,
  });
  const ctx = new ExecContext({
    spec: o.spec,
    image,
    layout,
    pool,
    state: o.applied,
    stateDir: "",
  });
  try {
    const expected = expectations(o.applied, layoutOf(ctx));
    const observed = await probeHosts(ctx, expected, {
      registryPort: ctx.registryAddress().port,
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    });
    const down = new Set(observed.filter((x) => x.unreachable !== undefined).map((x) => x.host));
    const needNodes = expected.some((e) => e.node);
    const nodes = needNodes
      ? await probeNodes(ctx, (ip) => !down.has(ip))
      : ({ ok: false, unreachable: false, error: "not asked" } as const);
    const notes = [
      "apps (launch-app / launch-cmds) are not checked: a cluster keeps no cheap, reliable evidence that an app's commands took effect",
    ];
    const recordedOnly = Object.keys(o.applied.hosts).filter(
      (ip) => !ctx.masters.includes(ip) && !ctx.workers.includes(ip),
    );
    if (recordedOnly.length)
      notes.push(
        `hosts ${recordedOnly.join(", ")} are recorded but not in the Clusterfile: not checked (the next apply removes them)`,
      );
    return buildReport(o.spec.name, expected, observed, nodes, notes);
  } finally {
    await pool.close();
  }
}

/** The applied state whose next plan repairs what `report` found drifted. */
export function forgetDrifted(applied: AppliedState, report: DriftReport): AppliedState {
  return forgetSteps(applied, report.steps, driftNotes(report));
}

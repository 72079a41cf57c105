/** An ExecContext over the recording fake host, for the step-handler unit tests. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { layoutOf } from "../../../provider/core/drift";
import {
  compareHost,
  expectations,
  type ExpectedHost,
  type HostObservation,
  type NodeList,
} from "../../../provider/core/drift/compare";
import { ExecContext } from "../../../provider/core/exec/context";
import { recordStep } from "../../../provider/core/exec/record";
import type { Observed } from "../../../provider/core/exec/steps/kind";
import type { Desired } from "../../../provider/core/plan/planner";
import { OciLayout } from "../../../provider/core/image/layout";
import {
  emptyApplied,
  type AppliedState,
  type ImageFacts,
  type Step,
} from "../../../provider/core/plan/types";
import { SshPool } from "../../../provider/core/ssh";
import { FakeHosts } from "../../harness/fake-host";
import { baseImage, clusterfile, M, spec, W } from "../../fixtures/clusterfile/plan-world";

export { M, W };
export const M0 = M[0]!;
export const M1 = M[1]!;
export const W0 = W[0]!;
export const W1 = W[1]!;

/** The node name every host reports (`hostname`). */
export const nodeOf = (ip: string): string => `node-${ip.replace(/\./g, "-")}`;

export interface World {
  ctx: ExecContext;
  io: FakeHosts;
  stateDir: string;
  done(): void;
}

const live: World[] = [];

/** Every world's state dir goes after each test: a root-level hook, so no test file can forget it. */
afterEach(() => {
  for (const w of live.splice(0)) w.done();
});

export function world(o: { clusterfile?: string; image?: ImageFacts; state?: AppliedState } = {}): World {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "steps-unit-"));
  const io = new FakeHosts();
  // filesWrittenBy's marker; hostname for node names.
  io.answer({ match: /^mktemp$/, stdout: "/tmp/tmp.marker\n" });
  for (const ip of [...M, ...W]) io.answer({ host: ip, match: /^hostname$/, stdout: `${nodeOf(ip)}\n` });
  const s = spec(o.clusterfile ?? clusterfile());
  const ctx = new ExecContext({
    spec: s,
    image: o.image ?? baseImage(),
    layout: new OciLayout(path.join(stateDir, "layout")),
    // Never dialled: every host call goes through `io`.
    pool: new SshPool({ knownHostsFile: path.join(stateDir, "known_hosts") }),
    state: o.state ?? emptyApplied(s.name),
    stateDir,
    io,
  });
  const w = { ctx, io, stateDir, done: () => fs.rmSync(stateDir, { recursive: true, force: true }) };
  live.push(w);
  return w;
}

export function step<K extends Step["kind"]>(
  kind: K,
  hosts: string[],
  extra:
    | Omit<Extract<Step, { kind: K }>, keyof import("../../../provider/core/plan/types").StepBase>
    | object = {},
): Extract<Step, { kind: K }> {
  return {
    id: `${kind}:test`,
    kind,
    hosts,
    reason: "test",
    key: "k",
    after: [],
    ...extra,
  } as unknown as Extract<Step, { kind: K }>;
}

/** The desired state a world's context was made from (what recordStep is given by an apply). */
export function desiredOf(w: World): Desired {
  return { cluster: w.ctx.spec, image: w.ctx.image };
}

/** The applied state after `s` succeeded with what its handler observed (recordStep, as the executor calls it). */
export function recorded(
  w: World,
  s: Step,
  observed: Observed,
  applied: AppliedState = w.ctx.state,
): AppliedState {
  return recordStep(applied, s, desiredOf(w), observed);
}

/** A probe of `ip` that finds everything as recorded, with `change` applied (files: path -> sha256 or null). */
export function observation(e: ExpectedHost, change: Partial<HostObservation> = {}): HostObservation {
  const files: Record<string, string | null> = {};
  for (const f of [...e.files, ...(e.tree?.files ?? [])]) files[f.path] = f.sha256;
  return {
    host: e.host,
    blobs: Object.fromEntries((e.layers ?? []).map((d) => [d.slice("sha256:".length), 1])),
    layersJson: e.layers ?? null,
    rootfs: true,
    blocks: Object.fromEntries(e.blocks.map((b) => [b.tag, b.lines])),
    ...(e.registry ? { registryHttp: "200" } : {}),
    clusterfile: e.clusterfile,
    ...change,
    files: { ...files, ...(change.files ?? {}) },
  };
}

/** What the drift check expects of `ip` in `applied` (every kind's probe, and the footprints). */
export function expected(w: World, applied: AppliedState, ip: string): ExpectedHost {
  const e = expectations(applied, layoutOf(w.ctx)).find((x) => x.host === ip);
  if (!e) throw new Error(`no expectations for ${ip}`);
  return e;
}

/** The drifted checks of `ip` when the probe finds `change`: check -> the steps it names. */
export function drifted(
  w: World,
  applied: AppliedState,
  ip: string,
  change: Partial<HostObservation> = {},
  nodes: NodeList = { ok: false, unreachable: false, error: "not asked" },
): Record<string, string[]> {
  const e = expected(w, applied, ip);
  const out: Record<string, string[]> = {};
  for (const c of compareHost(e, observation(e, change), nodes))
    if (c.status === "drifted") out[c.check] = c.steps;
  return out;
}

/** An applied state that knows `ips` (a drift check only looks at hosts the state records). */
export function knowing(w: World, ips: string[]): AppliedState {
  const s = emptyApplied(w.ctx.cluster);
  for (const ip of ips) s.hosts[ip] = { roles: [w.ctx.isMaster(ip) ? "master" : "node"], layers: [] };
  return s;
}

/** The commands a world's host ran as the given step, in order. */
export const runsOf = (w: World, ip: string): string[] => w.io.bodies(ip);

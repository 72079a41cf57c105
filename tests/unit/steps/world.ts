/** An ExecContext over the recording fake host, for the step-handler unit tests. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ExecContext } from "../../../provider/core/exec/context";
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

/** Removes every world's state dir (an afterEach of each test file). */
export function disposeWorlds(): void {
  for (const w of live.splice(0)) w.done();
}

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

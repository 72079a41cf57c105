/**
 * Progress events for each long phase, from the real code paths: a build, a push to and a pull
 * from a real docker-registry, and a distribute step to a local node. Assertions are on the
 * event stream only (every task starts, moves forward, and ends with all its bytes), never on time.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { ExecContext } from "../../provider/core/exec/context";
import { distribute } from "../../provider/core/exec/steps/distribute";
import { buildImage } from "../../provider/core/image/builder";
import { imageFacts } from "../../provider/core/image/facts";
import { OciLayout } from "../../provider/core/image/layout";
import { setLogSink } from "../../provider/core/log";
import { emptyApplied, type Step } from "../../provider/core/plan/types";
import { onProgress, type ProgressEvent, type ProgressPhase } from "../../provider/core/progress";
import { pullImage } from "../../provider/core/registry/pull";
import { pushImage } from "../../provider/core/registry/push";
import { useNodes } from "../harness/nodes";
import { startRegistry, useWorkDir, type TestRegistry } from "../harness/registry";
import { clusterYaml } from "../harness/clusterfile";

/** Checks every task of `phase` in `events`: start first, non-decreasing bytes, one end with the total. */
function assertTasks(events: ProgressEvent[], phase: ProgressPhase): ProgressEvent[] {
  const mine = events.filter((e) => e.phase === phase);
  const ids = [...new Set(mine.map((e) => e.id))];
  assert.ok(ids.length > 0, `${phase}: no progress task`);
  for (const id of ids) {
    const t = mine.filter((e) => e.id === id);
    assert.equal(t[0]!.kind, "start", `${phase} ${id}: starts`);
    assert.equal(t.filter((e) => e.kind === "end").length, 1, `${phase} ${id}: ends once`);
    assert.equal(t[t.length - 1]!.kind, "end", `${phase} ${id}: nothing after its end`);
    for (let i = 1; i < t.length; i++)
      assert.ok(t[i]!.done >= t[i - 1]!.done, `${phase} ${id}: bytes only grow`);
    const end = t[t.length - 1]!;
    if (end.total !== undefined) assert.equal(end.done, end.total, `${phase} ${id}: ends with every byte`);
  }
  assert.ok(
    mine.some((e) => e.kind === "update" && e.done > 0),
    `${phase}: at least one update with bytes`,
  );
  return mine;
}

describe("progress events per phase: build, push, pull, distribute (integration)", function () {
  this.timeout(180_000);
  const nodes = useNodes(1);
  const work = useWorkDir("progress-phases");
  let reg: TestRegistry;
  let events: ProgressEvent[];
  let off: () => void;
  let restoreSink: ReturnType<typeof setLogSink>;
  const home = () => work("home");

  before(async () => {
    reg = await startRegistry();
    restoreSink = setLogSink({ write: () => undefined });
  });
  after(async () => {
    setLogSink(restoreSink);
    await reg?.stop();
  });
  beforeEach(() => {
    events = [];
    off = onProgress((e) => events.push(e));
  });
  afterEach(() => off());

  it("emits start/update/end for every task of each phase", async () => {
    const ctxDir = work("context");
    fs.mkdirSync(path.join(ctxDir, "data"), { recursive: true });
    fs.writeFileSync(path.join(ctxDir, "data", "blob.bin"), crypto.randomBytes(4 << 20));
    fs.writeFileSync(path.join(ctxDir, "Kubefile"), "FROM scratch\nCOPY data data\n");
    await buildImage({ context: ctxDir, tag: "progress/app:1", home: home(), buildMode: "lite" });
    assertTasks(events, "build");

    const store = new OciLayout(path.join(home(), "store"));
    events = [];
    await pushImage(`${reg.host}/progress/app:1`, {
      store,
      source: "progress/app:1",
      home: home(),
      credentials: null,
    });
    const pushed = assertTasks(events, "push");
    assert.ok(pushed.every((e) => e.host === undefined));

    events = [];
    const other = new OciLayout(work("other-store"));
    await pullImage(`${reg.host}/progress/app:1`, { store: other, home: home(), credentials: null });
    assertTasks(events, "pull");

    events = [];
    const n = nodes.list[0]!;
    const image = await imageFacts(store, "progress/app:1");
    const spec = loadClusterfile(
      clusterYaml({ name: "prog", image: "progress/app:1", pk: n.keyPath, masters: [n.ip] }),
    ).spec;
    const ctx = new ExecContext({
      spec,
      image,
      layout: store,
      pool: nodes.pool(),
      state: emptyApplied("prog"),
      stateDir: work("state"),
    });
    await distribute.run(ctx, {
      id: "distribute",
      kind: "distribute",
      hosts: [n.ip],
      layers: image.layers.map((l) => l.digest),
      reason: "test",
      key: "k",
      after: [],
    } as Extract<Step, { kind: "distribute" }>);
    const dist = assertTasks(events, "distribute");
    assert.ok(
      dist.every((e) => e.host === n.ip),
      "distribution tasks name their host",
    );
    // One task per layer blob sent, each ending with the blob's size.
    const ends = dist.filter((e) => e.kind === "end");
    assert.deepEqual(
      ends.map((e) => e.total).sort(),
      image.layers.map((l) => fs.statSync(store.blobPath(l.digest)).size).sort(),
    );
    await nodes.pool().run(nodes.targets()[0]!, "rm -rf /var/lib/sealer/prog");
  });
});

import * as assert from "node:assert/strict";
import { emptyStats, type ExecContext } from "../../provider/core/exec/context";
import { ApplyError, executeSteps } from "../../provider/core/exec/executor";
import { emptyApplied, type AppliedState, type Step } from "../../provider/core/plan/types";
import { StepError, UserError, wrap } from "../../provider/core/errors";
import { CommandError, ConnectionLostError, DialError, HostRefusedError } from "../../provider/core/ssh/pool";
import { setLogSink } from "../../provider/core/log";

function step(id: string, kind: Step["kind"], hosts: string[], after: string[] = []): Step {
  return { id, kind, hosts, after, reason: "test", key: `k-${id}` } as Step;
}

/** A context stub: the executor only reads and writes `state` and `stats` on it. */
function ctx(): ExecContext {
  return { state: emptyApplied("c"), stats: emptyStats() } as unknown as ExecContext;
}

const record = (a: AppliedState, s: Step): AppliedState => ({
  ...a,
  steps: { ...a.steps, [s.id]: { key: s.key, hosts: s.hosts } },
});

describe("executor: scheduling, recording, failure", () => {
  let restore: ReturnType<typeof setLogSink>;
  before(() => (restore = setLogSink({ write: () => undefined })));
  after(() => setLogSink(restore));

  it("runs steps after their dependencies, hosts in parallel, join-master one at a time in order", async () => {
    const events: string[] = [];
    let running = 0;
    let maxJoinMasters = 0;
    let joinMasters = 0;
    let maxParallel = 0;
    const steps = [
      step("d:1", "distribute", ["1"]),
      step("d:2", "distribute", ["2"]),
      step("d:3", "distribute", ["3"]),
      step("init", "init-master", ["1"], ["d:1"]),
      step("jm:2", "join-master", ["2"], ["init", "d:2"]),
      step("jm:3", "join-master", ["3"], ["init", "d:3"]),
      step("jw:4", "join-worker", ["4"], ["init"]),
      step("jw:5", "join-worker", ["5"], ["init"]),
    ];
    const saved: string[][] = [];
    const savedAfter: Array<{ ids: string[]; at: number }> = [];
    const c = ctx();
    const ran = await executeSteps(c, steps, {
      record,
      save: async (s) => {
        saved.push(Object.keys(s.steps).sort());
        savedAfter.push({ ids: Object.keys(s.steps), at: events.length });
      },
      run: async (_c, s) => {
        running++;
        maxParallel = Math.max(maxParallel, running);
        if (s.kind === "join-master") maxJoinMasters = Math.max(maxJoinMasters, ++joinMasters);
        events.push(`start ${s.id}`);
        await new Promise((r) => setTimeout(r, s.kind === "join-master" ? 30 : 10));
        events.push(`end ${s.id}`);
        if (s.kind === "join-master") joinMasters--;
        running--;
      },
    });
    assert.equal(ran.length, steps.length);
    // Every step that ran has its duration recorded (what the text/JSON output and summary show).
    assert.deepEqual(Object.keys(c.stats.durations).sort(), steps.map((s) => s.id).sort());
    for (const ms of Object.values(c.stats.durations)) assert.ok(Number.isInteger(ms) && ms >= 0);
    assert.equal(maxJoinMasters, 1, "join-master never overlaps");
    assert.ok(maxParallel >= 3, "distribute steps on different hosts overlap");
    const at = (e: string) => events.indexOf(e);
    assert.ok(at("end d:1") < at("start init"));
    assert.ok(at("end init") < at("start jm:2") && at("end jm:2") < at("start jm:3"));
    assert.ok(
      at("end init") < at("start jw:4") && at("start jw:5") < at("end jw:4"),
      "workers join in parallel",
    );
    // Every step's record was saved before any step after it started; steps finishing together share a save.
    for (const s of steps)
      for (const dep of s.after) {
        const startedAt = events.indexOf(`start ${s.id}`);
        const savedAt = savedAfter.findIndex((x) => x.ids.includes(dep));
        assert.ok(
          savedAt >= 0 && savedAfter[savedAt]!.at <= startedAt,
          `${dep} saved before ${s.id} started`,
        );
      }
    assert.ok(saved.length <= steps.length);
    assert.deepEqual(saved[saved.length - 1], steps.map((s) => s.id).sort());
  });

  it("keeps plan order on one host when no dependency is declared", async () => {
    const order: string[] = [];
    await executeSteps(
      ctx(),
      [step("a", "init-host", ["1"]), step("b", "container-runtime", ["1"]), step("c", "init-host", ["2"])],
      {
        record,
        save: async () => undefined,
        run: async (_c, s) => {
          order.push(`start ${s.id}`);
          await new Promise((r) => setTimeout(r, 10));
          order.push(`end ${s.id}`);
        },
      },
    );
    assert.ok(order.indexOf("end a") < order.indexOf("start b"));
    assert.ok(order.indexOf("start c") < order.indexOf("end a"), "another host does not wait");
  });

  it("stops at the first failure: running steps finish and are recorded, nothing new starts", async () => {
    const started: string[] = [];
    const states: AppliedState[] = [];
    const steps = [
      step("w:1", "join-worker", ["1"]),
      step("w:2", "join-worker", ["2"]),
      step("labels", "node-labels", ["9"], ["w:1", "w:2"]),
    ];
    await assert.rejects(
      executeSteps(ctx(), steps, {
        record,
        save: async (s) => void states.push(s),
        run: async (_c, s) => {
          started.push(s.id);
          if (s.id === "w:1") throw new CommandError("1", "kubeadm join", 1, "boom");
          await new Promise((r) => setTimeout(r, 20));
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof ApplyError);
        assert.equal(err.step.id, "w:1");
        assert.equal(err.host, "1");
        assert.ok(err.cause instanceof CommandError);
        assert.equal(
          err.message,
          `[1] step w:1 failed: "kubeadm join" returned exit code 1:\nboom\n1 step(s) finished and are recorded; fix the cause and run the same command again: it continues with the remaining steps.`,
        );
        assert.deepEqual(Object.keys(err.state.steps), ["w:2"]);
        assert.deepEqual(
          err.ran.map((s) => s.id),
          ["w:2"],
        );
        return true;
      },
    );
    assert.deepEqual(started.sort(), ["w:1", "w:2"]);
    assert.equal(states.length, 1);
  });

  it("names the step's only host when the error names none; a multi-host step names no host", async () => {
    for (const [hosts, host] of [
      [["10.0.0.1"], "10.0.0.1"],
      [["10.0.0.1", "10.0.0.2"], undefined],
    ] as const) {
      const cause = new UserError("htpasswd is not installed", { exitCode: 2 });
      await assert.rejects(
        executeSteps(ctx(), [step("registry", "registry", [...hosts])], {
          record,
          save: async () => undefined,
          run: async () => {
            throw cause;
          },
        }),
        (err: unknown) => {
          assert.ok(err instanceof ApplyError && err instanceof StepError);
          assert.equal(err.host, host);
          assert.equal(err.cause, cause, "the cause is kept as it was thrown, not re-wrapped");
          assert.equal(
            err.summary,
            `${host ? `[${host}] ` : ""}step registry failed: htpasswd is not installed`,
          );
          return true;
        },
      );
    }
  });

  it("takes the host from the SSH layer's failure, not from the step's first host", async () => {
    await assert.rejects(
      executeSteps(ctx(), [step("distribute", "distribute", ["10.0.0.1", "10.0.0.2"])], {
        record,
        save: async () => undefined,
        run: async () => {
          throw new ConnectionLostError(
            "10.0.0.2",
            "extract layer 1/2",
            "connection lost (keep-alive timeout)",
          );
        },
      }),
      (err: unknown) => {
        assert.ok(err instanceof ApplyError);
        assert.equal(err.host, "10.0.0.2");
        assert.equal(
          err.summary,
          `[10.0.0.2] step distribute failed: "extract layer 1/2": connection lost (keep-alive timeout)`,
        );
        // Callers adding context get the same error back: it is wrapped once, where steps run.
        assert.equal(wrap("sealer join", err), err);
        return true;
      },
    );
    // A dial that failed and a refusal name their host once, from their fields.
    for (const cause of [
      new DialError("10.0.0.2", "connect", "dial 5/5 to 10.0.0.2:22 failed: ECONNREFUSED; giving up"),
      new HostRefusedError("10.0.0.2", "connect", "authentication failed for ops@10.0.0.2"),
    ])
      await assert.rejects(
        executeSteps(ctx(), [step("distribute", "distribute", ["10.0.0.1", "10.0.0.2"])], {
          record,
          save: async () => undefined,
          run: async () => {
            throw cause;
          },
        }),
        (err: unknown) => {
          assert.ok(err instanceof ApplyError);
          assert.equal(err.host, "10.0.0.2");
          assert.equal(err.summary, `[10.0.0.2] step distribute failed: ${cause.onHost}`);
          assert.equal(err.summary.split("10.0.0.2]").length, 2, "the host is named once");
          return true;
        },
      );
  });

  it("refuses a plan whose dependencies never complete (circular)", async () => {
    await assert.rejects(
      executeSteps(ctx(), [step("b", "init-host", ["1"], ["a"]), step("a", "distribute", ["1"], ["b"])], {
        record,
        save: async () => undefined,
        run: async () => undefined,
      }),
      /plan order: steps b, a never became ready \(their dependencies are missing or circular\)/,
    );
  });
});

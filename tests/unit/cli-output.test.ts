/**
 * The step table every command that runs steps prints (run/apply and the lifecycle verbs: join,
 * delete, upgrade, rollback, backup, restore, cert): one printer, with a TIME column.
 */
import * as assert from "node:assert/strict";
import { printRan } from "../../provider/cli/output";
import { ranSteps } from "../../provider/core/lifecycle/ran-steps";

function captured(fn: () => void): string {
  const write = process.stdout.write.bind(process.stdout);
  let out = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    fn();
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe("CLI output: the step table", () => {
  it("lifecycle results print STEP, HOSTS, TIME, REASON, as run and apply do", () => {
    const applied = ranSteps({
      ran: [
        { id: "join-worker:10.0.0.3", kind: "join-worker", hosts: ["10.0.0.3"], reason: "host added" },
      ] as never,
      stats: { durations: { "join-worker:10.0.0.3": 1500 } } as never,
    });
    const hook = { kind: "hook", hosts: ["10.0.0.2"], reason: "rollback hook", durationMs: 250 };
    const text = captured(() => printRan("c1", [...applied, hook], {}));
    const lines = text.split("\n");
    assert.match(lines[0]!, /^STEP\s+HOSTS\s+TIME\s+REASON$/);
    assert.match(lines[1]!, /^join-worker\s+10\.0\.0\.3\s+1\.5s\s+host added$/);
    assert.match(lines[2]!, /^hook\s+10\.0\.0\.2\s+250ms\s+rollback hook$/);
    assert.equal(lines[3], "cluster c1: 2 step(s) ran");
  });

  it("--json carries each step's duration", () => {
    const text = captured(() =>
      printRan("c1", [{ kind: "backup", hosts: ["10.0.0.2"], reason: "etcd snapshot", durationMs: 42 }], {
        json: true,
      }),
    );
    assert.deepEqual(JSON.parse(text), {
      cluster: "c1",
      steps: [{ kind: "backup", hosts: ["10.0.0.2"], reason: "etcd snapshot", durationMs: 42 }],
    });
  });
});

/** launch-cmds against the recording fake host: stops at the first failure; its record. */
import { strict as assert } from "node:assert";
import { launchCmds } from "../../../provider/core/exec/steps/launch-cmds";
import { CommandError } from "../../../provider/core/ssh";
import { M0, recorded, step, world } from "./world";

describe("step launch-cmds (fake host)", () => {
  it("stops at the first failing command, naming master0 and the step, and is not recorded", async () => {
    const w = world();
    w.io.answer({ host: M0, match: /^helm install/, code: 2, stderr: "Error: chart not found" });
    await assert.rejects(
      launchCmds.run(
        w.ctx,
        step("launch-cmds", [M0], { cmds: ["echo one", "helm install x ./x", "echo three"] }),
      ),
      (e: Error) =>
        e instanceof CommandError &&
        e.host === M0 &&
        e.step === "launch-cmds" &&
        /chart not found/.test(e.message),
    );
    assert.deepEqual(w.io.bodies(M0), ["echo one", "helm install x ./x"]);
    assert.deepEqual(w.ctx.state.steps, {}, "the handler writes no record");
  });

  it("runs every command on master0 only; the record keeps the key and clears a drift note", async () => {
    const w = world();
    const s = step("launch-cmds", [M0], { id: "launch-cmds", cmds: ["echo one", "echo two"] });
    assert.deepEqual(await launchCmds.run(w.ctx, s), {});
    assert.deepEqual(w.io.hosts(), [M0]);
    assert.deepEqual(w.io.bodies(M0), ["echo one", "echo two"]);
    const after = recorded(w, s, {}, { ...w.ctx.state, drift: { "launch-cmds": "gone", other: "x" } });
    assert.deepEqual(after.steps["launch-cmds"], { key: "k", hosts: [M0] });
    assert.deepEqual(after.drift, { other: "x" });
  });
});

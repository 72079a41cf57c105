/** launch-app against the recording fake host: its handler and its record. */
import { strict as assert } from "node:assert";
import { launchApp } from "../../../provider/core/exec/steps/launch-app";
import { baseImage } from "../../fixtures/clusterfile/plan-world";
import { M0, expected, recorded, step, world } from "./world";

describe("step launch-app (fake host)", () => {
  it("runs the app's commands in order on master0 with the app's env", async () => {
    const image = baseImage();
    image.apps[0] = { ...image.apps[0]!, env: { Replicas: "3" } };
    const w = world({ image });
    const s = step("launch-app", [M0], { app: "web", cmds: ["kubectl apply -f a", "kubectl apply -f b"] });
    const seen = await launchApp.run(w.ctx, s);
    assert.deepEqual(w.io.hosts(), [M0]);
    assert.deepEqual(w.io.bodies(M0), ["kubectl apply -f a", "kubectl apply -f b"]);
    for (const c of w.io.on(M0)) {
      assert.ok(c.op === "run" && c.command.includes("export Replicas=3;"), "app env exported");
      assert.equal(c.step, "launch-app web");
    }
    assert.deepEqual(seen, {}, "an app leaves nothing a drift check can look for");
  });

  it("records its key and inputs only; the drift check expects nothing of it", () => {
    const w = world();
    const s = step("launch-app", [M0], {
      id: "launch-app:web",
      app: "web",
      cmds: ["x"],
      parts: { "app:web": "h1" },
    });
    const after = recorded(w, s, {}, { ...w.ctx.state, hosts: { [M0]: { roles: ["master"], layers: [] } } });
    assert.deepEqual(after.steps["launch-app:web"], { key: "k", hosts: [M0], parts: { "app:web": "h1" } });
    assert.deepEqual(after.hosts[M0], { roles: ["master"], layers: [] }, "no host fact changes");
    const e = expected(w, after, M0);
    assert.deepEqual(
      [e.files, e.blocks, e.registry, e.clusterfile, e.node],
      [[], [], false, false, undefined],
    );
  });
});

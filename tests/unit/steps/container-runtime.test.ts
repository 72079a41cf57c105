/** container-runtime against the recording fake host: the image's install script, its footprint and drift check. */
import { strict as assert } from "node:assert";
import { UserError } from "../../../provider/core/errors";
import { containerRuntime } from "../../../provider/core/exec/steps/container-runtime";
import { M0, W0, drifted, knowing, recorded, step, world } from "./world";

const CONFIG = "/etc/containerd/config.toml";

describe("step container-runtime (fake host)", () => {
  it("installs with the image's script, and refuses naming the host when the image lacks it", async () => {
    const w = world();
    w.io.answer({ host: M0, match: /^test -f scripts\/containerd\.sh$/, code: 0 });
    w.io.answer({ host: W0, match: /^test -f scripts\/containerd\.sh$/, code: 1 });
    await assert.rejects(
      containerRuntime.run(w.ctx, step("container-runtime", [M0, W0], { runtime: "containerd" })),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes(`[${W0}]`) &&
        e.message.includes("scripts/containerd.sh"),
    );
    assert.ok(w.io.bodies(M0).includes("sh scripts/containerd.sh"), w.io.bodies(M0).join("\n"));
    assert.ok(!w.io.bodies(W0).some((b) => b.startsWith("sh scripts/")), w.io.bodies(W0).join("\n"));
  });

  it("runs the docker script for docker, records the config it wrote, and drift names it when changed", async () => {
    const w = world();
    w.io.answer({ host: W0, match: /^test -f scripts\/docker\.sh$/, code: 0 });
    w.io.answer({ host: W0, match: /-cnewer/, stdout: `${"d".repeat(64)}  ${CONFIG}\n` });
    const s = step("container-runtime", [W0], { id: `container-runtime:${W0}`, runtime: "docker" });
    const seen = await containerRuntime.run(w.ctx, s);
    const b = w.io.bodies(W0);
    assert.deepEqual(b.slice(0, 3), ["mktemp", "test -f scripts/docker.sh", "sh scripts/docker.sh"]);
    assert.match(b[3]!, /-cnewer \/tmp\/tmp\.marker/);
    assert.equal(b.length, 4);
    const after = recorded(w, s, seen, knowing(w, [W0]));
    assert.deepEqual(after.steps[s.id]!.footprint, { [W0]: { files: { [CONFIG]: "d".repeat(64) } } });
    assert.deepEqual(drifted(w, after, W0, { files: { [CONFIG]: "e".repeat(64) } }), {
      [`file:${CONFIG}`]: [s.id],
    });
  });
});

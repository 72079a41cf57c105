/** init-host against the recording fake host: the scripts it runs, the files it reports, their record and drift check. */
import { strict as assert } from "node:assert";
import { initHost } from "../../../provider/core/exec/steps/init-host";
import { M0, W0, drifted, knowing, recorded, step, world } from "./world";

const SHA = "a".repeat(64);
const SYSCTL = "/etc/sysctl.d/k8s.conf";

describe("step init-host (fake host)", () => {
  it("runs the image's init scripts on each of its hosts and reports the files they wrote", async () => {
    const w = world();
    w.io.answer({ host: W0, match: /-cnewer/, stdout: `${SHA}  ${SYSCTL}\n` });
    const seen = await initHost.run(w.ctx, step("init-host", [M0, W0]));
    assert.deepEqual(w.io.hosts(), [M0, W0].sort());
    for (const ip of [M0, W0]) {
      const b = w.io.bodies(ip);
      assert.equal(b.length, 3, b.join("\n"));
      assert.equal(b[0], "mktemp");
      assert.match(b[1]!, new RegExp(`^mkdir -p /etc/kubernetes ${w.ctx.clusterDir} && `));
      const order = ["scripts/init.sh", "scripts/kubelet-pre-start.sh", "scripts/init-kube.sh"].map((s) =>
        b[1]!.indexOf(`sh ${s}`),
      );
      assert.ok(
        order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!)),
        b[1],
      );
      assert.match(b[2]!, /find "\$d" -type f -cnewer \/tmp\/tmp.marker .*; rm -f \/tmp\/tmp.marker$/);
    }
    assert.deepEqual(seen.footprint![W0]!.files, { [SYSCTL]: SHA });
    assert.deepEqual(seen.footprint![M0]!.files, {});
  });

  it("a failing script fails the step and still removes the marker", async () => {
    const w = world();
    w.io.answer({ host: W0, match: /^mkdir -p \/etc\/kubernetes/, code: 3, stderr: "init.sh: boom" });
    await assert.rejects(initHost.run(w.ctx, step("init-host", [W0])), /boom/);
    assert.equal(w.io.bodies(W0).at(-1), "rm -f /tmp/tmp.marker");
  });

  it("the record keeps the files per host; drift names the step when one changes or goes", async () => {
    const w = world();
    w.io.answer({ host: W0, match: /-cnewer/, stdout: `${SHA}  ${SYSCTL}\n` });
    const s = step("init-host", [W0], { id: `init-host:${W0}` });
    const after = recorded(w, s, await initHost.run(w.ctx, s), knowing(w, [W0]));
    assert.deepEqual(after.steps[`init-host:${W0}`]!.footprint, { [W0]: { files: { [SYSCTL]: SHA } } });
    assert.deepEqual(drifted(w, after, W0), {});
    assert.deepEqual(drifted(w, after, W0, { files: { [SYSCTL]: "b".repeat(64) } }), {
      [`file:${SYSCTL}`]: [`init-host:${W0}`],
    });
    assert.deepEqual(drifted(w, after, W0, { files: { [SYSCTL]: null } }), {
      [`file:${SYSCTL}`]: [`init-host:${W0}`],
    });
  });
});

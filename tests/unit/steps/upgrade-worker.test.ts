/** upgrade-worker against the recording fake host: batches of workers drained from master0; its record. */
import { strict as assert } from "node:assert";
import { upgradeWorker } from "../../../provider/core/exec/steps/upgrade-worker";
import { M0, W0, W1, knowing, nodeOf, recorded, step, world } from "./world";

const kubectl = (b: string[]) => b.filter((x) => x.startsWith("kubectl "));

describe("step upgrade-worker (fake host)", () => {
  it("upgrades the node on the worker and drains it from master0", async () => {
    const w = world();
    await upgradeWorker.run(w.ctx, step("upgrade-worker", [W0], { version: "v1.29.0" }));
    assert.deepEqual(kubectl(w.io.bodies(M0)), [
      `kubectl drain ${nodeOf(W0)} --ignore-daemonsets --delete-emptydir-data`,
      `kubectl uncordon ${nodeOf(W0)}`,
    ]);
    const b = w.io.bodies(W0).filter((x) => x !== "hostname");
    assert.equal(b.length, 2, b.join("\n"));
    assert.equal(b[0], "kubeadm upgrade node");
    assert.ok(b[1]!.includes("systemctl restart kubelet"), b[1]);
    assert.deepEqual(w.io.bodies(W1), []);
  });

  it("a failed upgrade on one worker fails the step naming it, and the node stays drained", async () => {
    const w = world();
    w.io.answer({ host: W1, match: /^kubeadm upgrade node$/, code: 1, stderr: "kubelet config unreadable" });
    await assert.rejects(
      upgradeWorker.run(w.ctx, step("upgrade-worker", [W1], { version: "v1.29.0" })),
      (e: Error) => e.message.includes(W1),
    );
    assert.ok(!w.io.bodies(M0).includes(`kubectl uncordon ${nodeOf(W1)}`));
  });

  it("records the version and key on the hosts only", () => {
    const w = world();
    const s = step("upgrade-worker", [W0], { id: `upgrade-worker:${W0}`, key: "k-w", version: "v1.29.0" });
    const after = recorded(w, s, {}, knowing(w, [W0]));
    assert.deepEqual([after.hosts[W0]!.kubeKey, after.hosts[W0]!.kubeVersion], ["k-w", "v1.29.0"]);
    assert.deepEqual(after.steps, {});
  });
});

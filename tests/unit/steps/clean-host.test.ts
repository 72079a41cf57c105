/** clean-host against the recording fake host: what it removes, in which order; its record. */
import { strict as assert } from "node:assert";
import { cleanHost } from "../../../provider/core/exec/steps/clean-host";
import { M0, M1, W0, knowing, recorded, step, world } from "./world";

describe("step clean-host (fake host)", () => {
  it("resets kubeadm, removes the cluster's files and blocks, the worker's virtual servers, then collects blobs", async () => {
    const w = world();
    await cleanHost.run(w.ctx, step("clean-host", [M1, W0]));
    for (const ip of [M1, W0]) {
      const runs = w.io.on(ip).flatMap((c) => (c.op === "run" ? [c] : []));
      const clean = runs[0]!.body;
      assert.ok(clean.startsWith("if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f; fi"), clean);
      assert.ok(clean.includes("/etc/containerd/certs.d/sea.hub:5000"), clean);
      assert.ok(clean.includes("# BEGIN sealer:demo:"), "this cluster's /etc/hosts blocks");
      assert.ok(clean.endsWith(`cd / && rm -rf ${w.ctx.clusterDir}`), clean);
      assert.equal(runs[1]!.body, "sh -s");
      assert.match(runs[1]!.step, /^blob gc/);
    }
    const workerClean = w.io.bodies(W0)[0]!;
    assert.ok(workerClean.includes("ipvsadm -D -t 10.103.97.2:6443"), workerClean);
    assert.ok(workerClean.includes("ipvsadm -D -t 10.103.97.2:5000"), "HA registry VIP too");
    assert.ok(!w.io.bodies(M1)[0]!.includes("ipvsadm"), "masters have no virtual servers");
    assert.deepEqual(w.io.bodies(M0), []);
  });

  it("records its key; the host's other records are left to delete-node", () => {
    const w = world();
    const after = recorded(w, step("clean-host", [W0], { id: `clean-host:${W0}` }), {}, knowing(w, [W0]));
    assert.deepEqual(after.steps[`clean-host:${W0}`], { key: "k", hosts: [W0] });
    assert.ok(after.hosts[W0]);
  });
});

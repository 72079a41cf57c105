/** upgrade-master, upgrade-worker, clean-host and delete-node against the recording fake host. */
import { strict as assert } from "node:assert";
import {
  runCleanHost,
  runDeleteNode,
  runUpgradeMaster,
  runUpgradeWorker,
} from "../../../provider/core/exec/steps/lifecycle";
import { M0, M1, W0, W1, disposeWorlds, nodeOf, step, world } from "./world";

const kubectl = (b: string[]) => b.filter((x) => x.startsWith("kubectl "));

describe("steps: lifecycle (fake host)", () => {
  afterEach(disposeWorlds);

  it("upgrade-master drains, upgrades and uncordons one master at a time; master0 runs upgrade apply", async () => {
    const w = world();
    await runUpgradeMaster(w.ctx, step("upgrade-master", [M0, M1], { version: "v1.29.0", first: true }));
    const m0 = w.io.bodies(M0);
    const n0 = nodeOf(M0);
    const n1 = nodeOf(M1);
    assert.deepEqual(kubectl(m0), [
      `kubectl drain ${n0} --ignore-daemonsets --delete-emptydir-data`,
      `kubectl uncordon ${n0}`,
      `kubectl drain ${n1} --ignore-daemonsets --delete-emptydir-data`,
      `kubectl uncordon ${n1}`,
    ]);
    assert.ok(m0.indexOf("kubeadm upgrade apply v1.29.0 -y") > m0.indexOf(kubectl(m0)[0]!));
    assert.ok(m0.indexOf("kubeadm upgrade apply v1.29.0 -y") < m0.indexOf(`kubectl uncordon ${n0}`));
    const m1 = w.io.bodies(M1);
    assert.ok(m1.includes("kubeadm upgrade node") && !m1.some((b) => b.startsWith("kubeadm upgrade apply")));
    assert.ok(m1.some((b) => b.includes("systemctl restart kubelet")));
  });

  it("upgrade-worker upgrades the node on the worker and drains it from master0", async () => {
    const w = world();
    await runUpgradeWorker(w.ctx, step("upgrade-worker", [W0], { version: "v1.29.0" }));
    assert.deepEqual(kubectl(w.io.bodies(M0)), [
      `kubectl drain ${nodeOf(W0)} --ignore-daemonsets --delete-emptydir-data`,
      `kubectl uncordon ${nodeOf(W0)}`,
    ]);
    assert.ok(w.io.bodies(W0).includes("kubeadm upgrade node"));
    assert.deepEqual(w.io.bodies(W1), []);
  });

  it("clean-host resets kubeadm, removes the cluster's files and blocks, the worker's virtual servers, then collects blobs", async () => {
    const w = world();
    await runCleanHost(w.ctx, step("clean-host", [M1, W0]));
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

  it("delete-node deletes the recorded node names from the remaining master", async () => {
    const w = world();
    w.ctx.state.hosts[W1] = { roles: ["node"], layers: [], nodeName: "worker-b" };
    await runDeleteNode(w.ctx, step("delete-node", [M1], { nodes: [W0, W1] }));
    assert.deepEqual(w.io.hosts(), [M1]);
    assert.deepEqual(w.io.bodies(M1), ["kubectl delete node 10.0.0.10 worker-b"]);
  });
});

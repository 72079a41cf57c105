/** upgrade-master against the recording fake host: drain, upgrade, uncordon one master at a time; its record. */
import { strict as assert } from "node:assert";
import { upgradeMaster } from "../../../provider/core/exec/steps/upgrade-master";
import { M0, M1, knowing, nodeOf, recorded, step, world } from "./world";

const kubectl = (b: string[]) => b.filter((x) => x.startsWith("kubectl "));

describe("step upgrade-master (fake host)", () => {
  it("drains, upgrades and uncordons one master at a time; master0 runs upgrade apply", async () => {
    const w = world();
    await upgradeMaster.run(w.ctx, step("upgrade-master", [M0, M1], { version: "v1.29.0", first: true }));
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
    const upgrade = w.io.on(M1).find((c) => c.op === "run" && c.body === "kubeadm upgrade node")!;
    assert.ok(upgrade.op === "run" && upgrade.command.includes(`export SANDBOX_NODE_NAME=${n1};`));
  });

  it("records the version and key on the hosts, not as a step record", () => {
    const w = world();
    const s = step("upgrade-master", [M0, M1], {
      id: "upgrade-master",
      key: "k-up",
      version: "v1.29.0",
      first: true,
    });
    const after = recorded(w, s, {}, { ...knowing(w, [M0, M1]), drift: { "upgrade-master": "x" } });
    for (const ip of [M0, M1])
      assert.deepEqual([after.hosts[ip]!.kubeKey, after.hosts[ip]!.kubeVersion], ["k-up", "v1.29.0"]);
    assert.equal(after.steps["upgrade-master"], undefined);
    assert.deepEqual(after.drift, { "upgrade-master": "x" }, "an untracked step leaves drift notes alone");
  });
});

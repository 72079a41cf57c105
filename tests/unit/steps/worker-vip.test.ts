/** worker-vip against the recording fake host: IPVS and the lvscare pod on workers; its record and drift check. */
import { strict as assert } from "node:assert";
import { workerVip } from "../../../provider/core/exec/steps/worker-vip";
import { puts } from "./kubeadm-answers";
import { M0, M1, W0, W1, drifted, expected, knowing, recorded, step, world } from "./world";

const LVSCARE = "/etc/kubernetes/manifests/kube-lvscare.yaml";

describe("step worker-vip (fake host)", () => {
  it("sets up IPVS to every master and writes the lvscare pod on each worker", async () => {
    const w = world();
    const fp = (await workerVip.run(w.ctx, step("worker-vip", [W0, W1], { masters: [M0, M1] }))).footprint!;
    for (const ip of [W0, W1]) {
      const b = w.io.bodies(ip);
      assert.ok(b[0]!.includes(`ipvsadm -a -t 10.103.97.2:6443 -r ${M0}:6443 -m`), b[0]);
      assert.ok(b[0]!.includes(`ipvsadm -a -t 10.103.97.2:6443 -r ${M1}:6443 -m`), b[0]);
      // HA registry (default): the registry port goes through the VIP too.
      assert.ok(b[0]!.includes(`-r ${M1}:5000`), b[0]);
      const [p] = puts(w, ip);
      assert.equal(p!.file, LVSCARE);
      assert.ok(p!.content.includes(`--rs, "${M0}:6443", --rs, "${M1}:6443"`), p!.content);
      assert.ok(b[b.length - 1]!.includes("10.103.97.2 apiserver.cluster.local"));
      assert.deepEqual(Object.keys(fp[ip]!.files!), [LVSCARE]);
    }
    assert.ok(!w.io.on(M1).some((c) => c.op !== "read"), "masters get nothing");
  });

  it("once recorded, drift expects the VIP apiserver line and the lvscare pod on the worker", async () => {
    const w = world();
    const s = step("worker-vip", [W0], { id: `worker-vip:${W0}`, masters: [M0, M1] });
    const after = recorded(w, s, await workerVip.run(w.ctx, s), knowing(w, [W0]));
    assert.deepEqual(expected(w, after, W0).blocks, [
      { tag: "apiserver", lines: ["10.103.97.2 apiserver.cluster.local"], steps: [s.id] },
    ]);
    assert.deepEqual(drifted(w, after, W0), {});
    assert.deepEqual(drifted(w, after, W0, { files: { [LVSCARE]: null }, blocks: {} }), {
      [`file:${LVSCARE}`]: [s.id],
      "hosts:apiserver": [s.id],
    });
  });
});

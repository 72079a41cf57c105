/** join-master against the recording fake host: the control-plane join, its record and drift check. */
import { strict as assert } from "node:assert";
import { joinMaster } from "../../../provider/core/exec/steps/join-master";
import { doc, kubeadmAnswers, puts } from "./kubeadm-answers";
import { M0, M1, nodeOf, drifted, expected, knowing, recorded, step, world } from "./world";

describe("step join-master (fake host)", () => {
  it("joins with the certificate key, then points apiserver.cluster.local at itself", async () => {
    const w = world();
    kubeadmAnswers(w);
    const seen = await joinMaster.run(w.ctx, step("join-master", [M1]));
    const b = w.io.bodies(M1);
    const joinAt = b.findIndex((x) => x.startsWith("kubeadm join"));
    assert.ok(joinAt > 0);
    const pointed = b.filter((x) => x.includes("apiserver.cluster.local"));
    assert.equal(pointed.length, 2, pointed.join("\n"));
    assert.ok(pointed[0]!.includes(`${M0} apiserver.cluster.local`) && b.indexOf(pointed[0]!) < joinAt);
    assert.ok(b[joinAt + 1]!.includes(`${M1} apiserver.cluster.local`), b[joinAt + 1]);
    const join = doc(puts(w, M1)[0]!.content, "JoinConfiguration");
    assert.equal(join("controlPlane.certificateKey"), seen.secrets!.certificateKey);
    assert.equal(join("controlPlane.localAPIEndpoint.advertiseAddress"), M1);
    assert.deepEqual(seen.hosts, { [M1]: { nodeName: nodeOf(M1) } });
  });

  it("the record gives the host its role, node name and kube key; drift expects its apiserver line and node", async () => {
    const w = world();
    kubeadmAnswers(w);
    const s = step("join-master", [M1], { id: `join-master:${M1}` });
    const before = knowing(w, [M1]);
    before.hosts[M1]!.roles = [];
    const after = recorded(w, s, await joinMaster.run(w.ctx, s), before);
    assert.deepEqual(after.hosts[M1]!.roles, ["master"]);
    assert.equal(after.hosts[M1]!.nodeName, nodeOf(M1));
    assert.match(after.hosts[M1]!.kubeKey!, /^k1:/);
    assert.ok(after.secrets!.token, "the fresh join material is kept");
    const e = expected(w, after, M1);
    assert.deepEqual(e.blocks, [
      { tag: "apiserver", lines: [`${M1} apiserver.cluster.local`], steps: [s.id] },
    ]);
    assert.deepEqual(e.node, { name: nodeOf(M1), by: "join-master", joinSteps: [s.id], labelSteps: [] });
    assert.deepEqual(drifted(w, after, M1, { blocks: { apiserver: [`${M0} apiserver.cluster.local`] } }), {
      "hosts:apiserver": [s.id],
    });
    const none = { ok: true as const, nodes: [], from: M0 };
    assert.deepEqual(drifted(w, after, M1, {}, none), { node: [s.id] });
  });
});

/** join-worker against the recording fake host: the worker join, its record and drift check. */
import { strict as assert } from "node:assert";
import { joinWorker } from "../../../provider/core/exec/steps/join-worker";
import { CA_HASH, doc, kubeadmAnswers, puts } from "./kubeadm-answers";
import { M0, W0, W1, nodeOf, drifted, expected, knowing, recorded, step, world } from "./world";

describe("step join-worker (fake host)", () => {
  it("runs kubeadm join with a fresh token on that worker only", async () => {
    const w = world();
    kubeadmAnswers(w);
    const seen = await joinWorker.run(w.ctx, step("join-worker", [W1]));
    assert.deepEqual(w.io.hosts(), [M0, W1].sort());
    const token = seen.secrets!.token;
    assert.ok(w.io.bodies(M0).includes(`kubeadm token create ${token} --print-join-command`));
    const b = w.io.bodies(W1);
    assert.match(b[b.length - 1]!, /^kubeadm join --config .*kubeadm-join\.yaml/);
    const cfg = puts(w, W1)[0]!;
    assert.equal(cfg.file, `${w.ctx.clusterDir}/kubeadm/kubeadm-join.yaml`);
    const join = doc(cfg.content, "JoinConfiguration");
    assert.equal(join("discovery.bootstrapToken.token"), token);
    assert.deepEqual(join("discovery.bootstrapToken.caCertHashes"), [CA_HASH]);
    assert.equal(join("nodeRegistration.name"), nodeOf(W1));
    assert.equal(join("controlPlane"), undefined, "a worker joins without the control plane");
    assert.deepEqual(seen.hosts, { [W1]: { nodeName: nodeOf(W1) } });
  });

  it("on a node that already joined runs no kubeadm join and fetches no token", async () => {
    const w = world();
    kubeadmAnswers(w);
    w.io.file(W0, "/etc/kubernetes/kubelet.conf", "x");
    const seen = await joinWorker.run(w.ctx, step("join-worker", [W0]));
    assert.ok(!w.io.bodies(W0).some((b) => b.startsWith("kubeadm join")));
    assert.ok(!w.io.bodies(M0).some((b) => b.startsWith("kubeadm token")));
    assert.equal(seen.secrets, undefined);
  });

  it("the record names the node; drift re-joins it (and re-labels it) when it is gone from the node list", async () => {
    const w = world();
    kubeadmAnswers(w);
    const s = step("join-worker", [W1], { id: `join-worker:${W1}` });
    let after = recorded(w, s, await joinWorker.run(w.ctx, s), knowing(w, [W1]));
    after = recorded(w, step("node-labels", [W1], { id: `node-labels:${W1}` }), {}, after);
    assert.deepEqual(after.hosts[W1]!.roles, ["node"]);
    assert.equal(after.hosts[W1]!.nodeName, nodeOf(W1));
    assert.deepEqual(expected(w, after, W1).node!.joinSteps, [s.id, `node-labels:${W1}`]);
    const listed = { ok: true as const, nodes: [{ name: nodeOf(W1), labels: {}, taints: [] }], from: M0 };
    assert.deepEqual(drifted(w, after, W1, {}, listed), {});
    assert.deepEqual(drifted(w, after, W1, {}, { ...listed, nodes: [] }), {
      node: [s.id, `node-labels:${W1}`],
    });
  });
});

/** init-master against the recording fake host: kubeadm init, what it observes, its record and drift check. */
import { strict as assert } from "node:assert";
import { initMaster } from "../../../provider/core/exec/steps/init-master";
import { ADMIN, CA_HASH, doc, kubeadmAnswers, puts } from "./kubeadm-answers";
import { M0, nodeOf, drifted, expected, knowing, recorded, step, world } from "./world";

describe("step init-master (fake host)", () => {
  it("runs kubeadm init with the token it wrote and reports the join material, kubeconfig and node name", async () => {
    const w = world();
    kubeadmAnswers(w);
    const seen = await initMaster.run(w.ctx, step("init-master", [M0]));
    assert.deepEqual(w.io.hosts(), [M0]);
    const b = w.io.bodies(M0);
    assert.ok(b.findIndex((x) => x.startsWith("kubeadm init ")) > 0, b.join("\n"));
    assert.ok(b[0]!.includes(`${M0} apiserver.cluster.local`), "apiserver points at master0 first");
    const init = doc(
      puts(w, M0).find((p) => p.file.endsWith("kubeadm-init.yaml"))!.content,
      "InitConfiguration",
    );
    const s = seen.secrets!;
    assert.equal((init("bootstrapTokens") as Array<{ token: string }>)[0]!.token, s.token);
    assert.match(s.token!, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    assert.equal(init("certificateKey"), s.certificateKey);
    assert.equal(s.caCertHash, CA_HASH);
    assert.equal(s.kubeconfig, "apiVersion: v1\nkind: Config\n");
    assert.deepEqual(seen.hosts, { [M0]: { nodeName: nodeOf(M0) } });
    assert.deepEqual(w.ctx.join, { token: s.token, certificateKey: s.certificateKey, caCertHash: CA_HASH });
    assert.equal(w.ctx.state.secrets, undefined, "only recordStep writes the applied state");
  });

  it("on a host where kubeadm init already ran, refreshes the join material instead", async () => {
    const w = world();
    kubeadmAnswers(w);
    w.io.file(M0, ADMIN, "kubeconfig");
    const seen = await initMaster.run(w.ctx, step("init-master", [M0]));
    const b = w.io.bodies(M0);
    assert.ok(!b.some((x) => x.startsWith("kubeadm init --")), b.join("\n"));
    assert.ok(b.includes(`kubeadm token create ${seen.secrets!.token} --print-join-command`), b.join("\n"));
    assert.ok(
      b.includes(
        `kubeadm init phase upload-certs --upload-certs --certificate-key ${seen.secrets!.certificateKey}`,
      ),
    );
    assert.equal(seen.secrets!.kubeconfig, "kubeconfig");
  });

  it("the record holds the secrets, node name, data root, immutable fields and kube key; drift's fix for master0 is manual", async () => {
    const w = world();
    kubeadmAnswers(w);
    const s = step("init-master", [M0], { id: "init-master" });
    const after = recorded(w, s, await initMaster.run(w.ctx, s), knowing(w, [M0]));
    assert.equal(after.secrets!.caCertHash, CA_HASH);
    assert.equal(after.hosts[M0]!.nodeName, nodeOf(M0));
    assert.equal(after.dataRoot, w.ctx.dataRoot);
    assert.equal(after.immutable!["cluster name"], "demo");
    assert.match(after.hosts[M0]!.kubeKey!, /^k1:/);
    assert.equal(after.hosts[M0]!.kubeVersion, "v1.28.2");
    const e = expected(w, after, M0);
    assert.deepEqual(e.node, { name: nodeOf(M0), by: "init-master", joinSteps: [], labelSteps: [] });
    assert.deepEqual(
      e.blocks.map((b) => [b.tag, b.lines, b.steps]),
      [["apiserver", [`${M0} apiserver.cluster.local`], []]],
    );
    // Gone from /etc/hosts: drifted, but no step re-runs kubeadm init; the check says what to do.
    assert.deepEqual(drifted(w, after, M0, { blocks: {} }), { "hosts:apiserver": [] });
  });
});

/** kubeadm-config against the recording fake host: the init config on master0 only; its record. */
import { strict as assert } from "node:assert";
import { kubeadmConfig } from "../../../provider/core/exec/steps/kubeadm-config";
import { doc, puts } from "./kubeadm-answers";
import { M0, nodeOf, expected, knowing, recorded, step, world } from "./world";

describe("step kubeadm-config (fake host)", () => {
  it("writes the init config (0600) on master0 only, named for master0's node", async () => {
    const w = world();
    assert.deepEqual(await kubeadmConfig.run(w.ctx, step("kubeadm-config", [M0])), {});
    assert.deepEqual(w.io.hosts(), [M0]);
    const [p] = puts(w, M0);
    assert.equal(p!.file, `${w.ctx.clusterDir}/kubeadm/kubeadm-init.yaml`);
    assert.equal(p!.mode, 0o600);
    const init = doc(p!.content, "InitConfiguration");
    assert.equal(init("nodeRegistration.name"), nodeOf(M0));
    assert.equal(init("localAPIEndpoint.advertiseAddress"), M0);
    // The image's etc/kubeadm.yml was looked for on master0's rootfs.
    assert.ok(w.io.on(M0).some((c) => c.op === "read" && c.file === `${w.ctx.rootfs}/etc/kubeadm.yml`));
  });

  it("records its key; the drift check expects nothing of it (kubeadm rewrites what it reads)", () => {
    const w = world();
    const after = recorded(w, step("kubeadm-config", [M0], { id: "kubeadm-config" }), {}, knowing(w, [M0]));
    assert.deepEqual(after.steps["kubeadm-config"], { key: "k", hosts: [M0] });
    const e = expected(w, after, M0);
    assert.deepEqual([e.files, e.blocks, e.node], [[], [], undefined]);
  });
});

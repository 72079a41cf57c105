/** delete-node against the recording fake host: kubectl delete node from a remaining master; its record. */
import { strict as assert } from "node:assert";
import { deleteNode } from "../../../provider/core/exec/steps/delete-node";
import { M0, M1, W0, W1, knowing, recorded, step, world } from "./world";

describe("step delete-node (fake host)", () => {
  it("deletes the recorded node names from the remaining master", async () => {
    const w = world();
    w.ctx.state.hosts[W1] = { roles: ["node"], layers: [], nodeName: "worker-b" };
    await deleteNode.run(w.ctx, step("delete-node", [M1], { nodes: [W0, W1] }));
    assert.deepEqual(w.io.hosts(), [M1]);
    assert.deepEqual(w.io.bodies(M1), ["kubectl delete node 10.0.0.10 worker-b"]);
  });

  it("forgets the removed hosts and their per-host records; cluster records stop naming them", () => {
    const w = world();
    const before = knowing(w, [M0, W0, W1]);
    before.steps = {
      [`join-worker:${W0}`]: { key: "a", hosts: [W0] },
      [`join-worker:${W1}`]: { key: "b", hosts: [W1] },
      "save-clusterfile": { key: "c", hosts: [M0, W0] },
    };
    const after = recorded(w, step("delete-node", [M0], { id: "delete-node", nodes: [W0] }), {}, before);
    assert.deepEqual(Object.keys(after.hosts).sort(), [M0, W1].sort());
    assert.deepEqual(after.steps, {
      [`join-worker:${W1}`]: { key: "b", hosts: [W1] },
      "save-clusterfile": { key: "c", hosts: [M0] },
    });
    assert.equal(before.hosts[W0] !== undefined, true, "recordStep leaves its input alone");
  });
});

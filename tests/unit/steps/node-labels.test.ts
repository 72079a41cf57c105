/** node-labels against the recording fake host: labels and taints from master0, what it observes, its drift check. */
import { strict as assert } from "node:assert";
import { nodeLabels } from "../../../provider/core/exec/steps/node-labels";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { M0, W0, nodeOf, drifted, expected, knowing, recorded, step, world } from "./world";

const WORKER_EXTRA = "      labels: { env: prod }\n      taints: [ 'gpu=yes:NoSchedule' ]\n";

describe("step node-labels (fake host)", () => {
  it("applies the Clusterfile's labels and taints from master0 and drops the ones removed since", async () => {
    const w = world({ clusterfile: clusterfile({ workerExtra: WORKER_EXTRA }) });
    w.ctx.state.hosts[W0] = { roles: ["node"], layers: [], labels: { old: "1" }, taints: [] };
    const seen = await nodeLabels.run(w.ctx, step("node-labels", [W0]));
    assert.deepEqual(
      w.io.hosts().filter((h) => w.io.bodies(h).some((b) => b.startsWith("kubectl"))),
      [M0],
    );
    const cmd = w.io.bodies(M0).find((b) => b.startsWith("kubectl"))!;
    const n = nodeOf(W0);
    assert.equal(
      cmd,
      `kubectl label node ${n} --overwrite node-role.kubernetes.io/worker= env=prod old- && kubectl taint node ${n} --overwrite gpu=yes:NoSchedule`,
    );
    assert.deepEqual(seen.hosts, {
      [W0]: {
        labels: { "node-role.kubernetes.io/worker": "", env: "prod" },
        taints: ["gpu=yes:NoSchedule"],
        nodeName: n,
      },
    });
    assert.deepEqual(w.ctx.state.hosts[W0]!.labels, { old: "1" }, "only recordStep writes the applied state");
  });

  it("the record keeps the labels and taints set; drift names the step when one is gone from the node", async () => {
    const w = world({ clusterfile: clusterfile({ workerExtra: WORKER_EXTRA }) });
    const before = recorded(
      w,
      step("join-worker", [W0], { id: `join-worker:${W0}` }),
      {
        hosts: { [W0]: { nodeName: nodeOf(W0) } },
      },
      knowing(w, [W0]),
    );
    const s = step("node-labels", [W0], { id: `node-labels:${W0}` });
    const after = recorded(w, s, await nodeLabels.run(w.ctx, s), before);
    assert.deepEqual(after.hosts[W0]!.labels, { "node-role.kubernetes.io/worker": "", env: "prod" });
    assert.deepEqual(after.hosts[W0]!.taints, ["gpu=yes:NoSchedule"]);
    assert.deepEqual(expected(w, after, W0).node!.labelSteps, [s.id]);
    const node = {
      name: nodeOf(W0),
      labels: { "node-role.kubernetes.io/worker": "", env: "prod" },
      taints: ["gpu=yes:NoSchedule"],
    };
    assert.deepEqual(drifted(w, after, W0, {}, { ok: true, nodes: [node], from: M0 }), {});
    assert.deepEqual(
      drifted(
        w,
        after,
        W0,
        {},
        { ok: true, nodes: [{ ...node, labels: { env: "dev" }, taints: [] }], from: M0 },
      ),
      { labels: [s.id], taints: [s.id] },
    );
  });
});

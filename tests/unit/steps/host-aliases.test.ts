/** host-aliases against the recording fake host: the /etc/hosts block, its record and its drift check. */
import { strict as assert } from "node:assert";
import { hostAliases } from "../../../provider/core/exec/steps/host-aliases";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { W0, W1, drifted, expected, knowing, recorded, step, world } from "./world";

const ALIASES = "  hostAliases:\n    - { ip: 10.9.9.9, hostnames: [db.internal, db2.internal] }\n";

describe("step host-aliases (fake host)", () => {
  it("writes the Clusterfile's aliases into this cluster's /etc/hosts block on its hosts only", async () => {
    const w = world({ clusterfile: clusterfile({ extraSpec: ALIASES }) });
    await hostAliases.run(w.ctx, step("host-aliases", [W1]));
    assert.deepEqual(w.io.hosts(), [W1]);
    const [cmd] = w.io.bodies(W1);
    assert.ok(cmd!.includes("# BEGIN sealer:demo:aliases"), cmd);
    assert.ok(cmd!.includes("10.9.9.9 db.internal db2.internal"), cmd);
  });

  it("once recorded, drift expects the block on that host and names the step when it is gone or edited", () => {
    const w = world({ clusterfile: clusterfile({ extraSpec: ALIASES }) });
    const id = `host-aliases:${W1}`;
    const after = recorded(w, step("host-aliases", [W1], { id }), {}, knowing(w, [W0, W1]));
    assert.deepEqual(expected(w, after, W1).blocks, [
      { tag: "aliases", lines: ["10.9.9.9 db.internal db2.internal"], steps: [id] },
    ]);
    assert.deepEqual(expected(w, after, W0).blocks, [], "not recorded on W0: nothing expected there");
    assert.deepEqual(drifted(w, after, W1, { blocks: {} }), { "hosts:aliases": [id] });
    assert.deepEqual(drifted(w, after, W1, { blocks: { aliases: ["10.9.9.9 db.internal"] } }), {
      "hosts:aliases": [id],
    });
  });

  it("without aliases in the Clusterfile nothing is expected", () => {
    const w = world();
    const after = recorded(w, step("host-aliases", [W1], { id: `host-aliases:${W1}` }), {}, knowing(w, [W1]));
    assert.deepEqual(expected(w, after, W1).blocks, []);
  });
});

import * as assert from "node:assert/strict";
import { scaleInSteps } from "../../../../provider/core/plan/phases/scale-in";
import { M, W } from "../../../fixtures/clusterfile/plan-world";
import { byId, changed, desired, fresh, ids } from "./ctx";

const BYE = `---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: bye }
spec: { type: SHELL, action: "pre-clean-host|post-clean-host", scope: node, data: echo bye }
`;

describe("plan phase: scale in", () => {
  it("nothing removed: no step", () => {
    assert.deepEqual(scaleInSteps(fresh(), "m"), { nodes: [], ids: [], deleteNode: "" });
  });

  it("removed hosts: pre-clean-host hooks (by recorded role) and clean-host each, one delete-node, then post-clean-host", () => {
    const ctx = changed(desired({ docs: BYE }), desired({ docs: BYE, masters: [M[0]!], workers: [W[0]!] }));
    const r = scaleInSteps(ctx, "join-master:x");
    // In the order of the recorded IPs (as strings: 10.0.0.11 before 10.0.0.3).
    assert.deepEqual(ids(r.nodes), [
      `hook:pre-clean-host:bye:${W[1]}`,
      `clean-host:${W[1]}`,
      `clean-host:${M[1]}`,
      "delete-node",
      "hook:post-clean-host:bye",
    ]);
    assert.equal(r.deleteNode, "delete-node");
    const del = byId(r.nodes, "delete-node");
    assert.deepEqual(del.step.hosts, [M[0]]);
    assert.deepEqual(del.step.kind === "delete-node" && del.step.nodes, [W[1], M[1]].sort());
    assert.deepEqual(del.deps, [`clean-host:${W[1]}`, `clean-host:${M[1]}`, "join-master:x"]);
    assert.deepEqual(byId(r.nodes, `clean-host:${W[1]}`).deps, [
      "join-master:x",
      `hook:pre-clean-host:bye:${W[1]}`,
    ]);
    assert.equal(
      byId(r.nodes, `clean-host:${M[1]}`).newReason,
      `host ${M[1]} (master) removed from the Clusterfile`,
    );
    const post = byId(r.nodes, "hook:post-clean-host:bye");
    assert.equal(post.newReason, `hosts ${W[1]} removed`, "scope node: the removed worker only");
    assert.deepEqual(r.ids, [
      `hook:pre-clean-host:bye:${W[1]}`,
      `clean-host:${W[1]}`,
      `clean-host:${M[1]}`,
      "delete-node",
      "hook:post-clean-host:bye",
    ]);
  });

  it("a host changing role is cleaned and deleted too", () => {
    const ctx = changed(desired(), desired({ masters: [...M, W[1]!], workers: [W[0]!] }));
    const r = scaleInSteps(ctx, "");
    assert.deepEqual(ids(r.nodes), [`clean-host:${W[1]}`, "delete-node"]);
    assert.equal(byId(r.nodes, `clean-host:${W[1]}`).newReason, `host ${W[1]} changes role node -> master`);
  });
});

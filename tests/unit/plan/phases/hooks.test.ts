import * as assert from "node:assert/strict";
import { NodeList } from "../../../../provider/core/plan/nodes";
import { hooks, hostHooks, postHooks, preHooks } from "../../../../provider/core/plan/phases/hooks";
import { Upgrade } from "../../../../provider/core/plan/phases/upgrade";
import { baseImage, M, W } from "../../../fixtures/clusterfile/plan-world";
import { byId, changed, desired, fresh, ids } from "./ctx";

const DOCS = `---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: a-first }
spec: { type: SHELL, action: "pre-install|pre-scaleup|post-scaleup", data: echo a }
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: b-masters }
spec: { type: SHELL, action: "pre-install|post-init-host|pre-scaleup", scope: master, data: echo b }
`;

describe("plan phase: hooks", () => {
  it("hooks of a phase: image plugins and the Clusterfile's (which wins on a name), in name order", () => {
    const img = baseImage({
      plugins: {
        docs: [
          {
            name: "smoke",
            type: "SHELL",
            actions: ["post-install"],
            scope: [],
            data: "image",
            file: "plugins/s.yaml",
          },
          {
            name: "0-img",
            type: "SHELL",
            actions: ["post-install"],
            scope: [],
            data: "x",
            file: "plugins/z.yaml",
          },
        ],
        filesHash: "",
      },
    });
    const ctx = fresh({}, img);
    const got = hooks(ctx, "post-install");
    assert.deepEqual(
      got.map((p) => [p.name, p.data]),
      [
        ["0-img", "x"],
        ["smoke", "kubectl get nodes"],
      ],
    );
  });

  it("new cluster: pre-install hooks one after the other; an unscoped one acts for the cluster on master0, a scoped one on its hosts", () => {
    const { nodes, ids: pre } = preHooks(fresh({ docs: DOCS }));
    assert.deepEqual(pre, ["hook:pre-install:a-first", "hook:pre-install:b-masters"]);
    assert.deepEqual(byId(nodes, "hook:pre-install:a-first").step.hosts, [M[0]]);
    const b = byId(nodes, "hook:pre-install:b-masters");
    assert.deepEqual(b.step.hosts, M);
    assert.deepEqual(b.deps, ["hook:pre-install:a-first"]);
    assert.equal(b.newReason, "pre-install hook b-masters (new cluster)");
  });

  it("hosts added to a running cluster: pre-scaleup (not pre-install), keyed by the hosts added, scoped to them", () => {
    const before = desired({ docs: DOCS, masters: [M[0]!], workers: [W[0]!] });
    const ctx = changed(before, desired({ docs: DOCS, masters: M, workers: W }));
    const { nodes } = preHooks(ctx);
    assert.deepEqual(ids(nodes), ["hook:pre-scaleup:a-first", "hook:pre-scaleup:b-masters"]);
    const a = byId(nodes, "hook:pre-scaleup:a-first");
    assert.deepEqual(a.step.hosts, [M[0]], "unscoped: on the master that stays");
    assert.equal(a.newReason, `hosts added (${M[1]}, ${W[1]}): pre-scaleup hook a-first`);
    assert.ok(a.parts.some((p) => p.name === "added"));
    assert.deepEqual(
      byId(nodes, "hook:pre-scaleup:b-masters").step.hosts,
      [M[1]],
      "scope master: the added master only",
    );
  });

  it("host hooks: only where the scope picks the host; a re-added host's hooks are forced", () => {
    const ctx = fresh({ docs: DOCS });
    const out = new NodeList();
    assert.deepEqual(hostHooks(ctx, out, "post-init-host", W[0]!, ["x"]), []);
    assert.deepEqual(hostHooks(ctx, out, "post-init-host", M[0]!, ["x"]), [
      `hook:post-init-host:b-masters:${M[0]}`,
    ]);
    assert.deepEqual(out.nodes[0]!.deps, ["x"]);
    assert.equal(out.nodes[0]!.force, undefined);
  });

  it("post hooks: post-install waits for labels, removals and upgrades; post-scaleup only when hosts were added", () => {
    const ctx = fresh({ docs: DOCS });
    const r = postHooks(ctx, {
      labels: ["node-labels:x"],
      upgrade: new Upgrade(ctx),
      upgradeDone: [],
      lastMaster: "init-master",
      removals: ["delete-node"],
    });
    assert.deepEqual(r.upgrade, []);
    assert.deepEqual(r.postInstall, ["hook:post-install:smoke"]);
    assert.deepEqual(byId(r.nodes, "hook:post-install:smoke").deps, ["node-labels:x", "delete-node"]);
  });
});

import * as assert from "node:assert/strict";
import { keyOf } from "../../../../provider/core/plan/keys";
import {
  kubeParts,
  Upgrade,
  upgradeMasterSteps,
  upgradeWorkerSteps,
} from "../../../../provider/core/plan/phases/upgrade";
import { baseImage, changeLayer, digest, LAYER, M, W } from "../../../fixtures/clusterfile/plan-world";
import { byId, changed, desired, fresh, ids } from "./ctx";

const v128 = baseImage();
const v129 = { ...changeLayer(v128, LAYER.kubeBin), kubeVersion: "v1.29.0" };
const W4 = [...W, "10.0.0.12", "10.0.0.13"];
const tails = (hosts: string[]) => new Map(hosts.map((ip) => [ip, `registry-client:${ip}`]));

describe("plan phase: upgrade", () => {
  it("a new cluster upgrades nothing", () => {
    assert.deepEqual(new Upgrade(fresh({}, v129)).targets, []);
  });

  it("a new version: every host of the running cluster, masters one at a time (master0 first), keyed by the host's kubeKey", () => {
    const ctx = changed(desired({}, v128), desired({}, v129));
    const up = new Upgrade(ctx);
    assert.deepEqual(up.targets, [...M, ...W]);
    assert.equal(up.reason(M[0]!), "kube version v1.28.2 -> v1.29.0");
    assert.equal(up.what(M[0]!), "upgrade to v1.29.0");
    const r = upgradeMasterSteps(ctx, {
      upgrade: up,
      kubeadmConfig: "kubeadm-config",
      lastOfHost: tails(ctx.all),
    });
    assert.deepEqual(
      ids(r.nodes),
      M.map((ip) => `upgrade-master:${ip}`),
    );
    const [first, second] = r.nodes;
    assert.ok(first?.step.kind === "upgrade-master" && first.step.first && first.step.version === "v1.29.0");
    assert.ok(second?.step.kind === "upgrade-master" && !second.step.first);
    assert.ok(second.deps.includes(`upgrade-master:${M[0]}`));
    assert.equal(second.kubeHost, M[1]);
    assert.equal(keyOf(second.parts), keyOf(kubeParts(ctx, "master")));
  });

  it("an older version is called a rollback", () => {
    const ctx = changed(desired({}, v129), desired({}, { ...v128, manifestDigest: digest("back") }));
    const up = new Upgrade(ctx);
    assert.equal(up.reason(W[0]!), "kube version v1.29.0 -> v1.28.2 (older: a rollback)");
    assert.equal(up.what(W[0]!), "rollback to v1.28.2");
  });

  it("workers in batches, each batch after the previous; default 10% (at least one)", () => {
    const ctx = changed(desired({ workers: W4 }, v128), desired({ workers: W4 }, v129), {
      workerUpgradeBatch: 2,
    });
    const up = new Upgrade(ctx);
    const r = upgradeWorkerSteps(ctx, { upgrade: up, lastMaster: "m", lastOfHost: tails(ctx.all) });
    const w = (i: number) => `upgrade-worker:${W4[i]}`;
    assert.deepEqual(ids(r.nodes), [0, 1, 2, 3].map(w));
    assert.deepEqual(byId(r.nodes, w(1)).deps, ["m", `registry-client:${W4[1]}`]);
    assert.deepEqual(byId(r.nodes, w(2)).deps, [w(0), w(1), `registry-client:${W4[2]}`]);
    assert.deepEqual(r.done, [w(2), w(3)]);
    const dflt = changed(desired({ workers: W4 }, v128), desired({ workers: W4 }, v129));
    const d = upgradeWorkerSteps(dflt, {
      upgrade: new Upgrade(dflt),
      lastMaster: "m",
      lastOfHost: tails(dflt.all),
    });
    assert.deepEqual(
      byId(d.nodes, w(1)).deps,
      [w(0), `registry-client:${W4[1]}`],
      "ceil(4/10) = 1 at a time",
    );
  });

  it("changed kubelet configuration: workers too; cluster configuration: masters only", () => {
    const kubelet = `---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 200\n`;
    const cluster = `---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer: { extraArgs: { v: "4" } }\n`;
    assert.deepEqual(new Upgrade(changed(desired(), desired({ docs: kubelet }))).targets, [...M, ...W]);
    const up = new Upgrade(changed(desired(), desired({ docs: cluster })));
    assert.deepEqual(up.targets, M);
    assert.equal(
      up.reason(M[0]!),
      "kubernetes binaries or cluster-wide kubeadm configuration changed (upgrade with config)",
    );
  });
});

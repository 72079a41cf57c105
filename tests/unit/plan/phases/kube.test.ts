import * as assert from "node:assert/strict";
import {
  kubeadmConfigStep,
  labelSteps,
  masterSteps,
  workerSteps,
} from "../../../../provider/core/plan/phases/kube";
import { REMOVAL } from "../../../../provider/core/plan/phases/hosts";
import { M, W } from "../../../fixtures/clusterfile/plan-world";
import { byId, changed, desired, fresh, ids } from "./ctx";

const tails = (hosts: string[]) => new Map(hosts.map((ip) => [ip, `registry-client:${ip}`]));

describe("plan phase: kube", () => {
  it("new cluster: kubeadm-config on master0, init on master0, the other masters join one at a time", () => {
    const ctx = fresh({ masters: [...M, "10.0.0.4"] });
    const kc = kubeadmConfigStep(ctx, tails(ctx.all));
    assert.deepEqual(kc.step.hosts, [M[0]]);
    assert.deepEqual(kc.deps, [`registry-client:${M[0]}`]);
    const r = masterSteps(ctx, { kubeadmConfig: kc.step.id, lastOfHost: tails(ctx.all), lastMaster: "" });
    assert.deepEqual(ids(r.nodes), ["init-master", `join-master:${M[1]}`, "join-master:10.0.0.4"]);
    assert.deepEqual(byId(r.nodes, "join-master:10.0.0.4").deps, [
      `join-master:${M[1]}`,
      "kubeadm-config",
      "registry-client:10.0.0.4",
    ]);
    assert.equal(r.lastMaster, "join-master:10.0.0.4");
    assert.equal(r.beforeRemoval, r.lastMaster);
    assert.equal(r.joined.get(M[0]!), "init-master");
  });

  it("master0 new on a running cluster: the master that stays drives joins; no init", () => {
    const ctx = changed(desired({ masters: [M[1]!] }), desired({ masters: ["10.0.0.1", M[1]!] }));
    assert.equal(ctx.runner, M[1]);
    assert.deepEqual(kubeadmConfigStep(ctx, tails(ctx.all)).step.hosts, [M[1]]);
    const r = masterSteps(ctx, {
      kubeadmConfig: "kubeadm-config",
      lastOfHost: tails(ctx.all),
      lastMaster: "",
    });
    assert.deepEqual(ids(r.nodes), ["join-master:10.0.0.1"]);
  });

  it("a worker becoming a master joins last, after its removal; removals wait for the masters before it", () => {
    const ctx = changed(desired(), desired({ masters: [...M, W[1]!], workers: [W[0]!] }));
    const r = masterSteps(ctx, {
      kubeadmConfig: "kubeadm-config",
      lastOfHost: tails(ctx.all),
      lastMaster: "",
    });
    assert.deepEqual(ids(r.nodes), [`join-master:${W[1]}`]);
    assert.ok(byId(r.nodes, `join-master:${W[1]}`).deps.includes(REMOVAL));
    assert.equal(r.beforeRemoval, "", "no master step before it in this plan");
  });

  it("workers: the VIP on each, re-pointed after a removal; joins only for workers not yet in the cluster", () => {
    const ctx = changed(desired({ workers: [W[0]!] }), desired());
    const r = workerSteps(ctx, { lastMaster: "m", lastOfHost: tails(ctx.all), removal: REMOVAL });
    assert.deepEqual(ids(r.nodes), [`worker-vip:${W[0]}`, `worker-vip:${W[1]}`, `join-worker:${W[1]}`]);
    const vip = byId(r.nodes, `worker-vip:${W[1]}`);
    assert.deepEqual(vip.deps, [`registry-client:${W[1]}`, "m", REMOVAL]);
    assert.deepEqual(vip.step.kind === "worker-vip" && vip.step.masters, M);
    assert.equal(r.lastOfHost.get(W[1]!), `worker-vip:${W[1]}`);
    assert.equal(r.joined.get(W[1]!), `join-worker:${W[1]}`);
  });

  it("the VIP key ignores the order of the masters", () => {
    const a = fresh();
    const b = fresh({ masters: [M[1]!, M[0]!] });
    const vipHash = (ctx: typeof a) =>
      workerSteps(ctx, { lastMaster: "", lastOfHost: tails(ctx.all), removal: "" }).nodes[0]!.parts[0]!.hash;
    assert.equal(vipHash(a), vipHash(b));
    assert.notEqual(vipHash(a), vipHash(fresh({ masters: [M[0]!] })));
  });

  it("labels: after the host's join, keyed by its roles, labels and taints", () => {
    const ctx = fresh({ workerExtra: "      labels: { disk: ssd }\n" });
    const other = fresh({ workerExtra: "      labels: { disk: hdd }\n" });
    const joined = new Map([[W[0]!, `join-worker:${W[0]}`]]);
    const r = labelSteps(ctx, { lastMaster: "m", lastOfHost: tails(ctx.all), joined });
    const n = byId(r.nodes, `node-labels:${W[0]}`);
    assert.deepEqual(n.deps, [`join-worker:${W[0]}`, "m"]);
    const o = byId(
      labelSteps(other, { lastMaster: "m", lastOfHost: tails(ctx.all), joined }).nodes,
      `node-labels:${W[0]}`,
    );
    assert.notEqual(n.parts[0]!.hash, o.parts[0]!.hash);
    const m0 = (c: typeof ctx) =>
      byId(labelSteps(c, { lastMaster: "m", lastOfHost: tails(c.all), joined }).nodes, `node-labels:${M[0]}`);
    assert.equal(
      m0(ctx).parts[0]!.hash,
      m0(other).parts[0]!.hash,
      "a master's key does not move with a worker's labels",
    );
  });
});

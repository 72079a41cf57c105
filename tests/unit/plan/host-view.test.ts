/**
 * One resolved view per host, and env merged once by sealer's rule (image ENV < spec.env < the
 * host group's env, a higher level's list replacing a key whole). The planner keys from the
 * views and the executor renders with the same merge; the worker VIP is cluster-wide.
 */
import * as assert from "node:assert/strict";
import { clusterEnv, hostEnv, mergedEnv } from "../../../provider/core/clusterfile";
import { PlanContext } from "../../../provider/core/plan/context";
import { hostViews } from "../../../provider/core/plan/host-view";
import { DEFAULT_VIP } from "../../../provider/core/plan/impact";
import { plan } from "../../../provider/core/plan/planner";
import { emptyApplied } from "../../../provider/core/plan/types";
import { baseImage, digest, installed, multiPlatform, spec } from "../../fixtures/clusterfile/plan-world";
import { world } from "../steps/world";

const M0 = "10.0.0.2";
const W0 = "10.0.0.10";

/** master0 in its own group with host env; a worker group with env, labels, taints and ssh. */
function text(o: { clusterEnv?: string; masterEnv?: string } = {}): string {
  return `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: demo }
spec:
  image: registry.example.com/team/saas:1.0
  ssh: { passwd: pw, port: 22 }
  env: [ ${o.clusterEnv ?? "A=cluster, B=cluster, ImageOnly=cluster"} ]
  hosts:
    - ips: [ ${M0} ]
      roles: [ master ]
      env: [ ${o.masterEnv ?? "M=m"} ]
    - ips: [ ${W0} ]
      roles: [ node, db ]
      env: [ B=host, C=host ]
      labels: { disk: ssd }
      taints: [ "dedicated=db:NoSchedule" ]
      ssh: { user: admin, port: 2222 }
`;
}

describe("env merged once (image ENV < spec.env < host env)", () => {
  const s = spec(text());
  const imageEnv = { ImageOnly: "image", FromImage: "i" };

  it("a host's key replaces the cluster's, the cluster's replaces the image's; other keys pass through", () => {
    assert.deepEqual(mergedEnv(s, s.hosts[1], imageEnv), {
      A: ["cluster"],
      B: ["host"],
      C: ["host"],
      FromImage: ["i"],
      ImageOnly: ["cluster"],
    });
  });

  it("no host: the cluster's env (what cluster-wide values read)", () => {
    assert.deepEqual(clusterEnv(s, imageEnv), {
      A: "cluster",
      B: "cluster",
      FromImage: "i",
      ImageOnly: "cluster",
    });
  });

  it("hostEnv is the same merge as strings, by IP", () => {
    assert.deepEqual(hostEnv(s, W0, imageEnv), {
      A: "cluster",
      B: "host",
      C: "host",
      FromImage: "i",
      ImageOnly: "cluster",
    });
    assert.deepEqual(hostEnv(s, M0, imageEnv), {
      A: "cluster",
      B: "cluster",
      FromImage: "i",
      ImageOnly: "cluster",
      M: "m",
    });
  });
});

describe("host view", () => {
  const s = spec(text());
  const image = baseImage();

  it("resolves role, roles, ssh, env, platform, layers, labels and taints once per host", () => {
    const views = hostViews({ spec: s, image, applied: emptyApplied("demo") }, [M0]);
    const w = views.get(W0)!;
    assert.equal(w.role, "node");
    assert.deepEqual(w.roles, ["db", "node"]);
    assert.equal(w.ssh.user, "admin");
    assert.equal(w.ssh.port, 2222);
    assert.equal(w.ssh.passwd?.reveal(), "pw", "the cluster's password where the host sets none");
    assert.deepEqual(w.env.B, ["host"]);
    assert.deepEqual(w.env.ImageOnly, ["cluster"]);
    assert.deepEqual(w.labels, { disk: "ssd" });
    assert.deepEqual(w.taints, ["dedicated=db:NoSchedule"]);
    assert.equal(w.platform, "linux/amd64");
    assert.equal(w.platformKnown, false, "not probed, not recorded: the image's default, a guess");
    assert.equal(w.layers, image.layers);
    assert.equal(views.get(M0)!.role, "master");
    assert.equal(views.get(M0)!.ssh.port, 22);
  });

  it("platform: probed over recorded over the image's default; layers of that platform", () => {
    const arm = image.layers.map((l, i) => (i === 1 ? { ...l, digest: digest("arm") } : l));
    const img = multiPlatform(image, arm);
    const applied = emptyApplied("demo");
    applied.hosts[W0] = { roles: ["node"], layers: [], platform: "linux/arm64" };
    applied.hosts[M0] = { roles: ["master"], layers: [], platform: "linux/arm64" };
    const views = hostViews({ spec: s, image: img, applied, hostPlatforms: { [M0]: "linux/amd64" } }, [M0]);
    assert.deepEqual([views.get(M0)!.platform, views.get(M0)!.platformKnown], ["linux/amd64", true]);
    assert.deepEqual([views.get(W0)!.platform, views.get(W0)!.platformKnown], ["linux/arm64", true]);
    assert.equal(views.get(W0)!.layers, arm);
  });

  it("the planner keys a step's env from the host's view: a host-level change touches that host only", () => {
    const d0 = { cluster: s, image };
    const d1 = { cluster: spec(text().replace("B=host", "B=other")), image };
    const changed = plan(d1, installed(d0)).steps.map((st) => st.id);
    assert.ok(changed.includes(`distribute:${W0}`), changed.join(" "));
    assert.ok(!changed.includes(`distribute:${M0}`), changed.join(" "));
    const ctx = new PlanContext(d1, emptyApplied("demo"));
    assert.deepEqual(ctx.hosts.get(W0)!.env.B, ["other"]);
  });
});

describe("env: the rules that differed, and the one kept", () => {
  // Before: the planner keyed the worker VIP on the cluster's env (image < spec.env), while the
  // executor rendered it from master0's env (host env included). sealer reads IPvsVIPv4 from the
  // cluster's env (GetClusterEnv), so the cluster rule is kept on both sides.
  const cf = (masterVip: string) => text({ masterEnv: `M=m, IPvsVIPv4=${masterVip}` });

  it("IPvsVIPv4 on master0's host group: master0's own env has it, the cluster's VIP does not", () => {
    const w = world({ clusterfile: cf("10.9.9.9") });
    assert.equal(w.ctx.env(M0).IPvsVIPv4, "10.9.9.9", "the host's env is the host's");
    assert.equal(w.ctx.vip(), DEFAULT_VIP, "the VIP is the cluster's");
  });

  it("the planner's worker VIP key does not move with it either, so plan and run agree", () => {
    const d0 = { cluster: spec(cf("10.9.9.9")), image: baseImage() };
    const d1 = { cluster: spec(cf("10.9.9.8")), image: baseImage() };
    const ids = plan(d1, installed(d0)).steps.map((st) => st.id);
    assert.ok(!ids.includes(`worker-vip:${W0}`), ids.join(" "));
  });

  it("IPvsVIPv4 in spec.env moves both", () => {
    const w = world({ clusterfile: text({ clusterEnv: "A=cluster, IPvsVIPv4=10.7.7.7" }) });
    assert.equal(w.ctx.vip(), "10.7.7.7");
    const d0 = { cluster: spec(text()), image: baseImage() };
    const d1 = {
      cluster: spec(text({ clusterEnv: "A=cluster, B=cluster, ImageOnly=cluster, IPvsVIPv4=10.7.7.7" })),
      image: baseImage(),
    };
    const ids = plan(d1, installed(d0)).steps.map((st) => st.id);
    assert.ok(ids.includes(`worker-vip:${W0}`), ids.join(" "));
  });
});

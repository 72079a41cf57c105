import * as assert from "node:assert/strict";
import { hostSteps, REMOVAL, runtimeOf } from "../../../../provider/core/plan/phases/hosts";
import { baseImage, M, W } from "../../../fixtures/clusterfile/plan-world";
import { byId, changed, desired, fresh, ids } from "./ctx";

describe("plan phase: host steps", () => {
  it("per host: distribute, pre-init-host hooks, init-host, container-runtime, in a chain after the pre hooks", () => {
    const { nodes, lastOfHost } = hostSteps(fresh({ masters: [M[0]!], workers: [] }), ["hook:pre-install:x"]);
    const ip = M[0]!;
    assert.deepEqual(ids(nodes), [
      `distribute:${ip}`,
      `hook:pre-init-host:sysctl:${ip}`,
      `init-host:${ip}`,
      `container-runtime:${ip}`,
    ]);
    assert.deepEqual(byId(nodes, `distribute:${ip}`).deps, ["hook:pre-install:x"]);
    assert.deepEqual(byId(nodes, `init-host:${ip}`).deps, [
      `distribute:${ip}`,
      `hook:pre-init-host:sysctl:${ip}`,
    ]);
    assert.deepEqual(byId(nodes, `container-runtime:${ip}`).deps, [`init-host:${ip}`]);
    assert.equal(lastOfHost.get(ip), `container-runtime:${ip}`);
  });

  it("host-aliases when the Clusterfile has aliases, or was recorded (so removing the last one is applied)", () => {
    const aliases = { extraSpec: "  hostAliases: [ { ip: 10.9.9.9, hostnames: [ nfs.local ] } ]\n" };
    assert.equal(hostSteps(fresh(aliases), []).lastOfHost.get(W[0]!), `host-aliases:${W[0]}`);
    assert.equal(hostSteps(fresh(), []).lastOfHost.get(W[0]!), `container-runtime:${W[0]}`);
    const ctx = changed(desired(aliases), desired());
    const n = byId(hostSteps(ctx, []).nodes, `host-aliases:${W[0]}`);
    assert.deepEqual(
      n.parts.map((p) => p.name),
      ["hostAliases"],
    );
  });

  it("the runtime: the Clusterfile's, else the image's label, else containerd", () => {
    const docker = desired({ extraSpec: "  containerRuntime: { type: docker }\n" });
    assert.equal(runtimeOf({ spec: docker.cluster, image: baseImage() }), "docker");
    const plain = desired();
    assert.equal(
      runtimeOf({ spec: plain.cluster, image: baseImage({ containerRuntime: "docker" }) }),
      "docker",
    );
    assert.equal(
      runtimeOf({ spec: plain.cluster, image: baseImage({ containerRuntime: undefined }) }),
      "containerd",
    );
    const n = byId(
      hostSteps(fresh({ extraSpec: "  containerRuntime: { type: docker }\n" }), []).nodes,
      `container-runtime:${M[0]}`,
    );
    assert.equal(n.step.kind === "container-runtime" && n.step.runtime, "docker");
  });

  it("a host changing role is reinstalled after its removal, whatever it recorded", () => {
    const ctx = changed(desired(), desired({ masters: [...M, W[1]!], workers: [W[0]!] }));
    const dist = byId(hostSteps(ctx, []).nodes, `distribute:${W[1]}`);
    assert.deepEqual(dist.deps, [REMOVAL]);
    assert.equal(dist.force, `host ${W[1]} changes role node -> master: cleaned and joined again`);
    assert.equal(byId(hostSteps(ctx, []).nodes, `distribute:${W[0]}`).force, undefined);
  });
});

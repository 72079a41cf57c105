import * as assert from "node:assert/strict";
import { registryHosts, registrySteps } from "../../../../provider/core/plan/phases/registry";
import { M, W } from "../../../fixtures/clusterfile/plan-world";
import { byId, fresh, ids } from "./ctx";

const tails = (hosts: string[]) => new Map(hosts.map((ip) => [ip, `container-runtime:${ip}`]));

describe("plan phase: registry", () => {
  it("a local HA registry on every master; then a registry client on every host after all of them", () => {
    const ctx = fresh();
    const before = tails(ctx.all);
    const { nodes, lastOfHost } = registrySteps(ctx, before);
    assert.deepEqual(ids(nodes), [
      ...M.map((ip) => `registry:${ip}`),
      ...[...M, ...W].map((ip) => `registry-client:${ip}`),
    ]);
    assert.deepEqual(byId(nodes, `registry:${M[1]}`).deps, [`container-runtime:${M[1]}`]);
    assert.deepEqual(byId(nodes, `registry-client:${W[0]}`).deps, [
      `container-runtime:${W[0]}`,
      ...M.map((ip) => `registry:${ip}`),
    ]);
    assert.equal(lastOfHost.get(W[0]!), `registry-client:${W[0]}`);
    assert.equal(before.get(W[0]!), `container-runtime:${W[0]}`, "the input map is left alone");
  });

  it("not HA: master0 only; external: master0 pushes, and says where", () => {
    const notHa = fresh({ extraSpec: "  registry: { localRegistry: { ha: false } }\n" });
    assert.deepEqual(registryHosts(notHa), [M[0]]);
    const ext = fresh({ extraSpec: "  registry: { externalRegistry: { domain: reg.example.com } }\n" });
    assert.deepEqual(registryHosts(ext), [M[0]]);
    const n = byId(registrySteps(ext, tails(ext.all)).nodes, `registry:${M[0]}`);
    assert.equal(n.newReason, "push the image's container images to reg.example.com (new cluster)");
  });

  it("a registry client is keyed by the registry settings, the registry hosts, its role and IPvsVIPv4", () => {
    const ctx = fresh();
    const n = byId(registrySteps(ctx, tails(ctx.all)).nodes, `registry-client:${W[0]}`);
    assert.deepEqual(
      n.parts.map((p) => p.name),
      ["registry", "registry-hosts", "role", "env:IPvsVIPv4"],
    );
  });
});

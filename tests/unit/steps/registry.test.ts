/** registry against the recording fake host (the CA is made locally with openssl): its files, record and drift check. */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { registry } from "../../../provider/core/exec/steps/registry";
import { M0, M1, W0, drifted, expected, knowing, recorded, step, world, type World } from "./world";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const putsOn = (w: World, ip: string) => w.io.on(ip).flatMap((c) => (c.op === "put" ? [c] : []));

describe("step registry (fake host)", () => {
  it("puts the TLS pair on every registry host, the CA on master0, and starts the registry there", async () => {
    const w = world();
    const fp = (await registry.run(w.ctx, step("registry", [M0, M1]))).footprint!;
    assert.deepEqual(w.io.hosts(), [M0, M1].sort(), "workers get nothing");
    const dir = `${w.ctx.clusterDir}/registry`;
    assert.deepEqual(
      putsOn(w, M0).map((p) => [p.file, p.mode.toString(8)]),
      [
        [`${w.ctx.clusterDir}/pki/ca.crt`, "644"],
        [`${w.ctx.clusterDir}/pki/ca.key`, "600"],
        [`${dir}/tls/registry.crt`, "644"],
        [`${dir}/tls/registry.key`, "600"],
      ],
    );
    assert.deepEqual(
      putsOn(w, M1).map((p) => p.file),
      [`${dir}/tls/registry.crt`, `${dir}/tls/registry.key`],
    );
    for (const ip of [M0, M1]) {
      const b = w.io.bodies(ip);
      assert.ok(b[0]!.includes(`${ip} sea.hub`), "the registry host resolves the domain to itself");
      assert.ok(b[1]!.includes(`${ip}:5000`), b[1]);
      const crt = putsOn(w, ip).find((p) => p.file.endsWith("registry.crt"))!;
      assert.equal(fp[ip]!.files![`${dir}/tls/registry.crt`], sha(crt.content));
      assert.match(crt.content, /^-----BEGIN CERTIFICATE-----/);
    }
    assert.ok(fp[M0]!.files![`${w.ctx.clusterDir}/pki/ca.key`]);
    assert.equal(fp[M1]!.files![`${w.ctx.clusterDir}/pki/ca.key`], undefined);
  });

  it("once recorded, drift asks the registry on its host and checks its certificate", async () => {
    const w = world();
    const s = step("registry", [M1], { id: `registry:${M1}` });
    const after = recorded(w, s, await registry.run(w.ctx, s), knowing(w, [M1, W0]));
    assert.equal(expected(w, after, M1).registry, true);
    assert.equal(expected(w, after, W0).registry, false, "not a registry host");
    const crt = `${w.ctx.clusterDir}/registry/tls/registry.crt`;
    assert.deepEqual(drifted(w, after, M1), {});
    assert.deepEqual(drifted(w, after, M1, { registryHttp: "000" }), { registry: [s.id] });
    assert.deepEqual(drifted(w, after, M1, { files: { [crt]: null } }), { [`file:${crt}`]: [s.id] });
  });
});

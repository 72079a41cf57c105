/** registry and registry-client against the recording fake host (the CA is made locally with openssl). */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { runRegistry, runRegistryClient } from "../../../provider/core/exec/steps/registry";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { M0, M1, W0, W1, disposeWorlds, step, world, type World } from "./world";

const HOSTS_TOML = "/etc/containerd/certs.d/sea.hub:5000/hosts.toml";
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const putsOn = (w: World, ip: string) => w.io.on(ip).flatMap((c) => (c.op === "put" ? [c] : []));

describe("steps: registry (fake host)", () => {
  afterEach(disposeWorlds);

  it("registry puts the TLS pair on every registry host, the CA on master0, and starts the registry there", async () => {
    const w = world();
    const fp = await runRegistry(w.ctx, step("registry", [M0, M1]));
    assert.deepEqual(w.io.hosts(), [M0, M1].sort(), "workers get nothing");
    const dir = `${w.ctx.clusterDir}/registry`;
    const m0Files = putsOn(w, M0).map((p) => [p.file, p.mode.toString(8)]);
    assert.deepEqual(m0Files, [
      [`${w.ctx.clusterDir}/pki/ca.crt`, "644"],
      [`${w.ctx.clusterDir}/pki/ca.key`, "600"],
      [`${dir}/tls/registry.crt`, "644"],
      [`${dir}/tls/registry.key`, "600"],
    ]);
    assert.deepEqual(
      putsOn(w, M1).map((p) => p.file),
      [`${dir}/tls/registry.crt`, `${dir}/tls/registry.key`],
    );
    for (const ip of [M0, M1]) {
      const b = w.io.bodies(ip);
      assert.ok(b[0]!.includes(`${ip} sea.hub`), "the registry host resolves the domain to itself");
      assert.ok(b[1]!.includes(`${ip}:5000`), b[1]);
      const crt = putsOn(w, ip).find((p) => p.file.endsWith("registry.crt"))!;
      assert.equal(fp![ip]!.files![`${dir}/tls/registry.crt`], sha(crt.content));
      assert.match(crt.content, /^-----BEGIN CERTIFICATE-----/);
    }
    assert.ok(fp![M0]!.files![`${w.ctx.clusterDir}/pki/ca.key`]);
    assert.equal(fp![M1]!.files![`${w.ctx.clusterDir}/pki/ca.key`], undefined);
  });

  it("registry-client maps the domain per host and writes hosts.toml with the cluster's CA", async () => {
    const w = world();
    await runRegistry(w.ctx, step("registry", [M0, M1]));
    const ca = putsOn(w, M0).find((p) => p.file.endsWith("pki/ca.crt"))!.content;
    const fp = await runRegistryClient(w.ctx, step("registry-client", [M1, W0, W1]));
    const mapped = (ip: string) => w.io.bodies(ip).find((b) => b.includes("# BEGIN sealer:demo:registry"))!;
    assert.ok(mapped(M1).includes(`${M1} sea.hub`), "a registry host uses its own registry");
    // HA registry: workers go through the VIP.
    for (const ip of [W0, W1]) assert.ok(mapped(ip).includes("10.103.97.2 sea.hub"), mapped(ip));
    for (const ip of [M1, W0, W1]) {
      const files = fp![ip]!.files!;
      assert.ok(files[HOSTS_TOML], Object.keys(files).join(", "));
      assert.equal(files["/etc/containerd/certs.d/sea.hub:5000/ca.crt"], sha(ca));
      assert.equal(files["/etc/docker/certs.d/sea.hub:5000/ca.crt"], sha(ca));
      assert.ok(w.io.bodies(ip).some((b) => b.includes(HOSTS_TOML)));
    }
    assert.equal(fp![M0], undefined, "master0 was not in the step");
  });
  it("registry-client for an external registry gives every host the credentials by upload, never on a command line", async () => {
    const w = world({
      clusterfile: clusterfile({
        extraSpec:
          "  registry:\n    externalRegistry: { domain: harbor.example.com, port: 8443, username: puller, password: pull-Secret-9 }\n",
      }),
    });
    // Nothing recorded by `sealer login` for it: a data dir of the test's own.
    const home = process.env.SEALER_HOME;
    process.env.SEALER_HOME = w.stateDir;
    try {
      await runRegistryClient(w.ctx, step("registry-client", [M0, W0]));
    } finally {
      if (home === undefined) delete process.env.SEALER_HOME;
      else process.env.SEALER_HOME = home;
    }
    const auth = Buffer.from("puller:pull-Secret-9").toString("base64");
    for (const ip of [M0, W0]) {
      const calls = w.io.on(ip);
      for (const c of calls)
        if (c.op === "run")
          assert.ok(!c.command.includes("pull-Secret-9") && !c.command.includes(auth), c.command);
      const kubelet = calls.find((c) => c.op === "put" && c.file === "/var/lib/kubelet/config.json");
      assert.ok(kubelet && kubelet.op === "put" && kubelet.mode === 0o600);
      assert.deepEqual(JSON.parse(kubelet.content), { auths: { "harbor.example.com:8443": { auth } } });
      assert.ok(!w.io.bodies(ip).some((b) => b.includes("# BEGIN sealer:demo:registry")), "no hosts entry");
      assert.ok(
        w.io.bodies(ip).some((b) => b.includes("/etc/containerd/certs.d/harbor.example.com:8443/hosts.toml")),
      );
    }
  });
});

/** registry-client against the recording fake host: hosts entry, CA trust, credentials; its record and drift check. */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { registry } from "../../../provider/core/exec/steps/registry";
import { registryClient } from "../../../provider/core/exec/steps/registry-client";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { M0, M1, W0, W1, drifted, expected, knowing, recorded, step, world, type World } from "./world";

const HOSTS_TOML = "/etc/containerd/certs.d/sea.hub:5000/hosts.toml";
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const putsOn = (w: World, ip: string) => w.io.on(ip).flatMap((c) => (c.op === "put" ? [c] : []));

describe("step registry-client (fake host)", () => {
  it("maps the domain per host and writes hosts.toml with the cluster's CA", async () => {
    const w = world();
    await registry.run(w.ctx, step("registry", [M0, M1]));
    const ca = putsOn(w, M0).find((p) => p.file.endsWith("pki/ca.crt"))!.content;
    const fp = (await registryClient.run(w.ctx, step("registry-client", [M1, W0, W1]))).footprint!;
    const mapped = (ip: string) => w.io.bodies(ip).find((b) => b.includes("# BEGIN sealer:demo:registry"))!;
    assert.ok(mapped(M1).includes(`${M1} sea.hub`), "a registry host uses its own registry");
    // HA registry: workers go through the VIP.
    for (const ip of [W0, W1]) assert.ok(mapped(ip).includes("10.103.97.2 sea.hub"), mapped(ip));
    for (const ip of [M1, W0, W1]) {
      const files = fp[ip]!.files!;
      assert.ok(files[HOSTS_TOML], Object.keys(files).join(", "));
      assert.equal(files["/etc/containerd/certs.d/sea.hub:5000/ca.crt"], sha(ca));
      assert.equal(files["/etc/docker/certs.d/sea.hub:5000/ca.crt"], sha(ca));
      assert.ok(w.io.bodies(ip).some((b) => b.includes(HOSTS_TOML)));
    }
    assert.equal(fp[M0], undefined, "master0 was not in the step");
  });

  it("once recorded, drift expects the registry block and hosts.toml; a lost block or file names the step", async () => {
    const w = world();
    const s = step("registry-client", [W0], { id: `registry-client:${W0}` });
    const after = recorded(w, s, await registryClient.run(w.ctx, s), knowing(w, [W0]));
    assert.deepEqual(expected(w, after, W0).blocks, [
      { tag: "registry", lines: ["10.103.97.2 sea.hub"], steps: [s.id] },
    ]);
    assert.deepEqual(drifted(w, after, W0), {});
    assert.deepEqual(drifted(w, after, W0, { blocks: {} }), { "hosts:registry": [s.id] });
    assert.deepEqual(drifted(w, after, W0, { files: { [HOSTS_TOML]: "f".repeat(64) } }), {
      [`file:${HOSTS_TOML}`]: [s.id],
    });
  });

  it("for an external registry gives every host the credentials by upload, never on a command line", async () => {
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
      await registryClient.run(w.ctx, step("registry-client", [M0, W0]));
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
    // No registry block of ours to expect for an external registry.
    const after = recorded(
      w,
      step("registry-client", [W0], { id: `registry-client:${W0}` }),
      {},
      knowing(w, [W0]),
    );
    assert.deepEqual(expected(w, after, W0).blocks, []);
  });
});

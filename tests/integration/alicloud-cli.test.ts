import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { register as registerInfra } from "../../provider/cli/commands/infra";
import { setLogSink } from "../../provider/core/log";
import { FakeAlicloud } from "../harness/fake-alicloud";
import { captureStdout } from "../harness/cli";
import { setEnv } from "../harness/env";

/** `sealer infra create|describe|scale|delete` in-process against the fake API. */
describe("sealer infra CLI against the fake API", function () {
  this.timeout(60_000);
  let fake: FakeAlicloud;
  let home: string;
  let restoreEnv: (() => void) | undefined;
  let prevSink: ReturnType<typeof setLogSink>;

  before(async () => {
    fake = new FakeAlicloud({ bootDelayMs: 100, deleteDelayMs: 50, networkDelayMs: 20, eipDelayMs: 20 });
    await fake.start();
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-infra-cli-"));
    restoreEnv = setEnv({
      SEALER_HOME: home,
      ALIBABA_CLOUD_ACCESS_KEY_ID: fake.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: fake.accessKeySecret,
    });
    prevSink = setLogSink({ write: () => undefined });
  });
  after(async () => {
    setLogSink(prevSink);
    restoreEnv?.();
    await fake.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  function run(...args: string[]): Promise<string> {
    const program = new Command("sealer").exitOverride();
    registerInfra(program);
    return captureStdout(() => program.parseAsync(["node", "sealer", ...args]));
  }

  it("creates, describes, scales and deletes from a v1 Clusterfile", async () => {
    const cf = path.join(home, "Clusterfile");
    fs.writeFileSync(
      cf,
      [
        "apiVersion: sealer.aliyun.com/v1alpha1",
        "kind: Cluster",
        "metadata:",
        "  name: cli-demo",
        "spec:",
        "  image: kubernetes:v1.19.8",
        "  provider: ALI_CLOUD",
        "  ssh: { user: root, passwd: Seal3r-Passw0rd }",
        "  network: { podCIDR: 100.64.0.0/10, svcCIDR: 10.96.0.0/22 }",
        "  masters: { cpu: 2, memory: 8, count: 3, systemDisk: 100, dataDisks: [100] }",
        "  nodes: { cpu: 4, memory: 16, count: 2, systemDisk: 100, dataDisks: [100] }",
        "  alicloud: { region: cn-test, imageId: ubuntu_22_04, sshCidr: 198.51.100.0/24 }",
      ].join("\n"),
    );
    const created = JSON.parse(await run("infra", "create", "-f", cf, "--endpoint", fake.url, "--json")) as {
      cluster: string;
      instances: Array<{ role: string; instanceType: string }>;
    };
    assert.equal(created.cluster, "cli-demo");
    assert.deepEqual(
      created.instances.map((i) => `${i.role} ${i.instanceType}`),
      [
        "master ecs.g7.large",
        "master ecs.g7.large",
        "master ecs.g7.large",
        "node ecs.g7.xlarge",
        "node ecs.g7.xlarge",
      ],
    );
    const runs = fake.log.filter((l) => l.action === "RunInstances");
    assert.deepEqual(
      runs.map((r) => [r.params["SystemDisk.Size"], r.params["DataDisk.1.Size"]]),
      [
        ["100", "100"],
        ["100", "100"],
      ],
    );
    const file = path.join(home, "clusters", "cli-demo", "infra.json");
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(file, "utf8").includes("Seal3r-Passw0rd"), "the password is not stored");
    // The deployment ID is kept in infra.json and tagged on every instance it made.
    const rec = JSON.parse(fs.readFileSync(file, "utf8")) as { state: { deploymentId?: string } };
    assert.match(rec.state.deploymentId ?? "", /^[0-9a-f]{16}$/);
    for (const i of fake.liveInstances())
      assert.ok(
        i.tags.some((t) => t.TagKey === "sealer-deployment" && t.TagValue === rec.state.deploymentId),
      );

    const table = await run("infra", "describe", "--name", "cli-demo");
    assert.match(table, /^ROLE\s+INSTANCE\s+PRIVATE IP/);
    assert.equal(table.trim().split("\n").length, 6);
    const byFile = JSON.parse(await run("infra", "describe", "-f", cf, "--json")) as {
      cluster: string;
      instances: unknown[];
    };
    assert.equal(byFile.cluster, "cli-demo");
    assert.equal(byFile.instances.length, 5);

    fake.resetCounts();
    await run("infra", "create", "-f", cf, "--endpoint", fake.url);
    assert.equal(fake.calls.RunInstances ?? 0, 0, "a re-run creates nothing");

    const scaled = JSON.parse(
      await run("infra", "scale", "-f", cf, "--endpoint", fake.url, "--nodes", "1", "--json"),
    ) as { instances: unknown[] };
    assert.equal(scaled.instances.length, 4);
    assert.equal(fake.liveInstances().length, 4);

    await run("infra", "delete", "--name", "cli-demo");
    assert.ok(!fs.existsSync(file));
    assert.equal(fake.liveInstances().length + fake.vpcs.size + fake.vswitches.size + fake.sgs.size, 0);
  });

  it("refuses a Clusterfile for another provider, naming the field", async () => {
    const cf = path.join(home, "Clusterfile.bad");
    fs.writeFileSync(
      cf,
      "apiVersion: sealer.aliyun.com/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n  provider: CONTAINER\n  masters: {count: 1}\n",
    );
    await assert.rejects(
      run("infra", "create", "-f", cf, "--endpoint", fake.url, "--region", "cn-test"),
      /spec\.provider: "CONTAINER" — sealer infra creates Alibaba Cloud machines only[\s\S]*imageId: give --image-id/,
    );
  });
});

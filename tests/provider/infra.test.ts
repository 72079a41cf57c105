/**
 * The Infra dynamic provider called directly (check/diff/create/update/delete), alicloud
 * against the local fake ECS/VPC API (tests/harness/fake-alicloud.ts): batch create, no-change
 * diff, scale out, identity changes replace, partial state on a quota failure, clean delete.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setLogSink } from "../../provider/core/log";
import { PartialStateError, SECRET_SIG, SIG_KEY, UNKNOWN, reveal } from "../../provider/resources/common";
import { provider } from "../../provider/resources/infra";
import { FakeAlicloud } from "../harness/fake-alicloud";
import { listLocalNodes } from "../../provider/core/infra/local";

describe("provider: Infra (alicloud against the fake API)", function () {
  this.timeout(60_000);
  let fake: FakeAlicloud;
  let prevSink: ReturnType<typeof setLogSink>;
  before(() => {
    prevSink = setLogSink({ write: () => undefined });
  });
  after(() => setLogSink(prevSink));
  afterEach(async () => fake?.stop());

  async function start(maxInstances?: number): Promise<void> {
    fake = new FakeAlicloud({
      bootDelayMs: 100,
      deleteDelayMs: 40,
      networkDelayMs: 20,
      eipDelayMs: 20,
      ...(maxInstances ? { maxInstances } : {}),
    });
    await fake.start();
  }

  function inputs(over: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      provider: "alicloud",
      name: "pt1",
      masters: { count: 3, instanceType: "ecs.g7.large" },
      nodes: { count: 2, instanceType: "ecs.c7.xlarge" },
      alicloud: {
        region: fake.region,
        imageId: "ubuntu_22_04_x64",
        sshCidr: "203.0.113.0/24",
        ecsEndpoint: fake.url,
        vpcEndpoint: fake.url,
        accessKeyId: fake.accessKeyId,
        accessKeySecret: fake.accessKeySecret,
        // The fake's private IPs are not reachable from here (and must not be dialled).
        waitForSsh: false,
      },
      ssh: { password: "Sealer-Test-1" },
      providerVersion: "test",
      ...over,
    };
  }

  it("check reports every problem at once and normalises absent nodes to count 0", async () => {
    const bad = await provider.check({}, { provider: "alicloud", name: "Bad_Name", masters: { count: 0 } });
    assert.deepEqual(
      bad.failures?.map((f) => f.property),
      ["masters.count", "name", "alicloud"],
    );
    const ok = await provider.check({}, { provider: "local", name: "n1", masters: { count: 1 } });
    assert.equal(ok.failures, undefined);
    assert.deepEqual(ok.inputs.nodes, { count: 0 });
    // During a first preview the network IDs (from @pulumi/alicloud resources) are unknown: no failure.
    const pending = await provider.check(
      {},
      {
        provider: "alicloud",
        name: "n1",
        masters: { count: 3 },
        alicloud: {
          region: "cn-hangzhou",
          imageId: "img",
          vpcId: UNKNOWN,
          vswitchId: UNKNOWN,
          securityGroupId: UNKNOWN,
        },
      },
    );
    assert.equal(pending.failures, undefined);
  });

  it("create, no-change diff, scale out, replace on region change, delete", async () => {
    await start();
    const { inputs: checked } = await provider.check({}, inputs());
    const { id, outs } = await provider.create(checked);
    assert.equal(id, "alicloud:pt1");
    const o = reveal(outs) as {
      masterHosts: Array<{ privateIp: string; role: string }>;
      workerHosts: unknown[];
      sshUser: string;
    };
    assert.equal(o.masterHosts.length, 3);
    assert.equal(o.workerHosts.length, 2);
    assert.equal(o.sshUser, "root");
    for (const m of o.masterHosts) assert.equal(m.role, "master");
    // Password and access key secret are secret outputs on the wire.
    assert.equal((outs.sshPassword as Record<string, unknown>)[SIG_KEY], SECRET_SIG);
    assert.equal((outs.alicloud as Record<string, unknown>)[SIG_KEY], SECRET_SIG);
    assert.equal(fake.liveInstances().length, 5);

    const same = await provider.diff(id, reveal(outs), (await provider.check(checked, inputs())).inputs);
    assert.deepEqual(same, { changes: false, replaces: [], deleteBeforeReplace: false });
    // New provider code reaches the existing resource as an in-place update.
    assert.deepEqual(await provider.diff(id, reveal(outs), { ...checked, providerVersion: "next" }), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });

    const scaled = (
      await provider.check(checked, inputs({ nodes: { count: 3, instanceType: "ecs.c7.xlarge" } }))
    ).inputs;
    assert.deepEqual(await provider.diff(id, reveal(outs), scaled), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    const up = await provider.update(id, reveal(outs), scaled);
    assert.equal((up.outs.workerHosts as unknown[]).length, 3);
    assert.equal(fake.liveInstances().length, 6);
    // The masters are the same instances as before.
    assert.deepEqual(
      (up.outs.masterHosts as Array<{ id: string }>).map((m) => m.id),
      (outs.masterHosts as Array<{ id: string }>).map((m) => m.id),
    );
    // The deployment ID chosen at create is kept in the state output and reused by the update.
    const deploymentOf = (o: Record<string, unknown>) =>
      (reveal(o) as { state: { alicloud: { deploymentId?: string } } }).state.alicloud.deploymentId;
    assert.match(deploymentOf(outs) ?? "", /^[0-9a-f]{16}$/);
    assert.equal(deploymentOf(up.outs), deploymentOf(outs));
    for (const i of fake.liveInstances())
      assert.ok(i.tags.some((t) => t.TagKey === "sealer-deployment" && t.TagValue === deploymentOf(outs)));

    const moved = inputs();
    (moved.alicloud as Record<string, unknown>).region = "cn-shanghai";
    const d = await provider.diff(id, reveal(up.outs), moved);
    assert.deepEqual(d.replaces, ["alicloud.region"]);

    await provider.delete(id, reveal(up.outs));
    assert.equal(fake.liveInstances().length + fake.vpcs.size + fake.vswitches.size + fake.sgs.size, 0);
  });

  it("a quota failure halfway returns what exists as partial state; delete from it leaves nothing", async () => {
    await start(4);
    const { inputs: checked } = await provider.check({}, inputs());
    const err = await provider.create(checked).then(
      () => assert.fail("expected a quota failure"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PartialStateError, String(err));
    assert.equal(err.id, "alicloud:pt1");
    assert.match(err.reasons[0]!, /QuotaExceed/);
    const props = reveal(err.properties) as {
      state: { kind: string; alicloud: { instances: unknown[]; pending?: unknown[] } };
    };
    assert.equal(props.state.kind, "alicloud");
    // The masters exist (running or still pending): they are in state, so nothing is orphaned.
    assert.equal(props.state.alicloud.instances.length + (props.state.alicloud.pending ?? []).length, 3);
    // The next up sees the shortfall as a change (diff against the partial outputs).
    const d = await provider.diff(err.id, reveal(err.properties), checked);
    assert.equal(d.changes, true);
    await provider.delete(err.id, reveal(err.properties));
    assert.equal(fake.liveInstances().length + fake.vpcs.size + fake.vswitches.size + fake.sgs.size, 0);
  });
});

describe("provider: Infra (local nodes)", function () {
  this.timeout(120_000);
  const isRoot = process.getuid?.() === 0;
  const name =
    `pi${process.pid.toString(36).slice(-4)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(0, 10);

  it("creates local nodes with their key as a secret output; a count change replaces; delete removes them", async function () {
    if (!isRoot) throw new Error("local nodes need root");
    const prevHome = process.env.SEALER_HOME;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-pi-"));
    process.env.SEALER_HOME = home;
    const news = {
      provider: "local",
      name,
      masters: { count: 1 },
      nodes: { count: 1 },
      providerVersion: "test",
    };
    const { inputs } = await provider.check({}, news);
    const { id, outs } = await provider.create(inputs);
    try {
      assert.equal(id, `local:${name}`);
      const o = reveal(outs) as {
        masterHosts: Array<{ id: string; privateIp: string }>;
        workerHosts: Array<{ id: string }>;
        sshPrivateKey: string;
        sshUser: string;
      };
      assert.deepEqual(
        o.masterHosts.map((h) => h.id),
        [`${name}-1`],
      );
      assert.deepEqual(
        o.workerHosts.map((h) => h.id),
        [`${name}-2`],
      );
      assert.match(o.sshPrivateKey, /BEGIN OPENSSH PRIVATE KEY/);
      assert.equal((outs.sshPrivateKey as Record<string, unknown>)[SIG_KEY], SECRET_SIG);
      assert.equal(o.sshUser, "root");
      const more = (await provider.check(inputs, { ...news, nodes: { count: 2 } })).inputs;
      assert.deepEqual(await provider.diff(id, reveal(outs), more), {
        changes: true,
        replaces: ["nodes"],
        deleteBeforeReplace: true,
      });
    } finally {
      await provider.delete(id, reveal(outs));
      assert.deepEqual(await listLocalNodes(name), []);
      if (prevHome === undefined) delete process.env.SEALER_HOME;
      else process.env.SEALER_HOME = prevHome;
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

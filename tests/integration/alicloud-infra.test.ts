import { strict as assert } from "node:assert";
import * as net from "node:net";
import { setLogSink } from "../../provider/core/log";
import {
  AlicloudApiError,
  AlicloudClient,
  applyInfra,
  destroyInfra,
  InfraApplyError,
  refreshInfra,
  TAG_DEPLOYMENT,
  waitForTcp,
  type AlicloudInfraSpec,
  type InfraState,
} from "../../provider/core/infra/alicloud";
import { provider as infraProvider } from "../../provider/resources/infra";
import { FakeAlicloud, type FakeOptions } from "../harness/fake-alicloud";

/**
 * The provisioner against the local fake API over real HTTP: the same client code that talks to
 * Alibaba Cloud, only the endpoint differs.
 */
describe("alicloud infra against the fake API", function () {
  this.timeout(60_000);
  let fake: FakeAlicloud;
  const logs: string[] = [];
  let prevSink: ReturnType<typeof setLogSink>;

  before(() => {
    prevSink = setLogSink({ write: (l) => logs.push(l) });
  });
  after(() => {
    setLogSink(prevSink);
  });
  afterEach(async () => {
    await fake?.stop();
  });

  async function start(o: FakeOptions = {}): Promise<FakeAlicloud> {
    fake = new FakeAlicloud({
      bootDelayMs: 150,
      deleteDelayMs: 60,
      networkDelayMs: 30,
      eipDelayMs: 30,
      ...o,
    });
    await fake.start();
    return fake;
  }

  function spec(over: Partial<AlicloudInfraSpec> = {}): AlicloudInfraSpec {
    return {
      cluster: "t1",
      region: fake.region,
      endpoint: { ecs: fake.url, vpc: fake.url },
      credentials: { accessKeyId: fake.accessKeyId, accessKeySecret: fake.accessKeySecret },
      network: { sshCidr: "203.0.113.0/24" },
      masters: { count: 3, instanceType: "ecs.g7.large" },
      nodes: { count: 3, instanceType: "ecs.c7.xlarge" },
      imageId: "ubuntu_22_04_x64",
      password: "Sealer-Test-1",
      tuning: { pollMinMs: 40, pollMaxMs: 150, minBackoffMs: 20, maxBackoffMs: 200, requestTimeoutMs: 2000 },
      ...over,
    };
  }

  /** A client of the fake with no retries: what another tool (the console) calls. */
  const directClient = () =>
    new AlicloudClient({
      region: fake.region,
      credentials: { accessKeyId: fake.accessKeyId, accessKeySecret: fake.accessKeySecret },
      endpoint: { ecs: fake.url, vpc: fake.url },
      retries: 0,
    });

  /** Someone deletes an instance in the console (the call the console makes); returns once it is gone. */
  async function deleteOutOfBand(id: string): Promise<void> {
    const client = directClient();
    try {
      await client.call("ecs", "DeleteInstances", {
        RegionId: fake.region,
        "InstanceId.1": id,
        Force: "true",
      });
    } finally {
      client.close();
    }
    while (fake.liveInstances().some((i) => i.InstanceId === id)) await new Promise((r) => setTimeout(r, 20));
  }

  const runCalls = () => fake.log.filter((l) => l.action === "RunInstances");

  it("creates 3 masters + 3 nodes in two RunInstances calls and batched DescribeInstances polls", async () => {
    await start();
    const saved: InfraState[] = [];
    const st = await applyInfra(spec(), undefined, { onState: async (s) => void saved.push(s) });
    const runs = runCalls();
    assert.equal(runs.length, 2);
    assert.deepEqual(
      runs.map((r) => [r.params.Amount, r.params.MinAmount, r.params.InstanceType]),
      [
        ["3", "3", "ecs.g7.large"],
        ["3", "3", "ecs.c7.xlarge"],
      ],
    );
    assert.notEqual(runs[0]?.params.ClientToken, runs[1]?.params.ClientToken);
    // One poll asks for all six pending instances in one call; later polls only for those not yet Running.
    const polls = fake.log
      .filter((l) => l.action === "DescribeInstances" && l.params.InstanceIds)
      .map((l) => JSON.parse(l.params.InstanceIds ?? "[]") as string[]);
    assert.equal(polls[0]?.length, 6);
    const ids = new Set(st.instances.map((i) => i.id));
    for (const p of polls) assert.ok(p.length <= 6 && p.every((id) => ids.has(id)));
    assert.ok(polls.length <= 6, `${polls.length} polls for a 150 ms boot`);
    assert.deepEqual(
      st.instances.map((i) => i.role),
      ["master", "master", "master", "node", "node", "node"],
    );
    for (const i of st.instances) assert.match(i.privateIp, /^172\.16\.\d+\.\d+$/);
    assert.equal(new Set(st.instances.map((i) => i.privateIp)).size, 6);
    assert.deepEqual(st.created, { vpc: true, vSwitch: true, securityGroup: true });
    // Tags and security group rules.
    for (const i of fake.liveInstances())
      assert.ok(i.tags.some((t) => t.TagKey === "sealer-cluster" && t.TagValue === "t1"));
    const sg = fake.sgs.get(st.securityGroupId ?? "");
    assert.deepEqual(
      sg?.rules.map((r) => `${r.port} ${r.cidr}`),
      ["22/22 203.0.113.0/24", "6443/6443 203.0.113.0/24"],
    );
    // Partial state was saved along the way: the VPC before anything else, pending IDs before they ran.
    assert.ok(saved.length >= 5);
    // The deployment ID before any call that creates, then the VPC before anything else.
    assert.ok(saved[0]?.deploymentId && !saved[0].vpcId);
    assert.ok(saved[1]?.vpcId && !saved[1].vSwitchId && saved[1].deploymentId === saved[0].deploymentId);
    assert.ok(saved.some((s) => (s.pending ?? []).length === 6));
    assert.deepEqual(saved.at(-1), st);
    // A re-run with the state changes nothing and creates nothing.
    fake.resetCounts();
    const again = await applyInfra(spec(), st);
    assert.deepEqual(again.instances, st.instances);
    assert.equal(fake.calls.RunInstances ?? 0, 0);
    assert.equal(fake.calls.CreateVpc ?? 0, 0);
  });

  it("retries a dropped RunInstances answer with the same ClientToken: no duplicate instances", async () => {
    await start();
    fake.inject("RunInstances", { kind: "drop" }, 1);
    const st = await applyInfra(spec(), undefined);
    assert.equal(fake.calls.RunInstances, 3);
    const runs = runCalls();
    assert.equal(runs[0]?.outcome, "dropped");
    assert.equal(runs[0]?.params.ClientToken, runs[1]?.params.ClientToken);
    assert.equal(fake.liveInstances().length, 6);
    assert.equal(st.instances.length, 6);
  });

  it("retries a slow answer past the request timeout without creating twice", async () => {
    await start();
    fake.inject("RunInstances", { kind: "slow", ms: 800 }, 1);
    const st = await applyInfra(spec({ tuning: { ...spec().tuning, requestTimeoutMs: 300 } }), undefined);
    // The masters' call timed out and was sent again with the same ClientToken. The slow call is
    // logged only when it answers, so wait for it.
    assert.equal(fake.calls.RunInstances, 3);
    for (let t = 0; runCalls().length < 3 && t < 40; t++) await new Promise((r) => setTimeout(r, 50));
    const runs = runCalls();
    const slow = runs.find((r) => r.outcome === "slow");
    assert.ok(slow, "the slow RunInstances answered");
    assert.equal(runs.filter((r) => r.params.ClientToken === slow.params.ClientToken).length, 2);
    assert.equal(fake.liveInstances().length, 6);
    assert.equal(st.instances.length, 6);
  });

  it("survives 500, 503, OperationConflict and Throttling answers", async () => {
    await start();
    fake.inject("CreateVpc", { kind: "http500" }, 1);
    fake.inject("CreateSecurityGroup", { kind: "http503" }, 2);
    fake.inject("RunInstances", { kind: "conflict" }, 1);
    fake.inject("DescribeInstances", { kind: "throttle" }, 3);
    const st = await applyInfra(spec(), undefined);
    assert.equal(st.instances.length, 6);
    assert.equal(fake.liveInstances().length, 6);
    assert.equal(fake.vpcs.size, 1);
    assert.equal(fake.sgs.size, 1);
    assert.deepEqual(
      fake.log
        .filter((l) => l.outcome !== "ok")
        .map((l) => `${l.action} ${l.outcome}`)
        .sort(),
      [
        "CreateSecurityGroup ServiceUnavailable",
        "CreateSecurityGroup ServiceUnavailable",
        "CreateVpc InternalError",
        "DescribeInstances Throttling.User",
        "DescribeInstances Throttling.User",
        "DescribeInstances Throttling.User",
        "RunInstances OperationConflict",
      ],
    );
  });

  it("throttling storm: the token bucket keeps calls under the server's rate; without it, back-off survives", async () => {
    await start({ maxCallsPerSecond: 5 });
    const existing = fake.seedNetwork({ vpcCidr: "10.1.0.0/16", vSwitchCidr: "10.1.0.0/24" });
    const network = {
      vpcId: existing.vpcId,
      vSwitchId: existing.vSwitchId,
      securityGroupId: existing.securityGroupId,
    };
    // 120/min = 2/s with a burst of 1: at most 3 calls in any second, under the storm's 5.
    await applyInfra(
      spec({ network, rateLimitPerMinute: 120, nodes: { count: 2, instanceType: "ecs.c7.xlarge" } }),
      undefined,
    );
    assert.equal(fake.log.filter((l) => l.outcome === "Throttling.User").length, 0);
    assert.equal(fake.liveInstances().length, 5);
    // A bucket far above the server's limit: throttled, retried with back-off, still done.
    await fake.stop();
    await start({ maxCallsPerSecond: 3 });
    const ex2 = fake.seedNetwork({ vpcCidr: "10.1.0.0/16", vSwitchCidr: "10.1.0.0/24" });
    const st = await applyInfra(
      spec({
        cluster: "t2",
        network: { vpcId: ex2.vpcId, vSwitchId: ex2.vSwitchId, securityGroupId: ex2.securityGroupId },
        rateLimitPerMinute: 60_000,
        tuning: { ...spec().tuning, pollMinMs: 5, pollMaxMs: 10, retries: 20 },
      }),
      undefined,
    );
    assert.ok(
      fake.log.filter((l) => l.outcome === "Throttling.User").length > 0,
      "expected the storm to throttle some calls",
    );
    assert.equal(st.instances.length, 6);
    assert.equal(fake.liveInstances().length, 6);
  });

  it("scales out and in: new instances appended; newest non-master0 removed first", async () => {
    await start();
    const s1 = await applyInfra(
      spec({
        masters: { count: 1, instanceType: "ecs.g7.large" },
        nodes: { count: 1, instanceType: "ecs.c7.xlarge" },
      }),
      undefined,
    );
    const master0 = s1.instances[0]?.id;
    const s2 = await applyInfra(spec(), s1);
    assert.equal(s2.instances.length, 6);
    assert.equal(s2.instances[0]?.id, master0);
    assert.deepEqual(s2.instances.slice(0, 1), s1.instances.slice(0, 1));
    const tokens = runCalls().map((r) => r.params.ClientToken);
    assert.equal(new Set(tokens).size, 4, "each RunInstances call of a new generation has its own token");
    const masters = s2.instances.filter((i) => i.role === "master").map((i) => i.id);
    const nodes = s2.instances.filter((i) => i.role === "node").map((i) => i.id);
    const s3 = await applyInfra(
      spec({
        masters: { count: 1, instanceType: "ecs.g7.large" },
        nodes: { count: 2, instanceType: "ecs.c7.xlarge" },
      }),
      s2,
    );
    assert.deepEqual(
      s3.instances.map((i) => i.id),
      [masters[0], nodes[0], nodes[1]],
    );
    const deleted = fake.log
      .filter((l) => l.action === "DeleteInstances")
      .flatMap((l) =>
        Object.entries(l.params)
          .filter(([k]) => k.startsWith("InstanceId."))
          .map(([, v]) => v),
      );
    assert.deepEqual(deleted, [masters[2], masters[1], nodes[2]]);
    assert.deepEqual(
      fake
        .liveInstances()
        .map((i) => i.InstanceId)
        .sort(),
      [masters[0], nodes[0], nodes[1]].sort(),
    );
  });

  it("deletes in reverse order, only what it created; NotFound counts as done", async () => {
    await start();
    const st = await applyInfra(spec({ eip: true }), undefined);
    assert.equal(st.instances[0]?.publicIp, st.eip?.ip);
    fake.resetCounts();
    await destroyInfra(spec({ eip: true }), st);
    const mutating = fake.log
      .filter((l) => /^(Delete|Release|Unassociate)/.test(l.action) && l.outcome === "ok")
      .map((l) => l.action);
    assert.deepEqual(mutating, [
      "UnassociateEipAddress",
      "ReleaseEipAddress",
      "DeleteInstances",
      "DeleteSecurityGroup",
      "DeleteVSwitch",
      "DeleteVpc",
    ]);
    assert.equal(
      fake.liveInstances().length + fake.vpcs.size + fake.vswitches.size + fake.sgs.size + fake.eips.size,
      0,
    );
    // Deleting again from the old state: everything is NotFound, which is success.
    await destroyInfra(spec({ eip: true }), { ...st, eip: { ...st.eip!, instanceId: undefined } });
  });

  it("refresh drops an instance deleted out of band, changing nothing; the next apply makes up the count", async () => {
    await start();
    const small = spec({
      masters: { count: 1, instanceType: "ecs.g7.large" },
      nodes: { count: 2, instanceType: "ecs.c7.xlarge" },
    });
    const st = await applyInfra(small, undefined);
    const victim = st.instances.find((i) => i.role === "node")!;
    await deleteOutOfBand(victim.id);
    fake.resetCounts();
    const now = await refreshInfra(small, st);
    assert.deepEqual(
      now.instances.map((i) => i.id),
      st.instances.filter((i) => i.id !== victim.id).map((i) => i.id),
    );
    assert.equal(now.vpcId, st.vpcId);
    assert.deepEqual(
      fake.log.map((l) => l.action),
      ["DescribeInstances"],
      "a refresh only reads",
    );
    assert.ok(logs.some((l) => l.includes(`instance ${victim.id}`) && l.includes("no longer exists")));
    const again = await applyInfra(small, now);
    assert.equal(again.instances.filter((i) => i.role === "node").length, 2);
    assert.equal(fake.liveInstances().length, 3);
  });

  it("the Infra resource: refresh (Read) shows the instance gone; the next up (Diff, Update) makes up the count", async () => {
    await start();
    const inputs = {
      provider: "alicloud",
      name: "t3",
      masters: { count: 1, instanceType: "ecs.g7.large" },
      nodes: { count: 1, instanceType: "ecs.c7.xlarge" },
      alicloud: {
        region: fake.region,
        imageId: "ubuntu_22_04_x64",
        sshCidr: "203.0.113.0/24",
        ecsEndpoint: fake.url,
        vpcEndpoint: fake.url,
        accessKeyId: fake.accessKeyId,
        accessKeySecret: fake.accessKeySecret,
        waitForSsh: false,
      },
      ssh: { password: "Sealer-Test-1" },
    };
    const made = await infraProvider.create(inputs);
    const outs = made.outs as { workerHosts: Array<{ id: string }> };
    const worker = outs.workerHosts[0]!.id;
    await deleteOutOfBand(worker);
    const read = await infraProvider.read(made.id, made.outs);
    assert.equal(read.id, made.id);
    assert.deepEqual((read.props as { workerHosts: unknown[] }).workerHosts, []);
    const d = await infraProvider.diff(made.id, read.props, inputs);
    assert.equal(d.changes, true, "the Infra is short: the next up updates it");
    assert.deepEqual(d.replaces, []);
    const up = await infraProvider.update(made.id, read.props, inputs);
    assert.equal((up.outs as { workerHosts: unknown[] }).workerHosts.length, 1);
    assert.equal(fake.liveInstances().length, 2);
    await infraProvider.delete(made.id, up.outs);
  });

  it("uses an existing VPC, VSwitch and security group as given and leaves them on delete", async () => {
    await start();
    const ex = fake.seedNetwork({ vpcCidr: "10.9.0.0/16", vSwitchCidr: "10.9.8.0/24", zoneId: "cn-test-b" });
    const s = spec({
      network: { vpcId: ex.vpcId, vSwitchId: ex.vSwitchId, securityGroupId: ex.securityGroupId },
      masters: { count: 1, instanceType: "ecs.g7.large" },
      nodes: { count: 2, instanceType: "ecs.g7.large" },
    });
    const st = await applyInfra(s, undefined);
    assert.deepEqual(st.created, { vpc: false, vSwitch: false, securityGroup: false });
    assert.equal(st.zoneId, "cn-test-b");
    for (const a of [
      "CreateVpc",
      "CreateVSwitch",
      "CreateSecurityGroup",
      "AuthorizeSecurityGroup",
      "DescribeZones",
    ])
      assert.equal(fake.calls[a] ?? 0, 0, a);
    for (const i of st.instances) assert.match(i.privateIp, /^10\.9\.8\./);
    for (const i of fake.liveInstances()) assert.equal(i.VSwitchId, ex.vSwitchId);
    await destroyInfra(s, st);
    assert.equal(fake.liveInstances().length, 0);
    assert.ok(
      fake.vpcs.has(ex.vpcId) && fake.vswitches.has(ex.vSwitchId) && fake.sgs.has(ex.securityGroupId),
    );
    assert.equal(fake.calls.DeleteSecurityGroup ?? 0, 0);
  });

  it("quota error on the nodes batch: fails at once, returns the masters as partial state, destroy cleans all", async () => {
    await start({ maxInstances: 4 });
    let last: InfraState | undefined;
    const err = await applyInfra(spec(), undefined, { onState: async (s) => void (last = s) }).then(
      () => assert.fail("expected a quota error"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InfraApplyError);
    assert.match(err.message, /RunInstances: QuotaExceed\.ElasticQuota: .*raise the quota/);
    assert.ok(err.cause instanceof AlicloudApiError && !err.cause.retryable);
    assert.equal(fake.calls.RunInstances, 2, "quota errors are not retried");
    assert.equal(err.state.instances.length + (err.state.pending ?? []).length, 3);
    assert.deepEqual(err.state, last);
    await destroyInfra(spec(), err.state);
    assert.equal(fake.liveInstances().length + fake.vpcs.size + fake.vswitches.size + fake.sgs.size, 0);
  });

  it("rollbackOnFailure deletes what a failed first create made", async () => {
    await start({ maxInstances: 4 });
    await assert.rejects(applyInfra(spec(), undefined, { rollbackOnFailure: true }), InfraApplyError);
    assert.equal(fake.liveInstances().length + fake.vpcs.size + fake.vswitches.size + fake.sgs.size, 0);
  });

  it("adopts instances of a run that died before saving them (no orphans, no duplicates)", async () => {
    await start();
    fake.inject("RunInstances", { kind: "drop" }, 1);
    const s = spec({ tuning: { ...spec().tuning, retries: 0 } });
    const err = await applyInfra(s, undefined).then(
      () => assert.fail("expected failure"),
      (e: unknown) => e as InfraApplyError,
    );
    assert.equal(err.state.instances.length + (err.state.pending ?? []).length, 0);
    assert.equal(fake.liveInstances().length, 3, "the masters were created although the answer was lost");
    const st = await applyInfra(spec(), err.state);
    assert.equal(st.instances.length, 6);
    assert.equal(fake.liveInstances().length, 6);
    assert.ok(logs.some((l) => /adopting it/.test(l)));
  });

  it("the fake answers a reused ClientToken as Alibaba documents: same result, or IdempotentParameterMismatch", async () => {
    await start();
    const client = directClient();
    try {
      const params = { RegionId: fake.region, CidrBlock: "10.0.0.0/16", ClientToken: "tok-1" };
      const a = await client.call<{ VpcId: string }>("vpc", "CreateVpc", params);
      const b = await client.call<{ VpcId: string }>("vpc", "CreateVpc", params);
      assert.equal(b.VpcId, a.VpcId);
      assert.equal(fake.vpcs.size, 1);
      await assert.rejects(
        client.call("vpc", "CreateVpc", { ...params, CidrBlock: "10.1.0.0/16" }),
        (e: unknown) => e instanceof AlicloudApiError && e.code === "IdempotentParameterMismatch",
      );
      // The token outlives the resource: after a delete it still answers with the deleted VPC.
      await client.call("vpc", "DeleteVpc", { RegionId: fake.region, VpcId: a.VpcId });
      const c = await client.call<{ VpcId: string }>("vpc", "CreateVpc", params);
      assert.equal(c.VpcId, a.VpcId);
      assert.equal(fake.vpcs.size, 0);
    } finally {
      client.close();
    }
  });

  it("a second deployment under the same cluster name in its own network is never adopted or deleted", async () => {
    await start();
    const other = await applyInfra(
      spec({
        masters: { count: 1, instanceType: "ecs.g7.large" },
        nodes: { count: 1, instanceType: "ecs.c7.xlarge" },
      }),
      undefined,
    );
    const otherIds = other.instances.map((i) => i.id).sort();
    const s = spec({
      masters: { count: 1, instanceType: "ecs.g7.large" },
      nodes: { count: 0, instanceType: "ecs.c7.xlarge" },
    });
    logs.length = 0;
    const mine = await applyInfra(s, undefined);
    assert.ok(mine.deploymentId && other.deploymentId && mine.deploymentId !== other.deploymentId);
    assert.notEqual(mine.vpcId, other.vpcId);
    assert.equal(mine.instances.length, 1, "only its own master: the other deployment's 2 are not adopted");
    assert.ok(!otherIds.includes(mine.instances[0]?.id ?? ""));
    assert.ok(!logs.some((l) => /adopting it/.test(l)));
    // Every instance carries its deployment's ID as a tag.
    for (const i of fake.liveInstances()) {
      const tag = i.tags.find((t) => t.TagKey === TAG_DEPLOYMENT)?.TagValue;
      assert.equal(tag, otherIds.includes(i.InstanceId) ? other.deploymentId : mine.deploymentId);
    }
    await destroyInfra(s, mine);
    assert.deepEqual(
      fake
        .liveInstances()
        .map((i) => i.InstanceId)
        .sort(),
      otherIds,
      "deleting one deployment leaves the other's instances",
    );
    assert.ok(fake.vpcs.has(other.vpcId ?? "") && !fake.vpcs.has(mine.vpcId ?? ""));
  });

  it("an instance in the deployment's own network without its deployment tag is neither adopted nor deleted", async () => {
    await start();
    const s = spec({ masters: { count: 1, instanceType: "ecs.g7.large" }, nodes: { count: 0 } });
    const mine = await applyInfra(s, undefined);
    // Someone else's deployment of the same cluster name placed into our VPC, VSwitch and group.
    const intruder = await applyInfra(
      spec({
        masters: { count: 1, instanceType: "ecs.g7.large" },
        nodes: { count: 1, instanceType: "ecs.c7.xlarge" },
        network: { vpcId: mine.vpcId, vSwitchId: mine.vSwitchId, securityGroupId: mine.securityGroupId },
      }),
      undefined,
    );
    logs.length = 0;
    const again = await applyInfra(s, mine);
    assert.deepEqual(again.instances, mine.instances);
    assert.ok(!logs.some((l) => /adopting it/.test(l)));
    // Delete fails only because the intruders still use the network; it never deletes them.
    const err = await destroyInfra(s, again).then(
      () => assert.fail("the VSwitch is still in use by the other deployment"),
      (e: unknown) => e as InfraApplyError,
    );
    assert.match(err.message, /DependencyViolation|still|in use/i);
    const live = fake.liveInstances().map((i) => i.InstanceId);
    for (const i of intruder.instances) assert.ok(live.includes(i.id), `${i.id} was deleted`);
    assert.ok(!live.includes(mine.instances[0]?.id ?? ""));
  });

  it("create, delete, create again under the same name: new tokens, a new network, no stale answers", async () => {
    await start();
    const s = spec({
      masters: { count: 1, instanceType: "ecs.g7.large" },
      nodes: { count: 1, instanceType: "ecs.c7.xlarge" },
      tuning: { ...spec().tuning, pollTimeoutMs: 3000 },
    });
    const first = await applyInfra(s, undefined);
    await destroyInfra(s, first);
    const tokensBefore = new Set(fake.log.map((l) => l.params.ClientToken).filter(Boolean));
    fake.log.length = 0;
    const second = await applyInfra(s, undefined);
    assert.notEqual(second.vpcId, first.vpcId);
    assert.equal(second.instances.length, 2);
    for (const i of second.instances) assert.ok(!first.instances.some((f) => f.id === i.id));
    const reused = fake.log.map((l) => l.params.ClientToken).filter((t) => t && tokensBefore.has(t));
    assert.deepEqual(reused, [], "no ClientToken of the deleted deployment is sent again");
    assert.equal(fake.liveInstances().length, 2);
  });

  it("bad AccessKey ID: clear error, one call, no retry", async () => {
    await start();
    const err = await applyInfra(
      spec({ credentials: { accessKeyId: "LTAI-wrong", accessKeySecret: fake.accessKeySecret } }),
      undefined,
    ).catch((e: unknown) => e as InfraApplyError);
    assert.ok(err instanceof InfraApplyError);
    assert.match(
      err.message,
      /CreateVpc: InvalidAccessKeyId\.NotFound: Specified access key is not found\. \(RequestId [0-9A-F-]+\) — check ALIBABA_CLOUD_ACCESS_KEY_ID/,
    );
    assert.equal((err.cause as AlicloudApiError).httpStatus, 404);
    assert.equal(fake.total(), 1);
  });

  it("wrong secret: SignatureDoesNotMatch, one call, no retry; the secret never reaches the log", async () => {
    await start();
    const secret = "not-the-secret-XYZ123";
    const err = await applyInfra(
      spec({ credentials: { accessKeyId: fake.accessKeyId, accessKeySecret: secret } }),
      undefined,
    ).catch((e: unknown) => e as InfraApplyError);
    assert.ok(err instanceof InfraApplyError);
    assert.match(err.message, /SignatureDoesNotMatch: [\s\S]* — check ALIBABA_CLOUD_ACCESS_KEY_SECRET/);
    assert.equal(fake.total(), 1);
    assert.ok(!logs.some((l) => l.includes(secret)));
  });

  it("V1 (HMAC-SHA1) signing works against the fake's independent verifier too", async () => {
    await start();
    const st = await applyInfra(
      spec({
        masters: { count: 1, instanceType: "ecs.g7.large" },
        nodes: { count: 1, instanceType: "ecs.g7.large" },
        tuning: { ...spec().tuning, signatureVersion: "v1" },
      }),
      undefined,
    );
    assert.equal(st.instances.length, 2);
  });

  it("cpu/memory: picks candidates from DescribeAvailableResource/DescribeInstanceTypes and falls back when one is out of stock", async () => {
    await start({ noStockAtRun: ["ecs.g7.large"] });
    // No type has exactly 2 vCPU / 6 GiB: ranked larger types are 2/8 g7 (sold out at run time), then 2/16 r7.
    const st = await applyInfra(
      spec({ masters: { count: 1, cpu: 2, memoryGiB: 6 }, nodes: { count: 2, cpu: 4, memoryGiB: 8 } }),
      undefined,
    );
    assert.deepEqual(
      st.instances.map((i) => i.instanceType),
      ["ecs.r7.large", "ecs.c7.xlarge", "ecs.c7.xlarge"],
    );
    assert.deepEqual(
      runCalls().map((r) => `${r.params.InstanceType} ${r.outcome}`),
      ["ecs.g7.large OperationDenied.NoStock", "ecs.r7.large ok", "ecs.c7.xlarge ok"],
    );
  });

  it("refuses to open ssh to the world unless asked, and refuses plain HTTP to a non-loopback endpoint", async () => {
    await start();
    await assert.rejects(applyInfra(spec({ network: {} }), undefined), /network\.sshCidr: required/);
    await assert.rejects(
      applyInfra(spec({ endpoint: { ecs: "http://ecs.example.com", vpc: fake.url } }), undefined),
      /plain HTTP is only allowed for loopback/,
    );
    assert.equal(fake.total(), 0);
  });

  it("waits for SSH on every instance (loopback listeners standing in for sshd)", async () => {
    await start();
    const ex = fake.seedNetwork({ vpcCidr: "127.0.0.0/8", vSwitchCidr: "127.77.0.0/24" });
    const port = await freePort();
    const servers: net.Server[] = [];
    // The listeners come up only after the instances are Running, so the first probes fail.
    const opened = new Promise<void>((resolve) =>
      setTimeout(async () => {
        for (let h = 1; h <= 3; h++) {
          const srv = net.createServer((c) => {
            c.on("error", () => undefined); // the prober closes at once
            c.end("SSH-2.0-fake\r\n");
          });
          await new Promise<void>((r) => srv.listen(port, `127.77.0.${h}`, () => r()));
          servers.push(srv);
        }
        resolve();
      }, 700),
    );
    try {
      const st = await applyInfra(
        spec({
          network: { vpcId: ex.vpcId, vSwitchId: ex.vSwitchId, securityGroupId: ex.securityGroupId },
          masters: { count: 1, instanceType: "ecs.g7.large" },
          nodes: { count: 2, instanceType: "ecs.g7.large" },
          tuning: { ...spec().tuning, sshTimeoutMs: 20_000 },
        }),
        undefined,
        {
          waitForSsh: true,
          sshPort: port,
        },
      );
      assert.deepEqual(st.instances.map((i) => i.privateIp).sort(), [
        "127.77.0.1",
        "127.77.0.2",
        "127.77.0.3",
      ]);
      await opened;
    } finally {
      for (const s of servers) s.close();
    }
  });

  it("waitForTcp gives up after its deadline with the address in the message", async () => {
    const port = await freePort();
    await assert.rejects(
      waitForTcp("127.0.0.1", port, { timeoutMs: 600, minBackoffMs: 50, maxBackoffMs: 100 }),
      new RegExp(`127\\.0\\.0\\.1:${port} did not accept connections within 600 ms`),
    );
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

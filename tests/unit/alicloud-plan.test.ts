import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../provider/core/errors";
import { resolveEndpoint } from "../../provider/core/infra/alicloud/client";
import { resolveCredentials } from "../../provider/core/infra/alicloud/credentials";
import { AlicloudApiError, isNotFound, isRetryableCode } from "../../provider/core/infra/alicloud/errors";
import {
  chunks,
  clientToken,
  deficit,
  isEcsPassword,
  ownedByDeployment,
  rankInstanceTypes,
  type InstanceOwnership,
  surplus,
  validateSpec,
  vSwitchCidr,
} from "../../provider/core/infra/alicloud/plan";
import { TokenBucket } from "../../provider/core/infra/alicloud/token-bucket";
import type { AlicloudInfraSpec, InfraState, InstanceRecord } from "../../provider/core/infra/alicloud/types";

const rec = (id: string, role: "master" | "node"): InstanceRecord => ({
  id,
  role,
  privateIp: "10.0.0." + id.slice(2),
  createdAt: "2024-01-01T00:00Z",
  clientToken: "t",
});
const state = (ids: Array<[string, "master" | "node"]>): InfraState => ({
  created: { vpc: true, vSwitch: true, securityGroup: true },
  instances: ids.map(([i, r]) => rec(i, r)),
});

describe("alicloud plan", () => {
  it("client tokens are deterministic, distinct per input, ≤ 64 ASCII chars", () => {
    const a = clientToken("d1", "master:ecs.g7.large", 0, 0);
    assert.equal(a, clientToken("d1", "master:ecs.g7.large", 0, 0));
    const others = [
      clientToken("d2", "master:ecs.g7.large", 0, 0),
      clientToken("d1", "node:ecs.g7.large", 0, 0),
      clientToken("d1", "master:ecs.g7.large", 1, 0),
      clientToken("d1", "master:ecs.g7.large", 0, 1),
    ];
    for (const o of others) assert.notEqual(o, a);
    assert.ok(a.length <= 64 && /^[\x20-\x7e]+$/.test(a));
  });

  describe("ownedByDeployment", () => {
    const st: InfraState = { ...state([]), deploymentId: "d1", vpcId: "vpc-1", vSwitchId: "vsw-1" };
    const mine: InstanceOwnership = {
      vpcId: "vpc-1",
      vSwitchId: "vsw-1",
      tags: { "sealer-cluster": "c1", "sealer-deployment": "d1" },
    };
    const cases: Array<[string, InfraState, InstanceOwnership, boolean]> = [
      ["this deployment's instance in its network", st, mine, true],
      [
        "another deployment of the same cluster name",
        st,
        { ...mine, tags: { ...mine.tags, "sealer-deployment": "d2" } },
        false,
      ],
      ["an instance without the deployment tag", st, { ...mine, tags: { "sealer-cluster": "c1" } }, false],
      ["the same tags in another VPC", st, { ...mine, vpcId: "vpc-2" }, false],
      ["the same tags in another VSwitch", st, { ...mine, vSwitchId: "vsw-2" }, false],
      ["another cluster's tag", st, { ...mine, tags: { ...mine.tags, "sealer-cluster": "c2" } }, false],
      ["a state without a deployment ID adopts nothing", { ...st, deploymentId: undefined }, mine, false],
      ["a state without a network adopts nothing", { ...st, vSwitchId: undefined }, mine, false],
    ];
    for (const [name, s, i, want] of cases) it(name, () => assert.equal(ownedByDeployment(s, "c1", i), want));
  });

  const chunkCases: Array<[number, number, number[]]> = [
    [0, 100, []],
    [3, 100, [3]],
    [100, 100, [100]],
    [250, 100, [100, 100, 50]],
    [5, 2, [2, 2, 1]],
  ];
  for (const [n, size, want] of chunkCases)
    it(`chunks(${n}, ${size}) = ${JSON.stringify(want)}`, () => assert.deepEqual(chunks(n, size), want));

  const surplusCases: Array<
    [string, Array<[string, "master" | "node"]>, { master: number; node: number }, string[]]
  > = [
    [
      "nothing to remove",
      [
        ["i-1", "master"],
        ["i-2", "node"],
      ],
      { master: 1, node: 1 },
      [],
    ],
    [
      "newest nodes first",
      [
        ["i-1", "master"],
        ["i-2", "node"],
        ["i-3", "node"],
        ["i-4", "node"],
      ],
      { master: 1, node: 1 },
      ["i-4", "i-3"],
    ],
    [
      "newest masters first, never master0",
      [
        ["i-1", "master"],
        ["i-2", "master"],
        ["i-3", "master"],
      ],
      { master: 1, node: 0 },
      ["i-3", "i-2"],
    ],
    [
      "master0 kept even at count 0",
      [
        ["i-1", "master"],
        ["i-2", "master"],
      ],
      { master: 0, node: 0 },
      ["i-2"],
    ],
    [
      "both roles",
      [
        ["i-1", "master"],
        ["i-2", "master"],
        ["i-5", "node"],
        ["i-6", "node"],
      ],
      { master: 1, node: 0 },
      ["i-2", "i-6", "i-5"],
    ],
  ];
  for (const [name, ids, counts, want] of surplusCases)
    it(`surplus: ${name}`, () =>
      assert.deepEqual(
        surplus(state(ids), counts).map((i) => i.id),
        want,
      ));

  it("deficit counts pending instances as present", () => {
    const s = state([["i-1", "master"]]);
    s.pending = [{ id: "i-2", role: "node", clientToken: "t" }];
    assert.deepEqual(deficit(s, { master: 3, node: 3 }), { master: 2, node: 2 });
    assert.deepEqual(deficit(s, { master: 1, node: 0 }), { master: 0, node: 0 });
  });

  it("ranks instance types: fewest vCPUs, then memory, then name; too small ones dropped", () => {
    const types = [
      { id: "ecs.g7.xlarge", cpu: 4, memoryGiB: 16 },
      { id: "ecs.c7.large", cpu: 2, memoryGiB: 4 },
      { id: "ecs.g7.large", cpu: 2, memoryGiB: 8 },
      { id: "ecs.g6.large", cpu: 2, memoryGiB: 8 },
      { id: "ecs.t5.small", cpu: 1, memoryGiB: 8 },
    ];
    assert.deepEqual(rankInstanceTypes(types, { cpu: 2, memoryGiB: 6 }), [
      "ecs.g6.large",
      "ecs.g7.large",
      "ecs.g7.xlarge",
    ]);
  });

  it("VSwitch CIDR is the first /20 of a larger VPC block", () => {
    assert.equal(vSwitchCidr("172.16.0.0/12"), "172.16.0.0/20");
    assert.equal(vSwitchCidr("192.168.0.0/24"), "192.168.0.0/24");
  });

  it("ECS password rule", () => {
    assert.equal(isEcsPassword("Passw0rd!"), true);
    assert.equal(isEcsPassword("password1"), false);
    assert.equal(isEcsPassword("Pa1!"), false);
  });

  const base: AlicloudInfraSpec = {
    cluster: "demo",
    region: "cn-hangzhou",
    imageId: "img",
    password: "Passw0rd!",
    network: { sshCidr: "203.0.113.0/24" },
    masters: { count: 1, instanceType: "ecs.g7.large" },
    nodes: { count: 0 },
  };
  it("accepts a valid spec", () => validateSpec(base));
  it("reports every problem at once", () => {
    const bad: AlicloudInfraSpec = {
      ...base,
      cluster: "Demo_1",
      imageId: "",
      password: undefined,
      network: { cidr: "10.0.0.0/33", vSwitchId: "vsw-1" },
      masters: { count: 0 },
      nodes: { count: 2 },
      batchSize: 101,
    };
    assert.throws(
      () => validateSpec(bad),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.deepEqual(e.problems, [
          "cluster: \"Demo_1\" must be lower-case letters, digits and '-' (it names and tags every resource)",
          "imageId: required (an ECS image ID in this region)",
          "nodes: give instanceType, or cpu and memoryGiB so a type can be chosen",
          "masters.count: at least one master is needed",
          "give keyPairName or password so the instances can be logged into",
          "network.vSwitchId: give network.vpcId with it",
          'network.cidr: "10.0.0.0/33" is not a CIDR block',
          "network.sshCidr: required when the security group is created — the CIDR allowed to reach ports 22 and 6443 (e.g. 203.0.113.0/24); write 0.0.0.0/0 explicitly to open them to the internet",
          "batchSize: must be 1..100",
        ]);
        return true;
      },
    );
  });
});

describe("alicloud errors", () => {
  const cases: Array<[string, string, boolean]> = [
    ["Throttling.User", "RunInstances", true],
    ["Throttling", "DescribeInstances", true],
    ["ServiceUnavailable", "RunInstances", true],
    ["SystemBusy", "RunInstances", true],
    ["OperationConflict", "RunInstances", true],
    ["LastTokenProcessing", "RunInstances", true],
    ["IncorrectInstanceStatus", "DeleteInstances", true],
    ["IncorrectStatus.Instance", "AssociateEipAddress", true],
    ["TaskConflict", "DeleteVpc", true],
    ["DependencyViolation", "DeleteSecurityGroup", true],
    ["DependencyViolation.VSwitch", "DeleteVpc", true],
    ["DependencyViolation", "CreateVSwitch", false],
    ["QuotaExceed.ElasticQuota", "RunInstances", false],
    ["InvalidAccessKeyId.NotFound", "DescribeZones", false],
    ["SignatureDoesNotMatch", "DescribeZones", false],
    ["InvalidParameter", "RunInstances", false],
  ];
  for (const [code, action, want] of cases)
    it(`${code} on ${action} retryable=${want}`, () => assert.equal(isRetryableCode(code, action), want));
  it("5xx without a known code is retryable", () =>
    assert.equal(isRetryableCode("Whatever", "X", 502), true));

  it("messages carry code, message, request id and what to do", () => {
    const e = new AlicloudApiError({
      action: "DescribeZones",
      code: "InvalidAccessKeyId.NotFound",
      message: "Specified access key is not found.",
      requestId: "R-1",
      httpStatus: 404,
    });
    assert.equal(
      e.message,
      "DescribeZones: InvalidAccessKeyId.NotFound: Specified access key is not found. (RequestId R-1) — check ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET (or the aliyun profile) and that the key is active",
    );
    assert.equal(e.retryable, false);
    const q = new AlicloudApiError({
      action: "RunInstances",
      code: "QuotaExceed.ElasticQuota",
      message: "quota",
      httpStatus: 403,
    });
    assert.match(q.message, /raise the quota/);
  });

  it("NotFound detection", () => {
    assert.equal(
      isNotFound(new AlicloudApiError({ action: "DeleteVpc", code: "InvalidVpcId.NotFound", message: "" })),
      true,
    );
    assert.equal(
      isNotFound(new AlicloudApiError({ action: "DeleteVpc", code: "DependencyViolation", message: "" })),
      false,
    );
    assert.equal(isNotFound(new Error("x")), false);
  });
});

describe("alicloud token bucket", () => {
  it("spaces takes at the configured rate after the burst", async () => {
    let now = 0;
    const slept: number[] = [];
    const b = new TokenBucket(
      60,
      2,
      () => now,
      async (ms) => {
        slept.push(ms);
        now += ms;
      },
    );
    for (let i = 0; i < 5; i++) await b.take();
    // 2 from the burst, then one per second.
    assert.deepEqual(slept, [1000, 1000, 1000]);
    assert.equal(now, 3000);
  });
  it("drain makes the next take wait", async () => {
    let now = 0;
    const b = new TokenBucket(
      600,
      5,
      () => now,
      async (ms) => void (now += ms),
    );
    b.drain();
    await b.take();
    assert.equal(now, 100);
  });
  it("refuses a non-positive rate", () => assert.throws(() => new TokenBucket(0), /must be > 0/));
});

describe("alicloud endpoint and credentials", () => {
  it("defaults to the regional HTTPS endpoint", () =>
    assert.equal(
      resolveEndpoint("ecs", "cn-hangzhou", undefined).href,
      "https://ecs.cn-hangzhou.aliyuncs.com/",
    ));
  it("allows plain HTTP on loopback only", () => {
    assert.equal(resolveEndpoint("vpc", "x", "http://127.0.0.1:8080").host, "127.0.0.1:8080");
    assert.throws(
      () => resolveEndpoint("vpc", "x", "http://vpc.example.com"),
      /plain HTTP is only allowed for loopback/,
    );
  });
  it("reads the environment in documented order", () => {
    assert.deepEqual(
      resolveCredentials(
        undefined,
        {
          ALICLOUD_ACCESS_KEY: "a",
          ALICLOUD_SECRET_KEY: "bbbb",
          ALIBABA_CLOUD_ACCESS_KEY_ID: "c",
          ALIBABA_CLOUD_ACCESS_KEY_SECRET: "dddd",
        },
        "/nonexistent",
      ),
      { accessKeyId: "c", accessKeySecret: "dddd" },
    );
    assert.deepEqual(
      resolveCredentials(
        undefined,
        { ALICLOUD_ACCESS_KEY: "a", ALICLOUD_SECRET_KEY: "bbbb" },
        "/nonexistent",
      ),
      { accessKeyId: "a", accessKeySecret: "bbbb" },
    );
  });
  it("reads the aliyun CLI profile", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "alicloud-cred-"));
    try {
      fs.mkdirSync(path.join(home, ".aliyun"));
      fs.writeFileSync(
        path.join(home, ".aliyun", "config.json"),
        JSON.stringify({
          current: "p2",
          profiles: [
            { name: "default", mode: "AK", access_key_id: "x", access_key_secret: "yyyy" },
            { name: "p2", mode: "AK", access_key_id: "id2", access_key_secret: "sec2" },
          ],
        }),
      );
      assert.deepEqual(resolveCredentials(undefined, {}, home), {
        accessKeyId: "id2",
        accessKeySecret: "sec2",
      });
      assert.deepEqual(resolveCredentials(undefined, { ALIBABA_CLOUD_PROFILE: "default" }, home), {
        accessKeyId: "x",
        accessKeySecret: "yyyy",
      });
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
  it("says what to set when nothing is found", () =>
    assert.throws(
      () => resolveCredentials(undefined, {}, "/nonexistent"),
      /set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET/,
    ));
});

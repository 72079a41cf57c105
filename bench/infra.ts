/**
 * Infra benchmark: 6 instances (3 masters + 3 nodes) against the local fake Alibaba Cloud API with
 * a boot delay (Pending -> Starting -> Running) of BENCH_BOOT_MS (default 4000 ms; real ECS
 * instances take roughly 20-60 s, scaled down so the run stays short — every figure is also
 * printed relative to the delay). Same signer, client, network and fake for everyone:
 *
 *  - ours: applyInfra — one RunInstances per role (Amount=3), all pending IDs polled together
 *    with exponential back-off and jitter (default tuning, as in production);
 *  - peer A, "resource per instance, one at a time": for each instance RunInstances Amount=1, then
 *    DescribeInstances on that one ID every second until Running (how a per-resource tool behaves
 *    with parallelism 1);
 *  - peer B, the same per-instance create-and-poll loops run concurrently (a per-resource tool
 *    with parallelism ≥ 6, e.g. Terraform's default 10).
 *
 * Run: npm run build && node dist/bench/infra.js   (BENCH_BOOT_MS=8000 for a slower boot)
 */
import { AlicloudClient } from "../provider/core/infra/alicloud/client";
import { applyInfra } from "../provider/core/infra/alicloud/provisioner";
import { setLogSink } from "../provider/core/log";
import { FakeAlicloud } from "../tests/harness/fake-alicloud";

const BOOT = Number(process.env.BENCH_BOOT_MS ?? 4000);
const N_MASTERS = 3;
const N_NODES = 3;

interface Result {
  name: string;
  ms: number;
  calls: number;
}

async function withFake<T>(
  fn: (fake: FakeAlicloud, net: ReturnType<FakeAlicloud["seedNetwork"]>) => Promise<T>,
): Promise<T> {
  const fake = new FakeAlicloud({ bootDelayMs: BOOT });
  await fake.start();
  try {
    return await fn(fake, fake.seedNetwork({ vpcCidr: "172.16.0.0/16", vSwitchCidr: "172.16.0.0/20" }));
  } finally {
    await fake.stop();
  }
}

async function ours(): Promise<Result> {
  return withFake(async (fake, net) => {
    const t0 = performance.now();
    const st = await applyInfra(
      {
        cluster: "bench",
        region: fake.region,
        endpoint: { ecs: fake.url, vpc: fake.url },
        credentials: { accessKeyId: fake.accessKeyId, accessKeySecret: fake.accessKeySecret },
        network: { vpcId: net.vpcId, vSwitchId: net.vSwitchId, securityGroupId: net.securityGroupId },
        masters: { count: N_MASTERS, instanceType: "ecs.g7.large" },
        nodes: { count: N_NODES, instanceType: "ecs.g7.large" },
        imageId: "ubuntu_22_04",
        password: "Bench-Passw0rd",
      },
      undefined,
    );
    const ms = performance.now() - t0;
    if (st.instances.length !== N_MASTERS + N_NODES) throw new Error("ours: wrong instance count");
    // Counted by the fake, as for the peers: every request that reached the API, failed ones included.
    return { name: "ours (batched RunInstances + back-off polling)", ms, calls: fake.total() };
  });
}

async function perInstance(concurrent: boolean): Promise<Result> {
  return withFake(async (fake, net) => {
    const client = new AlicloudClient({
      region: fake.region,
      credentials: { accessKeyId: fake.accessKeyId, accessKeySecret: fake.accessKeySecret },
      endpoint: { ecs: fake.url, vpc: fake.url },
    });
    const one = async (k: number) => {
      const r = await client.call<{ InstanceIdSets: { InstanceIdSet: string[] } }>("ecs", "RunInstances", {
        RegionId: fake.region,
        ImageId: "ubuntu_22_04",
        InstanceType: "ecs.g7.large",
        SecurityGroupId: net.securityGroupId,
        VSwitchId: net.vSwitchId,
        Password: "Bench-Passw0rd",
        Amount: 1,
        ClientToken: `peer-${concurrent}-${k}`,
      });
      const id = r.InstanceIdSets.InstanceIdSet[0] ?? "";
      for (;;) {
        await new Promise((res) => setTimeout(res, 1000));
        const d = await client.call<{ Instances: { Instance: Array<{ Status: string }> } }>(
          "ecs",
          "DescribeInstances",
          { RegionId: fake.region, InstanceIds: JSON.stringify([id]) },
        );
        if (d.Instances.Instance[0]?.Status === "Running") return;
      }
    };
    const t0 = performance.now();
    const ks = Array.from({ length: N_MASTERS + N_NODES }, (_, k) => k);
    if (concurrent) await Promise.all(ks.map(one));
    else for (const k of ks) await one(k);
    const ms = performance.now() - t0;
    client.close();
    return {
      name: concurrent
        ? "peer B: per-instance create+poll, concurrent"
        : "peer A: per-instance create+poll, one at a time",
      ms,
      calls: fake.total(),
    };
  });
}

async function main(): Promise<void> {
  setLogSink({ write: () => undefined });
  console.log(`6 instances (${N_MASTERS} masters + ${N_NODES} nodes), fake boot delay ${BOOT} ms`);
  const results = [await ours(), await perInstance(false), await perInstance(true)];
  const base = results[0]!;
  console.log(
    [
      "variant".padEnd(52),
      "wall s".padStart(8),
      "× boot".padStart(8),
      "API calls".padStart(10),
      "time ratio".padStart(11),
      "call ratio".padStart(11),
    ].join(""),
  );
  for (const r of results)
    console.log(
      [
        r.name.padEnd(52),
        (r.ms / 1000).toFixed(2).padStart(8),
        (r.ms / BOOT).toFixed(2).padStart(8),
        String(r.calls).padStart(10),
        (r.ms / base.ms).toFixed(2).padStart(11),
        (r.calls / base.calls).toFixed(2).padStart(11),
      ].join(""),
    );
  console.log("ratios are peer / ours (higher = ours better)");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

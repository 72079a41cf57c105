/**
 * The example Pulumi programs run under pulumi.runtime.setMocks: every resource registers with
 * the expected type, the values flow between resources (Infra hosts -> Cluster, ClusterImage
 * reference/digest -> Cluster, alicloud network IDs -> Infra, master0 -> the smoke check), and
 * each sealer resource carries its serialized provider and provider-code version.
 */
import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

const SEALER = "pulumi-nodejs:dynamic/sealer:";
const SIG = "4dabf18193072939515e22adb298388d";
const SECRET = "1b47061264138c4ac30d75fd1eb44270";

/** Outputs a mocked engine would hand back for each resource type. */
function mockState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case `${SEALER}ClusterImage`:
      return {
        ...inputs,
        reference: `docker.io/library/${String(inputs.tag)}`,
        digest: `sha256:${"a".repeat(64)}`,
        layers: [`sha256:${"b".repeat(64)}`],
        pushed: false,
      };
    case `${SEALER}Infra`: {
      const m = (inputs.masters as { count: number }).count;
      const n = ((inputs.nodes as { count: number } | undefined)?.count ?? 0) as number;
      const host = (i: number, role: string) => ({
        id: `${name}-${i}`,
        privateIp: `10.0.0.${i + 2}`,
        publicIp: i === 0 ? "198.51.100.7" : undefined,
        role,
      });
      return {
        ...inputs,
        masterHosts: Array.from({ length: m }, (_, i) => host(i, "master")),
        workerHosts: Array.from({ length: n }, (_, i) => host(m + i, "node")),
        sshUser: "root",
        sshPrivateKey: "KEY",
      };
    }
    case `${SEALER}Cluster`:
      return { ...inputs, clusterName: inputs.name, applied: { version: 1 }, steps: [], pending: [] };
    case "command:remote:Command":
      return { ...inputs, stdout: "NAME STATUS" };
    default:
      return inputs;
  }
}

async function runExample(modulePath: string, config: Record<string, string>): Promise<Registered[]> {
  const registered: Registered[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
        return {
          id: `${args.name}-id`,
          state: mockState(args.type, args.name, args.inputs as Record<string, unknown>),
        };
      },
      call() {
        return {};
      },
    },
    "sealer-examples",
    "test",
    false,
  );
  pulumi.runtime.setAllConfig(
    Object.fromEntries(
      Object.entries(config).map(([k, v]) => [k.includes(":") ? k : `sealer-examples:${k}`, v]),
    ),
  );
  // A fresh run of the program even when another test file already loaded it (require caches modules).
  delete require.cache[require.resolve(modulePath)];
  require(modulePath);
  // Registrations resolve asynchronously: wait until no new resource shows up for a while.
  let last = -1;
  for (let quiet = 0; quiet < 5;) {
    await new Promise((r) => setTimeout(r, 40));
    quiet = registered.length === last ? quiet + 1 : 0;
    last = registered.length;
  }
  return registered;
}

const byType = (rs: Registered[], type: string) => rs.filter((r) => r.type === type);

function assertSealerProps(r: Registered): void {
  assert.equal(typeof r.inputs.__provider, "string", `${r.name}: no serialized provider`);
  assert.match(r.inputs.providerVersion as string, /^\d+\.\d+\.\d+\+[0-9a-f]{12}$/);
}

describe("provider: example programs under setMocks", function () {
  this.timeout(60_000);

  it("examples/local: two images, local infra, a cluster fed by both", async () => {
    const rs = await runExample("../../examples/local", { workers: "2" });
    const images = byType(rs, `${SEALER}ClusterImage`);
    assert.deepEqual(images.map((r) => r.name).sort(), ["app", "sandbox-base"]);
    const [infra] = byType(rs, `${SEALER}Infra`);
    assert.equal(infra?.inputs.provider, "local");
    assert.deepEqual(infra?.inputs.nodes, { count: 2 });
    const [cluster] = byType(rs, `${SEALER}Cluster`);
    assert.ok(cluster);
    assert.equal(cluster.inputs.image, "docker.io/library/sandbox-app:1");
    assert.equal(cluster.inputs.imageDigest, `sha256:${"a".repeat(64)}`);
    assert.deepEqual(cluster.inputs.masters, ["10.0.0.2"]);
    assert.deepEqual(cluster.inputs.workers, ["10.0.0.3", "10.0.0.4"]);
    // The login holds a key: the SDK sends it as a secret even though the program passed it plain.
    assert.deepEqual(cluster.inputs.ssh, { [SIG]: SECRET, value: { user: "root", privateKey: "KEY" } });
    for (const r of [...images, infra!, cluster]) assertSealerProps(r);
  });

  it("examples/alicloud-ha: alicloud network IDs feed Infra (3 masters, N workers); the smoke check targets master0", async () => {
    const rs = await runExample("../../examples/alicloud-ha", {
      "alicloud:region": "cn-hangzhou",
      zone: "cn-hangzhou-h",
      adminCidr: "203.0.113.0/24",
      imageId: "ubuntu_22_04_x64",
      rootPassword: "Secret-1",
      workers: "4",
    });
    assert.equal(byType(rs, "alicloud:vpc/network:Network").length, 1);
    assert.equal(byType(rs, "alicloud:ecs/securityGroupRule:SecurityGroupRule").length, 3);
    const [infra] = byType(rs, `${SEALER}Infra`);
    assert.ok(infra);
    // It holds the access key secret: sent as a secret as a whole.
    const aliInput = infra.inputs.alicloud as { [SIG]: string; value: Record<string, unknown> };
    assert.equal(aliInput[SIG], SECRET);
    const ali = aliInput.value;
    assert.equal(ali.vpcId, "vpc-id");
    assert.equal(ali.vswitchId, "vswitch-id");
    assert.equal(ali.securityGroupId, "sg-id");
    assert.deepEqual(infra.inputs.masters, { count: 3, instanceType: "ecs.g7.xlarge", systemDiskGiB: 60 });
    assert.equal((infra.inputs.nodes as { count: number }).count, 4);
    const [cluster] = byType(rs, `${SEALER}Cluster`);
    assert.deepEqual(cluster?.inputs.masters, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    assert.equal((cluster?.inputs.workers as string[]).length, 4);
    const [smoke] = byType(rs, "command:remote:Command");
    // The connection holds the root password: it travels as a secret.
    const conn = smoke?.inputs.connection as { [SIG]: string; value: { host: string; user: string } };
    assert.equal(conn[SIG], SECRET);
    assert.equal(conn.value.host, "198.51.100.7");
    assert.equal(conn.value.user, "root");
    assertSealerProps(infra);
    assertSealerProps(cluster!);
  });

  it("examples/app-on-existing: an app-only image onto the configured hosts", async () => {
    const rs = await runExample("../../examples/app-on-existing", {
      clusterName: "prod",
      masters: JSON.stringify(["10.1.0.2"]),
      workers: JSON.stringify(["10.1.0.3"]),
      sshKey: "KEY",
    });
    const [image] = byType(rs, `${SEALER}ClusterImage`);
    assert.match(image?.inputs.context as string, /examples\/app-on-existing\/app$/);
    const [cluster] = byType(rs, `${SEALER}Cluster`);
    assert.equal(cluster?.inputs.name, "prod");
    assert.deepEqual(cluster?.inputs.masters, ["10.1.0.2"]);
    assert.deepEqual(cluster?.inputs.workers, ["10.1.0.3"]);
    assertSealerProps(cluster!);
  });
});

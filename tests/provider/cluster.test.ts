/**
 * The Cluster dynamic provider called directly, for what needs no nodes: preview with unknown
 * inputs, identity changes (replace), input validation, Clusterfile + typed input merging.
 * (Create/update/delete on real nodes: tests/host/cluster.test.ts.)
 */
import { strict as assert } from "node:assert";
import { UNKNOWN } from "../../provider/resources/common";
import { clusterfileText, provider, specOf } from "../../provider/resources/cluster";

const CLUSTERFILE = `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: prod
spec:
  image: my-app:1
  ssh:
    user: root
  hosts:
    - ips: [10.0.0.2]
      roles: [master]
      labels: { zone: a }
    - ips: [10.0.0.3]
      roles: [node]
      taints: ["dedicated=db:NoSchedule"]
---
apiVersion: sealer.io/v2
kind: Plugin
metadata:
  name: hello
spec:
  type: SHELL
  action: post-install
  data: echo hello
`;

/** Old outputs as a create would leave them (only what diff reads before planning). */
function oldOutputs(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "prod",
    image: "my-app:1",
    clusterfile: CLUSTERFILE,
    clusterName: "prod",
    applied: { version: 1, cluster: "prod", dataRoot: "/var/lib/sealer", hosts: {}, steps: {} },
    pending: [],
    ...over,
  };
}

describe("provider: Cluster (no nodes needed)", () => {
  it("preview with hosts unknown (Infra not created yet): no failure, plan unknown, diff is an update", async () => {
    const news = {
      image: "my-app:1",
      clusterfile: CLUSTERFILE,
      masters: UNKNOWN,
      workers: UNKNOWN,
      providerVersion: "v",
    };
    const { inputs, failures } = await provider.check({}, news);
    assert.equal(failures, undefined);
    assert.equal(inputs.plan, UNKNOWN);
    assert.deepEqual(await provider.diff("prod", oldOutputs(), inputs), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("an unknown name could be a replacement: diff says so", async () => {
    const d = await provider.diff("prod", oldOutputs(), {
      name: UNKNOWN,
      image: "my-app:1",
      clusterfile: CLUSTERFILE,
    });
    assert.deepEqual(d, { changes: true, replaces: ["name"], deleteBeforeReplace: true });
  });

  it("a new cluster name or data root replaces; nothing else does", async () => {
    assert.deepEqual(
      await provider.diff("prod", oldOutputs(), {
        name: "prod2",
        image: "my-app:1",
        clusterfile: CLUSTERFILE,
      }),
      {
        changes: true,
        replaces: ["name"],
        deleteBeforeReplace: true,
      },
    );
    assert.deepEqual(
      await provider.diff("prod", oldOutputs(), {
        image: "my-app:1",
        clusterfile: CLUSTERFILE,
        dataRoot: "/data/sealer",
      }),
      {
        changes: true,
        replaces: ["dataRoot"],
        deleteBeforeReplace: true,
      },
    );
  });

  it("check: bad inputs are failures, and a broken Clusterfile names its line", async () => {
    const bad = await provider.check({}, { image: "", masters: [] });
    assert.deepEqual(
      bad.failures?.map((f) => f.property),
      ["image", "masters"],
    );
    const broken = await provider.check(
      {},
      {
        image: "x:1",
        clusterfile:
          "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: a}\nspec:\n  image: x:1\n  hosts:\n    - ips: [10.0.0.300]\n      roles: [master]\n",
      },
    );
    assert.deepEqual(broken.failures, [
      {
        property: "clusterfile",
        reason: 'clusterfile:7 spec.hosts[0].ips[0]: "10.0.0.300" is not an IP address',
      },
    ]);
    // A Clusterfile without spec.image takes the image input.
    const { spec } = specOf({
      image: "x:1",
      clusterfile:
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: a}\nspec:\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n",
    });
    assert.equal(spec.image, "x:1");
  });

  it("masters/workers replace the Clusterfile's hosts but keep their per-host settings; other documents stay", () => {
    const text = clusterfileText({
      clusterfile: CLUSTERFILE,
      image: "my-app:1",
      masters: ["10.0.0.2"],
      workers: ["10.0.0.3", "10.0.0.9"],
    });
    const { spec } = specOf({ clusterfile: text, image: "my-app:1" });
    assert.deepEqual(
      spec.hosts.map((h) => [h.ips[0], h.roles, h.labels, h.taints]),
      [
        ["10.0.0.2", ["master"], { zone: "a" }, []],
        ["10.0.0.3", ["node"], {}, ["dedicated=db:NoSchedule"]],
        ["10.0.0.9", ["node"], {}, []],
      ],
    );
    assert.deepEqual(
      spec.plugins.map((p) => p.name),
      ["hello"],
    );
  });

  it("typed inputs override the Clusterfile: name, ssh key (kept as a Secret), env, data root", () => {
    const { spec } = specOf({
      clusterfile: CLUSTERFILE,
      image: "other:2",
      name: "prod",
      ssh: { privateKey: "PEM", user: "deploy" },
      env: { A: "1" },
      dataRoot: "/data/sealer",
    });
    assert.equal(spec.image, "other:2");
    assert.equal(spec.ssh.user, "deploy");
    assert.equal(spec.ssh.pkData?.reveal(), "PEM");
    assert.equal(JSON.stringify(spec.ssh.pkData), '"[secret]"');
    assert.deepEqual(spec.env.A, ["1"]);
    assert.equal(spec.dataRoot, "/data/sealer");
  });

  it("an object Clusterfile means the same as its YAML text", () => {
    const obj = {
      apiVersion: "sealer.io/v2",
      kind: "Cluster",
      metadata: { name: "prod" },
      spec: { image: "my-app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }] },
    };
    const yaml =
      "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  image: my-app:1\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n";
    assert.deepEqual(
      JSON.stringify(specOf({ clusterfile: obj, image: "my-app:1" }).spec),
      JSON.stringify(specOf({ clusterfile: yaml, image: "my-app:1" }).spec),
    );
  });
});

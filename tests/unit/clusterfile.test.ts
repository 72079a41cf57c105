import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { inspect } from "node:util";
import {
  clusterFromFlags,
  clusterFromObject,
  dumpClusterfile,
  hostEnv,
  hostSsh,
  loadClusterfile,
  masters,
  Secret,
  workers,
  type ClusterSpec,
} from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { packageRoot } from "../../provider/core/package-info";

const repoRoot = (): string => packageRoot(__dirname);
const fixture = (name: string) =>
  fs.readFileSync(path.join(repoRoot(), "tests/fixtures/clusterfile", name), "utf8");

/** Comparable form: secrets as their revealed value (equality of meaning includes them). */
function comparable(spec: ClusterSpec): unknown {
  const walk = (v: unknown): unknown =>
    v instanceof Secret
      ? { secret: v.reveal() }
      : Array.isArray(v)
        ? v.map(walk)
        : v && typeof v === "object"
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
          : v;
  return walk(spec);
}

function problemsOf(text: string): string[] {
  try {
    loadClusterfile(text);
  } catch (err) {
    assert.ok(err instanceof UserError, String(err));
    return err.problems;
  }
  assert.fail("expected the Clusterfile to be rejected");
}

const head = (hosts: string, extra = "") => `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: c1
spec:
  image: app:1
${extra}  hosts:
${hosts}`;

describe("clusterfile: loading", () => {
  it("parses a full HA Clusterfile into the normal form", () => {
    const { spec, warnings } = loadClusterfile(fixture("ha-full.yaml"));
    assert.deepEqual(warnings, []);
    assert.equal(spec.name, "prod-east");
    assert.deepEqual(masters(spec), ["10.1.0.11", "10.1.0.12", "10.1.0.13"]);
    assert.deepEqual(workers(spec), ["10.1.0.21", "10.1.0.22"]);
    assert.deepEqual(spec.env.CertSANs, ["api.example.com", "10.1.0.100"]);
    assert.deepEqual(hostEnv(spec, "10.1.0.11"), {
      CertSANs: "api.example.com;10.1.0.100",
      EtcdDevice: "/dev/vdb",
      PodCIDR: "100.64.0.0/10",
      SvcCIDR: "10.96.0.0/16",
    });
    assert.equal(hostSsh(spec, "10.1.0.21").port, 2222);
    assert.equal(hostSsh(spec, "10.1.0.21").user, "ops");
    assert.equal(hostSsh(spec, "10.1.0.11").port, 22);
    assert.equal(hostSsh(spec, "10.1.0.11").passwd?.reveal(), "correct horse battery");
    assert.deepEqual(spec.hosts[3]?.roles, ["db", "node"]);
    assert.deepEqual(spec.hosts[3]?.labels, { disk: "ssd", "topology.kubernetes.io/zone": "east-1a" });
    assert.equal(spec.dataRoot, "/data/sealer");
    assert.equal(spec.registry.localRegistry?.password?.reveal(), "reg-pass-1");
    assert.deepEqual(
      spec.configs.map((c) => [c.name, c.strategy]),
      [["web-values", "merge"]],
    );
    assert.deepEqual(
      spec.plugins.map((p) => [p.name, p.actions, p.scope]),
      [
        ["10-sysctl", ["pre-init-host"], []],
        ["20-smoke", ["post-install"], ["master"]],
      ],
    );
    assert.equal((spec.kubeadm.cluster?.networking as { dnsDomain: string }).dnsDomain, "cluster.local");
  });

  it("accepts the shapes sealer's docs use (empty passwd, extra roles, host env with '-', ';' lists)", () => {
    const text = `apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: kubernetes:v1.19.8
  env:
    - key1=value1
    - key2=value2;value3
  ssh:
    passwd:
    pk: /root/.ssh/id_rsa
    pkPasswd: keypass
    user: root
    port: "2222"
  hosts:
    - ips: [ 192.168.0.2 ]
      roles: [ master ]
      env:
        - etcd-dir=/data/etcd
      ssh:
        user: admin
        passwd: hostpass
        port: "22"
    - ips: [ 192.168.0.3 ]
      roles: [ node,db ]
`;
    const { spec, warnings } = loadClusterfile(text);
    assert.deepEqual(warnings, []);
    assert.deepEqual(spec.env, { key1: ["value1"], key2: ["value2", "value3"] });
    assert.equal(spec.ssh.passwd, undefined);
    assert.deepEqual(hostSsh(spec, "192.168.0.2").user, "admin");
    assert.deepEqual(hostSsh(spec, "192.168.0.2").port, 22);
    assert.deepEqual(hostSsh(spec, "192.168.0.3").port, 2222);
    assert.equal(hostEnv(spec, "192.168.0.2")["etcd-dir"], "/data/etcd");
    assert.deepEqual(spec.hosts[1]?.roles, ["db", "node"]);
  });

  it("fills defaults (ssh root:22, registry sea.hub:5000 HA, dataRoot /var/lib/sealer)", () => {
    const { spec } = loadClusterfile(fixture("minimal.yaml"));
    assert.equal(spec.ssh.user, "root");
    assert.equal(spec.ssh.port, 22);
    assert.deepEqual(spec.registry, {
      localRegistry: { domain: "sea.hub", port: 5000, ha: true, insecure: false },
    });
    assert.equal(spec.dataRoot, "/var/lib/sealer");
  });

  it("never prints secrets when the spec is logged or serialised", () => {
    const { spec } = loadClusterfile(fixture("ha-full.yaml"));
    const shown = JSON.stringify(spec) + inspect(spec, { depth: 10 }) + String(spec.ssh.passwd);
    assert.ok(!shown.includes("correct horse battery"));
    assert.ok(!shown.includes("reg-pass-1"));
    assert.ok(!dumpClusterfile(spec).includes("reg-pass-1"));
    assert.ok(dumpClusterfile(spec, { secrets: true }).includes("reg-pass-1"));
  });

  it("canonicalises IPv6 and orders workers numerically; external registry", () => {
    const { spec } = loadClusterfile(fixture("external-registry-ipv6.yaml"));
    assert.deepEqual(masters(spec), ["fd00::2"]);
    assert.deepEqual(workers(spec), ["fd00::9", "fd00::10"]);
    assert.equal(spec.registry.externalRegistry?.domain, "harbor.example.com");
    assert.equal(spec.registry.localRegistry, undefined);
  });

  it("converts v1 ipList Clusterfiles to v2 (network and certSANS to env)", () => {
    const { spec, warnings } = loadClusterfile(fixture("v1-baremetal.yaml"));
    assert.deepEqual(warnings, ["Clusterfile:1: converted from sealer.aliyun.com/v1alpha1 to sealer.io/v2"]);
    assert.deepEqual(masters(spec), ["172.16.0.2", "172.16.0.3", "172.16.0.4"]);
    assert.deepEqual(workers(spec), ["172.16.0.5"]);
    assert.deepEqual(spec.env, {
      CertSANs: ["aliyun-inc.com", "10.0.0.2"],
      PodCIDR: ["100.64.0.0/10"],
      SvcCIDR: ["10.96.0.0/22"],
    });
    assert.equal(spec.infra, undefined);
  });

  it("converts count-only v1 Clusterfiles to an Infra request", () => {
    const { spec } = loadClusterfile(fixture("v1-cloud.yaml"));
    assert.deepEqual(spec.hosts, []);
    assert.deepEqual(spec.infra, {
      provider: "alicloud",
      masters: { count: 3, cpu: 4, memory: 8, systemDisk: 100, dataDisks: [100] },
      nodes: { count: 2, cpu: 4, memory: 8 },
    });
  });

  it("dump -> load round-trips to the same normal form", () => {
    for (const f of ["ha-full.yaml", "minimal.yaml", "external-registry-ipv6.yaml", "v1-baremetal.yaml"]) {
      const { spec } = loadClusterfile(fixture(f));
      const again = loadClusterfile(dumpClusterfile(spec, { secrets: true })).spec;
      assert.deepEqual(comparable(again), comparable(spec), f);
    }
  });

  it("dump with secrets keeps hosts apart whose ssh secrets differ (pkData, pkPasswd, passwd)", () => {
    const hosts = [
      '    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n      ssh: { pkData: "key-A", pkPasswd: "pp-A", passwd: "pw-A" }\n',
      '    - ips: [ 10.0.0.3 ]\n      roles: [ master ]\n      ssh: { pkData: "key-B", pkPasswd: "pp-A", passwd: "pw-A" }\n',
      '    - ips: [ 10.0.0.4 ]\n      roles: [ master ]\n      ssh: { pkData: "key-B", pkPasswd: "pp-B", passwd: "pw-A" }\n',
      '    - ips: [ 10.0.0.5 ]\n      roles: [ master ]\n      ssh: { pkData: "key-B", pkPasswd: "pp-B", passwd: "pw-B" }\n',
    ];
    const { spec } = loadClusterfile(head(hosts.join("")));
    const again = loadClusterfile(dumpClusterfile(spec, { secrets: true })).spec;
    assert.deepEqual(comparable(again), comparable(spec));
    assert.deepEqual(
      again.hosts.map((h) => [
        h.ips,
        h.ssh.pkData?.reveal(),
        h.ssh.pkPasswd?.reveal(),
        h.ssh.passwd?.reveal(),
      ]),
      [
        [["10.0.0.2"], "key-A", "pp-A", "pw-A"],
        [["10.0.0.3"], "key-B", "pp-A", "pw-A"],
        [["10.0.0.4"], "key-B", "pp-B", "pw-A"],
        [["10.0.0.5"], "key-B", "pp-B", "pw-B"],
      ],
    );
  });

  it("warns about unknown kinds and unknown fields instead of ignoring them silently", () => {
    const { warnings } = loadClusterfile(
      head("    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n      lables: { a: b }\n") +
        "---\napiVersion: example.com/v1\nkind: Widget\n",
    );
    assert.deepEqual(warnings, [
      "Clusterfile:10 spec.hosts[0].lables: unknown field (ignored)",
      'Clusterfile:13: unknown kind "Widget" (apiVersion example.com/v1) in document 2: ignored',
    ]);
  });
});

describe("clusterfile: validation (all problems at once, with lines)", () => {
  const cases: Array<[string, string, string[]]> = [
    [
      "bad IP",
      head(
        "    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n    - ips: [ 10.0.0.3, 10.0.0.300 ]\n      roles: [ node ]\n",
      ),
      ['Clusterfile:10 spec.hosts[1].ips[1]: "10.0.0.300" is not an IP address'],
    ],
    [
      "range in a file",
      head("    - ips: [ 10.0.0.2-10.0.0.4 ]\n      roles: [ master ]\n"),
      [
        'Clusterfile:8 spec.hosts[0].ips[0]: "10.0.0.2-10.0.0.4" is not an IP address (ranges are accepted on the command line only: list each IP)',
      ],
    ],
    [
      "one IP in two places",
      head(
        "    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n    - ips:\n        - 10.0.0.5\n        - 10.0.0.2\n      roles: [ node ]\n",
      ),
      [
        "Clusterfile:12 spec.hosts[1].ips[1]: 10.0.0.2 is already listed at spec.hosts[0].ips[0]: an IP may appear once",
      ],
    ],
    [
      "no master",
      head("    - ips: [ 10.0.0.2 ]\n      roles: [ node ]\n"),
      ["Clusterfile:7 spec.hosts: no master: at least one host needs roles: [master]"],
    ],
    [
      "mixed families",
      head(
        "    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n    - ips: [ fd00::2 ]\n      roles: [ node ]\n",
      ),
      [
        "Clusterfile:7 spec.hosts: hosts mix IPv4 and IPv6 addresses (10.0.0.2, fd00::2): use one family for every host",
      ],
    ],
    [
      "missing role",
      head(
        "    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n    - ips: [ 10.0.0.3 ]\n      roles: [ db ]\n",
      ),
      ['Clusterfile:11 spec.hosts[1].roles: must contain "master" or "node" (got "db")'],
    ],
    [
      "master and node",
      head("    - ips: [ 10.0.0.2 ]\n      roles: [ master, node ]\n"),
      [
        'Clusterfile:9 spec.hosts[0].roles: a host is either "master" or "node", not both (control-plane nodes run workloads when untainted)',
      ],
    ],
    [
      "taint syntax",
      head(
        '    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n      taints: [ "a=b:NoSchedule", "c:NoExecute-", "d-", "e=f", "g:Never", "-bad:NoSchedule" ]\n',
      ),
      [
        'Clusterfile:10 spec.hosts[0].taints[3]: taint "e=f" needs an effect: "key=value:NoSchedule", "key:NoExecute" or "key:NoSchedule-" to remove',
        'Clusterfile:10 spec.hosts[0].taints[4]: taint "g:Never": effect "Never" must be one of NoSchedule, PreferNoSchedule, NoExecute',
        `Clusterfile:10 spec.hosts[0].taints[5]: taint "-bad:NoSchedule": key "-bad": name part must be 1-63 characters, alphanumerics with '-', '_' or '.' inside`,
      ],
    ],
    [
      "label syntax",
      head(
        '    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n      labels:\n        ok.example.com/x: y\n        Bad_Prefix/x: y\n        k: "not ok!"\n',
      ),
      [
        'Clusterfile:12 spec.hosts[0].labels.Bad_Prefix/x: label key "Bad_Prefix/x": prefix "Bad_Prefix" must be a lowercase DNS subdomain (e.g. example.com)',
        `Clusterfile:13 spec.hosts[0].labels.k: label "k": value "not ok!" must be at most 63 characters, alphanumerics with '-', '_' or '.' inside`,
      ],
    ],
    [
      "env syntax",
      head("    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n", "  env: [ A=1, novalue, 9x=2 ]\n"),
      [
        'Clusterfile:7 spec.env[1]: is not KEY=VALUE (there is no "="; the text is not repeated here, in case it is a secret)',
        `Clusterfile:7 spec.env[2]: env key "9x" must start with a letter or '_' and contain only letters, digits, '_', '.', '-'`,
      ],
    ],
    [
      "wrong types",
      head("    - ips: 10.0.0.2\n      roles: [ master ]\n", "  cmd: echo\n"),
      [
        'Clusterfile:7 spec.cmd: expected a list, got the string "echo"',
        'Clusterfile:9 spec.hosts[0].ips: expected a list, got the string "10.0.0.2"',
      ],
    ],
    [
      "bad port and runtime",
      head(
        '    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n      ssh: { port: "x22" }\n',
        "  containerRuntime: { type: cri-o }\n",
      ),
      [
        'Clusterfile:7 spec.containerRuntime.type: "cri-o" must be "docker" or "containerd"',
        'Clusterfile:11 spec.hosts[0].ssh.port: port "x22" must be an integer from 1 to 65535',
      ],
    ],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(problemsOf(text), expected));
  }

  it("reports every problem of every document in one error", () => {
    const text =
      head("    - ips: [ 10.0.0.2, 10.0.0.2 ]\n      roles: [ master ]\n") +
      "---\napiVersion: sealer.io/v2\nkind: Config\nmetadata: { name: x }\nspec:\n  path: /etc/abs\n---\napiVersion: sealer.io/v2\nkind: Plugin\nmetadata: { name: p }\nspec:\n  type: SHELL\n  action: whenever\n";
    try {
      loadClusterfile(text);
      assert.fail("should throw");
    } catch (err) {
      assert.ok(err instanceof UserError);
      assert.equal(err.exitCode, 2);
      assert.equal(
        err.message,
        [
          "Clusterfile is invalid (3 problems):",
          " - Clusterfile:8 spec.hosts[0].ips[1]: 10.0.0.2 is already listed at spec.hosts[0].ips[0]: an IP may appear once",
          ' - Clusterfile:15 spec.path: path "/etc/abs" must be relative to the cluster rootfs (e.g. etc/my.yaml)',
          ' - Clusterfile:22 spec.action: "whenever" is not a hook phase; use pre-install, post-install, pre-init-host, post-init-host, pre-clean-host, post-clean-host, pre-uninstall, post-uninstall, pre-scaleup, post-scaleup, upgrade-host, upgrade, rollback',
        ].join("\n"),
      );
    }
  });

  it("reports YAML syntax errors with the line", () => {
    assert.throws(
      () => loadClusterfile("kind: Cluster\nspec:\n  hosts: [ a\n  b: c\n"),
      (e: Error) => e instanceof UserError && /^Clusterfile:\d+: YAML syntax error/.test(e.message),
    );
  });
});

describe("clusterfile: normal form", () => {
  const a = `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: same }
spec:
  image: app:1
  env: [ "B=2", "A=x;y" ]
  ssh: { passwd: pw-1234, port: 22 }
  hosts:
    - ips: [ 10.0.0.2, 10.0.0.3 ]
      roles: [ master ]
    - ips: [ 10.0.0.9, 10.0.0.7 ]
      roles: [ node ]
      labels: { z: "1", a: "2" }
      taints: [ "b:NoSchedule", "a:NoSchedule" ]
      ssh: { port: "22" }
      env: [ B=2 ]
`;
  const b = `apiVersion: sealer.cloud/v2
kind: Cluster
metadata: { name: same }
spec:
  image: app:1
  env: [ "A=x", "A=y", "B=2" ]
  ssh: { user: root, passwd: pw-1234, port: "22" }
  registry: { localRegistry: { domain: sea.hub, port: 5000, ha: true } }
  dataRoot: /var/lib/sealer/
  hosts:
    - ips: [ 10.0.0.7 ]
      roles: [ node ]
      labels: { a: "2", z: "1" }
      taints: [ "a:NoSchedule", "b:NoSchedule" ]
    - ips: [ 10.0.0.2 ]
      roles: [ master ]
    - ips: [ 10.0.0.3 ]
      roles: [ master ]
    - ips: [ 10.0.0.9 ]
      roles: [ node ]
      labels: { z: "1", a: "2" }
      taints: [ "b:NoSchedule", "a:NoSchedule" ]
`;
  it("two Clusterfiles that mean the same normalise to equal values", () => {
    assert.deepEqual(comparable(loadClusterfile(a).spec), comparable(loadClusterfile(b).spec));
  });
  it("master order is meaningful (master0 = first master listed)", () => {
    const swapped = a.replace("[ 10.0.0.2, 10.0.0.3 ]", "[ 10.0.0.3, 10.0.0.2 ]");
    assert.deepEqual(masters(loadClusterfile(swapped).spec), ["10.0.0.3", "10.0.0.2"]);
    assert.notDeepEqual(comparable(loadClusterfile(swapped).spec), comparable(loadClusterfile(a).spec));
  });
  it("a changed secret is a different spec", () => {
    assert.notDeepEqual(
      comparable(loadClusterfile(a.replace("pw-1234", "pw-5678")).spec),
      comparable(loadClusterfile(a).spec),
    );
  });
});

describe("clusterfile: objects (Pulumi inputs)", () => {
  it("validates objects like a file and reports paths", () => {
    const doc = {
      apiVersion: "sealer.io/v2",
      kind: "Cluster",
      metadata: { name: "obj" },
      spec: { image: "app:1", hosts: [{ ips: ["10.0.0.2"], roles: ["master"] }] },
    };
    assert.deepEqual(masters(clusterFromObject(doc).spec), ["10.0.0.2"]);
    const bad = { ...doc, spec: { ...doc.spec, hosts: [{ ips: ["nope"], roles: ["master"] }] } };
    assert.throws(
      () => clusterFromObject([bad]),
      (e: UserError) => e.problems[0] === 'clusterfile:9 spec.hosts[0].ips[0]: "nope" is not an IP address',
    );
  });
});

describe("clusterfile: CLI flags", () => {
  it("maps flags to the same model, with ranges", () => {
    const spec = clusterFromFlags({
      image: "app:1",
      masters: "10.0.0.2-4",
      nodes: "10.0.0.9,10.0.0.5-10.0.0.6",
      user: "ops",
      password: "pw-abcd",
      port: "2222",
      env: ["A=1", "A=2"],
      clusterName: "c9",
    });
    assert.equal(spec.name, "c9");
    assert.deepEqual(masters(spec), ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    assert.deepEqual(workers(spec), ["10.0.0.5", "10.0.0.6", "10.0.0.9"]);
    assert.deepEqual(spec.env, { A: ["1", "2"] });
    assert.equal(spec.ssh.user, "ops");
    assert.equal(spec.ssh.port, 2222);
    assert.equal(spec.ssh.passwd?.reveal(), "pw-abcd");
    const fromFile = loadClusterfile(dumpClusterfile(spec, { secrets: true })).spec;
    assert.deepEqual(comparable(fromFile), comparable(spec));
  });
  it("reports flag problems naming the flag", () => {
    assert.throws(
      () =>
        clusterFromFlags({
          image: "app:1",
          masters: "10.0.0.2-a",
          nodes: "10.0.0.9-10.0.0.1",
          env: ["X"],
          port: "0",
        }),
      (e: UserError) =>
        e.problems.join("\n") ===
        [
          '--masters: "10.0.0.2-a": "a" is not an IP address of the same family as "10.0.0.2"',
          '--nodes: "10.0.0.9-10.0.0.1": the range ends before it starts',
          '--env (the 1st): is not KEY=VALUE (there is no "="; the text is not repeated here, in case it is a secret)',
          '--port: port "0" must be an integer from 1 to 65535',
          "--masters: no master: give at least one master IP with -m",
        ].join("\n"),
    );
  });
});

/** Pure parts of the lifecycle commands: host edits, output prefixes, checksums, SAN parsing, hook scope. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clusterFromFlags, loadClusterfile } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import {
  checksumLine,
  parseChecksumFile,
  parseMemberList,
  snapshotName,
} from "../../provider/core/lifecycle/backup";
import { currentCertSans, parseAltNames } from "../../provider/core/lifecycle/cert";
import { phaseHookSteps } from "../../provider/core/plan/phase-hooks";
import { CLEAN_HOST_REASON, planDestroy } from "../../provider/core/plan/destroy";
import { planRollback, rollbackSpec } from "../../provider/core/plan/rollback";
import { plan as planSteps } from "../../provider/core/plan/planner";
import { recordAll } from "../../provider/core/exec/record";
import { emptyApplied } from "../../provider/core/plan/types";
import { baseImage, clusterfile, installed, spec as specOf } from "../fixtures/clusterfile/plan-world";
import { prefixLines } from "../../provider/core/lifecycle/exec";
import { addHosts, hostsByRole, removeHosts } from "../../provider/core/lifecycle/hosts-edit";
import {
  externalRegistryHost,
  listRegistryTree,
  registryAuthConfig,
} from "../../provider/core/lifecycle/external-registry";
import { containerdAuthToml, mirrorHostsToml, registryHostsToml } from "../../provider/core/runtime/registry";
import { OciLayout } from "../../provider/core/image/layout";
import { writeRegistryImage } from "../../provider/core/registry/fs-storage";
import { makeTestImage, makeTestIndex } from "../harness/registry";

const spec = clusterFromFlags({
  image: "x:1",
  masters: "10.0.0.2,10.0.0.3",
  nodes: "10.0.0.5",
  clusterName: "c",
});
/** A SHELL Plugin document (with its leading separator). */
const pluginDoc = (name: string, action: string, scope?: string): string =>
  `---\napiVersion: sealer.io/v2\nkind: Plugin\nmetadata: { name: ${name} }\nspec: { type: SHELL, action: ${action}, ${scope ? `scope: ${scope}, ` : ""}data: "true" }\n`;
const ips = (s: typeof spec) => s.hosts.map((h) => `${h.ips[0]}:${h.roles.join("|")}`);

describe("lifecycle: host edits", () => {
  it("join appends masters after the existing ones (master0 stays) and workers", () => {
    assert.deepEqual(ips(addHosts(spec, { masters: ["10.0.0.4"], nodes: ["10.0.0.6"] })), [
      "10.0.0.2:master",
      "10.0.0.3:master",
      "10.0.0.4:master",
      "10.0.0.5:node",
      "10.0.0.6:node",
    ]);
  });
  const bad: Array<[string, () => unknown, string]> = [
    [
      "already there",
      () => addHosts(spec, { masters: [], nodes: ["10.0.0.5"] }),
      "cannot join hosts to cluster c:\n - 10.0.0.5 is already in cluster c as node: nothing to join (to change its role, delete it first)",
    ],
    [
      "nothing",
      () => addHosts(spec, { masters: [], nodes: [] }),
      "cannot join hosts to cluster c:\n - nothing to join: give -m IPs and/or -n IPs",
    ],
    [
      "not an ip",
      () => addHosts(spec, { masters: ["10.0.0.300"], nodes: [] }),
      "cannot join hosts to cluster c:\n - -m 10.0.0.300: not an IP address",
    ],
    [
      "both roles",
      () => addHosts(spec, { masters: ["10.0.0.9"], nodes: ["10.0.0.9"] }),
      "cannot join hosts to cluster c:\n - 10.0.0.9 is given as master (-m) and as node (-n)",
    ],
    [
      "unknown",
      () => removeHosts(spec, { masters: [], nodes: ["10.0.0.9"] }),
      "cannot delete hosts from cluster c:\n - -n 10.0.0.9: no such host in cluster c (nodes: 10.0.0.5)",
    ],
    [
      "wrong role",
      () => removeHosts(spec, { masters: ["10.0.0.5"], nodes: [] }),
      "cannot delete hosts from cluster c:\n - -m 10.0.0.5: 10.0.0.5 is a node (worker) of cluster c, not a master: use -n 10.0.0.5",
    ],
    [
      "last master",
      () => removeHosts(spec, { masters: ["10.0.0.2", "10.0.0.3"], nodes: [] }),
      "cannot delete hosts from cluster c:\n - removing 10.0.0.2, 10.0.0.3 would leave cluster c without a master (etcd and the API server run there); keep at least one master, or delete the whole cluster with sealer delete -a",
    ],
  ];
  for (const [name, fn, msg] of bad)
    it(`refuses: ${name}`, () =>
      assert.throws(fn, (e: Error) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.message, msg);
        return true;
      }));
  it("delete removes the hosts and keeps the rest in order", () => {
    assert.deepEqual(ips(removeHosts(spec, { masters: ["10.0.0.2"], nodes: ["10.0.0.5"] })), [
      "10.0.0.3:master",
    ]);
  });
  it("hosts by role", () => {
    assert.deepEqual(hostsByRole(spec), ["10.0.0.2", "10.0.0.3", "10.0.0.5"]);
    assert.deepEqual(hostsByRole(spec, "node"), ["10.0.0.5"]);
    assert.deepEqual(hostsByRole(spec, "master"), ["10.0.0.2", "10.0.0.3"]);
    assert.throws(
      () => hostsByRole(spec, "db"),
      /-r db: no host of cluster c has role db \(roles: master, node\)/,
    );
  });
});

describe("lifecycle: output, checksums, SANs, hooks", () => {
  it("prefixes every line with the host", () => {
    assert.equal(prefixLines("10.0.0.2", "a\nb\n"), "[10.0.0.2] a\n[10.0.0.2] b\n");
    assert.equal(prefixLines("10.0.0.2", "a"), "[10.0.0.2] a\n");
    assert.equal(prefixLines("10.0.0.2", ""), "");
  });
  it("checksum files in sha256sum format", () => {
    const hex = "a".repeat(64);
    assert.equal(checksumLine(hex, "s.db"), `${hex}  s.db\n`);
    assert.equal(parseChecksumFile(checksumLine(hex, "s.db")), hex);
    assert.equal(parseChecksumFile("zz  s.db"), undefined);
    assert.equal(snapshotName(new Date("2026-01-02T03:04:05.678Z")), "etcd-snapshot-20260102T030405Z.db");
  });
  it("alt names: DNS names and IPs, every problem reported", () => {
    assert.deepEqual(parseAltNames("API.example.com, 10.0.0.1,10.0.0.1"), ["api.example.com", "10.0.0.1"]);
    assert.throws(
      () => parseAltNames("bad_name,-x"),
      (e: Error) =>
        e.message ===
        '--alt-names:\n - "bad_name" is neither an IP address nor a DNS name\n - "-x" is neither an IP address nor a DNS name',
    );
    assert.deepEqual(currentCertSans({ CertSANs: ["a.b,c.d", "e.f"] }), ["a.b", "c.d", "e.f"]);
  });
  it("hook steps: name order, empty scope = every host given, role scope, legacy on", () => {
    const legacyOn = (name: string, on: string) =>
      `---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: { name: ${name} }\nspec: { type: SHELL, action: PreUnInstall, on: "${on}", data: "true" }\n`;
    const s = loadClusterfile(
      `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: c }
spec:
  image: x:1
  hosts: [ { ips: [ 10.0.0.2 ], roles: [ master ] }, { ips: [ 10.0.0.5 ], roles: [ node ] } ]
${pluginDoc("z-last", "pre-uninstall")}${pluginDoc("a-first", "pre-uninstall", "node")}${legacyOn("m-on-node", "node")}${legacyOn("n-on-master0", "master0")}${legacyOn("o-on-ip", "10.0.0.5")}`,
      { file: "Clusterfile" },
    ).spec;
    const steps = phaseHookSteps(s, emptyApplied("c"), "pre-uninstall", ["10.0.0.2", "10.0.0.5"], "delete");
    assert.deepEqual(
      steps.map((x) => [x.plugin, x.hosts]),
      [
        ["a-first", ["10.0.0.5"]],
        ["m-on-node", ["10.0.0.5"]],
        ["n-on-master0", ["10.0.0.2"]],
        ["o-on-ip", ["10.0.0.5"]],
        ["z-last", ["10.0.0.2", "10.0.0.5"]],
      ],
    );
  });
});

const HOOKS =
  pluginDoc("drain-apps", "pre-uninstall", "master") +
  pluginDoc("wipe-disks", "post-uninstall") +
  pluginDoc("announce", '"upgrade|rollback"') +
  pluginDoc("on-upgrade", "upgrade");

describe("lifecycle: destroy and rollback are plans", () => {
  const s = specOf(clusterfile({ workers: ["10.0.0.10"], docs: HOOKS }));

  it("destroy: pre-uninstall hooks, clean-host on every host (recorded-only hosts too), post-uninstall hooks", () => {
    const d = { cluster: s, image: baseImage() };
    const applied = installed(d);
    // A worker a half-finished run recorded but the Clusterfile no longer lists is still cleaned.
    applied.hosts["10.0.0.11"] = { roles: ["node"], layers: [] };
    const p = planDestroy(s, applied);
    assert.deepEqual(
      p.steps.map((x) => [x.id, x.hosts.join(","), x.after.length]),
      [
        ["hook:pre-uninstall:drain-apps", "10.0.0.2,10.0.0.3", 0],
        ["clean-host:10.0.0.2", "10.0.0.2", 1],
        ["clean-host:10.0.0.3", "10.0.0.3", 1],
        ["clean-host:10.0.0.10", "10.0.0.10", 1],
        ["clean-host:10.0.0.11", "10.0.0.11", 1],
        ["hook:post-uninstall:wipe-disks", "10.0.0.2,10.0.0.3,10.0.0.10,10.0.0.11", 4],
      ],
    );
    assert.equal(p.steps[1]!.reason, CLEAN_HOST_REASON);
    assert.match(CLEAN_HOST_REASON, /blobs collected/);
  });

  it("rollback: the flow back to the previous image, upgrade-only hooks left out, rollback hooks last on master0", () => {
    const v1 = baseImage();
    const v2 = { ...baseImage({ kubeVersion: "v1.29.0" }), reference: "registry.example.com/team/saas:2.0" };
    const d2 = { cluster: { ...s, image: v2.reference }, image: v2 };
    const up = recordAll(
      installed({ cluster: s, image: v1 }),
      planSteps(d2, installed({ cluster: s, image: v1 })),
      d2,
    );
    const back = rollbackSpec(d2.cluster, v1.reference);
    assert.deepEqual(
      back.plugins.map((x) => [x.name, x.actions]),
      [
        ["announce", ["rollback", "upgrade"]],
        ["drain-apps", ["pre-uninstall"]],
        ["smoke", ["post-install"]],
        ["sysctl", ["pre-init-host"]],
        ["wipe-disks", ["post-uninstall"]],
      ],
    );
    const p = planRollback({ cluster: back, image: v1 }, up);
    const ids = p.steps.map((x) => x.id);
    assert.ok(ids.includes("upgrade-master:10.0.0.2"), ids.join("\n"));
    assert.ok(!ids.some((i) => i.includes("on-upgrade")), "an upgrade-only hook does not run on rollback");
    const last = p.steps[p.steps.length - 1]!;
    assert.equal(last.id, "hook:rollback:announce");
    assert.deepEqual(last.hosts, ["10.0.0.2"]);
    assert.equal(last.after.length, p.steps.length - 1);
  });
});

describe("lifecycle: external registry helpers", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-tree-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("lists a filesystem-storage tree: tags, digest-only images, nested repos; index children are not listed on their own", async () => {
    const store = new OciLayout(path.join(dir, "oci"));
    const root = path.join(dir, "registry");
    const web = await makeTestImage(store, "team/web:1", { layers: [100] });
    const pinned = await makeTestImage(store, "team/pinned:1", { layers: [120] });
    const deep = await makeTestImage(store, "a/b/c:2", { layers: [140] });
    const idx = await makeTestIndex(store, "team/multi:3", [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ]);
    await writeRegistryImage(root, store, "team/web", web.digest, web.mediaType, "1");
    await writeRegistryImage(root, store, "team/pinned", pinned.digest, pinned.mediaType);
    await writeRegistryImage(root, store, "a/b/c", deep.digest, deep.mediaType, "2");
    await writeRegistryImage(root, store, "team/multi", idx.digest, idx.mediaType, "3");
    assert.deepEqual(listRegistryTree(root), [
      { repo: "a/b/c", tag: "2", digest: deep.digest },
      { repo: "team/multi", tag: "3", digest: idx.digest },
      { repo: "team/pinned", digest: pinned.digest },
      { repo: "team/web", tag: "1", digest: web.digest },
    ]);
    assert.deepEqual(listRegistryTree(path.join(dir, "nothing-here")), []);
  });

  it("names the registry as clients do; writes docker-style auth and an insecure hosts.toml", () => {
    assert.equal(externalRegistryHost("harbor.example.com", 443), "harbor.example.com");
    assert.equal(externalRegistryHost("10.0.0.9", 5000), "10.0.0.9:5000");
    assert.deepEqual(JSON.parse(registryAuthConfig("10.0.0.9:5000", { username: "u", password: "p:w" })), {
      auths: { "10.0.0.9:5000": { auth: Buffer.from("u:p:w").toString("base64") } },
    });
    assert.equal(
      registryHostsToml({
        host: "harbor.example.com",
        caFile: "/etc/containerd/certs.d/harbor.example.com/ca.crt",
      }),
      'server = "https://harbor.example.com"\n\n[host."https://harbor.example.com"]\n  capabilities = ["pull", "resolve", "push"]\n  ca = "/etc/containerd/certs.d/harbor.example.com/ca.crt"\n',
    );
    assert.equal(
      registryHostsToml({ host: "10.0.0.9:5000", insecure: true }),
      'server = "http://10.0.0.9:5000"\n\n[host."http://10.0.0.9:5000"]\n  capabilities = ["pull", "resolve", "push"]\n  skip_verify = true\n',
    );
    // docker.io's API is on registry-1; a mirror only pulls and resolves.
    assert.equal(
      mirrorHostsToml("docker.io", { host: "10.0.0.9:5000", insecure: true }),
      'server = "https://registry-1.docker.io"\n\n[host."http://10.0.0.9:5000"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n',
    );
    assert.equal(
      containerdAuthToml("sea.hub:5000", { username: "u", password: 'p"w\\' }),
      '[plugins."io.containerd.grpc.v1.cri".registry.configs."sea.hub:5000".auth]\n  username = "u"\n  password = "p\\"w\\\\"\n',
    );
  });

  it("etcd members from etcdctl member list, on the cluster's masters only", () => {
    const text = [
      "91bc3c398fb3c146, started, m-b, https://10.0.0.3:2380, https://10.0.0.3:2379, false",
      "8e9e05c52164694d, started, m-a, https://10.0.0.2:2380, https://127.0.0.1:2379, false",
      "fd422379fda50e48, started, ext, https://10.9.9.9:2380, https://10.9.9.9:2379, false",
      "",
    ].join("\n");
    assert.deepEqual(parseMemberList(text, ["10.0.0.2", "10.0.0.3"]), [
      { name: "m-a", ip: "10.0.0.2", peerUrl: "https://10.0.0.2:2380" },
      { name: "m-b", ip: "10.0.0.3", peerUrl: "https://10.0.0.3:2380" },
    ]);
    assert.deepEqual(parseMemberList("Error: context deadline exceeded\n", ["10.0.0.2"]), []);
  });
});

/**
 * What sealer accepts and we used to refuse or ignore: documents without apiVersion, Cluster
 * versions sealer read as v2, legacy plugins (type as metadata.name, PascalCase phases incl.
 * Originally, `on:` selectors), HOSTNAME before kubeadm, v1 count beside ipList, v1
 * containerRuntime, sealer's encrypted passwords. Expected results follow sealer's code.
 */
import * as assert from "node:assert/strict";
import { dumpClusterfile, loadClusterfile, whereInClusterfile } from "../../provider/core/clusterfile";
import { parseOn } from "../../provider/core/clusterfile/plugin-on";
import { decryptSealerPasswd, encryptSealerPasswd } from "../../provider/core/clusterfile/sealer-passwd";
import { UserError } from "../../provider/core/errors";
import { plan } from "../../provider/core/plan/planner";
import { baseImage, installed, plugin } from "../fixtures/clusterfile/plan-world";

const cluster = (version = "sealer.io/v2", extra = "") => `apiVersion: ${version}
kind: Cluster
metadata: { name: c1 }
spec:
  image: app:1
${extra}  hosts:
    - { ips: [ 10.0.0.2, 10.0.0.3 ], roles: [ master ], labels: { disk: ssd } }
    - { ips: [ 10.0.0.10, 10.0.0.11 ], roles: [ node ] }
`;

function rejected(text: string): string {
  try {
    loadClusterfile(text);
  } catch (err) {
    assert.ok(err instanceof UserError, String(err));
    return err.message;
  }
  return assert.fail("expected a refusal");
}

/** plugin name -> phase -> hosts, as planned for a new cluster. */
function hooks(text: string): Record<string, Record<string, string[]>> {
  const { spec } = loadClusterfile(text);
  const out: Record<string, Record<string, string[]>> = {};
  for (const s of plan({ cluster: spec, image: baseImage({ apps: [], launch: {} }) }).steps)
    if (s.kind === "hook") ((out[s.plugin] ??= {})[s.phase] ??= []).push(...s.hosts);
  return out;
}

describe("clusterfile: what sealer accepts", () => {
  it("decodes documents by kind alone, as sealer does", () => {
    const { spec, warnings } = loadClusterfile(
      cluster("sealer.io/v2").replace("apiVersion: sealer.io/v2\n", "") +
        "---\nkind: ClusterConfiguration\nnetworking: { podSubnet: 10.1.0.0/16 }\n---\nkind: Application\nspec: { launchApps: [ web ] }\n",
    );
    assert.deepEqual(spec.kubeadm.cluster?.networking, { podSubnet: "10.1.0.0/16" });
    assert.deepEqual(spec.application?.launchApps, ["web"]);
    assert.deepEqual(warnings, [
      "Clusterfile:1 apiVersion: no apiVersion; read as sealer.io/v2 (as sealer does)",
    ]);
  });

  it("names kubeadm.k8s.io for a kubeadm kind with a wrong apiVersion", () => {
    assert.match(
      rejected(cluster() + "---\napiVersion: sealer.io/v2\nkind: InitConfiguration\n"),
      /Clusterfile:\d+ apiVersion: "sealer.io\/v2" is not a InitConfiguration version \(expected kubeadm.k8s.io\/v1beta3\)/,
    );
  });

  it("reads Cluster versions sealer v0.8 decoded as v2 (sealer.aliyun.com/v2alpha1) as v2", () => {
    const { spec, warnings } = loadClusterfile(cluster("sealer.aliyun.com/v2alpha1"));
    assert.deepEqual(
      spec.hosts.map((h) => h.ips[0]),
      ["10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.11"],
    );
    assert.match(
      warnings.join("\n"),
      /"sealer.aliyun.com\/v2alpha1" is not a Cluster version this tool knows; read as sealer.io\/v2/,
    );
  });

  it("v1: ignores masters.count when ipList is given, and keeps containerRuntime", () => {
    const { spec, warnings } = loadClusterfile(`apiVersion: sealer.aliyun.com/v1alpha1
kind: Cluster
metadata: { name: old }
spec:
  image: app:1
  containerRuntime: { type: containerd }
  masters: { count: "3", ipList: [ 172.16.0.2 ] }
  nodes: { count: 1, ipList: [ 172.16.0.5 ] }
`);
    assert.deepEqual(
      spec.hosts.map((h) => `${h.ips[0]}:${h.roles[0]}`),
      ["172.16.0.2:master", "172.16.0.5:node"],
    );
    assert.equal(spec.infra, undefined);
    assert.equal(spec.containerRuntime?.type, "containerd");
    assert.match(
      warnings.join("\n"),
      /spec.masters.count: 3 differs from the 1 IPs in ipList; the IPs are used/,
    );
  });

  it("legacy plugins: type from metadata.name, Originally = pre-install on every host, several of one name", () => {
    const { spec } = loadClusterfile(
      cluster() +
        `---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: { name: SHELL }
spec: { action: Originally, data: "echo first" }
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: { name: SHELL }
spec: { action: PostInstall, on: "10.0.0.2,10.0.0.10-10.0.0.11", data: "echo second" }
`,
    );
    assert.deepEqual(
      spec.plugins.map((p) => `${p.name}:${p.type}:${p.actions.join("|")}:${p.on ?? ""}`),
      ["SHELL:SHELL:pre-install:", "SHELL#2:SHELL:post-install:10.0.0.2,10.0.0.10-10.0.0.11"],
    );
  });

  it("legacy plugins stay legacy through the recorded Clusterfile (dump, then load): same hooks, same hosts", () => {
    const text =
      cluster() +
      plugin("sealer.aliyun.com/v1alpha1", "SHELL", 'action: PostInstall, data: "echo a"') +
      plugin("sealer.aliyun.com/v1alpha1", "check", "type: CLUSTERCHECK, action: PreGuest") +
      plugin("sealer.io/v2", "modern", 'type: SHELL, action: post-install, data: "echo b"');
    const { spec } = loadClusterfile(text);
    const again = loadClusterfile(dumpClusterfile(spec)).spec;
    const facts = (s: typeof spec) => s.plugins.map((p) => [p.name, p.type, p.actions, p.legacy ?? false]);
    assert.deepEqual(facts(again), facts(spec));
    assert.deepEqual(hooks(dumpClusterfile(spec)), hooks(text));
    // The legacy SHELL runs on every host, the modern one once on master0.
    assert.deepEqual(hooks(text).SHELL?.["post-install"]?.length, 4);
  });

  it("round trip keeps what runs: a CLUSTERCHECK at no phase, legacy plugins at phases with no legacy name", () => {
    const text =
      cluster() +
      // sealer's CLUSTERCHECK does nothing at PostInstall: no phase; and none without an action.
      plugin("sealer.aliyun.com/v1alpha1", "late-check", "type: CLUSTERCHECK, action: PostInstall") +
      plugin("sealer.aliyun.com/v1alpha1", "no-action-check", "type: CLUSTERCHECK") +
      // sealer <= 0.4 plugins named after their type (legacy: every host), at new-only phases.
      plugin("sealer.aliyun.com/v1alpha1", "SHELL", 'action: upgrade, data: "echo u"') +
      plugin("sealer.aliyun.com/v1alpha1", "SHELL", 'action: rollback, data: "echo r"');
    const { spec } = loadClusterfile(text);
    const facts = (s: typeof spec) =>
      s.plugins.map((p) => [p.name, p.type, p.actions.join("|"), p.legacy ?? false, p.on ?? ""]);
    assert.deepEqual(facts(spec), [
      ["SHELL", "SHELL", "upgrade", true, ""],
      ["SHELL#2", "SHELL", "rollback", true, ""],
      ["late-check", "CLUSTERCHECK", "", false, ""],
      ["no-action-check", "CLUSTERCHECK", "", false, ""],
    ]);
    const saved = dumpClusterfile(spec);
    const again = loadClusterfile(saved).spec;
    assert.deepEqual(facts(again), facts(spec), saved);
    // And read once more from what was saved the second time: a fixed point.
    assert.equal(dumpClusterfile(again), saved);
  });

  it("on: picks hosts by role, master0, IPs and ranges, and node labels after install only", () => {
    const plugin = (name: string, action: string, on: string) =>
      `---\nkind: Plugin\nmetadata: { name: ${name} }\nspec: { type: SHELL, action: ${action}, on: "${on}", data: ls }\n`;
    const got = hooks(
      cluster() +
        plugin("a-masters", "PostInstall", "master") +
        plugin("b-master0", "PostInstall", "master0") +
        plugin("c-ips", "PreInit", "10.0.0.3,10.0.0.10-10.0.0.11") +
        plugin("d-label", "PostInstall", "node-role.kubernetes.io/master=") +
        plugin("e-label", "PostInstall", "disk=ssd,node-role.kubernetes.io/master!=") +
        plugin("f-label-too-early", "PreInstall", "disk=ssd"),
    );
    assert.deepEqual(got, {
      "a-masters": { "post-install": ["10.0.0.2", "10.0.0.3"] },
      "b-master0": { "post-install": ["10.0.0.2"] },
      "c-ips": { "pre-init-host": ["10.0.0.3", "10.0.0.10", "10.0.0.11"] },
      "d-label": { "post-install": ["10.0.0.2", "10.0.0.3"] },
      // Masters carry the role label, so "disk=ssd but not master" matches nobody here.
      "e-label": { "post-install": [] },
      // sealer resolves label selectors only once nodes exist: at PreInstall it runs nowhere.
      "f-label-too-early": { "pre-install": [] },
    });
    assert.match(String(parseOn("10.0.0.300")), /not an IP/);
  });

  it("on: picks removed hosts by their recorded roles and labels at PreClean", () => {
    const plugins = `---
kind: Plugin
metadata: { name: drain }
spec: { type: SHELL, action: PreClean, on: "sealer-test=true", data: ls }
---
kind: Plugin
metadata: { name: after }
spec: { type: SHELL, action: PostClean, on: master, data: ls }
`;
    const image = baseImage({ apps: [], launch: {} });
    const before = { cluster: loadClusterfile(cluster() + plugins).spec, image };
    const applied = installed(before);
    (applied.hosts["10.0.0.10"] as { labels?: Record<string, string> }).labels = { "sealer-test": "true" };
    const without = cluster().replace("    - { ips: [ 10.0.0.10, 10.0.0.11 ], roles: [ node ] }\n", "");
    const steps = plan({ cluster: loadClusterfile(without + plugins).spec, image }, applied).steps;
    // Only the labelled worker is drained; "after" selects masters, and no master is removed.
    assert.deepEqual(
      steps.filter((s) => s.kind === "hook").map((s) => `${s.id} ${s.hosts.join(",")}`),
      ["hook:pre-clean-host:drain:10.0.0.10 10.0.0.10"],
    );
  });

  it("HOSTNAME renames each listed host before kubeadm, whatever its action says", () => {
    const got = hooks(
      cluster() +
        `---\nkind: Plugin\nmetadata: { name: names }\nspec:\n  type: HOSTNAME\n  action: PostInstall\n  data: |\n    10.0.0.3 m2\n    10.0.0.11 w2\n    garbage line here\n`,
    );
    assert.deepEqual(got, { names: { "pre-init-host": ["10.0.0.3", "10.0.0.11"] } });
  });

  it("LABEL and TAINT plugins act on the IPs their data lists", () => {
    const got = hooks(
      cluster() + `---\nkind: Plugin\nmetadata: { name: LABEL }\nspec:\n  data: |\n    10.0.0.10 ssd=true\n`,
    );
    assert.deepEqual(got, { LABEL: { "post-install": ["10.0.0.10"] } });
  });

  it("an out-of-tree plugin type is refused with the reason", () => {
    assert.match(
      rejected(
        cluster() +
          "---\nkind: Plugin\nmetadata: { name: x }\nspec: { type: LIST_NODE, action: PostInstall }\n",
      ),
      /spec.type: "LIST_NODE" is not a built-in plugin type .*Go plugins \(.so\) are not supported/,
    );
  });

  it("ssh.encrypted: sealer's AES form is decoded; anything else is refused at its path", () => {
    // Computed with openssl from sealer's key (utils/hash/aes.go): enc -aes-256-cbc -K key -iv key[:16] | base64.
    assert.equal(decryptSealerPasswd("z6YOXQnSv41NttYEGQpyJw=="), "Seadent123");
    assert.equal(decryptSealerPasswd(encryptSealerPasswd("p@ss wörd")), "p@ss wörd");
    const { spec } = loadClusterfile(
      cluster("sealer.io/v2", "  ssh: { encrypted: true, passwd: z6YOXQnSv41NttYEGQpyJw== }\n"),
    );
    assert.equal(spec.ssh.passwd?.reveal(), "Seadent123");
    assert.match(
      rejected(cluster("sealer.io/v2", "  ssh: { encrypted: true, passwd: plain }\n")),
      /Clusterfile:6 spec.ssh.passwd: encrypted is true but this is not a password sealer encrypted/,
    );
  });

  it("an unquoted ****** password says to quote it, at its line", () => {
    assert.match(
      rejected(cluster("sealer.io/v2", "  ssh: { passwd: ****** }\n")),
      /^Clusterfile:6: YAML syntax error: \*{6} refers to an anchor &\*{5} that is not defined before it; a value that starts with \* must be quoted/,
    );
  });

  it("later problems about the image can name its line (whereInClusterfile)", () => {
    const { spec } = loadClusterfile(cluster());
    assert.equal(whereInClusterfile(spec, ["spec", "image"]), "Clusterfile:5 spec.image");
  });

  it("a bad spec.image is reported at its line", () => {
    assert.match(
      rejected(cluster().replace("app:1", "Bad::1")),
      /Clusterfile:5 spec.image: "Bad::1" is not an image reference/,
    );
  });

  it("refuses an alias bomb and absurd nesting instead of exhausting memory", () => {
    const bomb = ["a: &a [x,x,x,x,x,x,x,x,x,x]"]
      .concat(
        "bcdefg".split("").map((l, i) => `${l}: &${l} [${Array(10).fill(`*${"abcdefg"[i]}`).join(",")}]`),
      )
      .join("\n");
    assert.match(
      rejected(cluster() + "---\nkind: ClusterConfiguration\n" + bomb + "\n"),
      /aliases \(\*name\) expand to too many nodes/,
    );
    assert.match(
      rejected(
        cluster() + "---\nkind: ClusterConfiguration\nx: " + "[".repeat(5000) + "]".repeat(5000) + "\n",
      ),
      /nested more than 100 levels deep/,
    );
  });
});

import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { newToken } from "../../provider/core/kube/join";
import { removeClusterHostsBlocksCmd, setHostsBlockCmd } from "../../provider/core/runtime/hosts-file";
import { labelTaintCmds, parseJoinOutput } from "../../provider/core/kube/commands";
import { registryClientCmd, startRegistryCmd, registryLayout } from "../../provider/core/runtime/registry";

describe("runtime: shell fragments run on the nodes", () => {
  it("parses kubeadm's join output (continued lines)", () => {
    const out = `You can now join ...\n\n  kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:${"a".repeat(64)} \\\n\t--control-plane --certificate-key ${"b".repeat(64)}\n`;
    assert.deepEqual(parseJoinOutput(out), {
      token: "abcdef.0123456789abcdef",
      caCertHash: `sha256:${"a".repeat(64)}`,
      certificateKey: "b".repeat(64),
    });
    assert.deepEqual(parseJoinOutput("nothing here"), {});
  });

  it("bootstrap tokens have kubeadm's format", () => {
    for (let i = 0; i < 20; i++) assert.match(newToken(), /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  });

  const cases: Array<[string, Parameters<typeof labelTaintCmds>, string[]]> = [
    ["nothing to do", ["n1", { labels: {}, taints: [] }], []],
    [
      "labels set with overwrite, quoted",
      ["n1", { labels: { disk: "ssd", "node-role.kubernetes.io/worker": "" }, taints: [] }],
      ["kubectl label node n1 --overwrite disk=ssd node-role.kubernetes.io/worker="],
    ],
    [
      "removed labels are removed",
      ["n1", { labels: { a: "1" }, taints: [] }, { labels: { a: "0", b: "x" }, taints: [] }],
      ["kubectl label node n1 --overwrite a=1 b-"],
    ],
    [
      "taints added, explicit removal tolerated",
      ["n1", { labels: {}, taints: ["k=v:NoSchedule", "old:NoExecute-"] }],
      [
        "kubectl taint node n1 --overwrite k=v:NoSchedule",
        "kubectl taint node n1 old:NoExecute- 2>/dev/null || true",
      ],
    ],
    [
      "taints dropped from the Clusterfile are removed",
      ["n1", { labels: {}, taints: [] }, { labels: {}, taints: ["k=v:NoSchedule"] }],
      ["kubectl taint node n1 k:NoSchedule- 2>/dev/null || true"],
    ],
    [
      "a kept taint is not removed",
      ["n1", { labels: {}, taints: ["k=w:NoSchedule"] }, { labels: {}, taints: ["k=v:NoSchedule"] }],
      ["kubectl taint node n1 --overwrite k=w:NoSchedule"],
    ],
    [
      "odd label values are shell-quoted",
      ["n 1", { labels: { note: "a b'c" }, taints: [] }],
      [`kubectl label node 'n 1' --overwrite 'note=a b'\\''c'`],
    ],
  ];
  for (const [name, args, want] of cases)
    it(`labels/taints: ${name}`, () => assert.deepEqual(labelTaintCmds(...args), want));

  it("/etc/hosts blocks are replaced and removed exactly (run with sh)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-hosts-"));
    const f = path.join(dir, "hosts");
    try {
      fs.writeFileSync(f, "127.0.0.1 localhost\n10.0.0.9 keep.me\n");
      const run = (cmd: string) => execFileSync("sh", ["-c", cmd]);
      run(setHostsBlockCmd("c1", "registry", [{ ip: "10.0.0.2", names: ["sea.hub"] }], f));
      run(setHostsBlockCmd("c1", "apiserver", [{ ip: "10.0.0.2", names: ["apiserver.cluster.local"] }], f));
      run(setHostsBlockCmd("c1", "registry", [{ ip: "10.0.0.3", names: ["sea.hub", "r.local"] }], f));
      run(setHostsBlockCmd("c2", "registry", [{ ip: "10.1.0.2", names: ["sea.hub"] }], f));
      assert.equal(
        fs.readFileSync(f, "utf8"),
        [
          "127.0.0.1 localhost",
          "10.0.0.9 keep.me",
          "# BEGIN sealer:c1:apiserver",
          "10.0.0.2 apiserver.cluster.local",
          "# END sealer:c1:apiserver",
          "# BEGIN sealer:c1:registry",
          "10.0.0.3 sea.hub r.local",
          "# END sealer:c1:registry",
          "# BEGIN sealer:c2:registry",
          "10.1.0.2 sea.hub",
          "# END sealer:c2:registry",
          "",
        ].join("\n"),
      );
      run(removeClusterHostsBlocksCmd("c1", f));
      assert.equal(
        fs.readFileSync(f, "utf8"),
        "127.0.0.1 localhost\n10.0.0.9 keep.me\n# BEGIN sealer:c2:registry\n10.1.0.2 sea.hub\n# END sealer:c2:registry\n",
      );
      run(setHostsBlockCmd("c2", "registry", [], f));
      assert.equal(fs.readFileSync(f, "utf8"), "127.0.0.1 localhost\n10.0.0.9 keep.me\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("registry client and start commands", () => {
    const c = registryClientCmd({
      domain: "sea.hub",
      port: 5000,
      caCert: "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
    });
    assert.match(c, /mkdir -p \/etc\/containerd\/certs\.d\/sea\.hub:5000 && printf '%s' '-----BEGIN/);
    assert.match(c, /mkdir -p \/etc\/docker\/certs\.d\/sea\.hub:5000 && printf '%s' '-----BEGIN/);
    assert.match(c, /server = "https:\/\/sea\.hub:5000"/);
    // Original names resolve through the cluster's registry (a mirror hosts.toml per public registry).
    assert.match(c, /server = "https:\/\/registry-1\.docker\.io"\n\n\[host\."https:\/\/sea\.hub:5000"\]/);
    const s = startRegistryCmd({
      rootfs: "/var/lib/sealer/c/rootfs",
      layout: registryLayout("/var/lib/sealer/c", true),
      listen: "10.0.0.2:5000",
      domain: "sea.hub",
      port: 5000,
    });
    assert.match(s, /REGISTRY_HTPASSWD=\/var\/lib\/sealer\/c\/registry\/htpasswd/);
    assert.match(s, /REGISTRY_DATA_DIR=\/var\/lib\/sealer\/c\/rootfs\/registry/);
    assert.match(s, /sh scripts\/init-registry\.sh/);
  });
});

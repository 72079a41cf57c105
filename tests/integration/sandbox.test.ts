/**
 * The sandbox base image's stand-ins on real local nodes: they answer like the real tools
 * (init prints a join command, join is refused on a wrong token / CA hash / certificate key,
 * kubectl lists the joined nodes) and journal every call as valid JSON.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { execInNode, type LocalNode } from "../../provider/core/infra/local";
import { useNodes } from "../harness/nodes";
import { repoRoot } from "../harness/registry";

describe("integration: sandbox base image stand-ins", function () {
  this.timeout(120_000);
  const nodes = useNodes(2);
  // The stand-ins are copied into each node: the checkout may sit under /tmp, which is private
  // to every node, so the repository path itself is not visible inside them.
  const bin = "/opt/sealer-sandbox-test/bin";
  const sh = async (n: LocalNode, cmd: string) => execInNode(n, `export PATH=${bin}:$PATH; ${cmd}`);
  before(async () => {
    const tgz = execFileSync("tar", [
      "-czf",
      "-",
      "-C",
      path.join(repoRoot(), "examples/sandbox-base/bin"),
      ".",
    ]);
    for (const n of nodes.list) {
      const r = await execInNode(
        n,
        `mkdir -p ${bin} && echo ${tgz.toString("base64")} | base64 -d | tar -xzf - -C ${bin}`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
  });
  let token = "";
  let hash = "";

  it("kubeadm init starts the fake API server and prints the join commands", async () => {
    const [m] = nodes.list as [LocalNode, LocalNode];
    const cfg = [
      "apiVersion: kubeadm.k8s.io/v1beta3",
      "kind: InitConfiguration",
      "bootstrapTokens:",
      "  - token: abcdef.0123456789abcdef",
      "certificateKey: " + "c".repeat(64),
      "localAPIEndpoint:",
      `  advertiseAddress: ${m.ip}`,
      "nodeRegistration:",
      "  name: master-a",
      "---",
      "kind: ClusterConfiguration",
      "kubernetesVersion: v1.29.0",
      "",
    ].join("\n");
    const r = await sh(
      m,
      `mkdir -p /tmp/k && printf '%s' '${cfg}' > /tmp/k/init.yaml && echo "${m.ip} apiserver.cluster.local" >> /etc/hosts && kubeadm init --config /tmp/k/init.yaml --upload-certs`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Your Kubernetes control-plane has initialized successfully!/);
    token = /--token (\S+)/.exec(r.stdout)?.[1] ?? "";
    hash = /--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1] ?? "";
    assert.equal(token, "abcdef.0123456789abcdef", "the token from the config is used");
    assert.ok(hash);
    assert.match(r.stdout, new RegExp(`--control-plane --certificate-key ${"c".repeat(64)}`));
    const again = await sh(m, "kubeadm init --config /tmp/k/init.yaml");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /kube-apiserver\.yaml already exists/);
    const nodesOut = await sh(m, "kubectl get nodes");
    assert.match(
      nodesOut.stdout,
      /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\nmaster-a\s+Ready\s+control-plane\s+\S+\s+v1\.29\.0\n$/,
    );
  });

  it("kubeadm join is refused with a wrong token, CA hash or certificate key, and accepted with the right ones", async () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    await sh(w, `echo "${m.ip} apiserver.cluster.local" >> /etc/hosts`);
    const join = (args: string) =>
      sh(w, `kubeadm join apiserver.cluster.local:6443 --node-name worker-b ${args}`);
    const bad = await join(`--token zzzzzz.zzzzzzzzzzzzzzzz --discovery-token-ca-cert-hash ${hash}`);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /couldn't validate the identity of the API Server: invalid bootstrap token zzzzzz/,
    );
    const badHash = await join(`--token ${token} --discovery-token-ca-cert-hash sha256:${"0".repeat(64)}`);
    assert.equal(badHash.code, 1);
    assert.match(badHash.stderr, /none of the public keys/);
    const badKey = await join(
      `--token ${token} --discovery-token-ca-cert-hash ${hash} --control-plane --certificate-key ${"d".repeat(64)}`,
    );
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /certificate key is invalid or expired/);
    const ok = await join(`--token ${token} --discovery-token-ca-cert-hash ${hash}`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /This node has joined the cluster/);
    const twice = await join(`--token ${token} --discovery-token-ca-cert-hash ${hash}`);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /kubelet\.conf already exists/);
  });

  it("kubectl lists joined nodes, labels and taints them; token create gives a working join command", async () => {
    const [m] = nodes.list as [LocalNode, LocalNode];
    assert.equal((await sh(m, "kubectl label node worker-b disk=ssd gone- --overwrite")).code, 0);
    assert.equal((await sh(m, "kubectl taint node worker-b k=v:NoSchedule other:NoExecute")).code, 0);
    assert.equal((await sh(m, "kubectl taint node worker-b other:NoExecute-")).code, 0);
    const j = JSON.parse((await sh(m, "kubectl get nodes -o json")).stdout) as {
      items: Array<{ name: string; labels: Record<string, string>; taints: string[] }>;
    };
    const w = j.items.find((n) => n.name === "worker-b");
    assert.equal(w?.labels.disk, "ssd");
    assert.deepEqual(w?.taints, ["k=v:NoSchedule"]);
    assert.match((await sh(m, "kubectl get nodes -o name")).stdout, /^node\/master-a\nnode\/worker-b\n$/);
    const t = await sh(m, "kubeadm token create q1w2e3.r4t5y6u7i8o9p0a1 --print-join-command");
    assert.equal(
      t.stdout.trim(),
      `kubeadm join apiserver.cluster.local:6443 --token q1w2e3.r4t5y6u7i8o9p0a1 --discovery-token-ca-cert-hash ${hash}`,
    );
    const missing = await sh(m, "kubectl label node nope a=b");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Error from server: nodes nope not found/);
  });

  it("journals every call as one JSON line with argv, cwd and the exported env keys", async () => {
    const [m] = nodes.list as [LocalNode, LocalNode];
    await sh(
      m,
      `cd /tmp && export SEALER_ENV_KEYS="Odd Plain" Odd='a "q" \\ b
c' Plain=x && kubelet --version --weird='x"y'`,
    );
    const lines = (await execInNode(m, "cat /var/log/sealer-sandbox/journal.jsonl")).stdout
      .trim()
      .split("\n");
    const last = JSON.parse(lines[lines.length - 1]!) as {
      tool: string;
      argv: string[];
      cwd: string;
      env: Record<string, string>;
    };
    assert.deepEqual(last.argv, ["--version", `--weird=x"y`]);
    assert.equal(last.tool, "kubelet");
    assert.equal(last.cwd, "/tmp");
    assert.deepEqual(last.env, { Odd: 'a "q" \\ b\nc', Plain: "x" });
    for (const l of lines) JSON.parse(l);
    const wl = (await execInNode(nodes.list[1]!, "cat /var/log/sealer-sandbox/journal.jsonl")).stdout
      .trim()
      .split("\n");
    const joins = wl
      .map((l) => JSON.parse(l) as { tool: string; argv: string[] })
      .filter((l) => l.tool === "kubeadm" && l.argv[0] === "join");
    assert.equal(joins.length, 5, "refused joins are journaled too");
  });

  it("kubeadm reset stops the API server", async () => {
    const [m] = nodes.list as [LocalNode, LocalNode];
    assert.equal((await sh(m, "kubeadm reset -f")).code, 0);
    const r = await sh(m, `curl -s --max-time 2 http://${m.ip}:6443/healthz || echo down`);
    assert.equal(r.stdout.trim(), "down");
  });
});

/**
 * Parts of the install pipeline beyond the main create/re-apply flow (apply.test.ts), on a
 * small cluster (1 master + 1 worker; a non-root user whose sudo asks for its password):
 * registry credentials (htpasswd) and TLS from the cluster CA, Config documents, the Cluster
 * `cmd` overriding the image's launch, the apply lock, the Clusterfile saved in the cluster.
 */
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { applyCluster, deleteCluster } from "../../provider/core/apply";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { execInNode, type LocalNode } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import { useNodes } from "../harness/nodes";
import { repoRoot, tempDir } from "../harness/registry";
import { buildSandboxBase } from "../harness/sandbox";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

describe("integration: install pipeline details (registry auth, Config, cmd, lock)", function () {
  this.timeout(240_000);
  const nodes = useNodes(2, { sudoUser: { name: "ops", password: "ops-pass-1", nopasswd: false } });
  let home: string;
  let store: OciLayout;
  let stateDir: string;

  const clusterfile = (workerLabels = "{}"): string => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    return `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: pipe }
spec:
  image: sandbox-app:1
  cmd: [ "kubectl apply -f application/apps/web/web.yaml", "echo cmd-ran > /var/lib/sealer-sandbox/cmd.txt" ]
  ssh: { user: ops, passwd: ops-pass-1, pk: ${m.keyPath} }
  hosts:
    - { ips: [ ${m.ip} ], roles: [ master ] }
    - { ips: [ ${w.ip} ], roles: [ node ], labels: ${workerLabels} }
  registry:
    localRegistry: { domain: reg.pipe.local, port: 5443, ha: false, username: admin, password: s3cret-pass }
---
apiVersion: sealer.io/v1
kind: Config
metadata: { name: web-replicas }
spec:
  path: application/apps/web/web.yaml
  strategy: merge
  data: |
    spec:
      replicas: 5
`;
  };
  const spec = (): ClusterSpec => loadClusterfile(clusterfile(), { file: "pipe.yaml" }).spec;

  before(async function () {
    this.timeout(120_000);
    home = tempDir("pipeline-home");
    stateDir = path.join(home, "clusters", "pipe");
    store = new OciLayout(dataPaths.store(home));
    const root = repoRoot();
    await buildSandboxBase(home);
    await buildImage({
      context: path.join(root, "examples/app"),
      tag: "sandbox-app:1",
      home,
      buildMode: "lite",
    });
  });
  after(async () => {
    if (home) await fs.promises.rm(home, { recursive: true, force: true });
  });

  const apply = () =>
    applyCluster({
      spec: spec(),
      store,
      stateDir,
      knownHostsFile: nodes.knownHostsFile,
      ssh: { dialAttempts: 2 },
    });

  it("a second apply while the lock is held is refused, naming the holder", async () => {
    const [m] = nodes.list as [LocalNode, LocalNode];
    const owner = JSON.stringify({
      machine: "other-host",
      pid: 4242,
      user: "ops",
      since: "2026-01-01T00:00:00Z",
      command: "apply",
    });
    await execInNode(
      m,
      `mkdir -p /var/lib/sealer/pipe/apply.lock && printf '%s' '${owner}' > /var/lib/sealer/pipe/apply.lock/owner.json`,
    );
    await assert.rejects(
      apply(),
      /cluster pipe is locked on .* by apply by ops@other-host \(pid 4242\) since 2026-01-01T00:00:00Z\. Wait for it to finish; if that process is gone, remove the stale lock with `ssh ops@[\d.]+ rm -rf \/var\/lib\/sealer\/pipe\/apply\.lock`/,
    );
    await execInNode(m, "rm -rf /var/lib/sealer/pipe/apply.lock");
  });

  it("installs with an authenticated TLS registry, the Config merged, and the Cluster cmd instead of the image's apps", async () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const res = await apply();
    const kinds = res.ran.map((s) => s.kind);
    assert.ok(kinds.includes("launch-cmds") && !kinds.includes("launch-app"), kinds.join(", "));
    assert.deepEqual(
      res.ran.filter((s) => s.kind === "registry").map((s) => s.hosts),
      [[m.ip]],
      "ha: false runs the registry on master0 only",
    );
    // From the worker: the domain resolves to master0, TLS verifies with the cluster CA, auth is required.
    const curl = (auth: string) =>
      execInNode(
        w,
        `curl -s -o /dev/null -w '%{http_code}' ${auth} --cacert /etc/containerd/certs.d/reg.pipe.local:5443/ca.crt https://reg.pipe.local:5443/v2/`,
      );
    assert.equal((await curl("")).stdout, "401");
    assert.equal((await curl("-u admin:wrong")).stdout, "401");
    assert.equal((await curl("-u admin:s3cret-pass")).stdout, "200");
    // Every node holds the pull credentials for kubelet (0600, root), and a node reaches the
    // registry's catalog with nothing but its own files: the CA from certs.d, the auth from config.json.
    const wantAuth = Buffer.from("admin:s3cret-pass").toString("base64");
    for (const n of [m, w]) {
      const f = await execInNode(
        n,
        "stat -c '%a %U' /var/lib/kubelet/config.json && cat /var/lib/kubelet/config.json",
      );
      const [st, ...json] = f.stdout.split("\n");
      assert.equal(st, "600 root", `${n.ip}: config.json mode/owner`);
      assert.deepEqual(JSON.parse(json.join("\n")), { auths: { "reg.pipe.local:5443": { auth: wantAuth } } });
      const cat = await execInNode(
        n,
        `curl -s -w ' %{http_code}' -H "Authorization: Basic $(sed -n 's/.*"auth": *"\\([^"]*\\)".*/\\1/p' /var/lib/kubelet/config.json)" --cacert /etc/containerd/certs.d/reg.pipe.local:5443/ca.crt https://reg.pipe.local:5443/v2/_catalog`,
      );
      assert.match(cat.stdout, /^\{"repositories":\[.*\]\}\n? 200$/, `${n.ip}: ${cat.stdout}`);
    }
    assert.match(
      (await execInNode(w, "cat /etc/hosts")).stdout,
      new RegExp(
        `# BEGIN sealer:pipe:registry\\n${m.ip.replace(/\./g, "\\.")} reg\\.pipe\\.local\\n# END sealer:pipe:registry`,
      ),
    );
    // The Config document merged into the app manifest on every node.
    for (const n of [m, w])
      assert.match(
        (await execInNode(n, "cat /var/lib/sealer/pipe/rootfs/application/apps/web/web.yaml")).stdout,
        /replicas: 5/,
      );
    assert.equal((await execInNode(m, "cat /var/lib/sealer-sandbox/cmd.txt")).stdout, "cmd-ran\n");
    // The Clusterfile went to master0 (no secrets) and into kube-system/sealer-clusterfile.
    const saved = (await execInNode(m, "cat /var/lib/sealer/pipe/Clusterfile")).stdout;
    assert.match(saved, /name: pipe/);
    assert.ok(!saved.includes("s3cret-pass"), "no registry password in the cluster copy");
    const objs = (
      await execInNode(
        m,
        `curl -s -H "Authorization: Bearer $(sed -n 's/^ *token: *//p' /etc/kubernetes/admin.conf)" http://${m.ip}:6443/objects`,
      )
    ).stdout;
    assert.ok(
      (JSON.parse(objs) as { items: Array<{ source: string }> }).items.some(
        (o) => o.source === "<stdin>" || /tmp\./.test(o.source),
      ),
    );
    // The password never reached a log line: the state holds no plain registry password either.
    assert.ok(!fs.readFileSync(path.join(stateDir, "state.json"), "utf8").includes("s3cret-pass"));
    // Commands ran as root through password sudo.
    const journal = (await execInNode(m, "cat /var/log/sealer-sandbox/journal.jsonl")).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { tool: string; uid: number; argv: string[] });
    assert.ok(journal.some((l) => l.tool === "kubeadm" && l.argv[0] === "init" && l.uid === 0));
    assert.equal(fs.statSync(path.join(stateDir, "clusterfile.yaml")).mode & 0o777, 0o600);
  });

  it("re-applies nothing, and the lock is released", async () => {
    const res = await apply();
    assert.deepEqual(res.ran, []);
    const [m] = nodes.list as [LocalNode, LocalNode];
    assert.equal(
      (
        await execInNode(m, "test -e /var/lib/sealer/pipe/apply.lock && echo held || echo free")
      ).stdout.trim(),
      "free",
    );
  });
  it("sealer apply -f --json (the CLI) prints what ran", async () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const file = path.join(home, "pipe.yaml");
    fs.writeFileSync(file, clusterfile("{ zone: a }"), { mode: 0o600 });
    fs.copyFileSync(nodes.knownHostsFile, path.join(home, "known_hosts"));
    const cli = async () => {
      const { stdout } = await execFileP(
        process.execPath,
        [path.join(repoRoot(), "bin/sealer.js"), "apply", "-f", file, "--json"],
        {
          env: { ...process.env, SEALER_HOME: home },
        },
      );
      return JSON.parse(stdout) as {
        cluster: string;
        steps: Array<{ kind: string; hosts: string[]; reason: string }>;
      };
    };
    const out = await cli();
    assert.equal(out.cluster, "pipe");
    assert.deepEqual(
      out.steps.map((s) => [s.kind, s.hosts]),
      [
        ["node-labels", [w.ip]],
        ["save-clusterfile", [m.ip]],
      ],
    );
    assert.match(out.steps[0]!.reason, /labels/);
    assert.deepEqual((await cli()).steps, []);
  });

  it("delete removes the registry pull credentials from every node", async () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const exists = async (n: LocalNode) =>
      (await execInNode(n, "test -e /var/lib/kubelet/config.json && echo there || echo gone")).stdout.trim();
    for (const n of [m, w]) assert.equal(await exists(n), "there", `${n.ip} before delete`);
    const r = await deleteCluster({ spec: spec(), store, stateDir, knownHostsFile: nodes.knownHostsFile });
    assert.deepEqual(r.skipped, []);
    for (const n of [m, w]) assert.equal(await exists(n), "gone", n.ip);
  });
});

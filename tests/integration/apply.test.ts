/**
 * The install pipeline end to end (issue 5 "Done means"): real image builds, real sshd nodes in
 * network namespaces (3 masters + 2 workers), the sandbox base image whose kubeadm/kubectl
 * stand-ins journal every call on the node, a real registry (Debian's docker-registry) with TLS
 * from the cluster CA. One cluster is shared by the ordered `it`s below.
 */
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { ApplyError, applyCluster, type ApplyResult } from "../../provider/core/apply";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { regenerateHostKey, startSshd, type LocalNode } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import { forgetHostKey } from "../../provider/core/ssh";
import { useNodes } from "../harness/nodes";
import { repoRoot, tempDir } from "../harness/registry";
import { type JournalEntry, applyQuick, buildSandboxBase, journal, nodeSh } from "../harness/sandbox";

const execFileP = promisify(execFile);

/** Nodes are copy-on-write over this machine's /var: only lines written since this file started count. */
const since = Date.now() / 1000;

/** Kills only the sshd processes of a node (listener and sessions): the node "loses" SSH. */
async function killSshd(n: LocalNode): Promise<void> {
  const { stdout } = await execFileP("ip", ["netns", "pids", n.netns]);
  for (const pid of stdout
    .split("\n")
    .map(Number)
    .filter((p) => p > 0)) {
    const comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    if (comm === "sshd") process.kill(pid, "SIGKILL");
  }
}

describe("integration: apply a cluster image onto 3 masters + 2 workers (sandbox image)", function () {
  this.timeout(300_000);
  const nodes = useNodes(5, { sudoUser: { name: "deploy", nopasswd: true } });
  const root = repoRoot();
  let home: string;
  let appCtx: string;
  let store: OciLayout;
  let stateDir: string;
  let baseLayers: string[] = [];
  let appLayers: string[] = [];

  const spec = (env: string[]): ClusterSpec => {
    const [m0, m1, m2, w1, w2] = nodes.list;
    const text = [
      "apiVersion: sealer.io/v2",
      "kind: Cluster",
      "metadata: { name: itest }",
      "spec:",
      "  image: sandbox-app:1",
      `  env: [ ${env.map((e) => JSON.stringify(e)).join(", ")} ]`,
      `  ssh: { user: deploy, pk: ${m0!.keyPath} }`,
      "  hosts:",
      `    - { ips: [ ${m0!.ip}, ${m1!.ip}, ${m2!.ip} ], roles: [ master ] }`,
      `    - { ips: [ ${w1!.ip}, ${w2!.ip} ], roles: [ node ], labels: { disk: ssd }, taints: [ "dedicated=batch:NoSchedule" ] }`,
      "",
    ].join("\n");
    return loadClusterfile(text, { file: "itest.yaml" }).spec;
  };
  const apply = (
    s: ClusterSpec,
    extra: Partial<Parameters<typeof applyCluster>[0]> = {},
  ): Promise<ApplyResult> =>
    applyQuick({ spec: s, store, stateDir, knownHostsFile: nodes.knownHostsFile, ...extra });

  before(async function () {
    this.timeout(300_000);
    home = tempDir("apply-home");
    stateDir = path.join(home, "clusters", "itest");
    store = new OciLayout(dataPaths.store(home));
    const base = await buildSandboxBase(home);
    baseLayers = base.layers.map((l) => l.digest);
    appCtx = tempDir("apply-app");
    fs.cpSync(path.join(root, "examples/app"), appCtx, { recursive: true });
    const app = await buildImage({ context: appCtx, tag: "sandbox-app:1", home, buildMode: "lite" });
    appLayers = app.layers.map((l) => l.digest);
  });
  after(async () => {
    if (home) await fs.promises.rm(home, { recursive: true, force: true });
    if (appCtx) await fs.promises.rm(appCtx, { recursive: true, force: true });
  });

  it("creates the cluster: init once on master0, masters joined in order, workers joined, apps launched", async () => {
    const res = await apply(spec(["Greeting=hello"]));
    const [m0, m1, m2, w1, w2] = nodes.list as [LocalNode, LocalNode, LocalNode, LocalNode, LocalNode];
    assert.ok(res.ran.length > 20, `ran ${res.ran.length} steps`);
    assert.equal(res.stats.sentBlobs, 5 * appLayers.length);
    assert.ok(
      baseLayers.every((d) => appLayers.includes(d)),
      "the app image reuses the base layers",
    );

    const j = await Promise.all(nodes.list.map((n) => journal(n, since)));
    const inits = j.map((lines) => lines.filter((l) => l.tool === "kubeadm" && l.argv[0] === "init"));
    assert.equal(inits[0]!.length, 1, "kubeadm init once on master0");
    assert.deepEqual(
      inits.slice(1).map((x) => x.length),
      [0, 0, 0, 0],
    );
    assert.equal(inits[0]![0]!.uid, 0, "run as root through sudo for the deploy user");
    assert.equal(inits[0]![0]!.env.Greeting, "hello");
    const joinOf = (lines: JournalEntry[]) =>
      lines.filter((l) => l.tool === "kubeadm" && l.argv[0] === "join");
    const mj = [joinOf(j[1]!), joinOf(j[2]!)];
    assert.deepEqual(
      mj.map((x) => x.length),
      [1, 1],
    );
    assert.ok(mj[0]![0]!.ts < mj[1]![0]!.ts, "master 2 joined before master 3");
    assert.deepEqual([joinOf(j[3]!).length, joinOf(j[4]!).length], [1, 1]);

    // The fake API server on master0 saw the nodes in that order, with labels and taints.
    const got = JSON.parse(
      await nodeSh(m0, `PATH=/var/lib/sealer/itest/rootfs/bin:$PATH kubectl get nodes -o json`),
    ) as {
      items: Array<{
        name: string;
        ip: string;
        seq: number;
        labels: Record<string, string>;
        taints: string[];
      }>;
    };
    const byIp = new Map(got.items.map((n) => [n.ip, n]));
    assert.deepEqual(
      [m0, m1, m2].map((n) => byIp.get(n.ip)?.seq),
      [1, 2, 3],
    );
    for (const w of [w1, w2]) {
      const n = byIp.get(w.ip);
      assert.ok(n, `worker ${w.ip} joined`);
      assert.equal(n.name, w.name);
      assert.equal(n.labels.disk, "ssd");
      assert.equal(n.labels["node-role.kubernetes.io/worker"], "");
      assert.deepEqual(n.taints, ["dedicated=batch:NoSchedule"]);
    }
    // Apps: web's manifests applied (cwd = rootfs), then setup.sh ran once on master0.
    const kubectlApplies = j[0]!.filter(
      (l) => l.tool === "kubectl" && l.argv[0] === "apply" && l.argv[2]?.startsWith("application/"),
    );
    assert.deepEqual(kubectlApplies.map((l) => l.argv[2]).sort(), [
      "application/apps/web/service.yaml",
      "application/apps/web/web.yaml",
    ]);
    assert.ok(kubectlApplies.every((l) => l.cwd === "/var/lib/sealer/itest/rootfs"));
    assert.match(
      await nodeSh(m0, "cat /var/lib/sealer-sandbox/setup.log"),
      /^setup ran in \/var\/lib\/sealer\/itest\/rootfs version=1\n$/,
    );
    // The registry runs on the masters with a certificate from the cluster CA, and a worker trusts it.
    const code = await nodeSh(
      w1,
      "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/containerd/certs.d/sea.hub:5000/ca.crt https://sea.hub:5000/v2/",
    );
    assert.equal(code, "200");
    // State: local (0600) and on master0; secrets never in the log-visible plan.
    assert.equal(fs.statSync(path.join(stateDir, "state.json")).mode & 0o777, 0o600);
    assert.ok(res.state.secrets?.token && res.state.secrets.kubeconfig);
    assert.equal(
      JSON.parse(await nodeSh(m0, "cat /var/lib/sealer/itest/state.json")).steps["init-master"].key,
      res.state.steps["init-master"]?.key,
    );
  });

  it("a second apply runs zero steps and sends no blob", async () => {
    const res = await apply(spec(["Greeting=hello"]));
    assert.deepEqual(res.ran, []);
    assert.equal(res.stats.sentBlobs, 0);
  });

  it("a changed app file rebuilds one layer; the apply sends only that blob and re-launches only that app", async () => {
    const f = path.join(appCtx, "web/web.yaml");
    fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace("replicas: 2", "replicas: 3"));
    const app = await buildImage({ context: appCtx, tag: "sandbox-app:1", home, buildMode: "lite" });
    const now = app.layers.map((l) => l.digest);
    const changed = now.filter((d) => !appLayers.includes(d));
    assert.equal(changed.length, 1, "exactly one layer digest changed");
    appLayers = now;
    const before0 = (await journal(nodes.list[0]!, since)).length;
    const res = await apply(spec(["Greeting=hello"]));
    assert.equal(res.stats.sentBlobs, 5, "one blob per host");
    const launches = res.ran.filter((s) => s.kind === "launch-app" || s.kind === "launch-cmds");
    assert.deepEqual(
      launches.map((s) => (s.kind === "launch-app" ? s.app : s.kind)),
      ["web"],
    );
    assert.ok(
      !res.ran.some((s) =>
        ["init-master", "join-master", "join-worker", "init-host", "container-runtime", "registry"].includes(
          s.kind,
        ),
      ),
      res.ran.map((s) => s.id).join(", "),
    );
    const after0 = (await journal(nodes.list[0]!, since)).slice(before0);
    assert.ok(
      after0.some(
        (l) => l.tool === "kubectl" && l.argv.join(" ") === "apply -f application/apps/web/web.yaml",
      ),
    );
    assert.equal(
      (await nodeSh(nodes.list[0]!, "cat /var/lib/sealer-sandbox/setup.log")).split("\n").filter(Boolean)
        .length,
      1,
      "setup did not run again",
    );
    assert.match(
      await nodeSh(nodes.list[0]!, "cat /var/lib/sealer/itest/rootfs/application/apps/web/web.yaml"),
      /replicas: 3/,
    );
    assert.deepEqual((await apply(spec(["Greeting=hello"]))).ran, []);
  });

  it("a changed env value re-renders only the files that use it", async () => {
    const conf = "/var/lib/sealer/itest/rootfs/etc/app.conf";
    const kubeadmYml = "/var/lib/sealer/itest/rootfs/etc/kubeadm.yml";
    const mtime = async (n: LocalNode, f: string) =>
      (await nodeSh(n, `stat -c %Y.%N ${f} 2>/dev/null || stat -c %Y ${f}`)).trim();
    const before = await Promise.all(nodes.list.map((n) => mtime(n, kubeadmYml)));
    const res = await apply(spec(["Greeting=bonjour"]));
    assert.equal(res.stats.sentBlobs, 0);
    for (const n of nodes.list) {
      assert.deepEqual(
        res.stats.rendered[n.ip],
        ["etc/app.conf"],
        `${n.ip} rendered ${res.stats.rendered[n.ip]}`,
      );
      assert.match(await nodeSh(n, `cat ${conf}`), /greeting = "bonjour"/);
    }
    assert.deepEqual(
      await Promise.all(nodes.list.map((n) => mtime(n, kubeadmYml))),
      before,
      "etc/kubeadm.yml untouched",
    );
    assert.ok(
      !res.ran.some((s) => s.kind === "launch-app" || s.kind === "init-master"),
      res.ran.map((s) => s.id).join(", "),
    );
  });

  it("a changed host key is refused with how to accept it", async () => {
    const w2 = nodes.list[4]!;
    nodes.update(await regenerateHostKey(w2));
    nodes.update(await startSshd(nodes.list[4]!));
    await assert.rejects(apply(spec(["Greeting=hallo"])), (err: Error) => {
      assert.match(err.message, new RegExp(`host key for ${w2.ip.replace(/\./g, "\\.")} has CHANGED`));
      assert.match(err.message, /sealer nodes forget-key/);
      return true;
    });
    // Accept the new key deliberately; the next apply finishes what is left.
    await forgetHostKey(nodes.knownHostsFile, w2.ip, w2.port);
    const res = await apply(spec(["Greeting=hallo"]));
    assert.ok(res.ran.some((s) => s.hosts.includes(w2.ip)));
    assert.deepEqual((await apply(spec(["Greeting=hallo"]))).ran, []);
  });

  it("killing a node's sshd mid-apply fails in bounded time naming host and step; the next apply runs only the rest", async () => {
    const w1 = nodes.list[3]!;
    let killed = false;
    const started = Date.now();
    let failure: ApplyError | undefined;
    try {
      await apply(spec(["Greeting=ciao"]), {
        parallelSteps: 1,
        onState: async () => {
          if (!killed) {
            killed = true;
            await killSshd(w1);
          }
        },
      });
    } catch (err) {
      failure = err as ApplyError;
    }
    const took = Date.now() - started;
    assert.ok(failure instanceof ApplyError, `apply failed with ApplyError (got ${failure})`);
    assert.ok(took < 90_000, `failed after ${took} ms`);
    assert.ok(failure.step.hosts.includes(w1.ip), `failed step ${failure.step.id} is on ${w1.ip}`);
    assert.match(failure.message, new RegExp(w1.ip.replace(/\./g, "\\.")));
    assert.match(failure.message, new RegExp(`step "?${failure.step.kind}`));
    const done = new Set(failure.ran.map((s) => s.id));
    assert.ok(done.size >= 1);

    nodes.update(await startSshd(nodes.list[3]!));
    const res = await apply(spec(["Greeting=ciao"]));
    assert.ok(res.ran.length > 0);
    assert.ok(
      res.ran.every((s) => !done.has(s.id)),
      `re-ran finished steps: ${res.ran.filter((s) => done.has(s.id)).map((s) => s.id)}`,
    );
    assert.ok(
      res.ran.some((s) => s.id === failure!.step.id),
      "the failed step ran",
    );
    assert.match(await nodeSh(w1, "cat /var/lib/sealer/itest/rootfs/etc/app.conf"), /greeting = "ciao"/);
    assert.deepEqual((await apply(spec(["Greeting=ciao"]))).ran, []);
  });
});

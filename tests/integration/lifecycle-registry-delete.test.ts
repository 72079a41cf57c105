/**
 * Cluster lifecycle on local nodes, part 2:
 *  - an external registry (docker-registry with TLS from a test CA and htpasswd auth, listening on
 *    the local nodes' bridge address so both this machine and the nodes reach it) receives the
 *    cluster image's cached container images; no registry is started on the cluster; every node
 *    trusts its CA and holds the credentials kubelet uses, and can pull a manifest with them;
 *  - `delete -a` after a `sealer apply` process was killed halfway (SIGKILL while a hook runs,
 *    one host's processes killed so it is unreachable): every reachable host is reset and its
 *    data root removed, the unreachable one is reported and skipped, the record is kept; with
 *    the host back, a second `delete -a` finishes and forgets the cluster;
 *  - an upgrade that fails on one worker (its upgrade-host hook exits non-zero) stops there with
 *    the cluster usable; running it again upgrades only what is left.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { applyCluster } from "../../provider/core/apply";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import {
  killNodeProcesses,
  parseSubnet,
  startSshd,
  subnetHost,
  type LocalNode,
} from "../../provider/core/infra/local";
import { UserError } from "../../provider/core/errors";
import { imageFacts } from "../../provider/core/image/facts";
import { deleteAll } from "../../provider/core/lifecycle/delete-all";
import { pushCachedImages } from "../../provider/core/lifecycle/external-registry";
import { upgradeCluster } from "../../provider/core/lifecycle/upgrade";
import { saveSettings } from "../../provider/core/registry/credentials";
import { pushImage } from "../../provider/core/registry/push";
import { useNodes } from "../harness/nodes";
import { journal, lifecycleCli as cli, nodeOut as sh } from "../harness/sandbox";
import { makeTestCa, makeTestImage, startRegistry, type TestRegistry } from "../harness/registry";
import { packageRoot } from "../../provider/core/package-info";
import { clusterYaml } from "../harness/clusterfile";
import { setEnv } from "../harness/env";

const repoRoot = (): string => packageRoot(__dirname);

/** docker-registry on ip:port with TLS and htpasswd (the nodes' bridge address: our own netns traffic only). */
async function startExternalRegistry(dir: string, ip: string, user: string, pass: string) {
  const tls = makeTestCa(path.join(dir, "tls"), "sealer external registry test CA", ip);
  const reg = await startRegistry({ ip, tls, htpasswd: { [user]: pass }, rootDir: path.join(dir, "data") });
  return { host: reg.host, ip, port: reg.port, caFile: tls.caFile, stop: reg.stop };
}

/** Spawns the sealer CLI (source or dist, whichever this test runs from) in its own process group. */
function spawnSealer(args: string[], env: NodeJS.ProcessEnv, logFile: string) {
  const main = path.join(__dirname, "..", "..", "provider", "cli", "main");
  const code = `require(${JSON.stringify(main)}).main(["node", "sealer", ...process.argv.slice(1)]).catch((e) => { process.stderr.write(String(e && e.message) + "\\n"); process.exit(1); })`;
  const pre = __filename.endsWith(".ts") ? ["-r", "tsx/cjs"] : [];
  const out = fs.openSync(logFile, "a");
  const child = spawn(process.execPath, [...pre, "-e", code, ...args], {
    cwd: repoRoot(),
    env,
    detached: true,
    stdio: ["ignore", out, out],
  });
  fs.closeSync(out);
  return child;
}

describe("cluster lifecycle: external registry, delete -a after a killed run, failed upgrade (integration, local nodes)", function () {
  this.timeout(600_000);
  const nodes = useNodes(3);
  let home: string;
  let work: string;
  let restoreEnv: (() => void) | undefined;
  let store: OciLayout;
  let src: TestRegistry;
  let ext: Awaited<ReturnType<typeof startExternalRegistry>>;
  let n1: LocalNode, n2: LocalNode, n3: LocalNode;
  const images: Record<string, string> = {};
  const USER = "harbor-robot";
  const PASS = `pw-${crypto.randomBytes(6).toString("hex")}`;

  before(async function () {
    this.timeout(300_000);
    work = await fs.promises.mkdtemp(path.join(os.tmpdir(), "sealer-life2-"));
    home = path.join(work, "home");
    restoreEnv = setEnv({ SEALER_HOME: home, DOCKER_CONFIG: path.join(work, "docker-config") });
    store = new OciLayout(path.join(home, "store"));
    [n1, n2, n3] = nodes.list as [LocalNode, LocalNode, LocalNode];
    // The source of the container images the app image caches (loopback).
    src = await startRegistry();
    const srcStore = new OciLayout(path.join(work, "src-store"));
    for (const name of ["team/web:1", "team/db:2"]) {
      const d = await makeTestImage(srcStore, name, { layers: [3000, 5000] });
      await pushImage(`${src.host}/${name}`, { store: srcStore, source: name, home, credentials: null });
      images[name] = d.digest;
    }
    const base = path.join(repoRoot(), "examples", "sandbox-base");
    await buildImage({ context: base, tag: "sandbox-base:v1.28.2", home, buildMode: "lite" });
    await buildImage({
      context: base,
      tag: "sandbox-base:v1.29.0",
      buildArgs: { KubeVersion: "v1.29.0" },
      home,
      buildMode: "lite",
    });
    const app = path.join(work, "app");
    fs.mkdirSync(path.join(app, "manifests"), { recursive: true });
    fs.writeFileSync(
      path.join(app, "manifests", "imageList"),
      `${src.host}/team/web:1\n${src.host}/team/db:2\n`,
    );
    fs.writeFileSync(path.join(app, "Kubefile"), "FROM sandbox-base:v1.28.2\nCOPY manifests manifests\n");
    await buildImage({ context: app, tag: "sandbox-app:1", home });
    // The external registry on the nodes' bridge address (this host's end of their subnet).
    const gw = subnetHost(parseSubnet(n1.subnet)!, 1);
    ext = await startExternalRegistry(path.join(work, "ext"), gw, USER, PASS);
    // What `sealer login --ca-file` records: the registry's CA, trusted for this registry only.
    await saveSettings(ext.host, { ca: fs.readFileSync(ext.caFile, "utf8") }, home);
  });
  after(async () => {
    await ext?.stop();
    await src?.stop();
    restoreEnv?.();
    if (work) await fs.promises.rm(work, { recursive: true, force: true });
  });

  const extClusterfile = () =>
    clusterYaml({
      name: "gext",
      image: "sandbox-app:1",
      pk: n1.keyPath,
      masters: [n1.ip],
      nodes: [n2.ip],
      spec: [
        "  registry:",
        `    externalRegistry: { domain: ${ext.ip}, port: ${ext.port}, username: ${USER}, password: ${PASS} }`,
      ],
    });
  /** n1 master, n2 node, on the sandbox base; the test adds n3 with its own roles. */
  const threeHosts = (name: string) => ({
    name,
    image: "sandbox-base:v1.28.2",
    pk: n1.keyPath,
    masters: [n1.ip],
    nodes: [n2.ip],
  });

  it("external registry: the cached images are pushed to it, no registry runs on the cluster, nodes trust it and hold the credentials", async () => {
    const spec = loadClusterfile(extClusterfile(), { file: "Clusterfile" }).spec;
    const res = await applyCluster({ spec, store, knownHostsFile: nodes.knownHostsFile });
    const reg = res.ran.filter((s) => s.kind === "registry");
    assert.deepEqual(
      reg.map((s) => s.hosts),
      [[n1.ip]],
    );
    assert.match(
      reg[0]!.reason,
      new RegExp(`push the image's container images to ${ext.ip.replace(/\./g, "\\.")}`),
    );
    // The external registry serves each image with the source digest (checked by skopeo, with the credentials).
    const certDir = path.join(work, "certs");
    fs.mkdirSync(certDir, { recursive: true });
    fs.copyFileSync(ext.caFile, path.join(certDir, "ca.crt"));
    for (const [name, digest] of Object.entries(images)) {
      const out = execFileSync("skopeo", [
        "inspect",
        "--raw",
        "--creds",
        `${USER}:${PASS}`,
        "--cert-dir",
        certDir,
        `docker://${ext.host}/${name}`,
      ]);
      assert.equal(`sha256:${crypto.createHash("sha256").update(out).digest("hex")}`, digest, name);
    }
    // Anonymous access is refused: the push really used the credentials.
    assert.throws(() =>
      execFileSync(
        "skopeo",
        ["inspect", "--raw", "--no-creds", "--cert-dir", certDir, `docker://${ext.host}/team/web:1`],
        { stdio: "pipe" },
      ),
    );
    for (const n of [n1, n2]) {
      assert.equal(
        (await journal(n)).filter((e) => e.tool === "init-registry.sh").length,
        0,
        `no local registry started on ${n.ip}`,
      );
      assert.equal(
        await sh(n, `cat /etc/containerd/certs.d/${ext.host}/ca.crt`),
        fs.readFileSync(ext.caFile, "utf8"),
      );
      assert.match(
        await sh(n, `cat /etc/containerd/certs.d/${ext.host}/hosts.toml`),
        new RegExp(`server = "https://${ext.host}"`),
      );
      const cfg = JSON.parse(await sh(n, "cat /var/lib/kubelet/config.json")) as {
        auths: Record<string, { auth: string }>;
      };
      assert.equal(Buffer.from(cfg.auths[ext.host]!.auth, "base64").toString(), `${USER}:${PASS}`);
      assert.equal((await sh(n, "stat -c %a /var/lib/kubelet/config.json")).trim(), "600");
      // The node pulls through that configuration: its CA file and its stored credentials.
      const manifest = await sh(
        n,
        `auth=$(sed -n 's/.*"auth": *"\\([^"]*\\)".*/\\1/p' /var/lib/kubelet/config.json); curl -sf --cacert /etc/containerd/certs.d/${ext.host}/ca.crt -H "Authorization: Basic $auth" -H 'Accept: application/vnd.oci.image.manifest.v1+json' https://${ext.host}/v2/team/db/manifests/2`,
      );
      assert.equal(
        `sha256:${crypto.createHash("sha256").update(manifest).digest("hex")}`,
        images["team/db:2"],
      );
    }
    // A second apply has nothing to do (the push is not repeated).
    const again = await applyCluster({ spec, store, knownHostsFile: nodes.knownHostsFile });
    assert.deepEqual(
      again.ran.map((s) => s.kind),
      [],
    );
  });

  it("external registry: a wrong password or an untrusted certificate fails the push with a message naming the registry and the Clusterfile field; no scratch files left", async () => {
    const facts = await imageFacts(store, "sandbox-app:1");
    const push = (over: { password?: string; home?: string }) =>
      pushCachedImages({
        layout: store,
        layers: facts.layers,
        domain: ext.ip,
        port: ext.port,
        username: USER,
        password: over.password ?? PASS,
        scratchDir: path.join(work, "scratch"),
        home: over.home ?? home,
      });
    const at = ext.host.replace(/\./g, "\\.");
    await assert.rejects(
      push({ password: "wrong" }),
      (e: Error) =>
        e instanceof UserError &&
        new RegExp(
          `^pushing the image's cached container images to the external registry ${at} \\(spec\\.registry\\.externalRegistry, user ${USER}\\): authentication failed`,
        ).test(e.message),
    );
    // Without the CA recorded by sealer login --ca-file, the registry's certificate is not trusted.
    await assert.rejects(
      push({ home: path.join(work, "other-home") }),
      (e: Error) => e instanceof UserError && /certificate/i.test(e.message) && e.message.includes(ext.host),
    );
    assert.deepEqual(fs.readdirSync(path.join(work, "scratch")), [], "scratch space cleaned");
  });

  it("delete -a removes the external registry's client config and credentials from the nodes", async () => {
    const res = await deleteAll({ clusterName: "gext", store, knownHostsFile: nodes.knownHostsFile });
    assert.deepEqual(res.skipped, []);
    for (const n of [n1, n2]) {
      assert.equal(
        (
          await sh(
            n,
            `test -e /etc/containerd/certs.d/${ext.host} || test -e /var/lib/kubelet/config.json && echo left || echo gone`,
          )
        ).trim(),
        "gone",
      );
      assert.equal((await sh(n, "test -e /var/lib/sealer && echo yes || echo no")).trim(), "no");
    }
  });

  it("delete -a after an apply killed halfway: reachable hosts reset and data roots gone, the unreachable host reported and skipped; a second delete -a finishes", async () => {
    const cf = path.join(work, "Clusterfile.half");
    fs.writeFileSync(
      cf,
      `${clusterYaml({ ...threeHosts("ghalf"), more: [{ ips: [n3.ip], roles: ["node", "slow"] }] })}---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: slow-disk }
spec: { type: SHELL, action: pre-init-host, scope: slow, data: 'echo started > /var/log/h-slow; sleep 300' }
`,
    );
    const logFile = path.join(work, "apply.log");
    const child = spawnSealer(["apply", "-f", cf], { ...process.env, SEALER_HOME: home }, logFile);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // Halfway: the nodes hold the cluster's files and the slow host's hook is running.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const slow = (await sh(n3, "cat /var/log/h-slow 2>/dev/null")).trim() === "started";
      // Both reachable hosts hold the image's tools (so the delete has something to reset).
      const dist = (
        await Promise.all(
          [n1, n2].map((n) => sh(n, "test -x /var/lib/sealer/ghalf/rootfs/bin/kubeadm && echo y")),
        )
      ).every((o) => o.trim() === "y");
      if (slow && dist) break;
      if (child.exitCode !== null)
        throw new Error(`apply ended early (${child.exitCode}):\n${fs.readFileSync(logFile, "utf8")}`);
      if (Date.now() > deadline)
        throw new Error(`apply did not get halfway:\n${fs.readFileSync(logFile, "utf8")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    process.kill(-child.pid!, "SIGKILL");
    await exited;
    // The slow host goes away entirely (sshd and the hook): unreachable from now on.
    await killNodeProcesses(n3);
    // The killed run recorded its Clusterfile once its first step finished: the cluster is found by name.
    assert.ok(fs.existsSync(path.join(home, "clusters", "ghalf", "clusterfile.yaml")));

    const out = JSON.parse(await cli(["delete", "-a", "--cluster-name", "ghalf", "--force", "--json"])) as {
      cluster: string;
      steps: Array<{ kind: string; hosts: string[] }>;
      cleaned: string[];
      skipped: Array<{ host: string; error: string }>;
    };
    assert.equal(process.exitCode, 1, "unreachable hosts make the exit status 1");
    process.exitCode = 0;
    assert.equal(out.cluster, "ghalf");
    assert.deepEqual(out.cleaned, [n1.ip, n2.ip]);
    assert.deepEqual(
      out.skipped.map((s) => s.host),
      [n3.ip],
    );
    assert.match(out.skipped[0]!.error, new RegExp(n3.ip.replace(/\./g, "\\.")));
    for (const n of [n1, n2]) {
      assert.ok(
        (await journal(n)).some((e) => e.tool === "kubeadm" && e.argv[0] === "reset"),
        `kubeadm reset on ${n.ip}`,
      );
      assert.equal(
        (await sh(n, "test -e /var/lib/sealer && echo yes || echo no")).trim(),
        "no",
        `data root on ${n.ip}`,
      );
      assert.doesNotMatch(await sh(n, "cat /etc/hosts"), /sealer:ghalf/);
    }
    // The record stays until every host is clean, so the command can be run again.
    assert.ok(fs.existsSync(path.join(home, "clusters", "ghalf")));

    nodes.update(await startSshd(nodes.list[2]!));
    const again = await deleteAll({ clusterfile: cf });
    assert.deepEqual(again.skipped, []);
    assert.deepEqual(again.cleaned, [n1.ip, n2.ip, n3.ip]);
    // n3 was killed during host init, before kubeadm existed there: nothing to reset, files removed.
    assert.equal((await sh(n3, "test -e /var/lib/sealer && echo yes || echo no")).trim(), "no");
    assert.equal(fs.existsSync(path.join(home, "clusters", "ghalf")), false);
  });
  it("upgrade stops at the first failure with the cluster usable; running it again finishes only what is left", async () => {
    const spec = loadClusterfile(
      `${clusterYaml({ ...threeHosts("gupg"), more: [{ ips: [n3.ip], roles: ["node", "flaky"] }] })}---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: flaky-host }
spec: { type: SHELL, action: upgrade-host, scope: flaky, data: 'if [ -e /etc/g-upgrade-fails ]; then echo "disk full" >&2; exit 7; fi' }
`,
      { file: "Clusterfile" },
    ).spec;
    const o = { clusterName: "gupg", store, knownHostsFile: nodes.knownHostsFile };
    await applyCluster({ spec, store, knownHostsFile: nodes.knownHostsFile });
    await sh(n3, "touch /etc/g-upgrade-fails");
    const upgrades = async (n: LocalNode) =>
      (await journal(n)).filter((e) => e.tool === "kubeadm" && e.argv[0] === "upgrade");
    await assert.rejects(upgradeCluster({ ...o, image: "sandbox-base:v1.29.0" }), (e: Error) =>
      new RegExp(`\\[${n3.ip.replace(/\./g, "\\.")}\\][^]*upgrade-host[^]*exit code 7[^]*disk full`).test(
        e.message,
      ),
    );
    // Stopped there: master0 and the first worker upgraded, the failing worker untouched
    // (not drained, nothing upgraded), every drained node uncordoned again.
    assert.deepEqual(
      (await upgrades(n1)).map((e) => e.argv.slice(0, 3)),
      [["upgrade", "apply", "v1.29.0"]],
    );
    assert.equal((await upgrades(n2)).length, 1);
    assert.equal((await upgrades(n3)).length, 0);
    const m0 = await journal(n1);
    const kubectl = (verb: string) =>
      m0.filter((e) => e.tool === "kubectl" && e.argv[0] === verb).map((e) => e.argv[1]);
    const name3 = (await sh(n3, "hostname")).trim();
    assert.ok(!kubectl("drain").includes(name3), "the failing worker was not drained");
    assert.deepEqual(
      [...kubectl("drain")].sort(),
      [...kubectl("uncordon")].sort(),
      "every drained node is uncordoned",
    );
    // The API server answers through master0 (the cluster is usable).
    assert.match(
      await sh(n1, "cd /var/lib/sealer/gupg/rootfs && PATH=$PWD/bin:$PATH kubectl get nodes"),
      new RegExp(name3),
    );

    await sh(n3, "rm /etc/g-upgrade-fails");
    const again = await upgradeCluster({ ...o, image: "sandbox-base:v1.29.0" });
    const upgraded = again.ran
      .filter((s) => s.kind.startsWith("upgrade-"))
      .map((s) => `${s.kind}:${s.hosts.join(",")}`);
    assert.deepEqual(upgraded, [`upgrade-worker:${n3.ip}`]);
    assert.equal((await upgrades(n1)).length, 1);
    assert.equal((await upgrades(n2)).length, 1);
    assert.equal((await upgrades(n3)).length, 1);
    const res = await deleteAll(o);
    assert.deepEqual(res.skipped, []);
  });
});

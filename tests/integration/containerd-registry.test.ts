/**
 * The real containerd on the nodes pulls the cluster image's cached container images from the
 * cluster's registry, with no other registry reachable (nodes have no default route and the
 * source registry is stopped first):
 *  - local HA registry with credentials: every node pulls every cached image by its registry
 *    name with `ctr --hosts-dir` (the CA from hosts.toml, `--user`; refused without), and by
 *    its original docker.io name through the mirror; the worker reaches the registry through the
 *    VIP; `ctr run` starts a container from a cached image; containerd's CRI config holds the
 *    credentials and config_path; delete stops containerd and removes its state;
 *  - external registry (docker-registry with TLS + htpasswd on the nodes' bridge address): the
 *    same pulls from it.
 * The cached images are real: a static program (gcc -static) packed with umoci, and a data image
 * in Docker schema 2 media types. The app image is a full-mode build whose plain manifest (a
 * CronJob) and Helm chart (an init container and a container) name them by their original
 * docker.io names; they are pulled through `--registry-mirror docker.io=<local registry>`.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { applyCluster, deleteCluster } from "../../provider/core/apply";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { inspectImage } from "../../provider/core/image/store";
import { execInNode, parseSubnet, subnetHost, type LocalNode } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import { saveSettings } from "../../provider/core/registry/credentials";
import { pushImage } from "../../provider/core/registry/push";
import { useNodes } from "../harness/nodes";
import { makeTestCa, makeTestImage, startRegistry, tempDir, type TestRegistry } from "../harness/registry";
import { buildSandboxBase, nodeOut, nodeSh } from "../harness/sandbox";
import { clusterYaml } from "../harness/clusterfile";

/** The repositories the app image caches (their paths are kept in the cluster's registry). */
const CACHED = ["library/hello:1", "team/data:2"];

/** An OCI image whose entrypoint is a static program printing "hello from <arg>", pushed with skopeo. */
function pushHelloImage(work: string, target: string): void {
  const src = path.join(work, "hello.c");
  fs.writeFileSync(
    src,
    '#include <stdio.h>\nint main(int c, char **v) { printf("hello from %s\\n", c > 1 ? v[1] : "a container"); return 0; }\n',
  );
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: work, stdio: "pipe" });
  run("gcc", ["-static", "-Os", "-o", "hello", "hello.c"]);
  run("umoci", ["init", "--layout", "oci"]);
  run("umoci", ["new", "--image", "oci:hello"]);
  run("umoci", ["unpack", "--rootless", "--image", "oci:hello", "bundle"]);
  fs.copyFileSync(path.join(work, "hello"), path.join(work, "bundle", "rootfs", "hello"));
  fs.chmodSync(path.join(work, "bundle", "rootfs", "hello"), 0o755);
  run("umoci", ["repack", "--image", "oci:hello", "bundle"]);
  run("umoci", ["config", "--image", "oci:hello", "--config.entrypoint", "/hello"]);
  run("skopeo", ["copy", "--dest-tls-verify=false", "oci:oci:hello", `docker://${target}`]);
}

describe("integration: real containerd pulls the cached images from the cluster's registry", function () {
  this.timeout(600_000);
  const nodes = useNodes(3);
  let work: string;
  let home: string;
  let store: OciLayout;
  let src: TestRegistry | undefined;
  let ext: (TestRegistry & { caFile: string }) | undefined;
  let m1: LocalNode, m2: LocalNode, w1: LocalNode;
  const USER = "puller";
  const PASS = `pw-${crypto.randomBytes(6).toString("hex")}`;

  before(async function () {
    this.timeout(400_000);
    [m1, m2, w1] = nodes.list as [LocalNode, LocalNode, LocalNode];
    work = tempDir("containerd-reg");
    home = path.join(work, "home");
    store = new OciLayout(dataPaths.store(home));
    src = await startRegistry();
    fs.mkdirSync(path.join(work, "hello"));
    pushHelloImage(path.join(work, "hello"), `${src.host}/library/hello:1`);
    const dataStore = new OciLayout(path.join(work, "data-store"));
    await makeTestImage(dataStore, "team/data:2", {
      docker: true,
      layerFiles: [{ "data/readme.txt": "cached data image\n" }],
    });
    await pushImage(`${src.host}/team/data:2`, {
      store: dataStore,
      source: "team/data:2",
      home,
      credentials: null,
    });
    await buildSandboxBase(home);
    // The app image names its images by their original docker.io names, in a plain manifest and
    // in a Helm chart (rendered by the real helm); the build pulls them through a registry mirror.
    const app = path.join(work, "app");
    fs.mkdirSync(path.join(app, "manifests"), { recursive: true });
    fs.writeFileSync(
      path.join(app, "manifests", "hello.yaml"),
      `apiVersion: batch/v1
kind: CronJob
metadata: { name: hello }
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [ { name: hello, image: docker.io/library/hello:1 } ]
`,
    );
    const chart = path.join(app, "charts", "data");
    fs.mkdirSync(path.join(chart, "templates"), { recursive: true });
    fs.writeFileSync(path.join(chart, "Chart.yaml"), "apiVersion: v2\nname: data\nversion: 0.1.0\n");
    fs.writeFileSync(path.join(chart, "values.yaml"), 'image:\n  repository: team/data\n  tag: "2"\n');
    fs.writeFileSync(
      path.join(chart, "templates", "deploy.yaml"),
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: {{ .Release.Name }}-data }
spec:
  selector: { matchLabels: { app: data } }
  template:
    metadata: { labels: { app: data } }
    spec:
      initContainers:
        - name: seed
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
      containers:
        - name: data
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
`,
    );
    fs.writeFileSync(
      path.join(app, "Kubefile"),
      "FROM sandbox-base:v1.28.2\nCOPY manifests manifests\nCOPY charts charts\n",
    );
    await buildImage({
      context: app,
      tag: "containerd-app:1",
      home,
      registryMirrors: [`docker.io=${src.host}`],
    });
    // Cached under their original names, whatever registry they came from.
    const facts = await inspectImage(new OciLayout(dataPaths.store(home)), "containerd-app:1");
    assert.deepEqual([...new Set(facts.containerImages.map((c) => c.image))].sort(), [
      "docker.io/library/hello:1",
      "docker.io/team/data:2",
    ]);
    // From here on the only registry is the cluster's own.
    await src.stop();
    src = undefined;
  });
  after(async () => {
    await src?.stop();
    await ext?.stop();
    if (work) await fs.promises.rm(work, { recursive: true, force: true });
  });

  /** The app image on `masters` and w1, over SSH as root with m1's key. */
  const appOn = (name: string, masters: string[]) => ({
    name,
    image: "containerd-app:1",
    pk: m1.keyPath,
    masters,
    nodes: [w1.ip],
  });
  const localSpec = (): ClusterSpec =>
    loadClusterfile(
      clusterYaml({
        ...appOn("ctrd", [m1.ip, m2.ip]),
        spec: [
          "  registry:",
          `    localRegistry: { domain: sea.hub, port: 5000, username: ${USER}, password: ${PASS} }`,
        ],
      }),
      { file: "Clusterfile" },
    ).spec;
  /** What apply and delete of the local-registry cluster take. */
  const localRun = () => ({
    spec: localSpec(),
    store,
    stateDir: stateDir("ctrd"),
    knownHostsFile: nodes.knownHostsFile,
  });
  const stateDir = (name: string) => path.join(home, "clusters", name);
  const ctr = (n: LocalNode, args: string) => nodeOut(n, `ctr -n k8s.io ${args} 2>&1`);
  /** `ctr images pull` as an operator types it; "pulled" when it exits 0, else its output. */
  const pull = async (n: LocalNode, ref: string, user?: string): Promise<string> => {
    const r = await execInNode(
      n,
      `ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d ${user ? `--user '${user}' ` : ""}${ref} 2>&1`,
    );
    return r.code === 0 ? "pulled" : r.stdout + r.stderr;
  };

  it("every node runs the image's containerd on its own socket; ctr in a login shell reaches it", async () => {
    await applyCluster(localRun());
    const pids = new Set<string>();
    for (const n of nodes.list) {
      const pid = (await nodeSh(n, "cat /var/lib/sealer-sandbox/containerd.pid")).trim();
      pids.add(pid);
      // The running binary is the one the cluster image carries.
      await nodeSh(n, `cmp /proc/${pid}/exe /var/lib/sealer/ctrd/rootfs/bin/containerd`);
      assert.match(await nodeSh(n, "bash -l -c 'ctr version'"), /Server:\s+Version:\s+1\.6/);
      assert.match(await nodeSh(n, "ls -l /run/containerd/containerd.sock"), /^s/);
    }
    assert.equal(pids.size, 3, "one containerd per node");
  });

  it("containerd's CRI config points at certs.d and holds the registry credentials (0600)", async () => {
    for (const n of nodes.list) {
      const dump = await nodeSh(n, "containerd --config /etc/containerd/config.toml config dump");
      assert.match(dump, /config_path = "\/etc\/containerd\/certs\.d"/);
      assert.match(
        dump,
        new RegExp(
          `registry\\.configs\\."sea\\.hub:5000"\\.auth\\]\\s+auth = ""\\s+identitytoken = ""\\s+password = "${PASS}"\\s+username = "${USER}"`,
        ),
      );
      assert.equal((await nodeSh(n, "stat -c %a /etc/containerd/config.toml")).trim(), "600");
      assert.match(
        await nodeSh(n, "cat /etc/containerd/certs.d/docker.io/hosts.toml"),
        /server = "https:\/\/registry-1\.docker\.io"\n\n\[host\."https:\/\/sea\.hub:5000"\]\n {2}capabilities = \["pull", "resolve"\]\n {2}ca = "\/etc\/containerd\/certs\.d\/sea\.hub:5000\/ca\.crt"/,
      );
    }
  });

  it("every node pulls every cached image from sea.hub:5000 with the credentials, and not without", async () => {
    // The worker reaches the HA registry (one per master) through the VIP.
    assert.match(await nodeSh(w1, "cat /etc/hosts"), /^10\.103\.97\.2 sea\.hub$/m);
    for (const n of nodes.list) {
      for (const img of CACHED) {
        assert.equal(await pull(n, `sea.hub:5000/${img}`, `${USER}:${PASS}`), "pulled", `${n.ip} ${img}`);
      }
      assert.match(
        await pull(n, "sea.hub:5000/team/data:2"),
        /401 Unauthorized|authorization failed|unauthorized/i,
      );
      const list = await ctr(n, "images ls -q");
      for (const img of CACHED)
        assert.ok(list.split("\n").includes(`sea.hub:5000/${img}`), `${n.ip}: ${list}`);
    }
  });

  it("an image named by its docker.io name resolves through the mirror, and ctr run starts it", async () => {
    for (const n of nodes.list) {
      assert.equal(await pull(n, "docker.io/library/hello:1", `${USER}:${PASS}`), "pulled", n.ip);
      const run = await ctr(n, `run --rm docker.io/library/hello:1 hello-${n.name} /hello ${n.name}`);
      assert.equal(run.trim(), `hello from ${n.name}`);
    }
  });

  it("delete stops containerd and removes its state", async () => {
    await deleteCluster(localRun());
    for (const n of nodes.list) {
      assert.equal(
        await nodeOut(n, "ctr --connect-timeout 2s version >/dev/null 2>&1 && echo up || echo down"),
        "down\n",
      );
      assert.equal(
        await nodeOut(
          n,
          "ls -A /var/lib/containerd /run/containerd /etc/containerd /usr/local/bin/ctr 2>/dev/null",
        ),
        "/var/lib/containerd:\n",
      );
      assert.equal(await nodeOut(n, "ss -Hlx | grep -c containerd.sock || true"), "0\n");
    }
  });

  it("external registry with TLS and credentials: every node pulls the cached images from it, by both names", async () => {
    const gw = subnetHost(parseSubnet(m1.subnet)!, 1);
    const tls = makeTestCa(path.join(work, "ext-tls"), "sealer containerd test CA", gw);
    const reg = await startRegistry({
      ip: gw,
      tls,
      htpasswd: { [USER]: PASS },
      rootDir: path.join(work, "ext-data"),
    });
    ext = { ...reg, caFile: tls.caFile };
    await saveSettings(ext.host, { ca: fs.readFileSync(tls.caFile, "utf8") }, home);
    const spec = loadClusterfile(
      clusterYaml({
        ...appOn("ctrx", [m1.ip]),
        spec: [
          "  registry:",
          `    externalRegistry: { domain: ${gw}, port: ${ext.port}, username: ${USER}, password: ${PASS} }`,
        ],
      }),
      { file: "Clusterfile" },
    ).spec;
    const prevHome = process.env.SEALER_HOME;
    process.env.SEALER_HOME = home; // sealer login's per-registry CA is read from the data dir
    try {
      await applyCluster({ spec, store, stateDir: stateDir("ctrx"), knownHostsFile: nodes.knownHostsFile });
      for (const n of [m1, w1]) {
        for (const img of CACHED) {
          assert.equal(await pull(n, `${ext.host}/${img}`, `${USER}:${PASS}`), "pulled", `${n.ip} ${img}`);
        }
        assert.match(
          await pull(n, `${ext.host}/team/data:2`),
          /401 Unauthorized|authorization failed|unauthorized/i,
        );
        assert.equal(await pull(n, "docker.io/team/data:2", `${USER}:${PASS}`), "pulled", n.ip);
        const run = await ctr(n, `run --rm ${ext.host}/library/hello:1 ext-${n.name} /hello ext-${n.name}`);
        assert.equal(run.trim(), `hello from ext-${n.name}`);
      }
      await deleteCluster({ spec, store, stateDir: stateDir("ctrx"), knownHostsFile: nodes.knownHostsFile });
    } finally {
      if (prevHome === undefined) delete process.env.SEALER_HOME;
      else process.env.SEALER_HOME = prevHome;
    }
  });
});

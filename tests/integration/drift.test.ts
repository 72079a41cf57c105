/**
 * Drift detection end to end on real sshd nodes (1 master + 1 worker, sudo user,
 * sandbox image): no drift -> exit 0; blobs + rootfs deleted on the worker -> distribute drift,
 * --repair, the apply re-sends only that host's blobs; an /etc/hosts block removed -> only its
 * step re-runs (sealer apply --refresh); a label removed with the stand-in kubectl -> node-labels
 * only; the Pulumi Cluster's read (refresh) forgets exactly the drifted step and update repairs
 * it; the worker's sshd stopped -> reported unreachable, not drift, exit 4; its host key changed ->
 * refused, reported unreachable, exit 4. Footprints: a file removed from a rootfs, the runtime
 * config a hook also edited, the kubelet unit -> each named with host and path and repaired by
 * exactly the steps that wrote it.
 */
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { applyCluster } from "../../provider/core/apply";
import { loadClusterfile } from "../../provider/core/clusterfile";
import type { DriftReport } from "../../provider/core/drift";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { regenerateHostKey, startSshd, type LocalNode } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import type { AppliedState } from "../../provider/core/plan/types";
import { provider as clusterProvider } from "../../provider/resources/cluster";
import { useNodes } from "../harness/nodes";
import { repoRoot, tempDir } from "../harness/registry";
import { buildSandboxBase, nodeSh } from "../harness/sandbox";
import { runSealer } from "../harness/cli";

const execFileP = promisify(execFile);
const NAME = "dft";
const DATA = `/var/lib/sealer/${NAME}`;
const TUNED = "# tuned by a hook";

describe("integration: drift check and repair (1 master + 1 worker)", function () {
  this.timeout(240_000);
  const nodes = useNodes(2, { sudoUser: { name: "deploy", nopasswd: true } });
  const root = repoRoot();
  let home: string;
  let file: string;
  let store: OciLayout;
  let layers: string[] = [];
  let savedHome: string | undefined;

  const text = () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    return [
      "apiVersion: sealer.io/v2",
      "kind: Cluster",
      `metadata: { name: ${NAME} }`,
      "spec:",
      "  image: sandbox-app:1",
      `  ssh: { user: deploy, pk: ${m.keyPath} }`,
      "  hostAliases: [ { ip: 10.200.0.9, hostnames: [ db.drift.local ] } ]",
      "  hosts:",
      `    - { ips: [ ${m.ip} ], roles: [ master ] }`,
      `    - { ips: [ ${w.ip} ], roles: [ node ], labels: { disk: ssd } }`,
      // A hook that edits the file the runtime's script wrote: the check expects its content.
      "---",
      "apiVersion: sealer.io/v2",
      "kind: Plugin",
      "metadata: { name: tune }",
      `spec: { type: SHELL, action: post-init-host, scope: master, data: "echo '${TUNED}' >> /etc/containerd/config.toml" }`,
      "",
    ].join("\n");
  };
  const apply = () =>
    applyCluster({
      spec: loadClusterfile(text(), { file }).spec,
      store,
      knownHostsFile: dataPaths.knownHosts(home),
      ssh: { dialAttempts: 2, dialTimeoutMs: 5000 },
    });

  const sealer = (...args: string[]) => runSealer(home, ...args);
  const check = async (...extra: string[]) => {
    const r = await sealer("check", "--cluster-name", NAME, "--json", ...extra);
    assert.ok([0, 3, 4].includes(r.code), `sealer check exited ${r.code}: ${r.stderr}`);
    return {
      code: r.code,
      report: JSON.parse(r.stdout) as DriftReport & {
        plan?: { steps: Array<{ id: string; reason: string }> };
      },
    };
  };
  /** `sealer apply --refresh --json`: the steps it ran. */
  const applyRefresh = async () => {
    const r = await sealer("apply", "-f", file, "--refresh", "--json");
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { steps: Array<{ kind: string; hosts: string[]; reason: string }> })
      .steps;
  };
  const notOk = (r: DriftReport) =>
    r.hosts.flatMap((h) =>
      h.checks.filter((c) => c.status !== "ok").map((c) => `${h.host} ${c.check} ${c.status}`),
    );
  const state = (): AppliedState =>
    JSON.parse(
      fs.readFileSync(path.join(dataPaths.clusters(home), NAME, "state.json"), "utf8"),
    ) as AppliedState;

  before(async function () {
    this.timeout(240_000);
    home = tempDir("drift-home");
    savedHome = process.env.SEALER_HOME;
    process.env.SEALER_HOME = home;
    // New host keys are recorded in this home's known_hosts on first contact (apply, CLI, provider share it).
    store = new OciLayout(dataPaths.store(home));
    await buildSandboxBase(home);
    const app = await buildImage({
      context: path.join(root, "examples/app"),
      tag: "sandbox-app:1",
      home,
      buildMode: "lite",
    });
    layers = app.layers.map((l) => l.digest);
    file = path.join(home, "dft.yaml");
    fs.writeFileSync(file, text(), { mode: 0o600 });
    const res = await apply();
    assert.ok(res.ran.length > 10, `installed with ${res.ran.length} steps`);
  });
  after(async () => {
    if (savedHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = savedHome;
    if (home) await fs.promises.rm(home, { recursive: true, force: true });
  });

  it("no drift: exit 0, every check ok (layers, rootfs, hosts blocks, registry, node, labels)", async () => {
    const { code, report } = await check();
    assert.equal(code, 0);
    assert.deepEqual(notOk(report), []);
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const checks = (ip: string) => report.hosts.find((h) => h.host === ip)!.checks.map((c) => c.check);
    for (const c of [
      "ssh",
      "blobs",
      "layers.json",
      "rootfs",
      "hosts:aliases",
      "hosts:registry",
      "hosts:apiserver",
      "registry",
      `file:${DATA}/Clusterfile`,
      "file:/etc/containerd/config.toml",
      "file:/etc/systemd/system/kubelet.service",
      "node",
    ])
      assert.ok(checks(m.ip).includes(c), `master checks ${c}: ${checks(m.ip).join(" ")}`);
    for (const c of [
      "rootfs",
      "hosts:apiserver",
      "node",
      "labels",
      "file:/etc/kubernetes/manifests/kube-lvscare.yaml",
    ])
      assert.ok(checks(w.ip).includes(c), `worker checks ${c}`);
    const text = await sealer("check", "--cluster-name", NAME);
    assert.equal(text.code, 0);
    assert.match(text.stdout, new RegExp(`cluster ${NAME}: no drift`));
    const bad = await sealer("check", "--cluster-name", "not-recorded");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cluster not-recorded is not recorded on this machine/);
  });

  it("each step's footprint is in the state: rootfs list, runtime config, kubelet unit, registry files; nothing kubelet rewrites", () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const st = state();
    const files = (id: string, ip = id.slice(id.lastIndexOf(":") + 1)) =>
      Object.keys(st.steps[id]?.footprint?.[ip]?.files ?? {});
    assert.ok(files(`container-runtime:${m.ip}`).includes("/etc/containerd/config.toml"));
    assert.ok(files(`hook:post-init-host:tune:${m.ip}`).includes("/etc/containerd/config.toml"));
    assert.ok(files(`init-host:${w.ip}`).includes("/etc/systemd/system/kubelet.service"));
    assert.ok(files(`init-host:${w.ip}`).includes("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"));
    assert.ok(files(`registry:${m.ip}`).includes(`${DATA}/registry/tls/registry.crt`));
    assert.ok(files(`registry-client:${w.ip}`).includes("/etc/containerd/certs.d/sea.hub:5000/hosts.toml"));
    assert.ok(files(`worker-vip:${w.ip}`).includes("/etc/kubernetes/manifests/kube-lvscare.yaml"));
    assert.ok(files("save-clusterfile", m.ip).includes(`${DATA}/Clusterfile`));
    const tree = st.steps[`distribute:${w.ip}`]?.footprint?.[w.ip]?.tree;
    assert.ok(tree && tree.dir === `${DATA}/rootfs` && tree.count > 5, JSON.stringify(tree));
    const all = Object.values(st.steps).flatMap((r) =>
      Object.values(r.footprint ?? {}).flatMap((h) => Object.keys(h.files ?? {})),
    );
    assert.deepEqual(
      all.filter((f) => /kubelet\.conf$|admin\.conf$|^\/var\/lib\/kubelet|registry\.(log|pid)$/.test(f)),
      [],
    );
  });

  it("a file removed from the worker's rootfs: named with its host; --repair; the apply re-runs only distribute there, nothing re-sent, the file is back", async () => {
    const w = nodes.list[1]!;
    const gone = `${DATA}/rootfs/application/apps/web/web.yaml`;
    await nodeSh(w, `rm ${gone}`);
    const { code, report } = await check("--repair");
    assert.equal(code, 3);
    assert.deepEqual(report.steps, [`distribute:${w.ip}`]);
    assert.deepEqual(notOk(report), [`${w.ip} rootfs drifted`]);
    const c = report.hosts.find((h) => h.host === w.ip)!.checks.find((x) => x.check === "rootfs")!;
    assert.ok(
      c.status === "drifted" && /^missing application\/apps\/web\/web\.yaml\b/.test(c.found),
      JSON.stringify(c),
    );
    assert.equal(report.plan?.steps[0]?.reason, `drift: ${gone} missing on ${w.ip}`);
    const res = await apply();
    assert.deepEqual(
      res.ran.map((s) => s.id),
      [`distribute:${w.ip}`],
    );
    assert.equal(res.stats.sentBlobs, 0, "the blobs are on the node: the rootfs is rebuilt from them");
    await nodeSh(w, `test -f ${gone}`);
    assert.equal((await check()).code, 0);
  });

  it("/etc/containerd/config.toml (written by the runtime script, edited by a hook) removed on the master: sealer check names host and path (exit 3); --repair + apply re-run exactly those two", async () => {
    const m = nodes.list[0]!;
    await nodeSh(m, "rm /etc/containerd/config.toml");
    const text = await sealer("check", "--cluster-name", NAME);
    assert.equal(text.code, 3, text.stderr);
    assert.match(
      text.stdout,
      new RegExp(
        `${m.ip.replace(/\./g, "\\.")}\\s+file:/etc/containerd/config\\.toml\\s+DRIFTED .*found missing; re-run: container-runtime:${m.ip.replace(/\./g, "\\.")}`,
      ),
    );
    const { code, report } = await check("--repair");
    assert.equal(code, 3);
    const writers = [`container-runtime:${m.ip}`, `hook:post-init-host:tune:${m.ip}`];
    assert.deepEqual(report.steps, writers);
    assert.deepEqual(
      report.plan?.steps.map((s) => [s.id, s.reason]),
      writers.map((id) => [id, `drift: /etc/containerd/config.toml missing on ${m.ip}`]),
    );
    const res = await apply();
    assert.deepEqual(
      res.ran.map((s) => s.id),
      writers,
    );
    const conf = await nodeSh(m, "cat /etc/containerd/config.toml");
    assert.match(conf, /config_path = "\/etc\/containerd\/certs\.d"/);
    assert.equal(conf.split(TUNED).length, 2, conf);
    assert.equal((await check()).code, 0);
  });

  it("the kubelet unit removed and a drop-in edited on the worker: sealer apply --refresh re-runs only init-host there", async () => {
    const w = nodes.list[1]!;
    await nodeSh(
      w,
      "rm /etc/systemd/system/kubelet.service && echo '# edited' >> /etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    );
    const { code, report } = await check();
    assert.equal(code, 3);
    assert.deepEqual(report.steps, [`init-host:${w.ip}`]);
    assert.deepEqual(notOk(report), [
      `${w.ip} file:/etc/systemd/system/kubelet.service drifted`,
      `${w.ip} file:/etc/systemd/system/kubelet.service.d/10-kubeadm.conf drifted`,
    ]);
    const steps = await applyRefresh();
    assert.deepEqual(
      steps.map((s) => [s.kind, s.hosts]),
      [["init-host", [w.ip]]],
    );
    assert.equal(
      steps[0]!.reason,
      `drift: /etc/systemd/system/kubelet.service missing on ${w.ip}; /etc/systemd/system/kubelet.service.d/10-kubeadm.conf changed on ${w.ip}`,
    );
    await nodeSh(w, "test -f /etc/systemd/system/kubelet.service");
    assert.doesNotMatch(
      await nodeSh(w, "cat /etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
      /# edited/,
    );
    assert.equal((await check()).code, 0);
  });

  it("a layer and the rootfs deleted on the worker: distribute drift; --repair; the apply re-sends only that layer", async () => {
    const w = nodes.list[1]!;
    const hex = layers[layers.length - 1]!.slice(7);
    // The layer as the node keeps it: an extracted tree with its listing (or a blob).
    await nodeSh(
      w,
      `rm -rf /var/lib/sealer/blobs/sha256/${hex} /var/lib/sealer/layers/${hex} /var/lib/sealer/layers/${hex}.list && rm -rf ${DATA}/rootfs`,
    );
    const { code, report } = await check("--repair");
    assert.equal(code, 3);
    assert.deepEqual(report.steps, [`distribute:${w.ip}`]);
    assert.deepEqual(notOk(report), [`${w.ip} blobs drifted`, `${w.ip} rootfs drifted`]);
    assert.deepEqual(
      report.plan?.steps.map((s) => s.id),
      [`distribute:${w.ip}`],
    );
    assert.match(
      report.plan!.steps[0]!.reason,
      new RegExp(`^drift: ${w.ip.replace(/\./g, "\\.")} blobs: missing ${hex.slice(0, 12)}`),
    );
    assert.equal(state().steps[`distribute:${w.ip}`], undefined, "the record is forgotten");
    const res = await apply();
    assert.deepEqual(
      res.ran.map((s) => s.id),
      [`distribute:${w.ip}`],
    );
    assert.equal(res.stats.sentBlobs, 1, "only the deleted layer goes again");
    await nodeSh(
      w,
      `test -f ${DATA}/rootfs/application/apps/web/web.yaml && test -f /var/lib/sealer/layers/${hex}.list`,
    );
    assert.equal((await check()).code, 0);
  });

  it("the aliases block removed on the master: sealer apply --refresh re-runs only host-aliases there", async () => {
    const m = nodes.list[0]!;
    await nodeSh(
      m,
      `sed -i '/^# BEGIN sealer:${NAME}:aliases$/,/^# END sealer:${NAME}:aliases$/d' /etc/hosts`,
    );
    const { code, report } = await check();
    assert.equal(code, 3);
    assert.deepEqual(report.steps, [`host-aliases:${m.ip}`]);
    const steps = await applyRefresh();
    assert.deepEqual(
      steps.map((s) => [s.kind, s.hosts]),
      [["host-aliases", [m.ip]]],
    );
    assert.match(steps[0]!.reason, /^drift: .* hosts:aliases: block missing/);
    assert.match(await nodeSh(m, "cat /etc/hosts"), /10\.200\.0\.9 db\.drift\.local/);
    assert.equal((await check()).code, 0);
  });

  it("a label removed with kubectl: node-labels only", async () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const node = state().hosts[w.ip]!.nodeName!;
    await nodeSh(
      m,
      `KUBECONFIG=/etc/kubernetes/admin.conf ${DATA}/rootfs/bin/kubectl label node ${node} disk-`,
    );
    const { code, report } = await check("--repair");
    assert.equal(code, 3);
    assert.deepEqual(report.steps, [`node-labels:${w.ip}`]);
    assert.deepEqual(
      report.plan?.steps.map((s) => s.id),
      [`node-labels:${w.ip}`],
    );
    const res = await apply();
    assert.deepEqual(
      res.ran.map((s) => s.id),
      [`node-labels:${w.ip}`],
    );
    assert.equal((await check()).code, 0);
  });

  it("Pulumi Cluster read (refresh) forgets the drifted step; update repairs exactly it", async () => {
    const [m, w] = nodes.list as [LocalNode, LocalNode];
    const inputs = { name: NAME, image: "sandbox-app:1", clusterfile: text() };
    const created = await clusterProvider.create(inputs as unknown as Record<string, unknown>);
    const outs = created.outs as { steps: unknown[]; applied: AppliedState };
    assert.deepEqual(outs.steps, [], "adopts the recorded cluster: nothing runs");
    // No drift: read returns the outputs unchanged.
    assert.deepEqual((await clusterProvider.read(created.id, created.outs)).props, created.outs);
    await nodeSh(
      m,
      `sed -i '/^# BEGIN sealer:${NAME}:registry$/,/^# END sealer:${NAME}:registry$/d' /etc/hosts`,
    );
    const read = await clusterProvider.read(created.id, created.outs);
    const props = read.props as { applied: AppliedState; plan: string[] };
    assert.equal(props.applied.steps[`registry-client:${m.ip}`], undefined);
    assert.ok(props.applied.steps[`registry-client:${w.ip}`]);
    // One step, then the plan digest line.
    assert.equal(props.plan.length, 2, props.plan.join("\n"));
    assert.match(props.plan[1]!, /^plan digest: sha256:[0-9a-f]{64}$/);
    assert.match(
      props.plan[0]!,
      new RegExp(`^registry-client:${m.ip.replace(/\./g, "\\.")} .*: drift: .*hosts:registry: block missing`),
    );
    const diff = await clusterProvider.diff(
      created.id,
      read.props,
      inputs as unknown as Record<string, unknown>,
    );
    assert.equal(diff.changes, true);
    const up = await clusterProvider.update(
      created.id,
      read.props,
      inputs as unknown as Record<string, unknown>,
    );
    assert.deepEqual(
      (up.outs as { steps: Array<{ id: string }> }).steps.map((s) => s.id),
      [`registry-client:${m.ip}`],
    );
    assert.match(await nodeSh(m, "cat /etc/hosts"), new RegExp(`# BEGIN sealer:${NAME}:registry`));
  });

  it("the registry stopped on the master: registry drift; the apply restarts it", async () => {
    const m = nodes.list[0]!;
    await nodeSh(m, `kill "$(cat ${DATA}/registry/registry.pid)"`);
    const { code, report } = await check("--repair");
    assert.equal(code, 3);
    assert.deepEqual(report.steps, [`registry:${m.ip}`]);
    const res = await apply();
    assert.deepEqual(
      res.ran.map((s) => s.id),
      [`registry:${m.ip}`],
    );
    assert.equal((await check()).code, 0);
  });

  it("the worker's sshd stopped: unreachable, not drift (exit 4), the master still checked", async () => {
    const w = nodes.list[1]!;
    const { stdout } = await execFileP("ip", ["netns", "pids", w.netns]);
    for (const pid of stdout
      .split("\n")
      .map(Number)
      .filter((p) => p > 0))
      if (fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "sshd") process.kill(pid, "SIGKILL");
    const { code, report } = await check();
    assert.equal(code, 4);
    assert.equal(report.drifted, false);
    assert.deepEqual(notOk(report), [`${w.ip} ssh unreachable`]);
    const text = await sealer("check", "--cluster-name", NAME);
    assert.equal(text.code, 4);
    assert.match(text.stdout, /no drift on the hosts reached \(1 unreachable\)/);
  });

  it("the worker's host key changed: refused, reported unreachable, exit 4", async () => {
    const w = await startSshd(await regenerateHostKey(nodes.list[1]!));
    nodes.update(w);
    const { code, report } = await check();
    assert.equal(code, 4);
    assert.equal(report.drifted, false);
    assert.deepEqual(notOk(report), [`${w.ip} ssh unreachable`]);
    const ssh = report.hosts.find((h) => h.host === w.ip)?.checks.find((c) => c.check === "ssh");
    assert.match(ssh && "detail" in ssh ? ssh.detail : "", /host key/i);
  });
});

/** kubeadm-config, init-master, join-master, join-worker, node-labels and worker-vip against the recording fake host. */
import { strict as assert } from "node:assert";
import * as yaml from "js-yaml";
import * as kube from "../../../provider/core/exec/steps/kube";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { M0, M1, W0, W1, nodeOf, disposeWorlds, step, world, type World } from "./world";

const CA_HASH = `sha256:${"c".repeat(64)}`;
const ADMIN = "/etc/kubernetes/admin.conf";

/** master0 answers kubeadm as a real control plane does (the join command with the CA hash). */
function kubeadmAnswers(w: World): void {
  w.io.answer({
    host: M0,
    match: /^kubeadm init /,
    // kubeadm writes admin.conf when init succeeds.
    writes: { [ADMIN]: "apiVersion: v1\nkind: Config\n" },
    stdout: `Your Kubernetes control-plane has initialized successfully!\n  kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash ${CA_HASH}\n`,
  });
  w.io.answer({
    host: M0,
    match: /^kubeadm token create /,
    stdout: `kubeadm join apiserver.cluster.local:6443 --token x --discovery-token-ca-cert-hash ${CA_HASH}\n`,
  });
}

const puts = (w: World, ip: string) => w.io.on(ip).flatMap((c) => (c.op === "put" ? [c] : []));
/** The kubeadm document of a kind, walked by key paths (throws when a key is missing). */
function doc(text: string, kind: string): (path: string) => unknown {
  const d = (yaml.loadAll(text) as Array<Record<string, unknown>>).find((x) => x.kind === kind);
  assert.ok(d, `no ${kind} in:\n${text}`);
  return (path) =>
    path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], d);
}

describe("steps: kubernetes (fake host)", () => {
  afterEach(disposeWorlds);

  it("kubeadm-config writes the init config (0600) on master0 only, named for master0's node", async () => {
    const w = world();
    await kube.runKubeadmConfig(w.ctx, step("kubeadm-config", [M0]));
    assert.deepEqual(w.io.hosts(), [M0]);
    const [p] = puts(w, M0);
    assert.equal(p!.file, `${w.ctx.clusterDir}/kubeadm/kubeadm-init.yaml`);
    assert.equal(p!.mode, 0o600);
    const init = doc(p!.content, "InitConfiguration");
    assert.equal(init("nodeRegistration.name"), nodeOf(M0));
    assert.equal(init("localAPIEndpoint.advertiseAddress"), M0);
    // The image's etc/kubeadm.yml was looked for on master0's rootfs.
    assert.ok(w.io.on(M0).some((c) => c.op === "read" && c.file === `${w.ctx.rootfs}/etc/kubeadm.yml`));
  });

  it("init-master runs kubeadm init with the token it wrote and records the join material and kubeconfig", async () => {
    const w = world();
    kubeadmAnswers(w);
    await kube.runInitMaster(w.ctx, step("init-master", [M0]));
    assert.deepEqual(w.io.hosts(), [M0]);
    const b = w.io.bodies(M0);
    const initAt = b.findIndex((x) => x.startsWith("kubeadm init "));
    assert.ok(initAt > 0, b.join("\n"));
    assert.ok(b[0]!.includes(`${M0} apiserver.cluster.local`), "apiserver points at master0 first");
    const cfg = puts(w, M0).find((p) => p.file.endsWith("kubeadm-init.yaml"))!;
    const init = doc(cfg.content, "InitConfiguration");
    const s = w.ctx.state.secrets!;
    assert.equal((init("bootstrapTokens") as Array<{ token: string }>)[0]!.token, s.token);
    assert.match(s.token!, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    assert.equal(init("certificateKey"), s.certificateKey);
    assert.equal(s.caCertHash, CA_HASH);
    assert.equal(s.kubeconfig, "apiVersion: v1\nkind: Config\n");
    assert.equal(w.ctx.state.hosts[M0]!.nodeName, nodeOf(M0));
    assert.equal(w.ctx.freshJoin, true);
  });

  it("init-master on a host where kubeadm init already ran refreshes the join material instead", async () => {
    const w = world();
    kubeadmAnswers(w);
    w.io.file(M0, ADMIN, "kubeconfig");
    await kube.runInitMaster(w.ctx, step("init-master", [M0]));
    const b = w.io.bodies(M0);
    assert.ok(!b.some((x) => x.startsWith("kubeadm init --")), b.join("\n"));
    const token = w.ctx.state.secrets!.token!;
    assert.ok(b.includes(`kubeadm token create ${token} --print-join-command`), b.join("\n"));
    assert.ok(
      b.includes(
        `kubeadm init phase upload-certs --upload-certs --certificate-key ${w.ctx.state.secrets!.certificateKey}`,
      ),
    );
  });

  it("join-worker runs kubeadm join with a fresh token on that worker only", async () => {
    const w = world();
    kubeadmAnswers(w);
    await kube.runJoinWorker(w.ctx, step("join-worker", [W1]));
    assert.deepEqual(w.io.hosts(), [M0, W1].sort());
    const token = w.ctx.state.secrets!.token!;
    assert.ok(w.io.bodies(M0).includes(`kubeadm token create ${token} --print-join-command`));
    const b = w.io.bodies(W1);
    assert.match(b[b.length - 1]!, /^kubeadm join --config .*kubeadm-join\.yaml/);
    const cfg = puts(w, W1)[0]!;
    assert.equal(cfg.file, `${w.ctx.clusterDir}/kubeadm/kubeadm-join.yaml`);
    const join = doc(cfg.content, "JoinConfiguration");
    assert.equal(join("discovery.bootstrapToken.token"), token);
    assert.deepEqual(join("discovery.bootstrapToken.caCertHashes"), [CA_HASH]);
    assert.equal(join("nodeRegistration.name"), nodeOf(W1));
    assert.equal(join("controlPlane"), undefined, "a worker joins without the control plane");
    assert.equal(w.ctx.state.hosts[W1]!.nodeName, nodeOf(W1));
  });

  it("join-worker on a node that already joined runs no kubeadm join and fetches no token", async () => {
    const w = world();
    kubeadmAnswers(w);
    w.io.file(W0, "/etc/kubernetes/kubelet.conf", "x");
    await kube.runJoinWorker(w.ctx, step("join-worker", [W0]));
    assert.ok(!w.io.bodies(W0).some((b) => b.startsWith("kubeadm join")));
    assert.ok(!w.io.bodies(M0).some((b) => b.startsWith("kubeadm token")));
  });

  it("join-master joins with the certificate key, then points apiserver.cluster.local at itself", async () => {
    const w = world();
    kubeadmAnswers(w);
    await kube.runJoinMaster(w.ctx, step("join-master", [M1]));
    const b = w.io.bodies(M1);
    const joinAt = b.findIndex((x) => x.startsWith("kubeadm join"));
    assert.ok(joinAt > 0);
    const pointed = b.filter((x) => x.includes("apiserver.cluster.local"));
    assert.equal(pointed.length, 2, pointed.join("\n"));
    assert.ok(pointed[0]!.includes(`${M0} apiserver.cluster.local`) && b.indexOf(pointed[0]!) < joinAt);
    assert.ok(b[joinAt + 1]!.includes(`${M1} apiserver.cluster.local`), b[joinAt + 1]);
    const join = doc(puts(w, M1)[0]!.content, "JoinConfiguration");
    assert.equal(join("controlPlane.certificateKey"), w.ctx.state.secrets!.certificateKey);
    assert.equal(join("controlPlane.localAPIEndpoint.advertiseAddress"), M1);
  });

  it("node-labels applies the Clusterfile's labels and taints from master0 and drops the ones removed since", async () => {
    const w = world({
      clusterfile: clusterfile({
        workerExtra: "      labels: { env: prod }\n      taints: [ 'gpu=yes:NoSchedule' ]\n",
      }),
    });
    w.ctx.state.hosts[W0] = { roles: ["node"], layers: [], labels: { old: "1" }, taints: [] };
    await kube.runNodeLabels(w.ctx, step("node-labels", [W0]));
    assert.deepEqual(
      w.io.hosts().filter((h) => w.io.bodies(h).some((b) => b.startsWith("kubectl"))),
      [M0],
    );
    const cmd = w.io.bodies(M0).find((b) => b.startsWith("kubectl"))!;
    const n = nodeOf(W0);
    assert.equal(
      cmd,
      `kubectl label node ${n} --overwrite node-role.kubernetes.io/worker= env=prod old- && kubectl taint node ${n} --overwrite gpu=yes:NoSchedule`,
    );
    assert.deepEqual(w.ctx.state.hosts[W0]!.labels, { "node-role.kubernetes.io/worker": "", env: "prod" });
    assert.deepEqual(w.ctx.state.hosts[W0]!.taints, ["gpu=yes:NoSchedule"]);
  });

  it("worker-vip sets up IPVS to every master and writes the lvscare pod on each worker", async () => {
    const w = world();
    const fp = await kube.runWorkerVip(w.ctx, step("worker-vip", [W0, W1], { masters: [M0, M1] }));
    for (const ip of [W0, W1]) {
      const b = w.io.bodies(ip);
      assert.ok(b[0]!.includes(`ipvsadm -a -t 10.103.97.2:6443 -r ${M0}:6443 -m`), b[0]);
      assert.ok(b[0]!.includes(`ipvsadm -a -t 10.103.97.2:6443 -r ${M1}:6443 -m`), b[0]);
      // HA registry (default): the registry port goes through the VIP too.
      assert.ok(b[0]!.includes(`-r ${M1}:5000`), b[0]);
      const [p] = puts(w, ip);
      assert.equal(p!.file, "/etc/kubernetes/manifests/kube-lvscare.yaml");
      assert.ok(p!.content.includes(`--rs, "${M0}:6443", --rs, "${M1}:6443"`), p!.content);
      assert.ok(b[b.length - 1]!.includes("10.103.97.2 apiserver.cluster.local"));
      assert.deepEqual(Object.keys(fp[ip]!.files!), ["/etc/kubernetes/manifests/kube-lvscare.yaml"]);
    }
    assert.ok(!w.io.on(M1).some((c) => c.op !== "read"), "masters get nothing");
  });
});

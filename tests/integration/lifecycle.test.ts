/**
 * Cluster lifecycle on local nodes with the sandbox image, one cluster shared
 * by ordered steps: create with hooks (order and scope), scale out by a master and a worker (VIP
 * re-pointed on every worker), exec output, etcd backup/restore with checksum, cert SANs, bad
 * input changing nothing, scale in through apply, upgrade order and rollback, delete -m, delete -a.
 * Assertions are on the node journals (/var/log/sealer-sandbox/journal.jsonl) and node files.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { applyCluster } from "../../provider/core/apply";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { type LocalNode } from "../../provider/core/infra/local";
import { backupEtcd, etcdctlBase, restoreEtcd } from "../../provider/core/lifecycle/backup";
import { addCertSans } from "../../provider/core/lifecycle/cert";
import { deleteAll } from "../../provider/core/lifecycle/delete-all";
import { scaleCluster } from "../../provider/core/lifecycle/scale";
import { rollbackCluster, upgradeCluster } from "../../provider/core/lifecycle/upgrade";
import { sha256Hex } from "../../provider/core/fsutil";
import { useNodes } from "../harness/nodes";
import {
  journal,
  lifecycleCli as cli,
  lifecycleOpts,
  nodeOut as sh,
  type JournalEntry,
} from "../harness/sandbox";
import { packageRoot } from "../../provider/core/package-info";
import { clusterYaml } from "../harness/clusterfile";
import { setEnv } from "../harness/env";

const repoRoot = (): string => packageRoot(__dirname);

/** The real servers of the last `seautil ipvs --vs VIP:port` call (not a clear). */
const vipTargets = (j: JournalEntry[], port: number): string[] | undefined =>
  j
    .filter(
      (e) =>
        e.tool === "seautil" &&
        e.argv[0] === "ipvs" &&
        e.argv[2]?.endsWith(`:${port}`) &&
        !e.argv.includes("-C"),
    )
    .pop()
    ?.argv.filter((_, i, a) => a[i - 1] === "--rs");

const calls = (j: JournalEntry[], tool: string, ...first: string[]) =>
  j.filter((e) => e.tool === tool && first.every((f, i) => e.argv[i] === f));

const NAME = "glife";

describe("cluster lifecycle (integration, local nodes, sandbox image)", function () {
  this.timeout(600_000);
  const nodes = useNodes(4);
  let home: string;
  let restoreEnv: (() => void) | undefined;
  let store: OciLayout;
  let n1: LocalNode, n2: LocalNode, n3: LocalNode, n4: LocalNode;
  const o = () => lifecycleOpts(NAME, store, nodes.knownHostsFile);

  const clusterfile = (
    masters: string[],
    workers: string[],
    image = "sandbox-base:v1.28.2",
  ) => `${clusterYaml({ name: NAME, image, pk: n1.keyPath, masters, nodes: workers })}---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: b-master }
spec: { type: SHELL, action: pre-init-host|upgrade, scope: master, data: 'echo "b-master $SEALER_HOOK_PHASE" >> /var/log/g-hooks.log' }
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: a-all }
spec: { type: SHELL, action: pre-init-host, data: 'echo "a-all $SEALER_HOOK_PHASE" >> /var/log/g-hooks.log' }
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: c-rollback }
spec: { type: SHELL, action: rollback, data: 'echo "c-rollback $SEALER_HOOK_PHASE" >> /var/log/g-hooks.log' }
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: d-clean }
spec: { type: SHELL, action: pre-clean-host, data: 'echo "d-clean $SEALER_HOOK_PHASE" >> /var/log/g-hooks.log' }
`;
  const spec = (text: string): ClusterSpec => loadClusterfile(text, { file: "Clusterfile" }).spec;

  before(async function () {
    this.timeout(300_000);
    home = await fs.promises.mkdtemp(path.join(os.tmpdir(), "sealer-life-"));
    restoreEnv = setEnv({ SEALER_HOME: home });
    const ctxDir = path.join(repoRoot(), "examples", "sandbox-base");
    await buildImage({ context: ctxDir, tag: "sandbox-base:v1.28.2", home });
    await buildImage({
      context: ctxDir,
      tag: "sandbox-base:v1.29.0",
      buildArgs: { KubeVersion: "v1.29.0" },
      home,
    });
    store = new OciLayout(path.join(home, "store"));
    [n1, n2, n3, n4] = nodes.list as [LocalNode, LocalNode, LocalNode, LocalNode];
  });
  after(async () => {
    restoreEnv?.();
    if (home) await fs.promises.rm(home, { recursive: true, force: true });
  });

  it("creates the cluster; pre-init-host hooks run in name order, empty scope on every host, master scope on masters only", async () => {
    const res = await applyCluster({
      spec: spec(clusterfile([n1.ip], [n3.ip])),
      store,
      knownHostsFile: nodes.knownHostsFile,
    });
    assert.ok(res.ran.some((s) => s.kind === "init-master"));
    assert.deepEqual((await sh(n1, "cat /var/log/g-hooks.log")).trim().split("\n"), [
      "a-all pre-init-host",
      "b-master pre-init-host",
    ]);
    assert.deepEqual((await sh(n3, "cat /var/log/g-hooks.log")).trim().split("\n"), ["a-all pre-init-host"]);
    assert.equal(calls(await journal(n1), "kubeadm", "init").length, 1);
  });

  it("bad input fails clearly and changes nothing", async () => {
    const before = await Promise.all([n1, n3].map(journal));
    const bad: Array<[() => Promise<unknown>, RegExp]> = [
      [
        () => scaleCluster({ ...o(), remove: { masters: [], nodes: ["10.254.254.254"] } }),
        /-n 10\.254\.254\.254: no such host in cluster glife/,
      ],
      [
        () => scaleCluster({ ...o(), remove: { masters: [n1.ip], nodes: [] } }),
        /would leave cluster glife without a master/,
      ],
      [
        () => scaleCluster({ ...o(), add: { masters: [], nodes: [n3.ip] } }),
        new RegExp(`${n3.ip.replace(/\./g, "\\.")} is already in cluster glife as node`),
      ],
      [
        () => scaleCluster({ ...o(), clusterName: "nosuch" }),
        /no cluster named nosuch is recorded on this machine/,
      ],
      [() => restoreEtcd({ ...o(), snapshot: "missing.db" }), /snapshot missing\.db not found/],
      [() => rollbackCluster(o()), /no previous image recorded/],
      [() => cli(["delete", "--cluster-name", NAME, "-a"]), /stdin is not a terminal; add --force/],
    ];
    for (const [fn, re] of bad)
      await assert.rejects(fn, (e: Error) => e instanceof UserError && re.test(e.message));
    const after = await Promise.all([n1, n3].map(journal));
    assert.deepEqual(
      after.map((j) => j.length),
      before.map((j) => j.length),
    );
  });

  it("join: scale out by one master and one worker; the VIP is re-pointed on every worker", async () => {
    const res = await scaleCluster({ ...o(), add: { masters: [n2.ip], nodes: [n4.ip] } });
    const kinds = res.ran.map((s) => `${s.kind}:${s.hosts.join(",")}`);
    assert.ok(kinds.includes(`join-master:${n2.ip}`), kinds.join(" "));
    assert.ok(kinds.includes(`join-worker:${n4.ip}`), kinds.join(" "));
    assert.ok(!kinds.includes("init-master:" + n1.ip));
    assert.equal(calls(await journal(n2), "kubeadm", "join").length, 1);
    // The control-plane join added n2 to etcd (the sandbox's real etcd).
    assert.match(
      await sh(n2, `${etcdctlBase()} member list`),
      new RegExp(`https://${n2.ip.replace(/\./g, "\\.")}:2380`),
    );
    assert.equal(calls(await journal(n4), "kubeadm", "join").length, 1);
    for (const w of [n3, n4]) {
      const j = await journal(w);
      // The API server and the HA registry (on every master) both go through the VIP.
      assert.deepEqual(vipTargets(j, 6443), [`${n1.ip}:6443`, `${n2.ip}:6443`], `API VIP on ${w.ip}`);
      assert.deepEqual(vipTargets(j, 5000), [`${n1.ip}:5000`, `${n2.ip}:5000`], `registry VIP on ${w.ip}`);
      const manifest = await sh(w, "cat /etc/kubernetes/manifests/kube-lvscare.yaml");
      assert.match(manifest, new RegExp(`--rs, "${n1.ip}:6443", --rs, "${n2.ip}:6443"`));
      assert.match(
        manifest,
        /care, --vs, "10\.103\.97\.2:6443", --health-path, \/healthz, --health-schem, https/,
      );
      assert.match(
        manifest,
        new RegExp(
          `- name: kube-lvscare-registry[^]*care, --vs, "10\\.103\\.97\\.2:5000", --health-path, /v2/, --health-schem, https, --rs, "${n1.ip}:5000", --rs, "${n2.ip}:5000"`,
        ),
      );
      // The worker finds the registry at the VIP, and a request through it reaches a master's registry.
      assert.match(await sh(w, "cat /etc/hosts"), /^10\.103\.97\.2 sea\.hub$/m);
      const code = await sh(
        w,
        "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/containerd/certs.d/sea.hub:5000/ca.crt https://sea.hub:5000/v2/",
      );
      assert.equal(code, "200");
    }
    // pre-scaleup/pre-init-host hooks ran on the new hosts only, in name order.
    assert.deepEqual((await sh(n2, "cat /var/log/g-hooks.log")).trim().split("\n"), [
      "a-all pre-init-host",
      "b-master pre-init-host",
    ]);
    assert.deepEqual((await sh(n3, "cat /var/log/g-hooks.log")).trim().split("\n"), ["a-all pre-init-host"]);
  });

  it("exec: output prefixed by host, by role", async () => {
    const out = await cli(["exec", "--cluster-name", NAME, "-r", "node", "cat /etc/hostname; echo done"]);
    const h3 = (await sh(n3, "cat /etc/hostname")).trim();
    const h4 = (await sh(n4, "cat /etc/hostname")).trim();
    // Each host's output is printed as one block when the host finishes: blocks in any order, lines in order.
    const blocks = [`[${n3.ip}] ${h3}\n[${n3.ip}] done\n`, `[${n4.ip}] ${h4}\n[${n4.ip}] done\n`];
    assert.ok(out === blocks.join("") || out === [...blocks].reverse().join(""), out);
    const json = JSON.parse(
      await cli(["exec", "--cluster-name", NAME, "--json", "-r", "master", "echo hi"]),
    ) as { cluster: string; steps: Array<{ kind: string; hosts: string[]; durationMs: number }> };
    assert.deepEqual(
      json.steps.map(({ durationMs: _d, ...s }) => s),
      [{ kind: "exec", hosts: [n1.ip, n2.ip], reason: "echo hi" }],
    );
    assert.equal(typeof json.steps[0]?.durationMs, "number");
  });

  it("backup stores the snapshot with its sha256; restore checks it and puts it back on every etcd member", async () => {
    // Fetched in 700-byte pieces here (8 MiB by default), so the reassembly is exercised.
    const b = await backupEtcd({ ...o(), chunkBytes: 700 });
    const data = await fs.promises.readFile(b.file);
    assert.ok(data.length > 1400, `snapshot of ${data.length} bytes spans several pieces`);
    assert.equal(b.size, data.length);
    assert.equal(sha256Hex(data), b.sha256);
    assert.equal(
      await fs.promises.readFile(b.checksumFile, "utf8"),
      `${b.sha256}  ${path.basename(b.file)}\n`,
    );
    // A real etcd snapshot (the sandbox runs Debian's etcd on master0): this machine's etcdctl reads it.
    const status = JSON.parse(
      execFileSync("etcdctl", ["snapshot", "status", b.file, "-w", "json"], {
        env: { ...process.env, ETCDCTL_API: "3" },
      }).toString(),
    ) as { totalKey: number };
    assert.ok(status.totalKey >= 1);
    // A damaged copy is refused before anything is touched.
    const bad = path.join(home, "damaged.db");
    await fs.promises.writeFile(bad, Buffer.concat([data, Buffer.from("x")]));
    await fs.promises.copyFile(b.checksumFile, `${bad}.sha256`);
    await assert.rejects(restoreEtcd({ ...o(), snapshot: bad }), /does not match its checksum/);
    assert.equal(await sh(n1, "ls -d /var/lib/etcd.before-restore-* 2>/dev/null || true"), "");
    const r = await restoreEtcd({ ...o(), snapshot: path.basename(b.file) });
    // Both masters are etcd members (the control-plane join added n2): both are restored and
    // form the cluster again.
    assert.deepEqual(r.hosts, [n1.ip, n2.ip]);
    for (const m of [n1, n2]) {
      assert.match(await sh(m, "ls -d /var/lib/etcd.before-restore-*"), /^\/var\/lib\/etcd\.before-restore-/);
      assert.match(await sh(m, `${etcdctlBase()} endpoint health 2>&1`), /is healthy/);
    }
    assert.equal((await sh(n1, `${etcdctlBase()} member list`)).trim().split("\n").length, 2);
  });

  it("cert --alt-names re-issues the API server certificate on every master", async () => {
    const res = await addCertSans({ ...o(), altNames: ["api.example.com", "10.20.30.40"] });
    assert.deepEqual(
      res.steps.filter((s) => s.kind === "cert").map((s) => s.hosts[0]),
      [n1.ip, n2.ip],
    );
    for (const m of [n1, n2]) {
      const san = await sh(
        m,
        "openssl x509 -in /etc/kubernetes/pki/apiserver.crt -noout -ext subjectAltName",
      );
      assert.match(san, /DNS:api\.example\.com/);
      assert.match(san, /IP Address:10\.20\.30\.40/);
    }
  });

  it("scale in through apply: a host removed from the Clusterfile is cleaned, reset and deleted from the cluster", async () => {
    const res = await applyCluster({
      spec: spec(clusterfile([n1.ip, n2.ip], [n3.ip])),
      store,
      knownHostsFile: nodes.knownHostsFile,
    });
    const kinds = res.ran.map((s) => s.kind);
    assert.ok(kinds.includes("clean-host") && kinds.includes("delete-node"), kinds.join(" "));
    assert.equal(calls(await journal(n4), "kubeadm", "reset").length, 1);
    const del = calls(await journal(n1), "kubectl", "delete", "node");
    assert.equal(del.length, 1);
    assert.equal((await sh(n4, "test -e /var/lib/sealer/glife && echo yes || echo no")).trim(), "no");
    // Its layers (blobs and extracted trees) went with it: no other cluster on that host uses them.
    assert.equal(
      (
        await sh(n4, "{ ls /var/lib/sealer/blobs/sha256; ls /var/lib/sealer/layers; } 2>/dev/null | wc -l")
      ).trim(),
      "0",
    );
    assert.match(await sh(n4, "cat /var/log/g-hooks.log"), /d-clean pre-clean-host/);
  });

  it("upgrade: master0 (upgrade apply) first, other masters one at a time, then workers; rollback goes back the same way", async () => {
    const up = await upgradeCluster({ ...o(), image: "sandbox-base:v1.29.0" });
    assert.ok(up.ran.some((s) => s.kind === "upgrade-master"));
    const t = async (n: LocalNode, ...argv: string[]) =>
      calls(await journal(n), "kubeadm", "upgrade", ...argv).map((e) => e.ts);
    const a1 = await t(n1, "apply", "v1.29.0");
    const u2 = await t(n2, "node");
    const u3 = await t(n3, "node");
    assert.equal(a1.length, 1);
    assert.equal(u2.length, 1);
    assert.equal(u3.length, 1);
    assert.ok(a1[0]! < u2[0]! && u2[0]! < u3[0]!, "master0, then master, then worker");
    assert.match(await sh(n1, "cat /var/log/g-hooks.log"), /b-master upgrade/);
    const back = await rollbackCluster(o());
    assert.deepEqual(
      back.hooks.map((h) => h.hosts),
      [[n1.ip]],
    );
    const b1 = await t(n1, "apply", "v1.28.2");
    const b2 = (await t(n2, "node")).slice(1);
    const b3 = (await t(n3, "node")).slice(1);
    assert.equal(b1.length, 1);
    assert.ok(b1[0]! < b2[0]! && b2[0]! < b3[0]!);
    assert.match(await sh(n1, "cat /var/log/g-hooks.log"), /c-rollback rollback/);
    // The upgrade hook ran for the upgrade only, not for the rollback.
    assert.equal((await sh(n1, "grep -c 'b-master upgrade' /var/log/g-hooks.log")).trim(), "1");
  });

  it("delete -m: the master is removed and the VIP on the workers points at the remaining one", async () => {
    const out = JSON.parse(
      await cli(["delete", "--cluster-name", NAME, "-m", n2.ip, "--force", "--json"]),
    ) as { cluster: string; steps: Array<{ kind: string; hosts: string[] }> };
    assert.equal(out.cluster, NAME);
    assert.ok(out.steps.some((s) => s.kind === "clean-host" && s.hosts.includes(n2.ip)));
    assert.ok(out.steps.some((s) => s.kind === "worker-vip" && s.hosts.includes(n3.ip)));
    const j = await journal(n3);
    assert.deepEqual(vipTargets(j, 6443), [`${n1.ip}:6443`]);
    assert.deepEqual(vipTargets(j, 5000), [`${n1.ip}:5000`]);
    assert.equal(
      (
        await sh(n2, "{ ls /var/lib/sealer/blobs/sha256; ls /var/lib/sealer/layers; } 2>/dev/null | wc -l")
      ).trim(),
      "0",
    );
  });

  it("delete -a cleans every host and forgets the cluster", async () => {
    const res = await deleteAll(o());
    assert.deepEqual(res.skipped, []);
    assert.deepEqual(res.cleaned, [n1.ip, n3.ip].sort());
    for (const n of [n1, n3]) {
      assert.equal(calls(await journal(n), "kubeadm", "reset").length >= 1, true);
      assert.equal((await sh(n, "test -e /var/lib/sealer && echo yes || echo no")).trim(), "no");
      assert.doesNotMatch(await sh(n, "cat /etc/hosts"), /sealer:glife/);
    }
    // The worker's virtual servers are gone (the sandbox seautil drops the VIP from lo).
    const cleared = calls(await journal(n3), "seautil", "ipvs").filter((e) => e.argv.includes("-C"));
    assert.deepEqual(
      cleared.map((e) => e.argv[2]),
      ["10.103.97.2:6443", "10.103.97.2:5000"],
    );
    assert.doesNotMatch(await sh(n3, "ip -o addr show dev lo"), /10\.103\.97\.2/);
    assert.equal(fs.existsSync(path.join(home, "clusters", NAME)), false);
  });
});

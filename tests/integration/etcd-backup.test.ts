/**
 * `sealer backup` / `sealer restore` against the REAL etcd the sandbox's kubeadm starts on
 * master0 (Debian's etcd, TLS with kubeadm's pki/etcd files, client on 127.0.0.1:2379 inside the
 * node): a key written before the backup is back after the restore, one written after it is gone;
 * the snapshot is a real etcd snapshot (etcdctl snapshot status reads it on this machine).
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { applyCluster, deleteCluster } from "../../provider/core/apply";
import { loadClusterfile } from "../../provider/core/clusterfile";
import type { LocalNode } from "../../provider/core/infra/local";
import { backupEtcd, etcdctlBase, restoreEtcd } from "../../provider/core/lifecycle/backup";
import { useNodes } from "../harness/nodes";
import { lifecycleOpts, nodeOut, nodeSh, SANDBOX_BASE, useSandboxHome } from "../harness/sandbox";
import { clusterYaml } from "../harness/clusterfile";

const NAME = "etcdb";

describe("integration: etcd backup and restore with the real etcd", function () {
  this.timeout(300_000);
  const nodes = useNodes(2);
  const sandbox = useSandboxHome("etcd-backup-home");
  let m: LocalNode;
  const o = () => lifecycleOpts(NAME, sandbox.store(), nodes.knownHostsFile);
  const etcdctl = (args: string) => nodeSh(m, `${etcdctlBase()} ${args}`);
  const get = async (key: string) => (await etcdctl(`get ${key} --print-value-only`)).trim();
  const etcdPid = async () => (await nodeSh(m, "cat /var/lib/sealer-sandbox/etcd.pid")).trim();

  before(async function () {
    this.timeout(240_000);
    m = nodes.list[0]!;
    await applyCluster({ spec: spec(), store: sandbox.store(), knownHostsFile: nodes.knownHostsFile });
  });
  const spec = () => {
    const [m1, w1] = nodes.list as [LocalNode, LocalNode];
    return loadClusterfile(
      clusterYaml({ name: NAME, image: SANDBOX_BASE, pk: m1.keyPath, masters: [m1.ip], nodes: [w1.ip] }),
      { file: "Clusterfile" },
    ).spec;
  };

  it("kubeadm init started the image's etcd on master0 (TLS on 127.0.0.1:2379, data in /var/lib/etcd)", async () => {
    const pid = await etcdPid();
    await nodeSh(m, `cmp /proc/${pid}/exe /var/lib/sealer/${NAME}/rootfs/bin/etcd`);
    assert.match(
      await etcdctl("endpoint status -w table"),
      /https:\/\/127\.0\.0\.1:2379 \|[^|]+\|\s+3\.4\.\d+\s+\|/,
    );
    // Without the client certificate etcd refuses the connection.
    const anon = await nodeSh(
      m,
      `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --command-timeout=3s get x 2>&1 || true`,
    );
    assert.match(anon, /bad certificate|certificate required|context deadline exceeded/);
    assert.ok((await nodeSh(m, "ls /var/lib/etcd/member")).includes("wal"));
  });

  it("a key written before the backup is back after the restore; one written after it is gone", async () => {
    await etcdctl("put sealer/before-backup kept");
    const b = await backupEtcd(o());
    // A real etcd snapshot: this machine's etcdctl reads it (hash, revision, keys, size).
    const status = execFileSync("etcdctl", ["snapshot", "status", b.file, "-w", "json"], {
      env: { ...process.env, ETCDCTL_API: "3" },
    }).toString();
    assert.ok((JSON.parse(status) as { totalKey: number }).totalKey >= 1, status);
    assert.equal(path.dirname(b.file), path.join(sandbox.home(), "clusters", NAME, "backups"));
    await etcdctl("put sealer/after-backup lost");
    assert.equal(await get("sealer/after-backup"), "lost");
    const before = await etcdPid();
    const r = await restoreEtcd({ ...o(), snapshot: path.basename(b.file) });
    assert.deepEqual(r.hosts, [m.ip], "the one etcd member (master0)");
    assert.notEqual(await etcdPid(), before, "etcd was restarted on the restored data");
    assert.equal(await get("sealer/before-backup"), "kept");
    assert.equal(await get("sealer/after-backup"), "");
    // The data from before the restore is kept beside the new one.
    assert.match(
      await nodeSh(m, "ls -d /var/lib/etcd.before-restore-*"),
      /\/var\/lib\/etcd\.before-restore-\d/,
    );
  });

  it("delete stops etcd and removes its data (kubeadm reset)", async () => {
    const pid = await etcdPid();
    await deleteCluster({ spec: spec(), store: sandbox.store(), knownHostsFile: nodes.knownHostsFile });
    assert.equal(await nodeOut(m, `kill -0 ${pid} 2>/dev/null && echo running || echo stopped`), "stopped\n");
    assert.equal(
      await nodeOut(m, "ls -d /var/lib/etcd /etc/kubernetes/manifests 2>&1 | grep -c 'No such' || true"),
      "2\n",
    );
  });
});

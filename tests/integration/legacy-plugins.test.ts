/**
 * sealer's legacy CLUSTERCHECK and ETCD plugins on local nodes (sandbox base: the REAL etcd on
 * master0, the kubectl stand-in): a Clusterfile with both applies; the ETCD plugin's snapshot is
 * at its `on` path on master0 and etcdctl reads it; CLUSTERCHECK asked kubectl on master0 and
 * fails naming the node once the API server reports a node NotReady.
 */
import * as assert from "node:assert/strict";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { runClusterCheck } from "../../provider/core/exec/legacy-plugins";
import type { LocalNode } from "../../provider/core/infra/local";
import { resolveCluster } from "../../provider/core/lifecycle/cluster-ref";
import { withSession } from "../../provider/core/lifecycle/session";
import { useNodes } from "../harness/nodes";
import { applyQuick, journal, nodeOut, nodeSh, SANDBOX_BASE, useSandboxHome } from "../harness/sandbox";
import { clusterYaml } from "../harness/clusterfile";

const NAME = "legacyp";
const SNAPSHOT = "/var/backups/sealer-test/etcd-20210811.db";

describe("integration: legacy CLUSTERCHECK and ETCD plugins", function () {
  this.timeout(300_000);
  const nodes = useNodes(2);
  const sandbox = useSandboxHome("legacy-plugins-home");
  let m: LocalNode;
  let w: LocalNode;

  const clusterfile =
    () => `${clusterYaml({ name: NAME, image: SANDBOX_BASE, pk: m.keyPath, masters: [m.ip], nodes: [w.ip] })}---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: { name: checkCluster }
spec:
  type: CLUSTERCHECK
  action: PreGuest
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: { name: MyBackup }
spec:
  type: ETCD
  action: PostInstall
  on: ${SNAPSHOT}
`;

  // The nodes (and the etcd, API server and containerd in them) go with useNodes' teardown.
  before(() => {
    [m, w] = nodes.list as [LocalNode, LocalNode];
  });
  const spec = () => loadClusterfile(clusterfile(), { file: "Clusterfile" }).spec;

  it("apply runs both on master0: the snapshot is at the plugin's on path and etcdctl reads it", async () => {
    const r = await applyQuick({
      spec: spec(),
      store: sandbox.store(),
      knownHostsFile: nodes.knownHostsFile,
    });
    const hooks = r.ran.filter((s) => s.kind === "hook").map((s) => [s.id, s.hosts]);
    assert.deepEqual(hooks, [
      ["hook:post-install:MyBackup", [m.ip]],
      ["hook:post-install:checkCluster", [m.ip]],
    ]);
    // A real etcd snapshot, on master0 only.
    const status = JSON.parse(
      await nodeSh(m, `ETCDCTL_API=3 etcdctl snapshot status ${SNAPSHOT} -w json`),
    ) as { totalKey: number; totalSize: number };
    assert.ok(status.totalKey >= 1 && status.totalSize > 0, JSON.stringify(status));
    assert.equal(await nodeOut(w, `test -e ${SNAPSHOT} && echo there || echo absent`), "absent\n");
    // CLUSTERCHECK asked the API server on master0 for nodes and kube-system pods.
    const asked = (await journal(m)).filter((e) => e.tool === "kubectl").map((e) => e.argv.join(" "));
    assert.ok(
      asked.some((a) => a === "get nodes -o json"),
      asked.join("\n"),
    );
    assert.ok(
      asked.some((a) => a === "get pods -n kube-system -o json"),
      asked.join("\n"),
    );
  });

  it("CLUSTERCHECK fails naming master0, the step and the NotReady node", async () => {
    const wName = (await nodeOut(w, "hostname")).trim().toLowerCase();
    // The stand-in API server reads its state file on every request.
    await nodeSh(
      m,
      `node -e 'const f="/var/lib/sealer-sandbox/apiserver/state.json";const fs=require("fs");const s=JSON.parse(fs.readFileSync(f));for(const n of s.nodes)if(n.name===${JSON.stringify(wName)})n.notReady=true;fs.writeFileSync(f,JSON.stringify(s))'`,
    );
    assert.match(
      await nodeSh(
        m,
        `KUBECONFIG=/etc/kubernetes/admin.conf /var/lib/sealer/${NAME}/rootfs/bin/kubectl get nodes`,
      ),
      new RegExp(`${wName}\\s+NotReady`),
    );
    const rc = await resolveCluster({ clusterName: NAME });
    await assert.rejects(
      withSession(
        rc.spec,
        rc.applied,
        rc.stateDir,
        { store: sandbox.store(), knownHostsFile: nodes.knownHostsFile },
        (ctx) =>
          runClusterCheck(ctx, "hook post-install checkCluster", {
            maxTotalMs: 3000,
            minMs: 500,
            maxMs: 1000,
          }),
      ),
      (e: unknown) =>
        e instanceof UserError &&
        e.message.startsWith(`[${m.ip}] step "hook post-install checkCluster": the cluster was not ready`) &&
        e.message.includes(`node ${wName} NotReady`) &&
        e.message.includes("not ready") &&
        !/at .*\.js:\d+/.test(e.message),
    );
  });
});

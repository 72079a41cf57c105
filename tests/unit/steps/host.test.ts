/** init-host, container-runtime, host-aliases and hook steps against the recording fake host. */
import { strict as assert } from "node:assert";
import {
  runContainerRuntime,
  runHook,
  runHostAliases,
  runInitHost,
} from "../../../provider/core/exec/steps/host";
import { UserError } from "../../../provider/core/errors";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { M0, M1, W0, W1, nodeOf, disposeWorlds, step, world } from "./world";

const SHA = "a".repeat(64);

describe("steps: host preparation (fake host)", () => {
  afterEach(disposeWorlds);

  it("init-host runs the image's init scripts on each of its hosts and returns the files they wrote", async () => {
    const w = world();
    w.io.answer({ host: W0, match: /-cnewer/, stdout: `${SHA}  /etc/sysctl.d/k8s.conf\n` });
    const fp = await runInitHost(w.ctx, step("init-host", [M0, W0]));
    assert.deepEqual(w.io.hosts(), [M0, W0].sort());
    for (const ip of [M0, W0]) {
      const b = w.io.bodies(ip);
      assert.equal(b.length, 3, b.join("\n"));
      assert.equal(b[0], "mktemp");
      assert.match(b[1]!, new RegExp(`^mkdir -p /etc/kubernetes ${w.ctx.clusterDir} && `));
      const order = ["scripts/init.sh", "scripts/kubelet-pre-start.sh", "scripts/init-kube.sh"].map((s) =>
        b[1]!.indexOf(`sh ${s}`),
      );
      assert.ok(
        order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!)),
        b[1],
      );
      assert.match(b[2]!, /find "\$d" -type f -cnewer \/tmp\/tmp.marker .*; rm -f \/tmp\/tmp.marker$/);
    }
    assert.deepEqual(Object.keys(fp[W0]!.files!), ["/etc/sysctl.d/k8s.conf"]);
    assert.equal(fp[W0]!.files!["/etc/sysctl.d/k8s.conf"], SHA);
    assert.deepEqual(fp[M0]!.files, {});
  });

  it("container-runtime installs with the image's script, and refuses naming the host when the image lacks it", async () => {
    const w = world();
    w.io.answer({ host: M0, match: /^test -f scripts\/containerd\.sh$/, code: 0 });
    w.io.answer({ host: W0, match: /^test -f scripts\/containerd\.sh$/, code: 1 });
    await assert.rejects(
      runContainerRuntime(w.ctx, step("container-runtime", [M0, W0], { runtime: "containerd" })),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes(`[${W0}]`) &&
        e.message.includes("scripts/containerd.sh"),
    );
    assert.ok(w.io.bodies(M0).includes("sh scripts/containerd.sh"), w.io.bodies(M0).join("\n"));
    assert.ok(!w.io.bodies(W0).some((b) => b.startsWith("sh scripts/")), w.io.bodies(W0).join("\n"));
  });

  it("host-aliases writes the Clusterfile's aliases into this cluster's /etc/hosts block", async () => {
    const w = world({
      clusterfile: clusterfile({
        extraSpec: "  hostAliases:\n    - { ip: 10.9.9.9, hostnames: [db.internal, db2.internal] }\n",
      }),
    });
    await runHostAliases(w.ctx, step("host-aliases", [W1]));
    assert.deepEqual(w.io.hosts(), [W1]);
    const [cmd] = w.io.bodies(W1);
    assert.ok(cmd!.includes("# BEGIN sealer:demo:aliases"), cmd);
    assert.ok(cmd!.includes("10.9.9.9 db.internal db2.internal"), cmd);
  });

  it("a SHELL hook runs its data through sh on exactly the hosts in its scope, with its phase", async () => {
    const w = world();
    await runHook(w.ctx, step("hook", [M0, W1], { phase: "pre-init-host", plugin: "sysctl" }));
    assert.deepEqual(w.io.hosts(), [M0, W1].sort());
    for (const ip of [M0, W1]) {
      const run = w.io.on(ip).find((c) => c.op === "run" && c.body === "sh -s");
      assert.ok(run && run.op === "run", `no sh -s on ${ip}`);
      assert.equal(run.stdin, "sysctl -w net.ipv4.ip_forward=1");
      assert.match(run.command, /export SEALER_HOOK_PHASE=pre-init-host;/);
      assert.equal(run.step, "hook pre-init-host sysctl");
    }
  });

  it("a hook naming an unknown plugin fails before touching any host", async () => {
    const w = world();
    await assert.rejects(
      runHook(w.ctx, step("hook", [M0], { phase: "post-install", plugin: "nope" })),
      /plugin nope is neither in the Clusterfile nor in the image's plugins/,
    );
    assert.deepEqual(w.io.hosts(), []);
  });

  it("legacy LABEL labels the in-scope nodes from master0; HOSTNAME renames only the hosts it lists", async () => {
    const docs = `---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: lab }
spec:
  type: LABEL
  action: post-install
  data: |
    ${W0} env=prod,tier=web
    ${W1} env=dev
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: names }
spec:
  type: HOSTNAME
  action: pre-init-host
  data: |
    ${M1} control-2
`;
    const w = world({ clusterfile: clusterfile({ docs }) });
    await runHook(w.ctx, step("hook", [W0], { phase: "post-install", plugin: "lab" }));
    const labels = w.io.bodies(M0).filter((b) => b.startsWith("kubectl"));
    assert.deepEqual(labels, [`kubectl label node ${nodeOf(W0)} --overwrite env=prod tier=web`]);
    assert.deepEqual(w.io.bodies(W1), []);

    await runHook(w.ctx, step("hook", [M0, M1], { phase: "pre-init-host", plugin: "names" }));
    assert.deepEqual(w.io.bodies(M1), ["hostname control-2 && echo control-2 > /etc/hostname"]);
    assert.ok(!w.io.bodies(M0).some((b) => b.startsWith("hostname ")));
  });
  it("legacy ETCD saves a snapshot on master0 at its on path; CLUSTERCHECK asks master0 for nodes and pods", async () => {
    const docs = `---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: snap }
spec:
  type: ETCD
  action: post-install
  on: /backup/etcd.db
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: check }
spec:
  type: CLUSTERCHECK
  action: PreGuest
`;
    const w = world({ clusterfile: clusterfile({ docs }) });
    w.io.answer({ host: M0, match: /snapshot save/, stdout: `${SHA}  /backup/etcd.db\nSIZE 4096\n` });
    await runHook(w.ctx, step("hook", [M0, M1, W0, W1], { phase: "post-install", plugin: "snap" }));
    const snap = w.io.bodies(M0).filter((b) => b.includes("snapshot save"));
    assert.equal(snap.length, 1);
    assert.match(snap[0]!, /^mkdir -p \/backup && .*etcdctl.* snapshot save \/backup\/etcd\.db /);
    assert.deepEqual(w.io.hosts(), [M0]);

    const ready = (name: string) => ({
      metadata: { name },
      status: { conditions: [{ type: "Ready", status: "True" }] },
    });
    w.io.answer({
      host: M0,
      match: /kubectl get nodes -o json$/,
      stdout: JSON.stringify({ items: [M0, M1, W0, W1].map((ip) => ready(nodeOf(ip))) }),
    });
    w.io.answer({
      host: M0,
      match: /kubectl get pods -n kube-system -o json$/,
      stdout: JSON.stringify({
        items: [{ metadata: { name: "etcd" }, status: { containerStatuses: [{ ready: true }] } }],
      }),
    });
    await runHook(w.ctx, step("hook", [M0], { phase: "post-install", plugin: "check" }));
    const asked = w.io.bodies(M0).filter((b) => /kubectl get (nodes|pods)/.test(b));
    assert.equal(asked.length, 2, asked.join("\n"));
    assert.ok(
      asked.every((b) => b.startsWith("if [ -f /etc/kubernetes/admin.conf ]; then export KUBECONFIG=")),
    );
  });
});

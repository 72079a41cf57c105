/** hook against the recording fake host: SHELL and the legacy plugin kinds, its record and drift check. */
import { strict as assert } from "node:assert";
import { hook } from "../../../provider/core/exec/steps/hook";
import { clusterfile, plugin } from "../../fixtures/clusterfile/plan-world";

const V2 = "sealer.io/v2";
import { M0, M1, W0, W1, nodeOf, drifted, knowing, recorded, step, world } from "./world";

const SHA = "a".repeat(64);

describe("step hook (fake host)", () => {
  it("a SHELL hook runs its data through sh on exactly the hosts in its scope, with its phase", async () => {
    const w = world();
    await hook.run(w.ctx, step("hook", [M0, W1], { phase: "pre-init-host", plugin: "sysctl" }));
    assert.deepEqual(w.io.hosts(), [M0, W1].sort());
    for (const ip of [M0, W1]) {
      const run = w.io.on(ip).find((c) => c.op === "run" && c.body === "sh -s");
      assert.ok(run && run.op === "run", `no sh -s on ${ip}`);
      assert.equal(run.stdin, "sysctl -w net.ipv4.ip_forward=1");
      assert.match(run.command, /export SEALER_HOOK_PHASE=pre-init-host;/);
      assert.equal(run.step, "hook pre-init-host sysctl");
    }
  });

  it("a SHELL hook's edits are its footprint: recorded, and drift names the hook when the file changes", async () => {
    const w = world();
    w.io.answer({ host: W1, match: /-cnewer/, stdout: `${SHA}  /etc/sysctl.d/99-hook.conf\n` });
    const s = step("hook", [W1], {
      id: `hook:pre-init-host:sysctl:${W1}`,
      phase: "pre-init-host",
      plugin: "sysctl",
    });
    const seen = await hook.run(w.ctx, s);
    const after = recorded(w, s, seen, knowing(w, [W1]));
    assert.deepEqual(after.steps[s.id]!.footprint, {
      [W1]: { files: { "/etc/sysctl.d/99-hook.conf": SHA } },
    });
    assert.deepEqual(drifted(w, after, W1, { files: { "/etc/sysctl.d/99-hook.conf": null } }), {
      "file:/etc/sysctl.d/99-hook.conf": [s.id],
    });
  });

  it("a hook naming an unknown plugin fails before touching any host", async () => {
    const w = world();
    await assert.rejects(
      hook.run(w.ctx, step("hook", [M0], { phase: "post-install", plugin: "nope" })),
      /plugin nope is neither in the Clusterfile nor in the image's plugins/,
    );
    assert.deepEqual(w.io.hosts(), []);
  });

  it("legacy LABEL labels the in-scope nodes from master0; HOSTNAME renames only the hosts it lists", async () => {
    const docs =
      plugin(
        V2,
        "lab",
        `type: LABEL, action: post-install, data: "${W0} env=prod,tier=web\\n${W1} env=dev\\n"`,
      ) + plugin(V2, "names", `type: HOSTNAME, action: pre-init-host, data: "${M1} control-2\\n"`);
    const w = world({ clusterfile: clusterfile({ docs }) });
    await hook.run(w.ctx, step("hook", [W0], { phase: "post-install", plugin: "lab" }));
    const labels = w.io.bodies(M0).filter((b) => b.startsWith("kubectl"));
    assert.deepEqual(labels, [`kubectl label node ${nodeOf(W0)} --overwrite env=prod tier=web`]);
    assert.deepEqual(w.io.bodies(W1), []);

    await hook.run(w.ctx, step("hook", [M0, M1], { phase: "pre-init-host", plugin: "names" }));
    assert.deepEqual(w.io.bodies(M1), ["hostname control-2 && echo control-2 > /etc/hostname"]);
    assert.ok(!w.io.bodies(M0).some((b) => b.startsWith("hostname ")));
  });

  it("legacy ETCD saves a snapshot on master0 at its on path; CLUSTERCHECK asks master0 for nodes and pods", async () => {
    const docs =
      plugin(V2, "snap", "type: ETCD, action: post-install, on: /backup/etcd.db") +
      plugin(V2, "check", "type: CLUSTERCHECK, action: PreGuest");
    const w = world({ clusterfile: clusterfile({ docs }) });
    w.io.answer({ host: M0, match: /snapshot save/, stdout: `${SHA}  /backup/etcd.db\nSIZE 4096\n` });
    await hook.run(w.ctx, step("hook", [M0, M1, W0, W1], { phase: "post-install", plugin: "snap" }));
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
    await hook.run(w.ctx, step("hook", [M0], { phase: "post-install", plugin: "check" }));
    const asked = w.io.bodies(M0).filter((b) => /kubectl get (nodes|pods)/.test(b));
    assert.equal(asked.length, 2, asked.join("\n"));
    assert.ok(
      asked.every((b) => b.startsWith("if [ -f /etc/kubernetes/admin.conf ]; then export KUBECONFIG=")),
    );
  });
});

/**
 * sealer's legacy CLUSTERCHECK and ETCD plugins: how the Clusterfile loader reads them (the
 * phases sealer ran them at, ETCD's `on` as the snapshot path), that the planner puts them on
 * master0, and what the hook step runs for them against a recorded node shell.
 */
import * as assert from "node:assert/strict";
import { loadPluginFile } from "../../provider/core/clusterfile/plugin-file";
import type { ExecContext } from "../../provider/core/exec/context";
import { hook as hookKind } from "../../provider/core/exec/steps/hook";
import {
  etcdSnapshotPath,
  nodesNotReady,
  podsNotReady,
  runClusterCheck,
} from "../../provider/core/exec/legacy-plugins";
import { UserError } from "../../provider/core/errors";
import { pluginHosts } from "../../provider/core/plan/plugins";
import type { PluginDoc } from "../../provider/core/clusterfile/types";
import type { Step } from "../../provider/core/plan/types";

const doc = (spec: string, name = "p") =>
  `apiVersion: sealer.aliyun.com/v1alpha1\nkind: Plugin\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

describe("legacy CLUSTERCHECK / ETCD plugins: loading and hosts", () => {
  it("CLUSTERCHECK waits only at PreGuest, as sealer's did; other actions are dropped", () => {
    assert.deepEqual(
      loadPluginFile(doc("  type: CLUSTERCHECK\n  action: PreGuest\n"), "f.yaml")[0]!.actions,
      ["post-install"],
    );
    // sealer's ClusterChecker returns at once at any phase but PreGuest.
    assert.deepEqual(
      loadPluginFile(doc("  type: CLUSTERCHECK\n  action: PostInstall\n"), "f.yaml")[0]!.actions,
      [],
    );
    // No action, no phase: sealer runs a plugin only at the phases its action lists.
    assert.deepEqual(loadPluginFile(doc("  type: CLUSTERCHECK\n"), "f.yaml")[0]!.actions, []);
  });

  it("ETCD's on is the absolute snapshot path, not a host selector; a relative one is refused", () => {
    const p = loadPluginFile(
      doc("  type: ETCD\n  action: PostInstall\n  on: /tmp/202108112058.bak\n"),
      "f.yaml",
    )[0]!;
    assert.equal(p.on, "/tmp/202108112058.bak");
    assert.deepEqual(p.actions, ["post-install"]);
    assert.throws(
      () => loadPluginFile(doc("  type: ETCD\n  action: PostInstall\n  on: backup.db\n"), "f.yaml"),
      (e: unknown) =>
        e instanceof UserError && /not an absolute path/.test(e.message) && /spec\.on/.test(e.message),
    );
  });

  it("both run on master0 alone whatever on says", () => {
    const facts = () => ({ role: "master" as const, roles: ["master"], labels: {} });
    for (const type of ["CLUSTERCHECK", "ETCD"] as const) {
      const p: PluginDoc = {
        name: "x",
        type,
        actions: ["post-install"],
        scope: [],
        data: "",
        legacy: true,
        on: "/tmp/a.db",
      };
      assert.deepEqual(pluginHosts(p, "post-install", ["10.0.0.2", "10.0.0.3"], facts, "10.0.0.2"), [
        "10.0.0.2",
      ]);
      assert.deepEqual(pluginHosts(p, "post-install", ["10.0.0.3"], facts, "10.0.0.2"), []);
    }
  });

  it("an ETCD plugin without on saves into the cluster's backups dir on master0", () => {
    assert.equal(
      etcdSnapshotPath(undefined, "/var/lib/sealer/data/c1", new Date("2026-01-02T03:04:05.678Z")),
      "/var/lib/sealer/data/c1/backups/etcd-snapshot-20260102T030405Z.db",
    );
    assert.equal(etcdSnapshotPath("/backup//x.db", "/d", new Date()), "/backup/x.db");
  });
});

describe("legacy CLUSTERCHECK readiness (sealer's kube-system rule, plus every host a Ready node)", () => {
  const pod = (name: string, ready?: boolean) => ({
    metadata: { name },
    status: ready === undefined ? {} : { containerStatuses: [{ ready }] },
  });
  it("no kube-system pods is not ready; pods without container statuses are passed over", () => {
    assert.deepEqual(podsNotReady(JSON.stringify({ items: [] })), ["no pods in kube-system yet"]);
    assert.deepEqual(
      podsNotReady(JSON.stringify({ items: [pod("init", undefined), pod("etcd-a", true)] })),
      [],
    );
    assert.deepEqual(
      podsNotReady(JSON.stringify({ items: [pod("etcd-a", true), pod("coredns-x", false)] })),
      ["pod kube-system/coredns-x not ready"],
    );
    assert.throws(() => podsNotReady("The connection to the server was refused"), /printed no JSON/);
  });
  it("nodes: Kubernetes' Ready condition or the sandbox's notReady flag; missing hosts count", () => {
    const k8s = {
      items: [
        { metadata: { name: "a" }, status: { conditions: [{ type: "Ready", status: "True" }] } },
        { metadata: { name: "b" }, status: { conditions: [{ type: "Ready", status: "Unknown" }] } },
      ],
    };
    assert.deepEqual(nodesNotReady(JSON.stringify(k8s), ["a", "b", "c"]), [
      "node b NotReady",
      "node c not registered",
    ]);
    assert.deepEqual(
      nodesNotReady(JSON.stringify({ items: [{ name: "a" }, { name: "b", notReady: true }] }), ["a"]),
      ["node b NotReady"],
    );
  });
});

/** A node shell answering kubectl with `answers()` (asked anew on each call) and recording the rest. */
function clusterCtx(answers: () => { nodes: unknown; pods: unknown }) {
  const ran: Array<{ ip: string; label: string; cmd: string }> = [];
  const ctx = {
    master0: "10.0.0.2",
    masters: ["10.0.0.2"],
    workers: ["10.0.0.3"],
    clusterDir: "/var/lib/sealer/data/c1",
    nodeName: async (ip: string) => (ip === "10.0.0.2" ? "m0" : "w1"),
    spec: {
      plugins: [
        { name: "check", type: "CLUSTERCHECK", actions: ["post-install"], scope: [], data: "", legacy: true },
        {
          name: "backup",
          type: "ETCD",
          actions: ["post-install"],
          scope: [],
          data: "",
          legacy: true,
          on: "/backup/e.db",
        },
      ],
    },
    image: {},
    sh: async (ip: string, label: string, cmd: string) => {
      ran.push({ ip, label, cmd });
      const a = answers();
      if (cmd.includes("kubectl get nodes")) return { code: 0, stdout: JSON.stringify(a.nodes), stderr: "" };
      if (cmd.includes("kubectl get pods")) return { code: 0, stdout: JSON.stringify(a.pods), stderr: "" };
      if (cmd.includes("snapshot save"))
        return { code: 0, stdout: `${"ab".repeat(32)}  /backup/e.db\nSIZE 20512\n`, stderr: "" };
      return { code: 0, stdout: "", stderr: "" };
    },
  } as unknown as ExecContext;
  return { ctx, ran };
}
const hook = (plugin: string): Extract<Step, { kind: "hook" }> => ({
  id: `hook:post-install:${plugin}`,
  kind: "hook",
  phase: "post-install",
  plugin,
  hosts: ["10.0.0.2"],
  reason: "test",
  key: "k",
  after: [],
});
const readyPods = {
  items: [{ metadata: { name: "etcd-m0" }, status: { containerStatuses: [{ ready: true }] } }],
};

describe("legacy plugins at apply (the hook step)", () => {
  it("CLUSTERCHECK polls on master0 until every node is Ready", async () => {
    let calls = 0;
    const { ctx, ran } = clusterCtx(() => {
      calls++;
      // w1 joins on the third look.
      return {
        nodes: { items: calls < 5 ? [{ name: "m0" }] : [{ name: "m0" }, { name: "w1" }] },
        pods: readyPods,
      };
    });
    // The policy waits 5 s and more between looks: the test injects the clock and the sleep.
    let t = 0;
    await runClusterCheck(ctx, "hook post-install check", {
      maxTotalMs: 60_000,
      sleep: async (ms) => {
        t += ms;
      },
      now: () => t,
    });
    const looks = ran.filter((r) => r.cmd.includes("kubectl get nodes"));
    assert.equal(looks.length, 3);
    assert.ok(ran.every((r) => r.ip === "10.0.0.2"));
  });

  it("CLUSTERCHECK times out naming the host, step and what was still not ready", async () => {
    const { ctx } = clusterCtx(() => ({
      nodes: { items: [{ name: "m0" }, { name: "w1", notReady: true }] },
      pods: readyPods,
    }));
    let t = 0;
    await assert.rejects(
      runClusterCheck(ctx, "hook post-install check", {
        maxTotalMs: 60_000,
        sleep: async (ms) => {
          t += ms;
        },
        now: () => t,
      }),
      (e: unknown) =>
        e instanceof UserError &&
        e.message.includes("[10.0.0.2]") &&
        e.message.includes('step "hook post-install check"') &&
        e.message.includes("node w1 NotReady") &&
        e.message.includes("after 60s"),
    );
  });

  it("ETCD checks etcdctl and the certificates, then saves to its on path with the shared command", async () => {
    const { ctx, ran } = clusterCtx(() => ({ nodes: {}, pods: {} }));
    await hookKind.run(ctx, hook("backup"));
    assert.match(ran[0]!.cmd, /command -v etcdctl/);
    assert.equal(ran[1]!.ip, "10.0.0.2");
    assert.equal(ran[1]!.label, "hook post-install backup");
    assert.match(
      ran[1]!.cmd,
      /^mkdir -p \/backup && ETCDCTL_API=3 etcdctl --endpoints=https:\/\/127\.0\.0\.1:2379 --cacert=\/etc\/kubernetes\/pki\/etcd\/ca\.crt --cert=\/etc\/kubernetes\/pki\/etcd\/healthcheck-client\.crt --key=\/etc\/kubernetes\/pki\/etcd\/healthcheck-client\.key snapshot save \/backup\/e\.db >&2 && sha256sum \/backup\/e\.db/,
    );
  });

  it("ETCD failing says where, what and what to do", async () => {
    const { ctx } = clusterCtx(() => ({ nodes: {}, pods: {} }));
    const sh = ctx.sh.bind(ctx);
    (ctx as unknown as { sh: typeof sh }).sh = async (ip, label, cmd, o) =>
      cmd.includes("snapshot save")
        ? { code: 1, stdout: "", stderr: "Error: context deadline exceeded\n" }
        : sh(ip, label, cmd, o);
    await assert.rejects(
      hookKind.run(ctx, hook("backup")),
      (e: unknown) =>
        e instanceof UserError &&
        e.message.includes('[10.0.0.2] step "hook post-install backup"') &&
        e.message.includes("/backup/e.db") &&
        e.message.includes("context deadline exceeded"),
    );
  });
});

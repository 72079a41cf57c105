/** Drift detection, pure parts: expectations from the state, parsing the probe, comparison (table-driven). */
import * as assert from "node:assert/strict";
import {
  buildReport,
  compareHost,
  driftNotes,
  expectations,
  parseHostsBlocks,
  parseNodeList,
  type ClusterLayout,
  type ExpectedHost,
  type HostObservation,
  type NodeList,
} from "../../provider/core/drift/compare";
import { parseProbe, probeScript } from "../../provider/core/drift/probe";
import {
  hashFilesCmd,
  parseHashes,
  parseTreeLoss,
  recordTreeCmd,
  withFootprint,
} from "../../provider/core/exec/footprint";
import { emptyStats, type ExecContext } from "../../provider/core/exec/context";
import { executeSteps } from "../../provider/core/exec/executor";
import { recordStep } from "../../provider/core/exec/record";
import { baseImage, clusterfile, spec } from "../fixtures/clusterfile/plan-world";
import { inventoryScript, parseInventory, planMaterialise } from "../../provider/core/exec/node-layers";
import { setLogSink } from "../../provider/core/log";
import { sha256Hex } from "../../provider/core/fsutil";
import { emptyApplied, type AppliedState, type Step } from "../../provider/core/plan/types";

const M0 = "10.1.0.2";
const W1 = "10.1.0.3";
const L1 = "sha256:" + "a".repeat(64);
const L2 = "sha256:" + "b".repeat(64);
const rec = (ip?: string) => ({ key: "k", hosts: ip ? [ip] : [] });

const layout: ClusterLayout = {
  cluster: "dc",
  masters: [M0],
  workers: [W1],
  registryHosts: [M0],
  // HA local registry: the worker reaches it through the VIP.
  registryTargets: { [M0]: M0, [W1]: "10.103.97.2" },
  registryDomain: "sea.hub",
  localRegistry: true,
  hostAliases: [{ ip: "10.9.9.9", names: ["db.local", "db"] }],
  vip: "10.103.97.2",
  apiserverDomain: "apiserver.cluster.local",
};

function state(): AppliedState {
  const steps: AppliedState["steps"] = {};
  for (const ip of [M0, W1])
    for (const k of ["distribute", "host-aliases", "registry-client", "node-labels"])
      steps[`${k}:${ip}`] = rec(ip);
  steps[`registry:${M0}`] = rec(M0);
  steps["init-master"] = rec(M0);
  steps[`worker-vip:${W1}`] = rec(W1);
  steps[`join-worker:${W1}`] = rec(W1);
  steps[`hook:post-init-host:mark:${W1}`] = rec(W1);
  steps["save-clusterfile"] = rec(M0);
  return {
    version: 1,
    cluster: "dc",
    hosts: {
      [M0]: { roles: ["master"], layers: [L1, L2], nodeName: "m0", labels: {}, taints: [] },
      [W1]: {
        roles: ["node"],
        layers: [L1, L2],
        nodeName: "w1",
        labels: { "node-role.kubernetes.io/worker": "", disk: "ssd" },
        taints: ["dedicated=batch:NoSchedule"],
      },
    },
    steps,
  };
}

function healthy(ip: string): HostObservation {
  return {
    host: ip,
    blobs: { ["a".repeat(64)]: 10, ["b".repeat(64)]: 20 },
    layersJson: [L1, L2],
    rootfs: true,
    blocks: {
      aliases: ["10.9.9.9 db.local db"],
      registry: [ip === M0 ? `${M0} sea.hub` : "10.103.97.2 sea.hub"],
      apiserver: [ip === M0 ? `${M0} apiserver.cluster.local` : "10.103.97.2 apiserver.cluster.local"],
    },
    ...(ip === M0 ? { registryHttp: "200", clusterfile: true } : { clusterfile: false }),
  };
}

const nodesOk: NodeList = {
  ok: true,
  from: M0,
  nodes: [
    { name: "m0", labels: {}, taints: [] },
    {
      name: "w1",
      labels: { "node-role.kubernetes.io/worker": "", disk: "ssd" },
      taints: ["dedicated=batch:NoSchedule"],
    },
  ],
};

describe("drift: expectations from the applied state", () => {
  const e = expectations(state(), layout);
  const byHost = (ip: string) => e.find((x) => x.host === ip)!;

  it("expects only the effects of recorded steps, with the steps that redo them", () => {
    const w = byHost(W1);
    assert.deepEqual(w.layers, [L1, L2]);
    assert.deepEqual(
      w.blocks.map((b) => [b.tag, b.lines, b.steps]),
      [
        ["aliases", ["10.9.9.9 db.local db"], [`host-aliases:${W1}`]],
        ["registry", ["10.103.97.2 sea.hub"], [`registry-client:${W1}`]],
        ["apiserver", ["10.103.97.2 apiserver.cluster.local"], [`worker-vip:${W1}`]],
      ],
    );
    assert.equal(w.registry, false);
    assert.deepEqual(w.node, {
      name: "w1",
      by: "join-worker",
      joinSteps: [`join-worker:${W1}`, `hook:post-init-host:mark:${W1}`, `node-labels:${W1}`],
      labelSteps: [`node-labels:${W1}`],
      labels: { "node-role.kubernetes.io/worker": "", disk: "ssd" },
      taints: ["dedicated=batch:NoSchedule"],
    });
  });

  it("master0: registry and Clusterfile expected; its node and apiserver block have no step (kubeadm init is not re-run)", () => {
    const m = byHost(M0);
    assert.equal(m.registry, true);
    assert.equal(m.clusterfile, true);
    assert.deepEqual(m.node?.joinSteps, []);
    const api = m.blocks.find((b) => b.tag === "apiserver")!;
    assert.deepEqual(api.steps, []);
    assert.match(api.manual ?? "", /re-running kubeadm init is not safe/);
  });

  it("a host whose distribute never ran expects no layers; an unrecorded host expects nothing", () => {
    const s = state();
    delete s.steps[`distribute:${W1}`];
    s.hosts["10.1.0.99"] = { roles: ["node"], layers: [L1] };
    const e2 = expectations(s, layout);
    assert.equal(e2.find((x) => x.host === W1)!.layers, undefined);
    assert.equal(
      e2.find((x) => x.host === "10.1.0.99"),
      undefined,
      "not in the layout",
    );
  });
});

describe("drift: compareHost", () => {
  const e = expectations(state(), layout);
  const exp = (ip: string): ExpectedHost => e.find((x) => x.host === ip)!;
  type Row = {
    name: string;
    host: string;
    change: (o: HostObservation) => void;
    nodes?: NodeList;
    want: Array<[string, string, string[]?]>; // check, status, steps (for drifted)
  };
  const rows: Row[] = [
    { name: "healthy worker", host: W1, change: () => {}, want: [] },
    { name: "healthy master0", host: M0, change: () => {}, want: [] },
    {
      name: "a blob deleted",
      host: W1,
      change: (o) => delete o.blobs["a".repeat(64)],
      want: [["blobs", "drifted", [`distribute:${W1}`]]],
    },
    {
      name: "rootfs and layers.json gone",
      host: W1,
      change: (o) => {
        o.rootfs = false;
        o.layersJson = null;
      },
      want: [
        ["layers.json", "drifted", [`distribute:${W1}`]],
        ["rootfs", "drifted", [`distribute:${W1}`]],
      ],
    },
    {
      name: "layers.json lists other layers",
      host: W1,
      change: (o) => (o.layersJson = [L1]),
      want: [["layers.json", "drifted", [`distribute:${W1}`]]],
    },
    {
      name: "aliases block removed",
      host: W1,
      change: (o) => delete o.blocks.aliases,
      want: [["hosts:aliases", "drifted", [`host-aliases:${W1}`]]],
    },
    {
      name: "registry block edited",
      host: W1,
      change: (o) => (o.blocks.registry = ["10.1.0.77 sea.hub"]),
      want: [["hosts:registry", "drifted", [`registry-client:${W1}`]]],
    },
    {
      name: "master0 apiserver block removed: drift with no step",
      host: M0,
      change: (o) => delete o.blocks.apiserver,
      want: [["hosts:apiserver", "drifted", []]],
    },
    {
      name: "registry stopped",
      host: M0,
      change: (o) => (o.registryHttp = "000"),
      want: [["registry", "drifted", [`registry:${M0}`]]],
    },
    {
      name: "no curl on the registry host: unknown, not drift",
      host: M0,
      change: (o) => (o.registryHttp = "curl-missing"),
      want: [["registry", "unknown"]],
    },
    {
      name: "saved Clusterfile deleted",
      host: M0,
      change: (o) => (o.clusterfile = false),
      want: [["clusterfile", "drifted", ["save-clusterfile"]]],
    },
    {
      name: "worker missing from the node list",
      host: W1,
      change: () => {},
      nodes: { ok: true, from: M0, nodes: [{ name: "m0", labels: {}, taints: [] }] },
      want: [
        ["node", "drifted", [`join-worker:${W1}`, `hook:post-init-host:mark:${W1}`, `node-labels:${W1}`]],
      ],
    },
    {
      name: "a label removed",
      host: W1,
      change: () => {},
      nodes: {
        ok: true,
        from: M0,
        nodes: [
          {
            name: "w1",
            labels: { "node-role.kubernetes.io/worker": "" },
            taints: ["dedicated=batch:NoSchedule"],
          },
        ],
      },
      want: [["labels", "drifted", [`node-labels:${W1}`]]],
    },
    {
      name: "a taint removed",
      host: W1,
      change: () => {},
      nodes: {
        ok: true,
        from: M0,
        nodes: [{ name: "w1", labels: { "node-role.kubernetes.io/worker": "", disk: "ssd" }, taints: [] }],
      },
      want: [["taints", "drifted", [`node-labels:${W1}`]]],
    },
    {
      name: "API server not answering: node checks unknown",
      host: W1,
      change: () => {},
      nodes: { ok: false, unreachable: false, error: "kubectl get nodes exited 1" },
      want: [["node", "unknown"]],
    },
    {
      name: "host unreachable: one unreachable check, nothing else",
      host: W1,
      change: (o) => (o.unreachable = "connect ECONNREFUSED"),
      want: [["ssh", "unreachable"]],
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const o = healthy(r.host);
      r.change(o);
      const got = compareHost(exp(r.host), o, r.nodes ?? nodesOk)
        .filter((c) => c.status !== "ok")
        .map((c): [string, string, string[]?] =>
          c.status === "drifted" ? [c.check, c.status, c.steps] : [c.check, c.status],
        );
      assert.deepEqual(got, r.want);
    });

  it("the report unions the steps and writes notes the planner shows", () => {
    const w = healthy(W1);
    delete w.blocks.aliases;
    w.blobs = {};
    const r = buildReport("dc", e, [healthy(M0), w], nodesOk);
    assert.equal(r.drifted, true);
    assert.deepEqual(r.steps, [`distribute:${W1}`, `host-aliases:${W1}`]);
    assert.deepEqual(driftNotes(r), {
      [`distribute:${W1}`]: `${W1} blobs: missing aaaaaaaaaaaa, bbbbbbbbbbbb`,
      [`host-aliases:${W1}`]: `${W1} hosts:aliases: block missing`,
    });
  });

  it("an unreachable host is not drift", () => {
    const w = healthy(W1);
    w.unreachable = "dial failed";
    const r = buildReport("dc", e, [healthy(M0), w], nodesOk);
    assert.equal(r.drifted, false);
    assert.deepEqual(r.steps, []);
  });
});

describe("drift: parsing", () => {
  it("parseHostsBlocks keeps only this cluster's blocks", () => {
    const text = [
      "127.0.0.1 localhost",
      "# BEGIN sealer:dc:registry",
      "10.1.0.2   sea.hub",
      "# END sealer:dc:registry",
      "# BEGIN sealer:other:registry",
      "10.5.5.5 sea.hub",
      "# END sealer:other:registry",
      "# BEGIN sealer:dc:aliases",
      "10.9.9.9 db.local db",
      "# END sealer:dc:aliases",
    ].join("\n");
    assert.deepEqual(parseHostsBlocks(text, "dc"), {
      registry: ["10.1.0.2 sea.hub"],
      aliases: ["10.9.9.9 db.local db"],
    });
  });

  it("parseNodeList reads Kubernetes' shape and the sandbox's", () => {
    const k8s = JSON.stringify({
      items: [
        {
          metadata: { name: "n1", labels: { a: "1" } },
          spec: {
            taints: [
              { key: "k", value: "v", effect: "NoSchedule" },
              { key: "x", effect: "NoExecute" },
            ],
          },
        },
      ],
    });
    assert.deepEqual(parseNodeList(k8s), [
      { name: "n1", labels: { a: "1" }, taints: ["k=v:NoSchedule", "x:NoExecute"] },
    ]);
    const sandbox = JSON.stringify({
      items: [{ name: "n2", labels: { b: "" }, taints: ["t=1:NoSchedule"] }],
    });
    assert.deepEqual(parseNodeList(sandbox), [{ name: "n2", labels: { b: "" }, taints: ["t=1:NoSchedule"] }]);
    assert.throws(() => parseNodeList("{}"), /no items/);
  });

  it("the probe script runs with sh and its output parses back", async () => {
    const { execFileSync } = await import("node:child_process");
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "drift-probe-"));
    try {
      fs.mkdirSync(path.join(root, "blobs/sha256"), { recursive: true });
      fs.writeFileSync(path.join(root, "blobs/sha256", "a".repeat(64)), "12345");
      fs.mkdirSync(path.join(root, "dc/rootfs/bin"), { recursive: true });
      fs.writeFileSync(path.join(root, "dc/layers.json"), JSON.stringify({ layers: [L1, L2] }));
      const script = probeScript({
        dataRoot: root,
        cluster: "dc",
        expected: { host: W1, files: [], layers: [L1, L2], blocks: [], registry: false, clusterfile: false },
      });
      const out = execFileSync("sh", ["-c", script], { encoding: "utf8" });
      const o = parseProbe(W1, "dc", out);
      assert.deepEqual(o.blobs, { ["a".repeat(64)]: 5 });
      assert.deepEqual(o.layersJson, [L1, L2]);
      assert.equal(o.rootfs, true);
      assert.equal(o.clusterfile, false);
      assert.equal(o.registryHttp, undefined);
      assert.throws(() => parseProbe(W1, "dc", out.split("==sealer-drift==end")[0]!), /cut short/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("drift: footprints (what each step left on a host)", () => {
  const sh = async (script: string) => {
    const { execFileSync } = await import("node:child_process");
    return execFileSync("sh", ["-c", script], { encoding: "utf8" });
  };
  const fsP = import("node:fs");
  const tmp = async () => {
    const fs = await fsP;
    const os = await import("node:os");
    const path = await import("node:path");
    return fs.mkdtempSync(path.join(os.tmpdir(), "drift-fp-"));
  };

  it("an old state (no footprints) expects no files and keeps the Clusterfile presence check", () => {
    const [m0] = expectations(state(), layout);
    assert.deepEqual(m0!.files, []);
    assert.equal(m0!.tree, undefined);
    assert.equal(m0!.clusterfile, true);
  });

  it("withFootprint records per host; a file rewritten by a later step is expected as the last writer left it, from both", () => {
    let s = state();
    s = withFootprint(s, `registry-client:${M0}`, {
      [M0]: { files: { "/etc/a": "1".repeat(64), "/etc/b": "2".repeat(64) } },
    });
    s = withFootprint(s, `registry:${M0}`, {
      [M0]: { files: { "/etc/b": "3".repeat(64) } },
      [W1]: { files: {} },
    });
    assert.deepEqual(s.steps[`registry-client:${M0}`]!.footprint, {
      [M0]: { files: { "/etc/a": "1".repeat(64), "/etc/b": "3".repeat(64) } },
    });
    assert.deepEqual(s.steps[`registry:${M0}`]!.footprint, { [M0]: { files: { "/etc/b": "3".repeat(64) } } });
    // A step that is not recorded, or reports nothing, changes nothing.
    assert.equal(withFootprint(s, "nope", { [M0]: { files: { "/x": "4".repeat(64) } } }), s);
    assert.equal(withFootprint(s, `registry:${M0}`, { [M0]: { files: {} } }), s);
    const [e] = expectations(s, layout);
    assert.deepEqual(
      e!.files.map((f) => [f.path, f.steps]),
      [
        ["/etc/a", [`registry-client:${M0}`]],
        ["/etc/b", [`registry-client:${M0}`, `registry:${M0}`]],
      ],
    );
    // save-clusterfile with a footprint: its file is checked by hash instead of presence.
    s = withFootprint(s, "save-clusterfile", {
      [M0]: { files: { "/var/lib/sealer/dc/Clusterfile": "5".repeat(64) } },
    });
    assert.equal(expectations(s, layout)[0]!.clusterfile, false);
  });

  it("the executor records what a handler reports (recordStep), before saving; a re-run replaces it", async () => {
    const restore = setLogSink({ write: () => undefined });
    try {
      const ctx = { state: emptyApplied("dc"), stats: emptyStats() } as unknown as ExecContext;
      const step = {
        id: `init-host:${W1}`,
        kind: "init-host",
        hosts: [W1],
        after: [],
        reason: "t",
        key: "k",
      } as Step;
      const saved: AppliedState[] = [];
      const desired = { cluster: spec(clusterfile()), image: baseImage() };
      const exec = (files: Record<string, string>) =>
        executeSteps(ctx, [step], {
          record: (a, s, observed) => recordStep(a, s, desired, observed),
          save: async (a) => void saved.push(a),
          run: async () => ({ footprint: { [W1]: { files } } }),
        });
      await exec({ "/etc/systemd/system/kubelet.service": "1".repeat(64) });
      assert.deepEqual(saved[0]!.steps[step.id]!.footprint, {
        [W1]: { files: { "/etc/systemd/system/kubelet.service": "1".repeat(64) } },
      });
      await exec({ "/etc/sysctl.d/k8s.conf": "2".repeat(64) });
      assert.deepEqual(ctx.state.steps[step.id]!.footprint, {
        [W1]: { files: { "/etc/sysctl.d/k8s.conf": "2".repeat(64) } },
      });
    } finally {
      setLogSink(restore);
    }
  });

  it("hashFilesCmd hashes present files with sha256sum and names missing ones (real sh)", async () => {
    const fs = await fsP;
    const dir = await tmp();
    try {
      fs.writeFileSync(`${dir}/a b.toml`, "version = 2\n");
      const out = await sh(hashFilesCmd([`${dir}/a b.toml`, `${dir}/gone`]));
      assert.deepEqual(parseHashes(out), {
        [`${dir}/a b.toml`]: sha256Hex("version = 2\n"),
        [`${dir}/gone`]: null,
      });
      assert.equal(await sh(hashFilesCmd([])), "");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("parseTreeLoss: whether the node kept its list, and the entries lost", () => {
    assert.deepEqual(parseTreeLoss(["list kept", "missing a/b c", "changed d", "junk"]), {
      listKept: true,
      missing: ["a/b c"],
      changed: ["d"],
    });
    assert.deepEqual(parseTreeLoss(["list gone"]), { listKept: false, missing: [], changed: [] });
  });

  it("distribute's inventory: a rootfs that no longer matches the list distribute left is rebuilt (real sh)", async () => {
    const fs = await fsP;
    const root = await tmp();
    try {
      const rootfs = `${root}/dc/rootfs`;
      fs.mkdirSync(`${rootfs}/etc`, { recursive: true });
      fs.writeFileSync(`${rootfs}/etc/a.conf`, "a\n");
      fs.writeFileSync(`${root}/dc/layers.json`, JSON.stringify({ layers: [L1] }));
      const inv = async () => parseInventory(await sh(inventoryScript(root, "dc")));
      // No list kept (a rootfs from before footprints): kept as it is.
      assert.deepEqual(planMaterialise([L1], await inv()), { kind: "none" });
      await sh(recordTreeCmd(rootfs, `${root}/dc/rootfs.files`));
      assert.deepEqual(planMaterialise([L1], await inv()), { kind: "none" });
      // A layer added on top: a fresh rootfs from the node's blobs (never extracted onto the live one).
      assert.deepEqual(planMaterialise([L1, L2], await inv()), { kind: "rebuild" });
      // A file added since (e.g. an image pushed to the registry) is kept.
      fs.writeFileSync(`${rootfs}/etc/new.conf`, "n\n");
      assert.deepEqual(planMaterialise([L1], await inv()), { kind: "none" });
      fs.writeFileSync(`${rootfs}/etc/a.conf`, "a longer\n");
      assert.deepEqual(planMaterialise([L1], await inv()), { kind: "rebuild" });
      fs.rmSync(`${rootfs}/etc/a.conf`);
      assert.deepEqual(planMaterialise([L1, L2], await inv()), { kind: "rebuild" });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("the probe finds a file removed from the rootfs, a rendered file changed and a config file removed; nothing when untouched (real sh)", async () => {
    const fs = await fsP;
    const root = await tmp();
    try {
      const rootfs = `${root}/dc/rootfs`;
      fs.mkdirSync(`${rootfs}/application/apps/web`, { recursive: true });
      fs.mkdirSync(`${rootfs}/etc`, { recursive: true });
      fs.writeFileSync(`${rootfs}/application/apps/web/web.yaml`, "kind: Pod\n");
      fs.writeFileSync(`${rootfs}/etc/kubeadm.yml`, "podSubnet: 10.0.0.0/16\n");
      fs.symlinkSync("web.yaml", `${rootfs}/application/apps/web/link.yaml`);
      fs.mkdirSync(`${rootfs}/bin`);
      fs.writeFileSync(`${rootfs}/bin/tool`, "abc");
      fs.writeFileSync(`${root}/config.toml`, "version = 2\n");
      const list = `${root}/dc/rootfs.files`;
      const [digest, count] = (await sh(recordTreeCmd(rootfs, list))).trim().split(" ");
      assert.equal(count, "4");
      let s = state();
      s = withFootprint(s, `distribute:${W1}`, {
        [W1]: {
          files: { [`${rootfs}/etc/kubeadm.yml`]: sha256Hex("podSubnet: 10.0.0.0/16\n") },
          tree: { dir: rootfs, list, digest: digest!, count: Number(count) },
        },
      });
      s = withFootprint(s, `registry-client:${W1}`, {
        [W1]: { files: { [`${root}/config.toml`]: sha256Hex("version = 2\n") } },
      });
      const e = expectations(s, layout).find((x) => x.host === W1)!;
      const probe = async () => {
        const out = await sh(probeScript({ dataRoot: root, cluster: "dc", expected: e }));
        return compareHost(e, parseProbe(W1, "dc", out), { ok: false, unreachable: false, error: "x" });
      };
      // Only the footprint checks: this fake node has no blobs or /etc/hosts blocks.
      const bad = (cs: Awaited<ReturnType<typeof probe>>) =>
        cs.filter((c) => c.status === "drifted" && (c.check === "rootfs" || c.check.startsWith("file:")));
      assert.deepEqual(bad(await probe()), [], "no change, no drift");
      fs.writeFileSync(`${rootfs}/etc/added.conf`, "x\n");
      assert.deepEqual(bad(await probe()), [], "a file added is no effect gone");

      fs.rmSync(`${rootfs}/application/apps/web/web.yaml`);
      fs.writeFileSync(`${rootfs}/etc/kubeadm.yml`, "podSubnet: 10.9.0.0/16\n");
      fs.rmSync(`${root}/config.toml`);
      fs.writeFileSync(`${rootfs}/bin/tool`, "abcd");
      const found = bad(await probe());
      assert.deepEqual(
        found.map((c) => [c.check, c.status === "drifted" ? [c.found, c.steps, c.note] : []]),
        [
          [
            "rootfs",
            [
              "missing application/apps/web/web.yaml; changed bin/tool, etc/kubeadm.yml",
              [`distribute:${W1}`],
              `${rootfs}/application/apps/web/web.yaml missing on ${W1}; ${rootfs}/bin/tool, ${rootfs}/etc/kubeadm.yml changed on ${W1}`,
            ],
          ],
          [
            `file:${root}/config.toml`,
            ["missing", [`registry-client:${W1}`], `${root}/config.toml missing on ${W1}`],
          ],
        ],
      );
      const report = buildReport(
        "dc",
        [e],
        [parseProbe(W1, "dc", await sh(probeScript({ dataRoot: root, cluster: "dc", expected: e })))],
        {
          ok: false,
          unreachable: false,
          error: "x",
        },
      );
      assert.ok(report.steps.includes(`registry-client:${W1}`) && report.steps.includes(`distribute:${W1}`));
      assert.match(
        driftNotes(report)[`registry-client:${W1}`]!,
        new RegExp(`^${root}/config\\.toml missing on ${W1.replace(/\./g, "\\.")};`),
      );

      // The node's list gone too: the digest still tells, without names.
      fs.rmSync(list);
      const noList = bad(await probe()).find((c) => c.check === "rootfs");
      assert.ok(noList && noList.status === "drifted");
      assert.equal(
        noList.found,
        "changed etc/kubeadm.yml; file list differs (4 file(s) now; the node's copy of the list is gone)",
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

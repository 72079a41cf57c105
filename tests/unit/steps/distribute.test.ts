/**
 * distribute against the recording fake host, with its layer mover given: what it asks the mover
 * to send, `.tmpl` rendering with each host's env (written only when the output changed), the
 * rootfs list it records, the record rule and the drift check. (Moving the bytes over SSH is the
 * integration tier's.)
 */
import { strict as assert } from "node:assert";
import type { DistributeOptions } from "../../../provider/core/exec/distribute";
import { renderOnHost } from "../../../provider/core/exec/render-on-host";
import { distributeWith, type LayerMover } from "../../../provider/core/exec/steps/distribute";
import type { SshTarget } from "../../../provider/core/ssh";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { M0, W0, W1, drifted, expected, knowing, recorded, step, world, type World } from "./world";

const SEP = "=#=sealer-file=#=";
const TMPL = "address: {{ .HostIP }}\nport: {{ .ApiPort }}\n";
const TREE = "e".repeat(64);
const L1 = `sha256:${"1".repeat(64)}`;
const L2 = `sha256:${"2".repeat(64)}`;

/** The host's rootfs holds etc/kubeadm.yml.tmpl, and etc/kubeadm.yml as `rendered` (or none). */
function rootfsOn(w: World, ip: string, rendered: string | undefined): void {
  const root = w.ctx.rootfs;
  w.io.answer({ host: ip, match: /-name '\*\.tmpl'/, stdout: "etc/kubeadm.yml.tmpl\n" });
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  w.io.answer({
    host: ip,
    match: new RegExp(SEP),
    stdout:
      `${SEP} ${root}/etc/kubeadm.yml.tmpl\n${b64(TMPL)}\n` +
      `${SEP} ${root}/etc/kubeadm.yml\n${rendered === undefined ? "MISSING" : b64(rendered)}\n`,
  });
  // The rootfs list: its digest and line count.
  w.io.answer({ host: ip, match: /rootfs\.files\.tmp/, stdout: `${TREE} 7\n` });
}

/** A mover that records what it was asked and reports every host materialised from layer 0. */
function fakeMover(): LayerMover & { sent: Array<{ hosts: string[]; opts: DistributeOptions }> } {
  const sent: Array<{ hosts: string[]; opts: DistributeOptions }> = [];
  return {
    sent,
    choose: async () => ({ mode: "ssh", why: "test" }),
    fetchFromRegistry: async () => {
      throw new Error("ssh mode fetches nothing from a registry");
    },
    send: async (_pool, targets: SshTarget[], opts) => {
      const hosts = targets.map((t) => t.host);
      sent.push({ hosts, opts });
      return {
        sentBlobs: 2 * hosts.length,
        sentBytes: 100 * hosts.length,
        perHost: Object.fromEntries(
          hosts.map((h) => [h, { sentBlobs: 2, sentBytes: 100, materialisedFrom: 0 }]),
        ),
      };
    },
  };
}

describe("step distribute (fake host, injected layer mover)", () => {
  it("renders each host's templates with that host's env and writes only changed output", async () => {
    const w = world({ clusterfile: clusterfile({ extraSpec: "  env: [ ApiPort=6443 ]\n" }) });
    rootfsOn(w, W0, undefined);
    rootfsOn(w, W1, `address: ${W1}\nport: 6443\n`);
    const r0 = await renderOnHost(w.ctx, W0, "distribute");
    const r1 = await renderOnHost(w.ctx, W1, "distribute");
    const out = `${w.ctx.rootfs}/etc/kubeadm.yml`;
    const puts = (ip: string) => w.io.on(ip).filter((c) => c.op === "put");
    assert.deepEqual(
      puts(W0).map((p) => p.op === "put" && [p.file, p.content]),
      [[out, `address: ${W0}\nport: 6443\n`]],
    );
    assert.deepEqual(r0.written, ["etc/kubeadm.yml"]);
    assert.deepEqual(puts(W1), [], "unchanged output is not rewritten");
    assert.deepEqual(r1.written, []);
    assert.deepEqual(
      Object.keys(r1.files),
      [out],
      "an unchanged rendered file is still part of the footprint",
    );
    assert.deepEqual(w.ctx.stats.rendered[W0], ["etc/kubeadm.yml"]);
  });

  it("asks the mover for the image's layers, then renders and lists each host's rootfs", async () => {
    const w = world();
    const mover = fakeMover();
    for (const ip of [W0, W1]) rootfsOn(w, ip, undefined);
    const s = step("distribute", [W0, W1], { layers: [L1, L2] });
    const seen = await distributeWith(mover).run(w.ctx, s);
    assert.equal(mover.sent.length, 1);
    assert.deepEqual(mover.sent[0]!.hosts, [W0, W1]);
    assert.deepEqual([mover.sent[0]!.opts.layers, mover.sent[0]!.opts.cluster], [[L1, L2], "demo"]);
    assert.equal(mover.sent[0]!.opts.relay, undefined, "ssh mode: no relay");
    assert.deepEqual([w.ctx.stats.sentBlobs, w.ctx.stats.sentBytes], [4, 200]);
    for (const ip of [W0, W1]) {
      const b = w.io.bodies(ip);
      // Render (find templates, read them), then list the rootfs; no blob gc: no layer was dropped.
      assert.equal(b.length, 3, b.join("\n"));
      assert.match(b[0]!, /-name '\*\.tmpl'/);
      assert.match(b[2]!, /rootfs\.files\.tmp/);
      const fp = seen.footprint![ip]!;
      assert.deepEqual(fp.tree, {
        dir: w.ctx.rootfs,
        list: `${w.ctx.clusterDir}/rootfs.files`,
        digest: TREE,
        count: 7,
      });
      assert.deepEqual(Object.keys(fp.files!), [`${w.ctx.rootfs}/etc/kubeadm.yml`]);
    }
    assert.deepEqual(w.io.hosts(), [W0, W1]);
  });

  it("per-host steps over SSH: a worker's bytes wait until master0's are sent, or master0's send failed", async () => {
    const settled = (p: Promise<unknown> | undefined) =>
      Promise.race([p!.then(() => "settled"), new Promise((r) => setTimeout(() => r("pending"), 20))]);
    for (const fails of [false, true]) {
      const w = world();
      for (const ip of [M0, W0]) rootfsOn(w, ip, undefined);
      const mover = fakeMover();
      let release!: () => void;
      const hold = new Promise<void>((r) => (release = r));
      const send = mover.send;
      mover.send = async (io, targets, opts) => {
        if (targets[0]!.host !== M0) return send(io, targets, opts);
        await hold;
        if (fails) throw new Error("connection lost");
        return send(io, targets, opts);
      };
      const def = distributeWith(mover);
      const master = def.run(w.ctx, step("distribute", [M0], { layers: [L1] }));
      const worker = def.run(w.ctx, step("distribute", [W0], { layers: [L1] }));
      await worker;
      const gate = mover.sent.find((x) => x.hosts[0] === W0)!.opts.sendAfter;
      assert.ok(gate, "the worker's send is told to wait");
      assert.equal(await settled(gate), "pending", "master0 still sending");
      release();
      await master.then(
        () => assert.ok(!fails),
        (e: unknown) => assert.ok(fails, String(e)),
      );
      assert.equal(await settled(gate), "settled");
      assert.equal(mover.sent.find((x) => x.hosts[0] === M0)?.opts.sendAfter, undefined);
    }
    // Relay and registry modes serve every host at once: nobody waits.
    const w = world();
    for (const ip of [M0, W0]) rootfsOn(w, ip, undefined);
    const mover = { ...fakeMover(), choose: async () => ({ mode: "relay" as const, why: "test" }) };
    const def = distributeWith(mover);
    await Promise.all([M0, W0].map((ip) => def.run(w.ctx, step("distribute", [ip], { layers: [L1] }))));
    assert.deepEqual(
      mover.sent.map((x) => x.opts.sendAfter),
      [undefined, undefined],
    );
  });

  it("collects blobs on a host whose recorded layers the new list dropped", async () => {
    const w = world();
    w.ctx.state.hosts[W0] = { roles: ["node"], layers: [L1] };
    rootfsOn(w, W0, undefined);
    await distributeWith(fakeMover()).run(w.ctx, step("distribute", [W0], { layers: [L2] }));
    const gc = w.io.on(W0).find((c) => c.op === "run" && c.step.startsWith("blob gc"));
    assert.ok(gc, w.io.bodies(W0).join("\n"));
  });

  it("a rootfs listing that prints no digest fails naming the host and what to check", async () => {
    const w = world();
    w.io.answer({ host: W0, match: /rootfs\.files\.tmp/, stdout: "sha256sum: not found\n" });
    await assert.rejects(
      distributeWith(fakeMover()).run(w.ctx, step("distribute", [W0], { layers: [L1] })),
      (e: Error) => e.message.includes(`[${W0}]`) && e.message.includes("sha256sum"),
    );
  });

  it("the record sets the host's layers, role and platform; drift names distribute for lost blobs or rootfs files", async () => {
    const w = world();
    rootfsOn(w, W0, undefined);
    const s = step("distribute", [W0], {
      id: `distribute:${W0}`,
      layers: [L1, L2],
      platform: "linux/arm64",
    });
    const before = knowing(w, []);
    const after = recorded(w, s, await distributeWith(fakeMover()).run(w.ctx, s), before);
    assert.deepEqual(after.hosts[W0], { roles: ["node"], layers: [L1, L2], platform: "linux/arm64" });
    assert.deepEqual(before.hosts, {}, "recordStep leaves its input alone");
    const e = expected(w, after, W0);
    assert.deepEqual(e.layers, [L1, L2]);
    assert.equal(e.tree!.digest, TREE);
    assert.deepEqual(
      e.tree!.files.map((f) => f.path),
      [`${w.ctx.rootfs}/etc/kubeadm.yml`],
    );
    const ok = { tree: { digest: TREE, count: 7, loss: { listKept: true, missing: [], changed: [] } } };
    assert.deepEqual(drifted(w, after, W0, ok), {});
    assert.deepEqual(drifted(w, after, W0, { ...ok, blobs: { [L1.slice(7)]: 1 } }), { blobs: [s.id] });
    assert.deepEqual(drifted(w, after, W0, { ...ok, layersJson: [L1] }), { "layers.json": [s.id] });
    assert.deepEqual(
      drifted(w, after, W0, { ...ok, files: { [`${w.ctx.rootfs}/etc/kubeadm.yml`]: "0".repeat(64) } }),
      { rootfs: [s.id] },
    );
    assert.deepEqual(
      drifted(w, after, W0, {
        tree: { digest: TREE, count: 6, loss: { listKept: true, missing: ["bin/kubeadm"], changed: [] } },
      }),
      { rootfs: [s.id] },
    );
    // Not recorded: nothing expected of the layer store.
    assert.equal(expected(w, { ...after, steps: {} }, W0).layers, undefined);
  });
});

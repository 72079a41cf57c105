/**
 * Relay distribution on real sshd nodes, logging in as a sudo user: 1 relay + 3 targets.
 * The operator's bytes are counted on the wire (the bridge's own transmit counter carries only
 * operator -> node traffic; node <-> node frames are switched between the bridge's ports).
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tarStream from "tar-stream";
import { sshHostIoOf } from "../../provider/core/exec/host-io";
import { distributeLayers } from "../../provider/core/exec/distribute";
import {
  execInNode,
  nodeTarget,
  nsenterArgs,
  sshAnswers,
  type LocalNode,
} from "../../provider/core/infra/local";
import { OciLayout } from "../../provider/core/image/layout";
import { MediaTypes } from "../../provider/core/image/types";
import { setLogSink } from "../../provider/core/log";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { ExecContext } from "../../provider/core/exec/context";
import { distribute } from "../../provider/core/exec/steps/distribute";
import type { ImageFacts, Step } from "../../provider/core/plan/types";
import type { SshPool, SshTarget } from "../../provider/core/ssh";
import { craftLayer } from "../harness/crafted-layers";
import { useNodes } from "../harness/nodes";
import { clusterYaml } from "../harness/clusterfile";

async function tarLayer(layout: OciLayout, files: Record<string, Buffer>): Promise<string> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => pack.on("end", () => r()));
  for (const [name, data] of Object.entries(files))
    pack.entry({ name, type: "file", mode: 0o644, mtime: new Date(0), size: data.length }, data);
  pack.finalize();
  await done;
  return (await layout.putBlob(Buffer.concat(chunks), MediaTypes.layerTar)).digest;
}

const USER = "deploy";
const PASSWORD = "relay-pw-Zq81";
const txBytes = (bridge: string) =>
  Number(fs.readFileSync(`/sys/class/net/${bridge}/statistics/tx_bytes`, "utf8"));

describe("relay distribution (integration, local nodes, sudo user)", function () {
  this.timeout(120_000);
  const nodes = useNodes(4, { sudoUser: { name: USER, password: PASSWORD, nopasswd: true } });
  let dir: string;
  let layout: OciLayout;
  let pool: SshPool;
  let layers: string[];
  let total: number;
  let warnings: string[];
  let restoreSink: (() => void) | undefined;
  const sudo = (n: LocalNode): SshTarget => nodeTarget(n, { asSudoUser: true });

  before(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "sealer-relay-"));
    layout = new OciLayout(path.join(dir, "store"));
    await layout.init();
    layers = [
      await tarLayer(layout, {
        "data/a.bin": crypto.randomBytes(1536 << 10),
        "etc/v.txt": Buffer.from("v1"),
      }),
      await tarLayer(layout, { "data/b.bin": crypto.randomBytes(1024 << 10) }),
      await tarLayer(layout, { "etc/v.txt": Buffer.from("v3"), "app/x.txt": Buffer.from("x") }),
    ];
    total = layers.reduce((n, d) => n + fs.statSync(layout.blobPath(d)).size, 0);
    pool = nodes.pool();
  });
  beforeEach(() => {
    warnings = [];
    const prev = setLogSink({
      write: (line) => {
        if (/warn/i.test(line.slice(0, 40)) || /sending directly/.test(line)) warnings.push(line);
      },
    });
    restoreSink = () => setLogSink(prev);
  });
  afterEach(() => restoreSink?.());
  after(async () => {
    await fs.promises.rm(dir, { recursive: true, force: true });
  });

  /** No relay key left on any target, no key directory left on the relay. */
  async function assertNoTraces(root: string): Promise<void> {
    for (const n of nodes.list) {
      const ak = await execInNode(n, `cat /home/${USER}/.ssh/authorized_keys`);
      assert.equal(ak.code, 0, ak.stderr);
      assert.doesNotMatch(ak.stdout, /sealer-relay/, `${n.ip}: relay key left in authorized_keys`);
      assert.equal(ak.stdout.trim().split("\n").length, 1, `${n.ip}: the user's own key is still there`);
      const runs = await execInNode(n, `ls -A ${root}/relay 2>/dev/null | grep '^run-' || true`);
      assert.equal(runs.stdout.trim(), "", `${n.ip}: relay key directory left`);
    }
  }

  async function assertRootfs(n: LocalNode, root: string, cluster: string, ls: string[]): Promise<void> {
    const r = await execInNode(
      n,
      `cd ${root}/blobs/sha256 && sha256sum ${ls.map((d) => d.slice(7)).join(" ")} && stat -c '%u %a' ${ls.map((d) => d.slice(7)).join(" ")} && cat ${root}/${cluster}/rootfs/etc/v.txt && echo && ls ${root}/${cluster}/rootfs/data`,
    );
    const lines = r.stdout.trim().split("\n");
    for (const [i, d] of ls.entries())
      assert.equal(lines[i], `${d.slice(7)}  ${d.slice(7)}`, `${n.ip} blob ${i}`);
    for (let i = 0; i < ls.length; i++)
      assert.equal(lines[ls.length + i], "0 644", `${n.ip}: root-owned blob`);
    assert.equal(lines[2 * ls.length], "v3", `${n.ip}: later layer wins`);
    assert.equal(lines.at(-2), "a.bin");
    assert.equal(lines.at(-1), "b.bin");
  }

  it("sends each blob once from the operator; the relay forwards it to 3 targets, verified, right rootfs", async () => {
    const [relay, ...rest] = nodes.list;
    const bridge = relay!.bridge;
    const before = txBytes(bridge);
    const res = await distributeLayers(sshHostIoOf(pool, nodes.list.map(sudo)), nodes.list.map(sudo), {
      layout,
      layers,
      dataRoot: "/var/lib/sealer-rl",
      cluster: "rl",
      relay: { via: relay!.ip, fanout: 3, knownHostsFile: pool.knownHostsFile },
    });
    const onWire = txBytes(bridge) - before;
    assert.equal(res.sentBytes, total, "the operator sent each blob once");
    assert.equal(res.sentBlobs, 3);
    assert.equal(res.relayedBlobs, 9);
    assert.equal(res.relayedBytes, 3 * total);
    assert.deepEqual(res.perHost[relay!.ip], { sentBlobs: 3, sentBytes: total, materialisedFrom: 0 });
    for (const n of rest)
      assert.deepEqual(res.perHost[n.ip], {
        sentBlobs: 0,
        sentBytes: 0,
        materialisedFrom: 0,
        via: relay!.ip,
        relayedBlobs: 3,
        relayedBytes: total,
      });
    // Counted on the operator's side of the wire: the image once plus SSH framing and commands (direct would be 4x).
    assert.ok(
      onWire >= total && onWire < 1.35 * total,
      `operator sent ${onWire} bytes for a ${total}-byte image`,
    );
    for (const n of nodes.list) await assertRootfs(n, "/var/lib/sealer-rl", "rl", layers);
    await assertNoTraces("/var/lib/sealer-rl");
    assert.deepEqual(warnings, []);
  });

  it("a second run sends nothing, from the operator or the relay", async () => {
    const res = await distributeLayers(sshHostIoOf(pool, nodes.list.map(sudo)), nodes.list.map(sudo), {
      layout,
      layers,
      dataRoot: "/var/lib/sealer-rl",
      cluster: "rl",
      relay: { via: nodes.list[0]!.ip, knownHostsFile: pool.knownHostsFile },
    });
    assert.equal(res.sentBytes, 0);
    assert.equal(res.relayedBytes, 0);
    for (const n of nodes.list) assert.equal(res.perHost[n.ip]!.materialisedFrom, null);
    await assertNoTraces("/var/lib/sealer-rl");
  });

  it("a target that refuses the relay's key gets its blobs directly, with a warning", async () => {
    const [relay, a, b, c] = nodes.list as [LocalNode, LocalNode, LocalNode, LocalNode];
    // A second sshd on c that accepts passwords only: the relay's key is refused for real.
    const child = spawn(
      "nsenter",
      nsenterArgs(c, [
        "/usr/sbin/sshd",
        "-D",
        "-e",
        "-p",
        "2222",
        "-h",
        "/etc/ssh/sealer_node_host_ed25519_key",
        "-o",
        `ListenAddress=${c.ip}`,
        "-o",
        "PidFile=none",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PasswordAuthentication=yes",
        "-o",
        "UsePAM=yes",
      ]),
      { stdio: "ignore" },
    );
    try {
      const cTarget: SshTarget = {
        host: c.ip,
        port: 2222,
        user: USER,
        password: PASSWORD,
        sudo: true,
        sudoPassword: PASSWORD,
      };
      for (let i = 0; !(await sshAnswers(c.ip, 2222)); i++) {
        if (i > 100) throw new Error("the password-only sshd did not start");
        await new Promise((res) => setTimeout(res, 100));
      }
      const res = await distributeLayers(
        sshHostIoOf(pool, [sudo(relay), sudo(a), sudo(b), cTarget]),
        [sudo(relay), sudo(a), sudo(b), cTarget],
        {
          layout,
          layers,
          dataRoot: "/var/lib/sealer-rl2",
          cluster: "rl2",
          relay: { via: relay.ip, knownHostsFile: pool.knownHostsFile },
        },
      );
      assert.equal(res.sentBytes, 2 * total, "once to the relay, once directly to the refusing host");
      assert.equal(res.relayedBytes, 2 * total);
      assert.deepEqual(res.perHost[c.ip], { sentBlobs: 3, sentBytes: total, materialisedFrom: 0 });
      assert.equal(res.perHost[a.ip]!.via, relay.ip);
      assert.ok(
        warnings.some((w) => w.includes(c.ip) && /relay .* cannot log in here.*sending directly/.test(w)),
        warnings.join("\n"),
      );
      for (const n of nodes.list) await assertRootfs(n, "/var/lib/sealer-rl2", "rl2", layers);
      await assertNoTraces("/var/lib/sealer-rl2");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("the executor's distribute step relays through master0 (the default) when the context has relay set", async () => {
    const [m0, ...rest] = nodes.list as LocalNode[];
    const spec = loadClusterfile(
      clusterYaml({
        name: "rl4",
        image: "x:1",
        user: USER,
        pk: m0!.keyPath,
        masters: [m0!.ip],
        nodes: rest.map((n) => n.ip),
      }),
    ).spec;
    const ctx = new ExecContext({
      spec,
      image: { env: {}, apps: [], platforms: ["linux/amd64"], layers: [] } as unknown as ImageFacts,
      layout,
      pool,
      state: { hosts: {} } as never,
      stateDir: dir,
      relay: {},
    });
    const step = {
      kind: "distribute",
      hosts: nodes.list.map((n) => n.ip),
      layers,
    } as unknown as Extract<Step, { kind: "distribute" }>;
    await distribute.run(ctx, step);
    assert.equal(ctx.stats.sentBytes, total, "the operator sent the image once, to master0");
    for (const n of nodes.list) await assertRootfs(n, "/var/lib/sealer", "rl4", layers);
    await assertNoTraces("/var/lib/sealer");
    await Promise.all(
      nodes.list.map((n) => execInNode(n, "rm -rf /var/lib/sealer/rl4 /var/lib/sealer/relay")),
    );
  });

  it("after a failure (a layer tar cannot extract on the nodes) no key is left on the relay or the targets", async () => {
    // A layer that is not a tar never leaves the operator (the stack check reads it first).
    const notTar = (await layout.putBlob(crypto.randomBytes(4096), MediaTypes.layerTar)).digest;
    await assert.rejects(
      distributeLayers(sshHostIoOf(pool, nodes.list.map(sudo)), nodes.list.map(sudo), {
        layout,
        layers: [layers[0]!, notTar],
        dataRoot: "/var/lib/sealer-rl3",
        cluster: "rl3",
        relay: { via: nodes.list[0]!.ip, knownHostsFile: pool.knownHostsFile },
      }),
      new RegExp(`layer 2 of 2 \\(${notTar}\\) is not a readable layer tar`),
    );
    // A layer whose tar fails on every node: a stand-in tar there refuses to extract anything
    // once layer 2's marker is in the tree (the layers are fine; what is tested is what a failure
    // on the nodes leaves behind).
    const dir = await craftLayer(layout, [
      { name: "clash/", type: "dir" },
      { name: "clash/x", type: "file", data: "x" },
      { name: "relay-test-marker", type: "file", data: "m" },
    ]);
    const bad = (await craftLayer(layout, [{ name: "clash", type: "file", data: "f" }])).digest;
    const failingTar = [
      "#!/bin/sh",
      't=; prev=; for a; do [ "$prev" = -C ] && t=$a; prev=$a; done',
      'if [ -n "$t" ] && [ -e "$t/relay-test-marker" ]; then echo "tar: clash: Cannot open: refused by this test" >&2; exit 2; fi',
      'exec /usr/bin/tar "$@"',
    ].join("\n");
    for (const n of nodes.list)
      await execInNode(
        n,
        `printf '%s\\n' '${failingTar}' > /usr/local/bin/tar && chmod 755 /usr/local/bin/tar`,
      );
    await assert.rejects(
      distributeLayers(sshHostIoOf(pool, nodes.list.map(sudo)), nodes.list.map(sudo), {
        layout,
        layers: [layers[0]!, dir.digest, bad],
        dataRoot: "/var/lib/sealer-rl3",
        cluster: "rl3",
        relay: { via: nodes.list[0]!.ip, knownHostsFile: pool.knownHostsFile },
      }),
      (err: Error) => {
        assert.match(err.message, /distribution failed on 4 hosts/);
        assert.match(
          err.message,
          /extract layer 3\/3 sha256:[0-9a-f]{12}" failed with exit code 2:\ntar: clash: Cannot open/,
        );
        return true;
      },
    );
    for (const n of nodes.list) await execInNode(n, "rm -f /usr/local/bin/tar");
    await assertNoTraces("/var/lib/sealer-rl3");
    // The bad blob itself arrived verified everywhere (it is a valid blob, it just cannot extract there).
    for (const n of nodes.list) {
      const r = await execInNode(n, `sha256sum /var/lib/sealer-rl3/blobs/sha256/${bad.slice(7)}`);
      assert.match(r.stdout, new RegExp(`^${bad.slice(7)} `));
    }
  });
});

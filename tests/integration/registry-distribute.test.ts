/**
 * Registry distribution on 3 local nodes against a real docker-registry with TLS (a test
 * CA) and htpasswd auth, listening on the nodes' bridge address: the image goes to the registry
 * once, every node fetches its blobs with curl, and the node state (blob store, layers.json,
 * rootfs) is byte for byte what SSH distribution gives. A cut blob is resumed with a Range
 * request; a registry this machine cannot push to leaves the hosts to SSH, with a warning.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { ExecContext } from "../../provider/core/exec/context";
import { distribute } from "../../provider/core/exec/steps/distribute";
import { buildImage } from "../../provider/core/image/builder";
import { imageFacts } from "../../provider/core/image/facts";
import { OciLayout } from "../../provider/core/image/layout";
import { execInNode, parseSubnet, subnetHost, type LocalNode } from "../../provider/core/infra/local";
import { formatBytes, setLogSink } from "../../provider/core/log";
import type { Manifest } from "../../provider/core/image/types";
import { emptyApplied, type ImageFacts, type Step } from "../../provider/core/plan/types";
import { saveSettings } from "../../provider/core/registry/credentials";
import { onProgress, type ProgressEvent } from "../../provider/core/progress";
import type { SshPool } from "../../provider/core/ssh";
import { useNodes } from "../harness/nodes";
import { makeTestCa, startRegistry, tarOf, type TestRegistry } from "../harness/registry";
import { clusterYaml } from "../harness/clusterfile";
import { setEnv } from "../harness/env";

const USER = "fleet-robot";
const PASS = `pw-${crypto.randomBytes(8).toString("hex")}`;
const REF = "rdist/app:1";
/** Where the image's etc/tz symlink points: outside every rootfs. */
const OUTSIDE = "/var/lib/sealer-rd-outside";

/**
 * Everything distribution leaves under a data root: the layers in the node's store (as blobs in
 * registry mode, as extracted trees when streamed over SSH: the form differs, the set must not),
 * layers.json, rootfs tree with file hashes.
 */
async function nodeState(n: LocalNode, root: string, cluster: string): Promise<string> {
  const r = await execInNode(
    n,
    [
      `cd ${root}`,
      `echo STORED; { ls blobs/sha256 2>/dev/null; ls layers 2>/dev/null | sed -n 's/\\.list$//p'; } | LC_ALL=C sort -u`,
      `echo LAYERS; cat ${cluster}/layers.json`,
      `echo ROOTFS; cd ${cluster}/rootfs && find . -printf '%p %y %m %s\\n' | LC_ALL=C sort`,
      `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`,
    ].join("\n"),
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe("registry distribution (integration, 3 local nodes, authenticated TLS registry)", function () {
  this.timeout(300_000);
  const nodes = useNodes(3);
  let work: string;
  let restoreEnv: (() => void) | undefined;
  let layout: OciLayout;
  let image: ImageFacts;
  let reg: TestRegistry;
  let pool: SshPool;
  let lines: string[];
  let restoreSink: ReturnType<typeof setLogSink>;

  before(async function () {
    this.timeout(120_000);
    work = await fs.promises.mkdtemp(path.join(os.tmpdir(), "sealer-rdist-"));
    const home = path.join(work, "home");
    restoreEnv = setEnv({ SEALER_HOME: home, DOCKER_CONFIG: path.join(work, "docker-config") });
    const ctxDir = path.join(work, "context");
    fs.mkdirSync(path.join(ctxDir, "etc"), { recursive: true });
    fs.mkdirSync(path.join(ctxDir, "data"), { recursive: true });
    fs.writeFileSync(path.join(ctxDir, "etc", "app.conf"), "mode=fleet\n");
    fs.writeFileSync(path.join(ctxDir, "data", "big.bin"), crypto.randomBytes(3 << 20));
    fs.writeFileSync(path.join(ctxDir, "data", "small.txt"), "small\n");
    // A symlink out of the rootfs, as real images hold them (etc/localtime -> /usr/share/...).
    fs.symlinkSync(OUTSIDE, path.join(ctxDir, "etc", "tz"));
    fs.writeFileSync(path.join(ctxDir, "Kubefile"), "FROM scratch\nCOPY etc etc\nCOPY data data\n");
    await buildImage({ context: ctxDir, tag: REF, home, buildMode: "lite" });
    layout = new OciLayout(path.join(home, "store"));
    image = await imageFacts(layout, REF);
    const ip = subnetHost(parseSubnet(nodes.list[0]!.subnet)!, 1);
    const tls = makeTestCa(path.join(work, "tls"), "sealer registry-distribute test CA", ip);
    reg = await startRegistry({ ip, tls, htpasswd: { [USER]: PASS }, rootDir: path.join(work, "reg") });
    // What `sealer login --ca-file` records for this registry.
    await saveSettings(reg.host, { ca: fs.readFileSync(tls.caFile, "utf8") }, home);
    pool = nodes.pool();
  });
  beforeEach(() => {
    lines = [];
    restoreSink = setLogSink({ write: (l) => lines.push(l) });
  });
  afterEach(() => setLogSink(restoreSink));
  after(async () => {
    await reg?.stop();
    restoreEnv?.();
    if (work) await fs.promises.rm(work, { recursive: true, force: true });
  });

  const context = (o: { name: string; dataRoot: string; password?: string; mode?: "ssh" | "registry" }) => {
    const [m, ...w] = nodes.list as LocalNode[];
    const spec = loadClusterfile(
      clusterYaml({
        name: o.name,
        image: REF,
        pk: m!.keyPath,
        masters: [m!.ip],
        nodes: w.map((n) => n.ip),
        spec: [
          `  dataRoot: ${o.dataRoot}`,
          "  registry:",
          `    externalRegistry: { domain: ${reg.host.split(":")[0]}, port: ${reg.port}, username: ${USER}, password: ${o.password ?? PASS} }`,
        ],
      }),
      { file: "Clusterfile" },
    ).spec;
    return new ExecContext({
      spec,
      image,
      layout,
      pool,
      state: emptyApplied(o.name),
      stateDir: path.join(work, "state", o.name),
      ...(o.mode ? { distribution: o.mode } : {}),
    });
  };
  const step = (): Extract<Step, { kind: "distribute" }> =>
    ({
      id: "distribute",
      kind: "distribute",
      hosts: nodes.list.map((n) => n.ip),
      layers: image.layers.map((l) => l.digest),
      reason: "test",
      key: "k",
      after: [],
    }) as unknown as Extract<Step, { kind: "distribute" }>;
  const layerBytes = () => image.layers.reduce((n, l) => n + fs.statSync(layout.blobPath(l.digest)).size, 0);

  it("the image goes to the registry once, nodes fetch it, and the node state equals SSH mode's", async () => {
    const viaSsh = context({ name: "rds", dataRoot: "/var/lib/sealer-rds", mode: "ssh" });
    await distribute.run(viaSsh, step());
    assert.equal(viaSsh.stats.sentBytes, layerBytes() * 3, "SSH mode sends every layer to every host");

    const viaReg = context({ name: "rdr", dataRoot: "/var/lib/sealer-rdr" });
    const events: ProgressEvent[] = [];
    const off = onProgress((e) => events.push(e));
    await distribute.run(viaReg, step()).finally(off);
    // One progress task per layer a host fetched, each ending complete: every layer byte per host.
    const ends = events.filter((e) => e.phase === "distribute" && e.kind === "end");
    for (const n of nodes.list) {
      const mine = ends.filter((e) => e.host === n.ip);
      assert.equal(mine.length, image.layers.length, `${n.ip}: a task per layer`);
      for (const e of mine) assert.equal(e.done, e.total);
      assert.equal(
        mine.reduce((sum, e) => sum + e.done, 0),
        layerBytes(),
      );
    }
    // Nothing went over SSH; what left this machine is the push: the layers and the config, once.
    for (const n of nodes.list) assert.deepEqual(viaReg.stats.perHost[n.ip], { sentBlobs: 0, sentBytes: 0 });
    const config = (await layout.readJson<Manifest>(image.manifestDigest)).config.size;
    assert.equal(viaReg.stats.sentBytes, layerBytes() + config);
    assert.equal(viaReg.stats.pushedBytes, layerBytes() + config);
    for (const n of nodes.list) {
      const a = (await nodeState(n, "/var/lib/sealer-rds", "rds")).replaceAll("rds", "X");
      const b = (await nodeState(n, "/var/lib/sealer-rdr", "rdr")).replaceAll("rdr", "X");
      assert.equal(b, a, `${n.ip}: registry mode leaves the same blobs, layers.json and rootfs`);
      assert.match(lines.join("\n"), new RegExp(`\\[${n.ip.replace(/\./g, "\\.")}\\] fetching 2 layer blob`));
    }
    // The credentials and the header made from them never reach a log.
    const all = lines.join("\n");
    assert.ok(!all.includes(PASS), "no password in the log");
    assert.ok(!all.includes(Buffer.from(`${USER}:${PASS}`).toString("base64")), "no auth header in the log");
    // No leftovers: no partials, no CA temp files.
    for (const n of nodes.list) {
      const r = await execInNode(
        n,
        "ls /var/lib/sealer-rdr/blobs/sha256 | grep -v '^[0-9a-f]\\{64\\}$' || true",
      );
      assert.equal(r.stdout, "");
    }

    // Again: the registry has every blob and so has every node: nothing moves.
    const seen = lines.length;
    const again = context({ name: "rdr", dataRoot: "/var/lib/sealer-rdr" });
    await distribute.run(again, step());
    assert.equal(again.stats.sentBytes, 0);
    assert.deepEqual(
      lines.slice(seen).filter((l) => / fetching \d+ layer blob/.test(l)),
      [],
    );
  });

  it("per-host distribute steps of one apply share one push (each blob leaves this machine once)", async () => {
    const ctx = context({ name: "rdp", dataRoot: "/var/lib/sealer-rdp" });
    // As the planner emits them: one distribute step per host, running at the same time.
    await Promise.all(
      nodes.list.map((n) => distribute.run(ctx, { ...step(), id: `distribute:${n.ip}`, hosts: [n.ip] })),
    );
    assert.equal(
      lines.filter((l) => l.startsWith("distribute: image pushed to ")).length,
      1,
      "one push for the three steps",
    );
    for (const n of nodes.list) assert.deepEqual(ctx.stats.perHost[n.ip], { sentBlobs: 0, sentBytes: 0 });
  });

  it("a cut blob is resumed from its partial with a Range request and verified", async () => {
    const n = nodes.list[1]!;
    const big = image.layers
      .map((l) => l.digest)
      .find((d) => fs.statSync(layout.blobPath(d)).size > 1 << 20)!;
    const size = fs.statSync(layout.blobPath(big)).size;
    const half = Math.floor(size / 2);
    const blobs = "/var/lib/sealer-rdr/blobs/sha256";
    // The first half of the blob as an interrupted fetch leaves it: the partial, and the rootfs
    // not yet swapped to this layer list (layers.json still names the old one, or none).
    const head = fs.readFileSync(layout.blobPath(big)).subarray(0, half);
    assert.equal(
      (await execInNode(n, `rm -f ${blobs}/${big.slice(7)} /var/lib/sealer-rdr/rdr/layers.json`)).code,
      0,
    );
    await pool.upload(nodes.targets()[1]!, head, `${blobs}/${big.slice(7)}.partial`);
    const ctx = context({ name: "rdr", dataRoot: "/var/lib/sealer-rdr" });
    lines = [];
    await distribute.run(ctx, step());
    const fetched = lines.filter((l) => l.startsWith(`[${n.ip}] fetching `));
    // One fetch, of the missing half only (a full re-download would fail the digest and show a second fetch).
    assert.equal(fetched.length, 1, fetched.join("\n"));
    assert.match(fetched[0]!, /fetching 1 layer blob\(s\) \(/);
    assert.ok(fetched[0]!.includes(`(${formatBytes(size - half)})`), fetched[0]);
    const sum = await execInNode(n, `sha256sum ${blobs}/${big.slice(7)}`);
    assert.equal(sum.stdout.split(" ")[0], big.slice(7));
    assert.equal(ctx.stats.perHost[n.ip]?.sentBytes, 0, "nothing went over SSH");
    // The resumed layer was extracted as it arrived: the node's state equals SSH mode's again.
    const want = (await nodeState(n, "/var/lib/sealer-rds", "rds")).replaceAll("rds", "X");
    assert.equal((await nodeState(n, "/var/lib/sealer-rdr", "rdr")).replaceAll("rdr", "X"), want);
  });

  it("a blob deleted from a node whose rootfs is current is fetched back into its store, nothing over SSH", async () => {
    const n = nodes.list[0]!;
    const d = image.layers[0]!.digest;
    const blobs = "/var/lib/sealer-rdr/blobs/sha256";
    assert.equal((await execInNode(n, `rm -f ${blobs}/${d.slice(7)}`)).code, 0);
    const ctx = context({ name: "rdr", dataRoot: "/var/lib/sealer-rdr" });
    await distribute.run(ctx, step());
    assert.deepEqual(ctx.stats.perHost[n.ip], { sentBlobs: 0, sentBytes: 0 });
    const sum = await execInNode(n, `sha256sum ${blobs}/${d.slice(7)}`);
    assert.equal(sum.stdout.split(" ")[0], d.slice(7));
    assert.match(lines.join("\n"), /restored the missing layer sha256:/);
  });

  it("a host whose fetch is cut gets the rest over SSH from the byte it stopped at, with a warning naming host and registry", async () => {
    const n = nodes.list[2]!;
    const big = image.layers
      .map((l) => l.digest)
      .find((d) => fs.statSync(layout.blobPath(d)).size > 1 << 20)!;
    // On this node only, curl's output stops after 1 MiB and curl fails (a link that drops).
    const shim = "/usr/local/bin/curl";
    const cut = await execInNode(
      n,
      `mkdir -p /usr/local/bin && printf '%s\\n' '#!/bin/sh' '/usr/bin/curl "$@" | head -c 1048576' 'exit 56' > ${shim} && chmod +x ${shim}`,
    );
    assert.equal(cut.code, 0, cut.stderr);
    try {
      const ctx = context({ name: "rdf", dataRoot: "/var/lib/sealer-rdf" });
      await distribute.run(ctx, step());
      const log = lines.join("\n");
      const ip = n.ip.replace(/\./g, "\\.");
      assert.match(
        log,
        new RegExp(
          `\\[${ip}\\] WARN could not fetch the layers from the external registry .*; sending them over SSH`,
        ),
      );
      assert.match(log, new RegExp(`\\[${ip}\\] resuming ${big.slice(0, 19)} at byte 1048576 of `));
      assert.equal(
        ctx.stats.perHost[n.ip]?.sentBytes,
        fs.statSync(layout.blobPath(big)).size - (1 << 20),
        "only the bytes the fetch did not bring went over SSH",
      );
      for (const other of nodes.list.slice(0, 2)) assert.equal(ctx.stats.perHost[other.ip]?.sentBytes, 0);
      const want = (await nodeState(n, "/var/lib/sealer-rds", "rds")).replaceAll("rds", "X");
      assert.equal((await nodeState(n, "/var/lib/sealer-rdf", "rdf")).replaceAll("rdf", "X"), want);
    } finally {
      await execInNode(n, `rm -f ${shim}`);
    }
  });

  it("a registry answering with other bytes (a layer that writes through a lower layer's symlink) writes nothing outside the rootfs; the hosts get the layer over SSH", async () => {
    const top = image.layers[image.layers.length - 1]!.digest;
    const hex = top.slice(7);
    const stored = path.join(reg.rootDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    // Make sure the registry holds the image, then swap the top layer's bytes on its disk for a
    // crafted layer of the same size: one file under etc/tz/, the lower layer's symlink.
    await distribute.run(context({ name: "rdr", dataRoot: "/var/lib/sealer-rdr" }), step());
    const genuine = fs.readFileSync(stored);
    const evil = zlib.gzipSync(tarOf({ "etc/tz/pwned": Buffer.from("written outside the rootfs\n") }));
    fs.writeFileSync(stored, Buffer.concat([evil, Buffer.alloc(genuine.length - evil.length)]));
    try {
      for (const n of nodes.list)
        assert.equal((await execInNode(n, `rm -rf ${OUTSIDE} && mkdir -p ${OUTSIDE}`)).code, 0);
      const ctx = context({ name: "rdx", dataRoot: "/var/lib/sealer-rdx" });
      await distribute.run(ctx, step());
      const log = lines.join("\n");
      for (const n of nodes.list) {
        const ip = n.ip.replace(/\./g, "\\.");
        assert.equal(
          (await execInNode(n, `ls -A ${OUTSIDE}`)).stdout,
          "",
          `${n.ip}: nothing written outside the rootfs`,
        );
        assert.match(
          log,
          new RegExp(
            `\\[${ip}\\] WARN could not fetch the layers from the external registry .*digest mismatch for ${top}.*; sending them over SSH`,
          ),
        );
        assert.equal(
          ctx.stats.perHost[n.ip]?.sentBytes,
          genuine.length,
          `${n.ip}: the top layer went over SSH`,
        );
        const want = (await nodeState(n, "/var/lib/sealer-rds", "rds")).replaceAll("rds", "X");
        assert.equal((await nodeState(n, "/var/lib/sealer-rdx", "rdx")).replaceAll("rdx", "X"), want);
      }
    } finally {
      fs.writeFileSync(stored, genuine);
      for (const n of nodes.list) await execInNode(n, `rm -rf ${OUTSIDE}`);
    }
  });

  it("a registry this machine cannot push to (wrong password) leaves every host to SSH, with a warning naming it", async () => {
    const ctx = context({ name: "rdw", dataRoot: "/var/lib/sealer-rdw", password: "wrong-password" });
    await distribute.run(ctx, step());
    assert.match(
      lines.join("\n"),
      new RegExp(
        `WARN distribute: could not push the image to the external registry ${reg.host.replace(/\./g, "\\.")} \\(spec\\.registry\\.externalRegistry\\) \\(.*authentication.*\\); distributing over SSH`,
        "i",
      ),
    );
    assert.equal(ctx.stats.sentBytes, layerBytes() * 3);
    const want = (await nodeState(nodes.list[2]!, "/var/lib/sealer-rds", "rds")).replaceAll("rds", "X");
    assert.equal(
      (await nodeState(nodes.list[2]!, "/var/lib/sealer-rdw", "rdw")).replaceAll("rdw", "X"),
      want,
    );
  });
});

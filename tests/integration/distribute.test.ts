/**
 * Per-layer delta distribution to real sshd nodes: first run sends every blob, a second run
 * sends nothing, a changed layer sends only that blob and every node's rootfs is right
 * (later layers override, whiteouts and opaque dirs applied), an interrupted transfer resumes
 * without re-sending finished blobs, a killed sshd fails in bounded time naming host and step.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as tarStream from "tar-stream";
import { sshHostIoOf } from "../../provider/core/exec/host-io";
import { distributeLayers } from "../../provider/core/exec/distribute";
import { receiveBlobScript, type LayerReceiver } from "../../provider/core/exec/node-layers";
import { execInNode, killNodeProcesses, startSshd } from "../../provider/core/infra/local";
import { OciLayout } from "../../provider/core/image/layout";
import { MediaTypes } from "../../provider/core/image/types";
import { ConnectionLostError, shellQuote, type SshPool, type SshTarget } from "../../provider/core/ssh";
import { useNodes } from "../harness/nodes";

type Entry = { name: string; data?: string | Buffer; dir?: boolean };

async function layer(layout: OciLayout, entries: Entry[]): Promise<string> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) {
    if (e.dir) pack.entry({ name: e.name, type: "directory", mode: 0o755, mtime: new Date(0) });
    else {
      const data = typeof e.data === "string" ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
      pack.entry({ name: e.name, type: "file", mode: 0o644, mtime: new Date(0), size: data.length }, data);
    }
  }
  pack.finalize();
  await done;
  const desc = await layout.putBlob(zlib.gzipSync(Buffer.concat(chunks), { level: 1 }), MediaTypes.layerGzip);
  return desc.digest;
}

const ROOT = "/var/lib/sealer-dt";
const CLUSTER = "dtest";

/** path -> content of every file under the rootfs, as the node sees it. */
async function rootfsFiles(node: Parameters<typeof execInNode>[0]): Promise<Record<string, string>> {
  const res = await execInNode(
    node,
    `cd ${ROOT}/${CLUSTER}/rootfs && find . -type f | LC_ALL=C sort | while read -r f; do printf '%s=%s\\n' "$f" "$(head -c 40 "$f")"; done`,
  );
  assert.equal(res.code, 0, res.stderr);
  return Object.fromEntries(
    res.stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(2, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

describe("distribute layers (integration, local nodes)", function () {
  this.timeout(180_000);
  const nodes = useNodes(3);
  let dir: string;
  let layout: OciLayout;
  let pool: SshPool;
  let L1: string, L2: string, L3: string, L2b: string, L4: string;

  before(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "sealer-dist-"));
    layout = new OciLayout(path.join(dir, "store"));
    await layout.init();
    L1 = await layer(layout, [
      { name: "etc/", dir: true },
      { name: "etc/a.txt", data: "a1" },
      { name: "etc/keep.txt", data: "keep" },
      { name: "dir/", dir: true },
      { name: "dir/b.txt", data: "b1" },
      { name: "dir/c.txt", data: "c1" },
    ]);
    L2 = await layer(layout, [
      { name: "etc/a.txt", data: "a2" },
      { name: "dir/.wh.c.txt" },
      { name: "e.txt", data: "e2" },
    ]);
    L3 = await layer(layout, [{ name: "application/apps/web/v.txt", data: "web1" }]);
    L2b = await layer(layout, [
      { name: "etc/a.txt", data: "a2b" },
      { name: "dir/", dir: true },
      { name: "dir/.wh..wh..opq" },
      { name: "dir/new.txt", data: "new" },
    ]);
    L4 = await layer(layout, [
      { name: "application/apps/web/v.txt", data: "web2" },
      { name: "etc/.wh.keep.txt" },
    ]);
    // Blobs of a MiB and up go through OpenSSH's client, as big layers do in production.
    pool = nodes.pool({ bulkMinBytes: 1024 * 1024 });
  });
  after(async () => {
    await fs.promises.rm(dir, { recursive: true, force: true });
  });

  const sizeOf = (d: string) => fs.statSync(layout.blobPath(d)).size;
  /** Distributes `layers` of the test store to `targets`, under this test's data root and cluster. */
  const distribute = (
    targets: SshTarget[],
    layers: string[],
    more: Partial<Parameters<typeof distributeLayers>[2]> = {},
  ) =>
    distributeLayers(sshHostIoOf(pool, targets), targets, {
      layout,
      layers,
      dataRoot: ROOT,
      cluster: CLUSTER,
      ...more,
    });

  it("first run sends every blob to every node and materialises the rootfs with whiteouts applied", async () => {
    const res = await distribute(nodes.targets(), [L1, L2, L3]);
    assert.equal(res.sentBlobs, 9);
    assert.equal(res.sentBytes, 3 * (sizeOf(L1) + sizeOf(L2) + sizeOf(L3)));
    for (const n of nodes.list) {
      assert.deepEqual(res.perHost[n.ip], {
        sentBlobs: 3,
        sentBytes: sizeOf(L1) + sizeOf(L2) + sizeOf(L3),
        materialisedFrom: 0,
      });
      assert.deepEqual(await rootfsFiles(n), {
        "application/apps/web/v.txt": "web1",
        "dir/b.txt": "b1",
        "e.txt": "e2",
        "etc/a.txt": "a2",
        "etc/keep.txt": "keep",
      });
      // Each layer kept once, as its extracted tree with its listing; no blob beside it.
      const store = await execInNode(
        n,
        `ls ${ROOT}/blobs/sha256 | wc -l; ls ${ROOT}/layers; cat ${ROOT}/${CLUSTER}/layers.json`,
      );
      assert.equal(
        store.stdout,
        "0\n" +
          [L1, L2, L3]
            .flatMap((d) => [d.slice(7), `${d.slice(7)}.list`])
            .sort()
            .join("\n") +
          "\n" +
          JSON.stringify({ layers: [L1, L2, L3] }) +
          "\n",
      );
      // The rootfs shares the trees' files: nothing was copied.
      const ino = await execInNode(
        n,
        `stat -c %i ${ROOT}/${CLUSTER}/rootfs/etc/keep.txt $(ls -d ${ROOT}/layers/*/etc/keep.txt)`,
      );
      const [a, b] = ino.stdout.trim().split("\n");
      assert.equal(a, b, ino.stdout);
    }
  });

  it("a second run sends nothing and touches no rootfs", async () => {
    const res = await distribute(nodes.targets(), [L1, L2, L3]);
    assert.deepEqual(res, {
      sentBytes: 0,
      sentBlobs: 0,
      perHost: Object.fromEntries(
        nodes.list.map((n) => [n.ip, { sentBlobs: 0, sentBytes: 0, materialisedFrom: null }]),
      ),
    });
  });

  it("a layer deleted from a node whose rootfs is current goes back into its store; the rootfs is not touched", async () => {
    const [t] = nodes.targets();
    const n = nodes.list[0]!;
    const hex = L2.slice(7);
    const mark = await execInNode(
      n,
      `rm -rf ${ROOT}/layers/${hex} ${ROOT}/layers/${hex}.list && touch ${ROOT}/${CLUSTER}/rootfs/untouched.mark`,
    );
    assert.equal(mark.code, 0, mark.stderr);
    const res = await distribute([t!], [L1, L2, L3]);
    assert.deepEqual(res.perHost[n.ip], { sentBlobs: 1, sentBytes: sizeOf(L2), materialisedFrom: null });
    const back = await execInNode(
      n,
      `test -f ${ROOT}/layers/${hex}.list && test -d ${ROOT}/layers/${hex} && test -f ${ROOT}/${CLUSTER}/rootfs/untouched.mark && rm ${ROOT}/${CLUSTER}/rootfs/untouched.mark`,
    );
    assert.equal(back.code, 0, back.stderr);
  });

  it("a changed middle layer sends only that blob; the rootfs is rebuilt right (opaque dir, later layer still on top)", async () => {
    const res = await distribute(nodes.targets(), [L1, L2b, L3]);
    assert.equal(res.sentBlobs, 3);
    assert.equal(res.sentBytes, 3 * sizeOf(L2b));
    for (const n of nodes.list) {
      assert.equal(res.perHost[n.ip]!.materialisedFrom, 0);
      // c.txt is back (L2's whiteout is gone); the opaque dir hid b.txt and c.txt of L1.
      assert.deepEqual(await rootfsFiles(n), {
        "application/apps/web/v.txt": "web1",
        "dir/new.txt": "new",
        "etc/a.txt": "a2b",
        "etc/keep.txt": "keep",
      });
    }
  });

  it("an added top layer: the rootfs is rebuilt fresh, never extracted onto (whiteout of a lower file, override)", async () => {
    const res = await distribute(nodes.targets(), [L1, L2b, L3, L4]);
    assert.equal(res.sentBlobs, 3);
    for (const n of nodes.list) {
      assert.equal(res.perHost[n.ip]!.materialisedFrom, 0);
      assert.deepEqual(await rootfsFiles(n), {
        "application/apps/web/v.txt": "web2",
        "dir/new.txt": "new",
        "etc/a.txt": "a2b",
      });
    }
    // Going back to the old image needs no bytes at all: its blobs are still on the nodes.
    const back = await distribute(nodes.targets(), [L1, L2, L3]);
    assert.equal(back.sentBytes, 0);
    assert.deepEqual(await rootfsFiles(nodes.list[0]!), {
      "application/apps/web/v.txt": "web1",
      "dir/b.txt": "b1",
      "e.txt": "e2",
      "etc/a.txt": "a2",
      "etc/keep.txt": "keep",
    });
  });

  it("a receive cut mid-stream leaves the rootfs and layers.json as they were; that layer is kept as a blob from then on, and a second cut resumes at the byte", async () => {
    // Big enough that the cut lands mid-stream whichever client carries it (OpenSSH's reads ahead).
    const big = await layer(layout, [{ name: "big.bin", data: crypto.randomBytes(64 * 1024 * 1024) }]);
    const small = await layer(layout, [{ name: "small.txt", data: "s" }]);
    const t = nodes.targets()[0]!;
    const n = nodes.list[0]!;
    const layersJson = async () => (await execInNode(n, `cat ${ROOT}/${CLUSTER}/layers.json`)).stdout;
    const rootfsBefore = await rootfsFiles(n);
    const listBefore = await layersJson();
    const cutRun = async (step: RegExp) => {
      let dropped = false;
      await assert.rejects(
        distribute([t], [L1, L2, L3, small, big], {
          retries: 0,
          onProgress: (p) => {
            if (p.phase === "send" && p.digest === big && (p.bytes ?? 0) > 4 * 1024 * 1024 && !dropped) {
              dropped = true;
              pool.dropConnection(t);
            }
          },
        }),
        (err: unknown) =>
          err instanceof ConnectionLostError &&
          new RegExp(`^\\[${t.host.replace(/\./g, "\\.")}\\] step "${step.source}": connection lost`).test(
            err.message,
          ),
      );
      await new Promise((r) => setTimeout(r, 300));
      // Nothing half-built: the layers never reached the rootfs.
      assert.deepEqual(await rootfsFiles(n), rootfsBefore);
      assert.equal(await layersJson(), listBefore);
    };
    const partialBlob = async () =>
      Number(
        (
          await execInNode(n, `wc -c < ${ROOT}/blobs/sha256/${big.slice(7)}.partial 2>/dev/null || echo 0`)
        ).stdout.trim(),
      );
    // 1. Into its own tree, written once: the cut keeps no bytes, and leaves a mark.
    await cutRun(new RegExp(`distribute: send and extract layer 5/5 \\(blob 2/2\\) ${big.slice(0, 19)}`));
    assert.equal(await partialBlob(), 0);
    assert.equal((await execInNode(n, `test -d ${ROOT}/layers/${big.slice(7)}.partial`)).code, 0);
    // 2. The next try keeps a blob of that layer; cut again, its bytes stay. (The small layer had
    // finished before the first cut: only the big one is sent.)
    await cutRun(new RegExp(`distribute: send and extract layer 5/5 \\(blob 1/1\\) ${big.slice(0, 19)}`));
    const partial = await partialBlob();
    assert.ok(partial > 0 && partial < sizeOf(big), `partial ${partial}`);
    // 3. Resumed at its byte.
    const res = await distribute([t], [L1, L2, L3, small, big]);
    assert.equal(res.perHost[t.host]!.sentBlobs, 1);
    assert.equal(res.perHost[t.host]!.sentBytes, sizeOf(big) - partial);
    assert.equal(res.perHost[t.host]!.materialisedFrom, 0);
    const check = await execInNode(
      n,
      `cd ${ROOT}/blobs/sha256 && ls | grep -c partial; sha256sum ${big.slice(7)} | cut -c1-64; cat ${ROOT}/${CLUSTER}/rootfs/small.txt; wc -c < ${ROOT}/${CLUSTER}/rootfs/big.bin`,
    );
    assert.equal(check.stdout, `0\n${big.slice(7)}\ns${64 * 1024 * 1024}\n`);
    assert.equal((await execInNode(n, `ls ${ROOT}/${CLUSTER}`)).stdout, "layers.json\nrootfs\n");
  });

  it("a corrupt partial is detected by digest on the node and sent again", async () => {
    const blob = await layer(layout, [{ name: "c.bin", data: crypto.randomBytes(100_000) }]);
    const n = nodes.list[1]!;
    const t = nodes.targets()[1]!;
    // 1000 bytes of garbage where the first 1000 bytes of the blob should be.
    assert.equal(
      (
        await execInNode(
          n,
          `mkdir -p ${ROOT}/blobs/sha256 && head -c 1000 /dev/zero > ${ROOT}/blobs/sha256/${blob.slice(7)}.partial`,
        )
      ).code,
      0,
    );
    const res = await distribute([t], [L1, L2, L3, blob]);
    assert.deepEqual(res.perHost[t.host], {
      sentBlobs: 1,
      sentBytes: sizeOf(blob) - 1000 + sizeOf(blob),
      materialisedFrom: 0,
    });
    assert.equal(
      (await execInNode(n, `sha256sum ${ROOT}/blobs/sha256/${blob.slice(7)} | cut -c1-64`)).stdout.trim(),
      blob.slice(7),
    );
  });

  it("killing a node's sshd mid-distribution fails within a bounded time, naming host and step; the others finish", async () => {
    const blob = await layer(layout, [{ name: "k.bin", data: crypto.randomBytes(64 * 1024 * 1024) }]);
    const victim = nodes.list[2]!;
    const p2 = nodes.pool({
      dialAttempts: 2,
      dialBackoffMs: 200,
      keepaliveIntervalMs: 1000,
      bulkMinBytes: 1024 * 1024,
    });
    let killed: Promise<unknown> | undefined;
    // The victim's tar reads slowly (about 12 MB/s), so the kill lands while its bytes still flow,
    // however fast the link is: OpenSSH's client reads ahead, and 64 MiB can be through before
    // the kill is.
    const slowTar =
      [
        "#!/bin/sh",
        'case "$1" in --version) exec /usr/bin/tar "$@";; esac',
        "python3 -c 'import sys, time",
        "i, o = sys.stdin.buffer, sys.stdout.buffer",
        "while True:",
        "    b = i.read(65536)",
        "    if not b:",
        "        break",
        "    o.write(b); o.flush(); time.sleep(0.005)",
        `' | /usr/bin/tar "$@"`,
      ].join("\n") + "\n";
    await execInNode(
      victim,
      `printf '%s' ${shellQuote(slowTar)} > /usr/local/bin/tar && chmod 755 /usr/local/bin/tar`,
    );
    const started = Date.now();
    try {
      await assert.rejects(
        distributeLayers(sshHostIoOf(p2, nodes.targets()), nodes.targets(), {
          layout,
          layers: [L1, L2, L3, blob],
          dataRoot: ROOT,
          cluster: CLUSTER,
          onProgress: (p) => {
            if (p.host === victim.ip && p.phase === "send" && (p.bytes ?? 0) > 4 * 1024 * 1024 && !killed)
              killed = killNodeProcesses(victim);
          },
        }),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          const ip = victim.ip.replace(/\./g, "\\.");
          assert.match(
            err.message,
            new RegExp(
              `^\\[${ip}\\] step "distribute: send and extract layer \\d+/\\d+ \\(blob \\d+/\\d+\\) ${blob.slice(0, 19)}": connection lost \\(.*\\); reconnecting failed: \\[${ip}\\] step "connect": dial 2/2 to ${ip} failed: ECONNREFUSED; giving up`,
            ),
          );
          return true;
        },
      );
      assert.ok(Date.now() - started < 60_000);
      for (const n of nodes.list.slice(0, 2))
        assert.equal(
          (await execInNode(n, `cat ${ROOT}/${CLUSTER}/layers.json`)).stdout,
          JSON.stringify({ layers: [L1, L2, L3, blob] }) + "\n",
        );
    } finally {
      await killed;
      await execInNode(victim, "rm -f /usr/local/bin/tar");
      nodes.update(await startSshd(nodes.list[2]!));
    }
    // The next run finishes the victim. Its first cut came while the layer went into a tree of its
    // own (nothing kept), and the retry could not reconnect: the layer comes again, whole, and is
    // kept as a blob this time.
    const res = await distributeLayers(sshHostIoOf(p2, nodes.targets()), nodes.targets(), {
      layout,
      layers: [L1, L2, L3, blob],
      dataRoot: ROOT,
      cluster: CLUSTER,
    });
    assert.equal(res.sentBlobs, 1);
    assert.equal(res.sentBytes, sizeOf(blob));
    assert.equal(
      (
        await execInNode(victim, `sha256sum ${ROOT}/blobs/sha256/${blob.slice(7)} | cut -c1-64`)
      ).stdout.trim(),
      blob.slice(7),
    );
  });
});

describe("the node's blob receiver script (runs with sh on this machine)", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-recv-"));
    // An openssl that prints a wrong digest: the receiver must notice and hash with sha256sum.
    fs.mkdirSync(path.join(dir, "bad-openssl"));
    fs.writeFileSync(path.join(dir, "bad-openssl", "openssl"), "#!/bin/sh\necho 0000 '*stdin'\n", {
      mode: 0o755,
    });
    // A python3 that leaves a mark when it runs the blob receiver, then runs the real one.
    fs.mkdirSync(path.join(dir, "marked-python"));
    const real = spawnSync("sh", ["-c", "command -v python3"], { encoding: "utf8" }).stdout.trim();
    fs.writeFileSync(
      path.join(dir, "marked-python", "python3"),
      `#!/bin/sh\ncase "$*" in *hashlib.sha256\\(\\)*) touch ${dir}/ran-python ;; esac\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const data = crypto.randomBytes(300_000);
  const hex = crypto.createHash("sha256").update(data).digest("hex");
  const recv = (
    root: string,
    input: Buffer,
    offset: number,
    pathPrefix?: string,
    receiver: LayerReceiver = "shell",
  ) =>
    spawnSync("sh", ["-c", receiveBlobScript(root, hex, data.length, offset, receiver)], {
      input,
      encoding: "utf8",
      env: { ...process.env, PATH: pathPrefix ? `${pathPrefix}:${process.env.PATH}` : process.env.PATH },
    });

  for (const mode of [
    "python3",
    "sh with openssl if present",
    "sh with a broken openssl (falls back to sha256sum)",
  ]) {
    it(`verifies, resumes and rejects by digest with ${mode}`, () => {
      const receiver: LayerReceiver = mode === "python3" ? "auto" : "shell";
      const prefix = path.join(dir, mode.includes("a broken") ? "bad-openssl" : "marked-python");
      fs.rmSync(path.join(dir, "ran-python"), { force: true });
      const root = fs.mkdtempSync(path.join(dir, "root-"));
      const blobs = path.join(root, "blobs", "sha256");
      const cut = recv(root, data.subarray(0, 100_000), 0, prefix, receiver);
      assert.equal(cut.status, 91, cut.stderr);
      assert.match(cut.stderr, /short transfer of sha256:[0-9a-f]{64}: 100000 of 300000 bytes/);
      assert.equal(fs.existsSync(path.join(dir, "ran-python")), receiver === "auto", "which receiver ran");
      // Either receiver resumes what the other left.
      const rest = recv(
        root,
        data.subarray(100_000),
        100_000,
        prefix,
        receiver === "auto" ? "shell" : "auto",
      );
      assert.equal(rest.status, 0, rest.stderr);
      assert.deepEqual(fs.readdirSync(blobs), [hex]);
      assert.ok(fs.readFileSync(path.join(blobs, hex)).equals(data));
      fs.rmSync(path.join(blobs, hex));
      const bad = recv(root, Buffer.alloc(data.length), 0, prefix, receiver);
      assert.equal(bad.status, 92, bad.stderr);
      assert.match(bad.stderr, /digest mismatch for sha256:[0-9a-f]{64} \(got sha256:[0-9a-f]{64}\)/);
      assert.deepEqual(fs.readdirSync(blobs), []);
    });
  }
});

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { spawnSync } from "node:child_process";
import * as tarStream from "tar-stream";
import { encodeHeader, normalizeMode, padding, TAR_END } from "../../provider/core/image/tar";
import { collectCopyEntries, layerPaths, normalizeDest, writeLayer } from "../../provider/core/image/layer";
import { OciLayout } from "../../provider/core/image/layout";
import type { TarHeader } from "../../provider/core/image/tar";
import { looksIncompressible, parallelGzip } from "../../provider/core/image/parallel-gzip";
import * as crypto from "node:crypto";

/** Reads an uncompressed tar back with tar-stream (an independent decoder). */
async function readTar(buf: Buffer): Promise<
  Array<{
    name: string;
    type: string;
    mode: number;
    size: number;
    linkname: string | null;
    uid: number;
    gid: number;
    mtime: number;
    uname: string;
    content: string;
  }>
> {
  const ex = tarStream.extract();
  const out: Awaited<ReturnType<typeof readTar>> = [];
  ex.end(buf);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry as unknown as AsyncIterable<Buffer>) chunks.push(c);
    const h = entry.header;
    out.push({
      name: h.name,
      type: h.type,
      mode: h.mode,
      size: h.size,
      linkname: h.linkname || null,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime.getTime(),
      uname: h.uname,
      content: Buffer.concat(chunks).toString(),
    });
  }
  return out;
}

function archive(entries: Array<TarHeader & { data?: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(encodeHeader({ ...e, size: e.data ? Buffer.byteLength(e.data) : e.size }));
    if (e.data) parts.push(Buffer.from(e.data), padding(Buffer.byteLength(e.data)));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

describe("tar writer", () => {
  const long150 = "a".repeat(60) + "/" + "b".repeat(60) + "/" + "c".repeat(28);
  const long300 = "d".repeat(150) + "/" + "e".repeat(149);
  const cases: Array<{ name: string; entry: TarHeader & { data?: string }; blocks: number }> = [
    {
      name: "short file",
      entry: { path: "etc/kubeadm.yml", type: "file", mode: 0o644, size: 0, data: "x: 1\n" },
      blocks: 1,
    },
    { name: "directory", entry: { path: "etc/", type: "dir", mode: 0o755, size: 0 }, blocks: 1 },
    {
      name: "exactly 100 chars",
      entry: { path: "f".repeat(100), type: "file", mode: 0o755, size: 0, data: "" },
      blocks: 1,
    },
    {
      name: "150 chars split into ustar prefix",
      entry: { path: long150, type: "file", mode: 0o644, size: 0, data: "p" },
      blocks: 1,
    },
    {
      name: "300 chars needs PAX path",
      entry: { path: long300, type: "file", mode: 0o644, size: 0, data: "q" },
      blocks: 3,
    },
    {
      name: "non-ASCII name needs PAX path",
      entry: { path: "charts/día/ü.yaml", type: "file", mode: 0o644, size: 0, data: "u" },
      blocks: 3,
    },
    {
      name: "symlink",
      entry: { path: "bin/kc", type: "symlink", mode: 0o777, size: 0, linkTarget: "kubectl" },
      blocks: 1,
    },
    {
      name: "long symlink target needs PAX linkpath",
      entry: { path: "l", type: "symlink", mode: 0o777, size: 0, linkTarget: "t/".repeat(70) + "x" },
      blocks: 3,
    },
  ];
  for (const c of cases) {
    it(`round-trips: ${c.name}`, async () => {
      const header = encodeHeader({ ...c.entry, size: c.entry.data ? Buffer.byteLength(c.entry.data) : 0 });
      assert.equal(header.length, c.blocks * 512);
      const [got, ...rest] = await readTar(archive([c.entry]));
      assert.equal(rest.length, 0);
      assert.deepEqual(
        {
          name: got!.name,
          type: got!.type,
          mode: got!.mode,
          uid: got!.uid,
          gid: got!.gid,
          mtime: got!.mtime,
          uname: got!.uname,
          linkname: got!.linkname,
          content: got!.content,
        },
        {
          name: c.entry.path,
          type: c.entry.type === "dir" ? "directory" : c.entry.type,
          mode: c.entry.mode,
          uid: 0,
          gid: 0,
          mtime: 0,
          uname: "",
          linkname: c.entry.linkTarget ?? null,
          content: c.entry.data ?? "",
        },
      );
    });
  }

  it("GNU tar lists what we write, with fixed owners and times", () => {
    const buf = archive([
      { path: "a/", type: "dir", mode: 0o755, size: 0 },
      { path: "a/run.sh", type: "file", mode: 0o755, size: 0, data: "#!/bin/sh\n" },
      { path: long300, type: "file", mode: 0o644, size: 0, data: "z" },
    ]);
    const r = spawnSync("tar", ["-tvf", "-", "--numeric-owner"], { input: buf, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split("\n")
        .map((l) => l.replace(/\s+/g, " ")),
      [
        "drwxr-xr-x 0/0 0 1970-01-01 00:00 a/",
        "-rwxr-xr-x 0/0 10 1970-01-01 00:00 a/run.sh",
        `-rw-r--r-- 0/0 1 1970-01-01 00:00 ${long300}`,
      ],
    );
  });

  it("normalises modes: dirs and anything executable 0755, other files 0644, links 0777", () => {
    const table: Array<[Parameters<typeof normalizeMode>[0], number, number]> = [
      ["file", 0o600, 0o644],
      ["file", 0o640, 0o644],
      ["file", 0o700, 0o755],
      ["file", 0o744, 0o755],
      ["file", 0o4755, 0o755],
      ["dir", 0o700, 0o755],
      ["symlink", 0o755, 0o777],
    ];
    for (const [type, mode, want] of table)
      assert.equal(normalizeMode(type, mode), want, `${type} ${mode.toString(8)}`);
  });
});

describe("layer paths summary", () => {
  const table: Array<{
    name: string;
    entries: Array<{ path: string; type: "file" | "dir" | "symlink" }>;
    want: string[];
  }> = [
    {
      name: "files at depth ≤ 3 listed as themselves; implicit parents dropped",
      entries: [
        { path: "etc/", type: "dir" },
        { path: "etc/kubeadm.yml", type: "file" },
        { path: "bin/", type: "dir" },
        { path: "bin/kubeadm", type: "file" },
      ],
      want: ["bin/kubeadm", "etc/kubeadm.yml"],
    },
    {
      name: "deeper paths cut to their depth-3 dir",
      entries: [
        { path: "application/apps/web/a.yaml", type: "file" },
        { path: "application/apps/web/sub/b.yaml", type: "file" },
        { path: "application/apps/api/x.sh", type: "file" },
      ],
      want: ["application/apps/api/", "application/apps/web/"],
    },
    {
      name: "whiteouts name the deleted path; opaque marks the dir",
      entries: [
        { path: "etc/.wh.old.conf", type: "file" },
        { path: "manifests/.wh..wh..opq", type: "file" },
        { path: "manifests/new.yaml", type: "file" },
        { path: ".wh.tmpfile", type: "file" },
      ],
      want: ["etc/old.conf", "manifests/", "tmpfile"],
    },
    {
      name: "an empty dir is a leaf",
      entries: [{ path: "registry/", type: "dir" }],
      want: ["registry/"],
    },
    {
      name: "covered entries are removed",
      entries: [
        { path: "charts/.wh..wh..opq", type: "file" },
        { path: "charts/x.yaml", type: "file" },
        { path: "charts/a/b/c/d.yaml", type: "file" },
        { path: "etc/x", type: "symlink" },
      ],
      want: ["charts/", "etc/x"],
    },
  ];
  for (const c of table) it(c.name, () => assert.deepEqual(layerPaths(c.entries), c.want));
});

describe("normalizeDest", () => {
  const table: Array<[string, string]> = [
    ["/", ""],
    [".", ""],
    ["./", ""],
    ["/etc/", "etc"],
    ["etc/x", "etc/x"],
    ["a/../b", "b"],
    ["../../x", "x"],
  ];
  for (const [input, want] of table)
    it(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => assert.equal(normalizeDest(input), want));
});

describe("writeLayer", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2-tar-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes a gzip with a fixed header (no mtime, no name, OS unknown) and digests that match the bytes", async () => {
    const ctx = path.join(dir, "ctx");
    fs.mkdirSync(path.join(ctx, "sub"), { recursive: true });
    fs.writeFileSync(path.join(ctx, "sub", "a.txt"), "hello\n");
    fs.writeFileSync(path.join(ctx, "run.sh"), "#!/bin/sh\n", { mode: 0o700 });
    fs.symlinkSync("sub/a.txt", path.join(ctx, "link"));
    const layout = new OciLayout(path.join(dir, "store"));
    const entries = await collectCopyEntries(ctx, ["."], "opt/x", "Kubefile:2");
    assert.deepEqual(
      entries.map((e) => `${e.path} ${e.type} ${e.mode.toString(8)}`),
      [
        "opt/ dir 755",
        "opt/x/ dir 755",
        "opt/x/link symlink 777",
        "opt/x/run.sh file 755",
        "opt/x/sub/ dir 755",
        "opt/x/sub/a.txt file 644",
      ],
    );
    const w = await writeLayer(layout, entries);
    const blob = fs.readFileSync(layout.blobPath(w.digest));
    assert.deepEqual([...blob.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    assert.equal(w.size, blob.length);
    const tar = zlib.gunzipSync(blob);
    assert.equal(w.diffID, "sha256:" + require("node:crypto").createHash("sha256").update(tar).digest("hex"));
    assert.deepEqual(w.paths, ["opt/x/link", "opt/x/run.sh", "opt/x/sub/"]);
    assert.equal(
      w.fileHashes.get("opt/x/sub/a.txt"),
      "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
    );
    const listed = await readTar(tar);
    assert.deepEqual(
      listed.map((e) => e.name),
      ["opt/", "opt/x/", "opt/x/link", "opt/x/run.sh", "opt/x/sub/", "opt/x/sub/a.txt"],
    );
  });

  it("fails when a source file changes size while being written", async () => {
    const f = path.join(dir, "grow.txt");
    fs.writeFileSync(f, "12345");
    const layout = new OciLayout(path.join(dir, "store"));
    await assert.rejects(
      writeLayer(layout, [{ path: "grow.txt", type: "file", mode: 0o644, size: 3, source: f }]),
      { message: `${f} changed while the layer was being written (expected 3 bytes, read 5); build again` },
    );
  });
});

describe("parallel gzip", () => {
  async function gz(data: Buffer, concurrency: number, blockSize: number, piece: number): Promise<Buffer> {
    async function* src() {
      for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece);
    }
    const out: Buffer[] = [];
    for await (const o of parallelGzip(src(), { level: 6, concurrency, blockSize })) out.push(o);
    return Buffer.concat(out);
  }
  // Compressible text plus random bytes, across several blocks and an exact block boundary.
  const text = Buffer.from("apiVersion: v1\nkind: ConfigMap\n".repeat(4000));
  const cases: Array<[string, Buffer]> = [
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from("x")],
    ["exactly two blocks", Buffer.concat([text, crypto.randomBytes(65536 * 2 - text.length)])],
    ["many blocks", Buffer.concat([text, crypto.randomBytes(300_000), text])],
    ["random blocks are stored, not searched", crypto.randomBytes(65536 * 3)],
  ];
  for (const [name, data] of cases) {
    it(`${name}: gzip(1) decodes it, and the bytes do not depend on concurrency or input chunking`, async () => {
      const a = await gz(data, 1, 65536, 1000);
      const b = await gz(data, 8, 65536, 70001);
      assert.ok(a.equals(b));
      assert.deepEqual([...a.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
      const r = spawnSync("gzip", ["-dc"], { input: a, maxBuffer: 1 << 26 });
      assert.equal(r.status, 0, String(r.stderr));
      assert.ok(r.stdout.equals(data));
      assert.ok(zlib.gunzipSync(a).equals(data));
      // Never bigger than the input plus gzip/deflate framing.
      assert.ok(
        a.length <= data.length + 18 + 5 * Math.ceil(data.length / 16384 + 1),
        `${a.length} vs ${data.length}`,
      );
    });
  }
});

describe("incompressible block detection", () => {
  it("stores random bytes and compresses text and zeros", () => {
    assert.equal(looksIncompressible(crypto.randomBytes(65536)), true);
    assert.equal(looksIncompressible(Buffer.alloc(65536)), false);
    assert.equal(looksIncompressible(Buffer.from("kind: Deployment\nspec: {}\n".repeat(3000))), false);
    // too small to judge: compressed normally
    assert.equal(looksIncompressible(crypto.randomBytes(1000)), false);
  });
});

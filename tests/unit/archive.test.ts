import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { UserError } from "../../provider/core/errors";
import { loadArchive, saveImages, unsafeEntryName } from "../../provider/core/image/archive";
import { OciLayout } from "../../provider/core/image/layout";
import { encodeHeader, TAR_END } from "../../provider/core/image/tar";
import { Annotations, Descriptor, Index, Manifest, MediaTypes } from "../../provider/core/image/types";
import { Command } from "commander";
import {
  entriesOf,
  indexOf,
  makeImage,
  makeMultiPlatform,
  tarOf,
  withIndexJson,
} from "../harness/archive-fixtures";
import { register as registerArchive } from "../../provider/cli/commands/archive";

/** Only the archive command group, so the test does not depend on the other groups. */
function buildProgram(): Command {
  const p = new Command("sealer").exitOverride();
  registerArchive(p);
  return p;
}

function blobCount(store: OciLayout): number {
  const dir = path.join(store.root, "blobs", "sha256");
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

function skopeo(args: string[]): string {
  return execFileSync("skopeo", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

async function expectUserError(p: Promise<unknown>, re: RegExp): Promise<UserError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof UserError, `expected UserError, got ${String(err)}`);
    assert.match(err.message, re);
    return err;
  }
  assert.fail(`expected an error matching ${re}`);
}

describe("save/load (OCI archive)", function () {
  let tmp: string;
  let src: OciLayout;
  let dst: OciLayout;
  let single: Descriptor;
  let multi: Descriptor;

  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-archive-"));
    src = new OciLayout(path.join(tmp, "src"));
    dst = new OciLayout(path.join(tmp, "dst"));
    await src.init();
    single = await makeImage(src, { "etc/hello": "hello\n", "scripts/init.sh": "echo hi\n" });
    multi = await makeMultiPlatform(src);
    await src.setRef("app:1", single);
    await src.setRef("127.0.0.1:5000/team/multi:2", multi);
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("round-trips one image: same digest, every blob byte-identical", async () => {
    const file = path.join(tmp, "app.tar");
    const saved = await saveImages(src, ["app:1"], file);
    assert.deepEqual(saved.images, [
      { ref: "docker.io/library/app:1", digest: single.digest, mediaType: MediaTypes.manifest },
    ]);
    assert.equal(saved.blobs, 3);
    const loaded = await loadArchive(dst, file);
    assert.deepEqual(loaded, {
      images: [{ ref: "docker.io/library/app:1", digest: single.digest, mediaType: MediaTypes.manifest }],
      blobsAdded: 3,
      blobsPresent: 0,
    });
    assert.equal((await dst.resolve("app:1"))?.digest, single.digest);
    const m = await dst.readJson<Manifest>(single.digest);
    for (const d of [m.config, ...m.layers])
      assert.deepEqual(await dst.readBlob(d.digest), await src.readBlob(d.digest));
    assert.equal(fs.readdirSync(dst.tmpDir()).length, 0, "staging directory removed");
    // Loading again changes nothing and adds no blob.
    const again = await loadArchive(dst, file);
    assert.equal(again.blobsAdded, 0);
    assert.equal(again.blobsPresent, 3);
  });

  it("writes a deterministic, sorted tar with mtime 0 and owner 0", async () => {
    const a = path.join(tmp, "a.tar");
    const b = path.join(tmp, "b.tar");
    await saveImages(src, ["app:1", "127.0.0.1:5000/team/multi:2"], a);
    await saveImages(src, ["127.0.0.1:5000/team/multi:2", "app:1"], b);
    assert.deepEqual(fs.readFileSync(a), fs.readFileSync(b));
    const entries = await entriesOf(fs.readFileSync(a));
    const names = entries.map((e) => e.name);
    assert.equal(names[0], "blobs/");
    assert.equal(names[1], "blobs/sha256/");
    assert.deepEqual(names.slice(-2), ["index.json", "oci-layout"]);
    const blobNames = names.slice(2, -2);
    assert.deepEqual(blobNames, [...blobNames].sort());
    assert.equal(blobNames.length, 3 + 1 + 2 * 3);
    for (const e of entries) {
      assert.equal(e.mtime, 0, e.name);
      assert.equal(e.uid, 0, e.name);
    }
    const index = JSON.parse(entries.find((e) => e.name === "index.json")!.body.toString()) as Index;
    assert.deepEqual(
      index.manifests.map((d) => [d.annotations?.[Annotations.refName], d.digest, d.mediaType]),
      [
        ["127.0.0.1:5000/team/multi:2", multi.digest, MediaTypes.index],
        ["docker.io/library/app:1", single.digest, MediaTypes.manifest],
      ],
    );
  });

  it("is accepted by skopeo: one image without a ref, several with oci-archive:FILE:REF", async () => {
    const one = path.join(tmp, "one.tar");
    await saveImages(src, ["app:1"], one);
    const info = JSON.parse(skopeo(["inspect", `oci-archive:${one}`])) as {
      Digest: string;
      Architecture: string;
      Layers: string[];
    };
    assert.equal(info.Digest, single.digest);
    assert.equal(info.Architecture, "amd64");
    assert.equal(info.Layers.length, 1);

    const both = path.join(tmp, "both.tar");
    await saveImages(src, ["app:1", "127.0.0.1:5000/team/multi:2"], both);
    const app = JSON.parse(skopeo(["inspect", `oci-archive:${both}:docker.io/library/app:1`])) as {
      Digest: string;
    };
    assert.equal(app.Digest, single.digest);
    const rawIndex = JSON.parse(
      skopeo(["inspect", "--raw", `oci-archive:${both}:127.0.0.1:5000/team/multi:2`]),
    ) as Index;
    assert.equal(rawIndex.manifests.length, 2);
    const arm = JSON.parse(
      skopeo(["inspect", "--override-arch", "arm64", `oci-archive:${both}:127.0.0.1:5000/team/multi:2`]),
    ) as { Architecture: string; Digest: string; Labels: Record<string, string> };
    assert.equal(arm.Architecture, "arm64");
    // skopeo reports the index digest and the chosen platform's config.
    assert.equal(arm.Digest, multi.digest);
    assert.equal(arm.Labels["test.io/arch"], "arm64");
  });

  it("carries a multi-platform index with its child manifests, next to a second image", async () => {
    const file = path.join(tmp, "multi.tar");
    await saveImages(src, ["app:1", "127.0.0.1:5000/team/multi:2"], file);
    const r = await loadArchive(dst, file);
    assert.deepEqual(
      r.images.map((i) => [i.ref, i.digest]),
      [
        ["127.0.0.1:5000/team/multi:2", multi.digest],
        ["docker.io/library/app:1", single.digest],
      ],
    );
    const idx = await dst.readJson<Index>(multi.digest);
    for (const child of idx.manifests) {
      const m = await dst.readJson<Manifest>(child.digest);
      for (const d of [m.config, ...m.layers]) assert.ok(await dst.hasBlob(d.digest), d.digest);
    }
    assert.equal(blobCount(dst), blobCount(src));
  });

  it("loads an archive written by skopeo copy (and a gzip-compressed one)", async () => {
    const file = path.join(tmp, "skopeo.tar");
    skopeo([
      "copy",
      "-q",
      "--all",
      `oci:${src.root}:127.0.0.1:5000/team/multi:2`,
      `oci-archive:${file}:team/multi:from-skopeo`,
    ]);
    const r = await loadArchive(dst, file);
    assert.deepEqual(
      r.images.map((i) => i.ref),
      ["docker.io/team/multi:from-skopeo"],
    );
    const d = await dst.resolve("team/multi:from-skopeo");
    const idx = await dst.readJson<Index>(d!.digest);
    assert.equal(idx.manifests.length, 2);

    const gz = path.join(tmp, "app.tar.gz");
    const plain = path.join(tmp, "app.tar");
    await saveImages(src, ["app:1"], plain);
    fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(plain)));
    const g = await loadArchive(dst, gz, { tag: "renamed/app:9" });
    assert.deepEqual(
      g.images.map((i) => [i.ref, i.digest]),
      [["docker.io/renamed/app:9", single.digest]],
    );
  });

  it("rejects a corrupted blob and stores nothing", async () => {
    const file = path.join(tmp, "app.tar");
    await saveImages(src, ["app:1"], file);
    const m = await src.readJson<Manifest>(single.digest);
    const layerName = `blobs/sha256/${m.layers[0]!.digest.slice(7)}`;
    const entries = await entriesOf(fs.readFileSync(file));
    const bad = path.join(tmp, "bad.tar");
    // Same size, one byte flipped.
    fs.writeFileSync(
      bad,
      await tarOf(
        entries.map((e) => ({
          name: e.name,
          type: e.type as "file",
          body: e.name === layerName ? Buffer.from(e.body.map((b, i) => (i === 20 ? b ^ 0xff : b))) : e.body,
        })),
      ),
    );
    await expectUserError(
      loadArchive(dst, bad),
      new RegExp(
        `^${bad.replace(/[/.]/g, "\\$&")} is not a usable OCI archive; nothing was loaded:\n - image docker\\.io/library/app:1 needs blob ${m.layers[0]!.digest} \\(${MediaTypes.layerGzip.replace(/[.+]/g, "\\$&")}\\), but that blob in the archive is corrupt: its content hashes to sha256:[0-9a-f]{64} \\(\\d+ bytes\\)$`,
      ),
    );
    assert.equal(blobCount(dst), 0);
    assert.deepEqual((await dst.readIndex()).manifests, []);
    assert.deepEqual(fs.readdirSync(dst.tmpDir()), []);
  });

  it("refuses path traversal, absolute paths, escaping links and special entries, writing nothing", async () => {
    const outside = path.join(tmp, "evil");
    const cases: Array<{ entries: Parameters<typeof tarOf>[0]; re: RegExp }> = [
      {
        entries: [{ name: "../evil", body: "x" }],
        re: /entry "\.\.\/evil" climbs out of the archive with \.\.; nothing was loaded$/,
      },
      {
        entries: [{ name: "blobs/../../evil", body: "x" }],
        re: /entry "blobs\/\.\.\/\.\.\/evil" climbs out of the archive with \.\./,
      },
      {
        entries: [{ name: "/tmp/evil", body: "x" }],
        re: /entry "\/tmp\/evil" is an absolute path; nothing was loaded$/,
      },
      {
        entries: [{ name: "blobs/sha256/" + "a".repeat(64), type: "symlink", linkname: "../../../evil" }],
        re: /is a symlink to "\.\.\/\.\.\/\.\.\/evil", which escapes the archive; nothing was loaded$/,
      },
      {
        entries: [{ name: "index.json", type: "symlink", linkname: "/etc/passwd" }],
        re: /entry "index.json" is a symlink to "\/etc\/passwd", which escapes the archive/,
      },
      {
        entries: [{ name: "x", type: "link", linkname: "oci-layout" }],
        re: /entry "x" is a hard link to "oci-layout"; an OCI archive holds plain files only/,
      },
      { entries: [{ name: "blobs/sha512/" + "a".repeat(128), body: "x" }], re: /is not a sha256 blob/ },
      {
        entries: [{ name: "manifest.json", body: "[]" }],
        re: /it is a docker-save archive \(manifest.json\), not an OCI archive; convert it with skopeo copy docker-archive:FILE oci-archive:NEW; nothing was loaded$/,
      },
      {
        entries: [{ name: "oci-layout", body: '{"imageLayoutVersion":"1.0.0"}' }],
        re: /it has no index.json; nothing was loaded$/,
      },
    ];
    const before = await dst.readIndex();
    for (const c of cases) {
      const file = path.join(tmp, "evil.tar");
      fs.writeFileSync(file, await tarOf(c.entries));
      await expectUserError(loadArchive(dst, file), c.re);
      assert.equal(fs.existsSync(outside), false);
      assert.equal(blobCount(dst), 0);
      assert.deepEqual(await dst.readIndex(), before);
    }
  });

  it("refuses an archive whose index names a blob it lacks, and one without ref names, listing every problem", async () => {
    const file = path.join(tmp, "app.tar");
    await saveImages(src, ["app:1", "127.0.0.1:5000/team/multi:2"], file);
    const m = await src.readJson<Manifest>(single.digest);
    const drop = `blobs/sha256/${m.config.digest.slice(7)}`;
    const entries = (await entriesOf(fs.readFileSync(file))).filter((e) => e.name !== drop);
    const lacking = path.join(tmp, "lacking.tar");
    fs.writeFileSync(
      lacking,
      await tarOf(entries.map((e) => ({ name: e.name, type: e.type as "file", body: e.body }))),
    );
    const err = await expectUserError(loadArchive(dst, lacking), /nothing was loaded/);
    assert.deepEqual(err.problems, [
      `image docker.io/library/app:1 needs blob ${m.config.digest} (${MediaTypes.config}), which the archive lacks`,
    ]);
    assert.equal(blobCount(dst), 0);

    const unnamed = path.join(tmp, "unnamed.tar");
    const index = indexOf(entries);
    for (const d of index.manifests) delete d.annotations;
    fs.writeFileSync(unnamed, await withIndexJson(entries, index));
    const err2 = await expectUserError(loadArchive(dst, unnamed), /nothing was loaded/);
    assert.deepEqual(err2.problems, [
      `index.json entry 0 (${multi.digest}) has no org.opencontainers.image.ref.name annotation; load it with --tag NAME:TAG`,
      `index.json entry 1 (${single.digest}) has no org.opencontainers.image.ref.name annotation; load it with --tag NAME:TAG`,
    ]);
    await expectUserError(
      loadArchive(dst, unnamed, { tag: "x:1" }),
      /^--tag names one image, but .* holds 2; load without --tag and use sealer tag afterwards$/,
    );
    assert.equal(blobCount(dst), 0);
    assert.deepEqual((await dst.readIndex()).manifests, []);
  });

  it("save reports every missing image at once and a corrupt store blob", async () => {
    const err = await expectUserError(
      saveImages(src, ["nope:1", "app:1", "other/x"], path.join(tmp, "x.tar")),
      /^cannot save:/,
    );
    assert.deepEqual(err.problems, [
      `image nope:1 is not in the local store (${src.root}); build or pull it first (sealer images lists what is there)`,
      `image other/x is not in the local store (${src.root}); build or pull it first (sealer images lists what is there)`,
    ]);
    assert.equal(fs.existsSync(path.join(tmp, "x.tar")), false);

    const m = await src.readJson<Manifest>(single.digest);
    const blob = src.blobPath(m.layers[0]!.digest);
    const bytes = fs.readFileSync(blob);
    bytes[10] = (bytes[10] as number) ^ 0xff;
    fs.writeFileSync(blob, bytes);
    await expectUserError(
      saveImages(src, ["app:1"], path.join(tmp, "y.tar")),
      new RegExp(
        `^blob ${m.layers[0]!.digest} in the store at ${src.root} is corrupt \\(its content hashes to sha256:[0-9a-f]{64}\\); remove the image and pull or rebuild it$`,
      ),
    );
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.includes("y.tar")),
      [],
    );
  });

  it("sealer save / sealer load on the command line, through $SEALER_HOME", async () => {
    const home = path.join(tmp, "home");
    const prev = process.env.SEALER_HOME;
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    try {
      process.env.SEALER_HOME = home;
      const store = new OciLayout(path.join(home, "store"));
      await store.init();
      await store.setRef("app:1", await makeImage(store, { "etc/a": "a" }));
      const file = path.join(tmp, "cli.tar");
      await buildProgram().parseAsync(["node", "sealer", "save", "-o", file, "app:1"]);
      await store.removeRef("app:1");
      process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
      await buildProgram().parseAsync(["node", "sealer", "load", "-i", file]);
      process.stdout.write = write;
      assert.match(out.join(""), /^Loaded image: app:1 \(sha256:[0-9a-f]{64}\)\n$/);
      assert.ok(await store.resolve("app:1"));
    } finally {
      process.stdout.write = write;
      if (prev === undefined) delete process.env.SEALER_HOME;
      else process.env.SEALER_HOME = prev;
    }
  });

  it("refuses files that are not tar archives, and an empty one", async () => {
    const junk = path.join(tmp, "junk.tar");
    fs.writeFileSync(junk, crypto.randomBytes(4096));
    await expectUserError(
      loadArchive(dst, junk),
      /is not a usable OCI archive: it is not a tar archive, or a tar header in it is corrupt \(within the first 4096 bytes of tar data\); nothing was loaded$/,
    );
    const empty = path.join(tmp, "empty.tar");
    fs.writeFileSync(empty, "");
    await expectUserError(
      loadArchive(dst, empty),
      /is not a usable OCI archive: it is empty \(0 bytes\); nothing was loaded$/,
    );
    const truncated = path.join(tmp, "truncated.tar");
    await saveImages(src, ["app:1"], path.join(tmp, "full.tar"));
    fs.writeFileSync(truncated, fs.readFileSync(path.join(tmp, "full.tar")).subarray(0, 1500));
    await expectUserError(
      loadArchive(dst, truncated),
      /is not a usable OCI archive: .*; nothing was loaded$/,
    );
    assert.equal(blobCount(dst), 0);
    assert.deepEqual((await dst.readIndex()).manifests, []);
  });

  it("fails every corrupt or truncated gzip archive with the reason, leaving nothing behind", async () => {
    const tarFile = path.join(tmp, "two.tar");
    await saveImages(src, ["app:1", "127.0.0.1:5000/team/multi:2"], tarFile);
    const gz = zlib.gzipSync(fs.readFileSync(tarFile));
    const flipped = (at: number) => Buffer.from(gz.map((b, i) => (i === at ? b ^ 0x10 : b)));
    const truncated = /its gzip data ends early \(after \d+ bytes\): the archive is truncated/;
    const cases: Array<[string, Buffer, RegExp]> = [
      ["cut at 10", gz.subarray(0, 10), truncated],
      ["cut at 100", gz.subarray(0, 100), truncated],
      ["cut in half", gz.subarray(0, gz.length >> 1), truncated],
      ["trailer cut", gz.subarray(0, gz.length - 4), truncated],
      ["header alone", gz.subarray(0, 10), truncated],
      ["trailing garbage", Buffer.concat([gz, Buffer.from("garbage\n")]), /garbage follows its gzip data/],
      ["bad CRC", flipped(gz.length - 8), /its gzip checksum \(CRC-32\) does not match the data/],
      ["bad length", flipped(gz.length - 2), /its gzip length field does not match the data/],
      ["flipped byte", flipped(gz.length >> 1), /gzip (checksum|data is corrupt)/],
    ];
    for (const [name, bytes, why] of cases) {
      const file = path.join(tmp, `${name.replace(/ /g, "-")}.tar.gz`);
      fs.writeFileSync(file, bytes);
      const err = await expectUserError(loadArchive(dst, file), /nothing was loaded$/);
      assert.ok(err.message.startsWith(`${file} is not a usable OCI archive: `), `${name}: ${err.message}`);
      assert.match(err.message, why, name);
      assert.equal(blobCount(dst), 0, name);
      assert.deepEqual(fs.readdirSync(dst.tmpDir()), [], name);
    }
    // A plain tar cut at a block boundary lacks the end marker: also truncated.
    const cut = path.join(tmp, "cut.tar");
    const plain = fs.readFileSync(tarFile);
    fs.writeFileSync(cut, plain.subarray(0, plain.length - 1024));
    await expectUserError(
      loadArchive(dst, cut),
      /without the tar end-of-archive marker: the archive is truncated/,
    );
    assert.deepEqual((await dst.readIndex()).manifests, []);
  });

  it("reads a named pipe; refuses a directory, /dev/zero, a pipe without writer and a non-string ref name", async () => {
    const file = path.join(tmp, "app.tar");
    await saveImages(src, ["app:1"], file);
    const fifo = path.join(tmp, "pipe");
    execFileSync("mkfifo", [fifo]);
    const writing = new Promise<void>((resolve, reject) =>
      fs.createReadStream(file).pipe(fs.createWriteStream(fifo)).on("finish", resolve).on("error", reject),
    );
    const r = await loadArchive(dst, fifo);
    await writing;
    assert.deepEqual(
      r.images.map((i) => i.ref),
      ["docker.io/library/app:1"],
    );
    await expectUserError(
      loadArchive(dst, fifo, { fifoWaitMs: 200 }),
      /^archive .*pipe is a named pipe, and no process wrote to it within 0\.2s; start the writer/,
    );
    await expectUserError(loadArchive(dst, tmp), /^archive .* is a directory; give the archive file/);
    await expectUserError(
      loadArchive(dst, "/dev/zero"),
      /^\/dev\/zero is not a usable OCI archive: its first tar block is all zeros/,
    );
    const entries = await entriesOf(fs.readFileSync(file));
    const index = indexOf(entries);
    (index.manifests[0]!.annotations as unknown as Record<string, unknown>)[Annotations.refName] = 42;
    const numeric = path.join(tmp, "numeric.tar");
    fs.writeFileSync(numeric, await withIndexJson(entries, index));
    const err = await expectUserError(loadArchive(dst, numeric), /nothing was loaded/);
    assert.deepEqual(err.problems, [
      `index.json entry 0 is not a valid descriptor (annotation ${Annotations.refName} is 42, not a string): ${JSON.stringify(index.manifests[0])}`,
    ]);
    assert.deepEqual(fs.readdirSync(dst.tmpDir()), []);
  });

  it("unsafeEntryName classifies names", () => {
    const table: Array<[string, string | undefined]> = [
      ["blobs/sha256/abc", undefined],
      ["./index.json", undefined],
      ["../x", "climbs out of the archive with .."],
      ["a/../../x", "climbs out of the archive with .."],
      ["/abs", "is an absolute path"],
      ["C:\\x", "is an absolute path"],
      ["a\0b", "contains a NUL byte"],
    ];
    for (const [name, want] of table) assert.equal(unsafeEntryName(name), want, name);
  });

  it("streams a large blob without holding it in memory", async function () {
    const big = crypto.randomBytes(1024 * 1024);
    // A real layer (load checks every layer's entries): one 24 MiB file.
    const parts: Buffer[] = [encodeHeader({ path: "big", type: "file", mode: 0o644, size: 24 * big.length })];
    for (let i = 0; i < 24; i++) parts.push(big);
    parts.push(TAR_END);
    const layer = await src.putBlob(Buffer.concat(parts), MediaTypes.layerTar);
    const cfg = await src.putJson(
      { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer.digest] } },
      MediaTypes.config,
    );
    const man = await src.putJson(
      { schemaVersion: 2, mediaType: MediaTypes.manifest, config: cfg, layers: [layer] },
      MediaTypes.manifest,
    );
    await src.setRef("big:1", man);
    const file = path.join(tmp, "big.tar");
    await saveImages(src, ["big:1"], file);
    const r = await loadArchive(dst, file);
    assert.equal(r.blobsAdded, 3);
    assert.equal(spawnSync("cmp", [src.blobPath(layer.digest), dst.blobPath(layer.digest)]).status, 0);
  });
});

import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { encodeHeader, padding, TAR_END } from "../../provider/core/image/tar";
import {
  GZIP_INFLATER,
  inventoryScript,
  materialiseSteps,
  receiveLayerScript,
  parseInventory,
  planMaterialise,
  receiveBlobScript,
  receiveTreeScript,
  TREE_CHANGED,
} from "../../provider/core/exec/node-layers";
import { overlaps, parseSubnet, pickSubnet, validatePrefix } from "../../provider/core/infra/local/net-plan";

const h = (c: string) => c.repeat(64);
const d = (c: string) => `sha256:${h(c)}`;

describe("distribute: node inventory and rootfs plan (pure)", () => {
  it("parses blob sizes, partial uploads, the rootfs marker and layers.json", () => {
    const inv = parseInventory(
      `12 ${h("a")}\n5 ${h("b")}.partial\n7 junk\nrootfs=yes\n==sealer-layers-json==\n{"layers":["${d("a")}"]}\n`,
    );
    assert.deepEqual([...inv.complete], [[h("a"), 12]]);
    assert.deepEqual([...inv.partial], [[h("b"), 5]]);
    assert.equal(inv.rootfsExists, true);
    assert.deepEqual(inv.materialised, [d("a")]);
    assert.equal(parseInventory(`rootfs=no\n==sealer-layers-json==\n{"lay`).materialised, undefined);
  });

  const inv = (layers: string[] | undefined, rootfsExists = true) => ({
    complete: new Map(),
    partial: new Map(),
    trees: new Set<string>(),
    cut: new Set<string>(),
    rootfsExists,
    ...(layers ? { materialised: layers } : {}),
  });
  for (const [name, cur, desired, rootfs, want] of [
    ["same layers", [d("a"), d("b")], [d("a"), d("b")], true, { kind: "none" }],
    // Never onto the existing rootfs: what hooks made there could redirect tar.
    ["layers added on top", [d("a")], [d("a"), d("b"), d("c")], true, { kind: "rebuild" }],
    ["middle layer changed", [d("a"), d("b"), d("c")], [d("a"), d("x"), d("c")], true, { kind: "rebuild" }],
    ["top layer removed", [d("a"), d("b")], [d("a")], true, { kind: "rebuild" }],
    ["never materialised", undefined, [d("a")], false, { kind: "rebuild" }],
    ["layers.json but rootfs gone", [d("a")], [d("a")], false, { kind: "rebuild" }],
  ] as const)
    it(`plans ${name}`, () =>
      assert.deepEqual(planMaterialise([...desired], inv(cur ? [...cur] : undefined, rootfs)), want));

  it("builds a fresh rootfs.new and keeps layers.json true at every cut", () => {
    const rm = { remove: ["x/y"], opaque: ["o"] };
    const reb = materialiseSteps("/r", "c", [d("a"), d("b")]);
    assert.deepEqual(
      reb.layers.map((l) => l.index),
      [0, 1],
    );
    assert.match(reb.prologue, /rm -rf \/r\/c\/rootfs\.new\nmkdir -p \/r\/c\/rootfs\.new/);
    assert.ok(!reb.prologue.includes("layers.json"), reb.prologue);
    const s1 = reb.layers[1]!.script(rm);
    assert.match(s1, /-C \/r\/c\/rootfs\.new /);
    // removals go first: they apply to the layers below
    assert.ok(s1.indexOf("find /r/c/rootfs.new/o") < s1.indexOf("rm -rf /r/c/rootfs.new/x/y"));
    assert.ok(s1.indexOf("rm -rf /r/c/rootfs.new/x/y") < s1.indexOf("tar -xf"));
    assert.ok(
      reb.epilogue.indexOf("rm -f /r/c/layers.json") < reb.epilogue.indexOf("mv /r/c/rootfs.new /r/c/rootfs"),
    );
  });

  it("resumes from the partial size and starts fresh at 0", () => {
    assert.match(receiveBlobScript("/var/lib/sealer", h("a"), 100, 40), /-eq 40 \]/);
    assert.match(receiveBlobScript("/var/lib/sealer", h("a"), 100, 0), new RegExp(`: > ${h("a")}\\.partial`));
  });
});

const tarOf = (files: Record<string, Buffer>) =>
  Buffer.concat([
    ...Object.entries(files).flatMap(([p, b]) => [
      encodeHeader({ path: p, type: "file", mode: 0o644, size: b.length }),
      b,
      padding(b.length),
    ]),
    TAR_END,
  ]);

/** One gzip member (RFC 1952) of `data` with the optional header fields asked for, FHCRC included. */
function gzipMember(
  data: Buffer,
  opt: { extra?: Buffer; name?: string; comment?: string; hcrc?: boolean },
): Buffer {
  const flg = (opt.hcrc ? 2 : 0) | (opt.extra ? 4 : 0) | (opt.name ? 8 : 0) | (opt.comment ? 16 : 0);
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, flg, 0, 0, 0, 0, 0, 255])];
  if (opt.extra) {
    const len = Buffer.alloc(2);
    len.writeUInt16LE(opt.extra.length);
    parts.push(len, opt.extra);
  }
  for (const s of [opt.name, opt.comment]) if (s) parts.push(Buffer.from(s + "\0", "latin1"));
  if (opt.hcrc) {
    const crc = Buffer.alloc(2);
    crc.writeUInt16LE(zlib.crc32(Buffer.concat(parts)) & 0xffff);
    parts.push(crc);
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data), 0);
  trailer.writeUInt32LE(data.length, 4);
  return Buffer.concat([...parts, zlib.deflateRawSync(data), trailer]);
}

for (const receiver of ["auto", "shell"] as const)
  describe(`distribute: layers kept as trees of their own (${receiver === "auto" ? "python3" : "sh pipeline"}), run here`, () => {
    let root: string;
    const lower = zlib.gzipSync(
      tarOf({
        "etc/a": Buffer.from("a"),
        gone: Buffer.from("lower"),
        "big.bin": crypto.randomBytes(200_000),
      }),
    );
    const upper = tarOf({ "etc/b": Buffer.from("b"), "etc/.wh.a": Buffer.alloc(0) });
    const hexOf = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
    const trees = () => path.join(root, "layers");
    const staging = () => path.join(root, "c", "rootfs.new");
    const receive = (layer: Buffer, gzip: boolean, input: Buffer = layer) =>
      spawnSync(
        "sh",
        ["-c", receiveTreeScript(root, { hex: hexOf(layer), size: layer.length, gzip }, receiver)],
        {
          input,
          encoding: "utf8",
        },
      );
    const compose = () => {
      const digests = [lower, upper].map((b) => `sha256:${hexOf(b)}`);
      const steps = materialiseSteps(root, "c", digests, new Set([digests[0]!]));
      const rms = [
        { remove: [], opaque: [] },
        { remove: ["etc/a", "gone"], opaque: [] },
      ];
      const script =
        steps.prologue + steps.layers.map((l, i) => l.script(rms[i]!, "tree")).join("") + steps.epilogue;
      return spawnSync("sh", ["-c", script], { encoding: "utf8" });
    };
    beforeEach(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-trees-"));
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("each byte written once: a tree per layer, no blob; the rootfs links the trees' files, removals applied between", () => {
      for (const [b, gz] of [
        [lower, true],
        [upper, false],
      ] as const) {
        const r = receive(b, gz);
        assert.equal(r.status, 0, r.stderr);
      }
      assert.ok(!fs.existsSync(path.join(root, "blobs")), "no blob store written");
      assert.deepEqual(
        fs.readdirSync(trees()).sort(),
        [lower, upper].flatMap((b) => [hexOf(b), `${hexOf(b)}.list`]).sort(),
      );
      const c = compose();
      assert.equal(c.status, 0, c.stderr);
      const rootfs = path.join(root, "c", "rootfs");
      assert.deepEqual(fs.readdirSync(path.join(rootfs, "etc")), ["b"]);
      assert.ok(!fs.existsSync(path.join(rootfs, "gone")));
      const big = path.join(rootfs, "big.bin");
      assert.equal(fs.statSync(big).size, 200_000);
      // The same inode as the tree's file: nothing copied.
      assert.equal(fs.statSync(big).ino, fs.statSync(path.join(trees(), hexOf(lower), "big.bin")).ino);
      // The inventory lists both layers as on the node.
      const inv = parseInventory(
        spawnSync("sh", ["-c", inventoryScript(root, "c")], { encoding: "utf8" }).stdout,
      );
      assert.deepEqual([...inv.trees].sort(), [hexOf(lower), hexOf(upper)].sort());
      assert.equal(inv.complete.size, 0);
    });

    it("a cut transfer leaves only its partial tree, as the mark; other bytes leave nothing", () => {
      const cut = receive(lower, true, lower.subarray(0, 50_000));
      assert.equal(cut.status, 91, cut.stderr);
      assert.deepEqual(fs.readdirSync(trees()), [`${hexOf(lower)}.partial`]);
      assert.equal(
        parseInventory(
          spawnSync("sh", ["-c", inventoryScript(root, "c")], { encoding: "utf8" }).stdout,
        ).cut.has(hexOf(lower)),
        true,
      );
      const other = Buffer.from(lower);
      other.writeUInt8(other.readUInt8(other.length - 20) ^ 1, other.length - 20);
      const bad = receive(lower, true, other);
      assert.equal(bad.status, 92, bad.stderr);
      assert.deepEqual(fs.existsSync(trees()) ? fs.readdirSync(trees()) : [], []);
    });

    it("a tree changed through the rootfs (a file written in place) is removed, and the rebuild says so", () => {
      assert.equal(receive(lower, true).status, 0);
      assert.equal(receive(upper, false).status, 0);
      assert.equal(compose().status, 0);
      // A script on the node appends to a rootfs file: the tree's file is the same inode.
      fs.appendFileSync(path.join(root, "c", "rootfs", "big.bin"), "x");
      const again = compose();
      assert.equal(again.status, TREE_CHANGED, again.stderr);
      assert.match(
        again.stderr,
        new RegExp(`sha256:${hexOf(lower)} on this node changed since it was received`),
      );
      assert.ok(!fs.existsSync(path.join(trees(), hexOf(lower))));
      assert.ok(!fs.existsSync(path.join(trees(), `${hexOf(lower)}.list`)));
      assert.ok(fs.existsSync(path.join(trees(), hexOf(upper))), "the other tree stays");
      assert.ok(fs.existsSync(staging()), "the staging tree is left for the next attempt to empty");
    });
  });

for (const receiver of ["auto", "shell"] as const)
  describe(`distribute: the one-pass receiver (${receiver === "auto" ? "python3" : "sh pipeline"}), run here`, () => {
    let root: string;
    const blob = zlib.gzipSync(
      tarOf({
        "big.bin": crypto.randomBytes(300_000),
        "etc/a": Buffer.from("a"),
        "etc/.wh.old": Buffer.alloc(0),
      }),
    );
    const rm = { remove: ["gone"], opaque: [] };
    /**
     * Runs the receiver with python3 reached through a wrapper that leaves a mark when the receiver
     * is run. `splitAt`: the bytes arrive in two writes, the second a moment later, so that the
     * receiver's first read ends there.
     */
    const run = (input: Buffer, layer: Buffer = blob, gzip = true, splitAt?: number) => {
      const hex = crypto.createHash("sha256").update(layer).digest("hex");
      const script = receiveLayerScript(root, "c", { hex, size: layer.length, gzip }, rm, receiver);
      const bin = path.join(root, "bin");
      fs.mkdirSync(bin, { recursive: true });
      const real = spawnSync("sh", ["-c", "command -v python3"], { encoding: "utf8" }).stdout.trim();
      fs.writeFileSync(
        path.join(bin, "python3"),
        `#!/bin/sh\ncase "$*" in *hashlib.sha256\\(\\)*) touch ${root}/ran-python ;; esac\nexec ${real} "$@"\n`,
        { mode: 0o755 },
      );
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };
      let r;
      if (splitAt === undefined) r = spawnSync("sh", ["-c", script], { input, encoding: "utf8", env });
      else {
        const file = path.join(root, "input");
        fs.writeFileSync(file, input);
        const feed = `{ head -c ${splitAt} ${file}; sleep 0.2; tail -c +${splitAt + 1} ${file}; }`;
        r = spawnSync("sh", ["-c", `${feed} | sh -c "$0"`, script], { encoding: "utf8", env });
      }
      assert.equal(fs.existsSync(path.join(root, "ran-python")), receiver === "auto", "which receiver ran");
      return r;
    };
    const hexOf = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
    const staging = () => path.join(root, "c", "rootfs.new");
    const blobs = () => path.join(root, "blobs/sha256");
    beforeEach(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-recv-"));
      fs.mkdirSync(staging(), { recursive: true });
      fs.writeFileSync(path.join(staging(), "gone"), "lower layer");
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it("hashes, keeps and extracts in one pass; removals go first; whiteout markers are not extracted", () => {
      const r = run(blob);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(staging(), "etc/a"), "utf8"), "a");
      assert.deepEqual(fs.readdirSync(path.join(staging(), "etc")), ["a"]);
      assert.equal(fs.statSync(path.join(staging(), "big.bin")).size, 300_000);
      assert.ok(!fs.existsSync(path.join(staging(), "gone")));
      assert.deepEqual(fs.readdirSync(blobs()), [hexOf(blob)]);
    });

    it("a cut transfer keeps the partial; it resumes at its byte into the store, and the layer is extracted from the verified blob", () => {
      const cut = run(blob.subarray(0, 100_000));
      assert.equal(cut.status, 91, cut.stderr);
      assert.match(cut.stderr, /short transfer of sha256:[a-f0-9]{64}: 100000 of \d+ bytes/);
      assert.equal(fs.statSync(path.join(blobs(), `${hexOf(blob)}.partial`)).size, 100_000);
      // What distributeLayers does next: the rest into the store (receiveBlobScript), then a fresh
      // staging tree with the layer extracted from its blob.
      const resumed = spawnSync("sh", ["-c", receiveBlobScript(root, hexOf(blob), blob.length, 100_000)], {
        input: blob.subarray(100_000),
        encoding: "utf8",
      });
      assert.equal(resumed.status, 0, resumed.stderr);
      const digest = `sha256:${hexOf(blob)}`;
      const steps = materialiseSteps(root, "c", [digest], new Set([digest]));
      assert.match(steps.layers[0]!.script(rm), /inflate < \S+ 2>\/dev\/null \| tar -xf - /);
      const x = spawnSync("sh", ["-c", steps.prologue + steps.layers[0]!.script(rm)], { encoding: "utf8" });
      assert.equal(x.status, 0, x.stderr);
      assert.equal(fs.statSync(path.join(staging(), "big.bin")).size, 300_000);
      assert.equal(fs.readFileSync(path.join(staging(), "etc/a"), "utf8"), "a");
      assert.deepEqual(fs.readdirSync(blobs()), [hexOf(blob)]);
    });

    it("a layer split over gzip members, or not compressed, with bytes after the tar's end", () => {
      const t = tarOf({ "m/one": crypto.randomBytes(70_000), "m/two": Buffer.from("two") });
      const members = Buffer.concat([
        zlib.gzipSync(t.subarray(0, 40_000)),
        zlib.gzipSync(t.subarray(40_000)),
      ]);
      let r = run(members, members);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(staging(), "m/two"), "utf8"), "two");
      assert.equal(fs.statSync(path.join(staging(), "m/one")).size, 70_000);
      // tar stops at the end-of-archive blocks; the 1 MiB after them is still hashed and kept.
      const plain = Buffer.concat([tarOf({ "p/x": Buffer.from("x") }), Buffer.alloc(1 << 20)]);
      fs.rmSync(path.join(root, "ran-python"), { force: true });
      r = run(plain, plain, false);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(staging(), "p/x"), "utf8"), "x");
      assert.equal(fs.statSync(path.join(blobs(), hexOf(plain))).size, plain.length);
    });

    it("gzip members with every optional header field, the bytes arriving split inside a header and inside a trailer", () => {
      const t = tarOf({ "f/one": crypto.randomBytes(50_000), "f/two": Buffer.from("two") });
      const m1 = gzipMember(t.subarray(0, 30_000), {
        extra: Buffer.from("X\0Y\0ab", "latin1"),
        name: "one.tar",
        comment: "c",
      });
      const m2 = gzipMember(t.subarray(30_000), { hcrc: true, name: "two" });
      const layer = Buffer.concat([m1, m2]);
      // 12: between FEXTRA's length and its data; m1.length - 3: in the first member's trailer.
      for (const cut of [12, m1.length - 3, m1.length + 5]) {
        fs.rmSync(staging(), { recursive: true, force: true });
        fs.mkdirSync(staging(), { recursive: true });
        const r = run(layer, layer, true, cut);
        assert.equal(r.status, 0, `split at ${cut}: ${r.stderr}`);
        assert.equal(fs.readFileSync(path.join(staging(), "f/two"), "utf8"), "two");
        assert.equal(fs.statSync(path.join(staging(), "f/one")).size, 50_000);
        assert.deepEqual(fs.readdirSync(blobs()), [hexOf(layer)]);
        fs.rmSync(path.join(blobs(), hexOf(layer)));
      }
    });

    // A byte of the deflate data, of the gzip trailer's CRC, of its length.
    for (const back of [20, 6, 2])
      it(`wrong bytes (${back} from the end): exit 92, the staging tree and the partial are removed`, () => {
        const bad = Buffer.from(blob);
        bad.writeUInt8(bad.readUInt8(bad.length - back) ^ 0xff, bad.length - back);
        fs.mkdirSync(staging(), { recursive: true });
        const r = run(bad);
        assert.equal(r.status, 92, r.stderr);
        assert.match(r.stderr, new RegExp(`digest mismatch for sha256:${hexOf(blob)}`));
        assert.doesNotMatch(r.stderr, /Traceback|zlib\.error/);
        assert.ok(!fs.existsSync(staging()));
        assert.deepEqual(fs.readdirSync(blobs()), []);
      });

    it("a blob that is not a tar: exit 94 with tar's words, the staging tree removed, the verified blob kept", () => {
      const junk = zlib.gzipSync(Buffer.from("not a tar archive at all\n".repeat(100)));
      const r = run(junk, junk);
      assert.equal(r.status, 94, r.stderr);
      assert.match(r.stderr, /tar: /);
      assert.match(r.stderr, new RegExp(`extracting sha256:${hexOf(junk)} failed`));
      assert.ok(!fs.existsSync(staging()));
      assert.deepEqual(fs.readdirSync(blobs()), [hexOf(junk)]);
    });
  });

describe("distribute: the python3 receiver's fallback", () => {
  it("a python3 that lacks a module it needs (exit 97, nothing read): the sh pipeline receives the layer", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-recv-"));
    try {
      const layer = zlib.gzipSync(tarOf({ "f/x": Buffer.from("x") }));
      const hex = crypto.createHash("sha256").update(layer).digest("hex");
      const bin = path.join(root, "bin");
      fs.mkdirSync(bin);
      fs.mkdirSync(path.join(root, "c", "rootfs.new"), { recursive: true });
      const real = spawnSync("sh", ["-c", "command -v python3"], { encoding: "utf8" }).stdout.trim();
      fs.writeFileSync(
        path.join(bin, "python3"),
        `#!/bin/sh\ncase "$*" in *hashlib.sha256\\(\\)*) exit 97 ;; esac\nexec ${real} "$@"\n`,
        { mode: 0o755 },
      );
      const script = receiveLayerScript(
        root,
        "c",
        { hex, size: layer.length, gzip: true },
        {
          remove: [],
          opaque: [],
        },
      );
      const r = spawnSync("sh", ["-c", script], {
        input: layer,
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(root, "c", "rootfs.new", "f/x"), "utf8"), "x");
      assert.deepEqual(fs.readdirSync(path.join(root, "blobs/sha256")), [hex]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("distribute: the gzip inflater of the sh pipeline", () => {
  it("inflates concatenated gzip members in turn, with python3's zlib or with gzip", () => {
    const members = Buffer.concat([
      zlib.gzipSync("first "),
      zlib.gzipSync(crypto.randomBytes(3 << 20)),
      zlib.gzipSync("last"),
    ]);
    const want = zlib.gunzipSync(members);
    for (const script of [GZIP_INFLATER.join("\n"), GZIP_INFLATER[0]!]) {
      const r = spawnSync("sh", ["-c", `${script}\ninflate`], { input: members, maxBuffer: 16 << 20 });
      assert.equal(r.status, 0, String(r.stderr));
      assert.ok(Buffer.compare(r.stdout, want) === 0, `${r.stdout.length} bytes, want ${want.length}`);
    }
  });
});

describe("local nodes: address plan (pure)", () => {
  it("accepts only /24 subnets and valid prefixes", () => {
    assert.deepEqual(parseSubnet("10.150.3.0/24"), { a: 10, b: 150, c: 3 });
    assert.equal(parseSubnet("10.150.3.0/16"), undefined);
    assert.equal(parseSubnet("10.300.3.0/24"), undefined);
    assert.deepEqual(validatePrefix("ok-1"), []);
    assert.equal(validatePrefix("thisistoolong1").length, 1);
  });
  it("detects overlaps and skips used subnets deterministically", () => {
    assert.equal(overlaps({ a: 10, b: 100, c: 1 }, ["10.100.0.0/16"]), true);
    assert.equal(overlaps({ a: 10, b: 101, c: 1 }, ["10.100.0.0/16", "192.168.1.5/32"]), false);
    const first = pickSubnet("abc", []);
    assert.equal(pickSubnet("abc", []), first);
    assert.notEqual(pickSubnet("abc", [first]), first);
    assert.match(first, /^10\.1\d\d\.\d+\.0\/24$/);
  });
});

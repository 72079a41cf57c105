/**
 * Layers must not write or delete outside the rootfs: the stack check (`checkLayerStack`), the
 * builder's unpacker (`materializeLayers`), `build` FROM such an image and `load` of one. Every
 * case keeps a real directory outside the rootfs with a victim file and asserts it is untouched.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { loadArchive, saveImages } from "../../provider/core/image/archive";
import { buildImage } from "../../provider/core/image/builder";
import { checkLayerStack, chainDigest } from "../../provider/core/image/layer-safety";
import { OciLayout } from "../../provider/core/image/layout";
import { materializeLayers } from "../../provider/core/image/materialize";
import { MediaTypes } from "../../provider/core/image/types";
import { dataPaths } from "../../provider/core/paths";
import {
  craftImage,
  craftLayer,
  type CraftEntry,
  type CraftedLayer,
  symlinkEscapeLayers,
} from "../harness/crafted-layers";

let tmp: string;
let layout: OciLayout;
let outside: string;

/** Every file under `dir` with its content ("" for dirs), to compare before/after. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) {
        out[r + "/"] = "";
        walk(r);
      } else
        out[r] = st.isSymbolicLink()
          ? `-> ${fs.readlinkSync(path.join(dir, r))}`
          : fs.readFileSync(path.join(dir, r), "utf8");
    }
  };
  walk("");
  return out;
}

const OUTSIDE_BEFORE = { victim: "precious", "sub/": "", "sub/keep": "keep" };

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-escape-"));
  layout = new OciLayout(path.join(tmp, "store"));
  outside = path.join(tmp, "outside");
  fs.mkdirSync(path.join(outside, "sub"), { recursive: true });
  fs.writeFileSync(path.join(outside, "victim"), "precious");
  fs.writeFileSync(path.join(outside, "sub/keep"), "keep");
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const layers = async (...ls: CraftEntry[][]): Promise<string[]> => {
  const out: string[] = [];
  for (const l of ls) out.push((await craftLayer(layout, l)).digest);
  return out;
};

/** Both unpack paths must refuse with the layer and entry named, and leave `outside` as it was. */
async function assertRefused(digests: string[], layerNo: number, entry: string): Promise<void> {
  const want = new RegExp(
    `layer ${layerNo} of ${digests.length} \\(sha256:[0-9a-f]{64}\\), entry "${entry.replace(/[.]/g, "\\.")}"`,
  );
  await assert.rejects(checkLayerStack(layout, digests), (err: Error) => {
    assert.match(err.message, want);
    assert.equal(err.name, "UserError");
    return true;
  });
  const rootfs = path.join(tmp, "rootfs");
  await assert.rejects(materializeLayers(layout, digests, rootfs), (err: Error) => {
    assert.match(err.message, want);
    return true;
  });
  assert.deepEqual(tree(outside), OUTSIDE_BEFORE);
}

describe("layer stack check: escapes through symlinks of lower layers", () => {
  const link = { name: "tree/evildir", type: "symlink" as const, linkname: "" };
  it("refuses a whiteout under a lower layer's symlink (layer 2 of 3)", async () => {
    const ds = (await symlinkEscapeLayers(layout, outside, "whiteout+file")).map((l) => l.digest);
    await assertRefused(ds, 2, "tree/evildir/.wh.victim");
  });
  it("refuses a file under a lower layer's symlink", async () => {
    const ds = await layers(
      [{ ...link, linkname: outside }],
      [{ name: "tree/evildir/pwned.txt", type: "file", data: "x" }],
    );
    await assertRefused(ds, 2, "tree/evildir/pwned.txt");
  });
  it("refuses a directory and its files under a symlink with a relative target that climbs out", async () => {
    const ds = await layers(
      [
        { name: "a/b/", type: "dir" },
        { name: "a/b/up", type: "symlink", linkname: "../../../outside" },
      ],
      [
        { name: "a/b/up/sub/", type: "dir" },
        { name: "a/b/up/sub/new", type: "file", data: "x" },
      ],
    );
    await assertRefused(ds, 2, "a/b/up/sub/");
  });
  it("refuses an opaque marker in a directory that is a lower symlink, and one below it", async () => {
    const ds = (await symlinkEscapeLayers(layout, outside, "opaque")).map((l) => l.digest);
    await assertRefused(ds, 2, "tree/evildir/.wh..wh..opq");
    const deeper = await layers(
      [{ ...link, linkname: outside }],
      [{ name: "tree/evildir/sub/.wh..wh..opq", type: "file" }],
    );
    await assertRefused(deeper, 2, "tree/evildir/sub/.wh..wh..opq");
  });
  it("refuses a hard link whose target lies under a symlink", async () => {
    const ds = (await symlinkEscapeLayers(layout, outside, "hardlink")).map((l) => l.digest);
    await assertRefused(ds, 2, "tree/grab");
  });
  it("refuses a hard link made under a symlink", async () => {
    const ds = await layers(
      [
        { ...link, linkname: outside },
        { name: "f", type: "file", data: "in" },
      ],
      [{ name: "tree/evildir/f2", type: "link", linkname: "f" }],
    );
    await assertRefused(ds, 2, "tree/evildir/f2");
  });
  it("refuses going through a hard link to a symlink (link(2) makes a second symlink)", async () => {
    const ds = await layers(
      [{ name: "s", type: "symlink", linkname: outside }],
      [{ name: "h", type: "link", linkname: "s" }],
      [{ name: "h/pwned", type: "file", data: "x" }],
    );
    await assertRefused(ds, 3, "h/pwned");
  });
  it("refuses within one layer too: a symlink then an entry through it", async () => {
    const ds = await layers([
      { ...link, linkname: outside },
      { name: "tree/evildir/pwned.txt", type: "file", data: "x" },
    ]);
    await assertRefused(ds, 1, "tree/evildir/pwned.txt");
  });
});

describe("layer stack check: names and link targets", () => {
  it("refuses '..' in an entry name", async () => {
    const ds = await layers([{ name: "a/../../outside/victim", type: "file", data: "x" }]);
    await assertRefused(ds, 1, "a/../../outside/victim");
  });
  it("refuses '..' in a hard-link target", async () => {
    const ds = await layers(
      [{ name: "f", type: "file" }],
      [{ name: "h", type: "link", linkname: "../outside/victim" }],
    );
    await assertRefused(ds, 2, "h");
  });
  it("refuses a whiteout of '.' or '..' (rm would refuse it on the node, or worse)", async () => {
    const ds = await layers([{ name: "d/", type: "dir" }], [{ name: "d/.wh..", type: "file" }]);
    await assertRefused(ds, 2, "d/.wh..");
  });
  it("refuses an absolute hard-link target", async () => {
    const ds = await layers([{ name: "h", type: "link", linkname: path.join(outside, "victim") }]);
    await assertRefused(ds, 1, "h");
  });
  it("refuses a global PAX header that renames later entries", async () => {
    // tar-stream cannot write a global header: patch a file header's type flag to 'g'.
    const pax = "path=outside/victim\n";
    const rec = `${pax.length + 3} ${pax}`;
    const pack = (await import("tar-stream")).pack();
    const chunks: Buffer[] = [];
    pack.on("data", (c: unknown) => chunks.push(c as Buffer));
    const done = new Promise<void>((r) => pack.on("end", () => r()));
    pack.entry({ name: "pax_global_header", size: rec.length, mtime: new Date(0) }, rec);
    pack.entry({ name: "harmless", size: 1, mtime: new Date(0) }, "x");
    pack.finalize();
    await done;
    const tar = Buffer.concat(chunks);
    tar[156] = "g".charCodeAt(0);
    tar.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i]!;
    tar.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
    const d = (await layout.putBlob(zlib.gzipSync(tar), MediaTypes.layerGzip)).digest;
    await assert.rejects(checkLayerStack(layout, [d]), /global PAX header before "harmless" sets path/);
  });
});

describe("layer stack check: what real images do passes, and is cached", () => {
  it("accepts symlinks pointing anywhere, a dir replacing a symlink, whiteouts of symlinks, opaque dirs and in-tree hard links", async () => {
    const ds = await layers(
      [
        { name: "etc/", type: "dir" },
        { name: "etc/a", type: "file", data: "a" },
        { name: "etc/abs", type: "symlink", linkname: outside },
        { name: "lib", type: "symlink", linkname: outside },
        { name: "opq/", type: "dir" },
        { name: "opq/old", type: "file", data: "old" },
      ],
      [
        { name: ".wh.lib", type: "file" },
        { name: "etc/.wh.abs", type: "file" },
        { name: "opq/.wh..wh..opq", type: "file" },
        { name: "opq/new", type: "file", data: "new" },
        { name: "etc/h", type: "link", linkname: "etc/a" },
      ],
      [
        { name: "etc/abs/", type: "dir" },
        { name: "etc/abs/x", type: "file", data: "x" },
      ],
    );
    const rm = await checkLayerStack(layout, ds);
    assert.deepEqual(rm, [
      { remove: [], opaque: [] },
      // etc/h links to a file of the layer below: this layer cannot be extracted on its own.
      { remove: ["lib", "etc/abs"], opaque: ["opq"], linksBelow: true },
      { remove: [], opaque: [] },
    ]);
    const rootfs = path.join(tmp, "rootfs");
    await materializeLayers(layout, ds, rootfs);
    assert.deepEqual(tree(rootfs), {
      "etc/": "",
      "etc/a": "a",
      "etc/abs/": "",
      "etc/abs/x": "x",
      "etc/h": "a",
      "opq/": "",
      "opq/new": "new",
    });
    assert.equal(fs.statSync(path.join(rootfs, "etc/h")).ino, fs.statSync(path.join(rootfs, "etc/a")).ino);
    assert.deepEqual(tree(outside), OUTSIDE_BEFORE);
  });

  it("an entry of another kind replaces what lies below (removed first); a hard link within its own layer stands alone", async () => {
    const ds = await layers(
      [
        { name: "f", type: "file", data: "file" },
        { name: "d/", type: "dir" },
        { name: "d/x", type: "file", data: "x" },
        { name: "s", type: "symlink", linkname: "f" },
      ],
      [
        { name: "f/", type: "dir" },
        { name: "f/y", type: "file", data: "y" },
        { name: "d", type: "file", data: "now a file" },
        { name: "s", type: "file", data: "now a file too" },
        { name: "own", type: "file", data: "o" },
        { name: "own2", type: "link", linkname: "own" },
      ],
    );
    const rm = await checkLayerStack(layout, ds);
    // A file over a symlink is replaced by tar and by a linked-in tree alike: nothing to remove.
    assert.deepEqual(rm, [
      { remove: [], opaque: [] },
      { remove: ["f", "d"], opaque: [] },
    ]);
    const rootfs = path.join(tmp, "rootfs-kinds");
    await materializeLayers(layout, ds, rootfs);
    assert.deepEqual(tree(rootfs), {
      d: "now a file",
      "f/": "",
      "f/y": "y",
      own: "o",
      own2: "o",
      s: "now a file too",
    });
  });

  it("tells the node to remove a lower symlink a directory entry replaces", async () => {
    const ds = await layers(
      [{ name: "d", type: "symlink", linkname: outside }],
      [
        { name: "d/", type: "dir" },
        { name: "d/f", type: "file" },
      ],
    );
    assert.deepEqual(await checkLayerStack(layout, ds), [
      { remove: [], opaque: [] },
      { remove: ["d"], opaque: [] },
    ]);
  });

  it("records the verdict by chain digest and each layer's entries, so a later check reads no blob", async () => {
    const ds = await layers([{ name: "a", type: "file" }], [{ name: ".wh.a", type: "file" }]);
    const first = await checkLayerStack(layout, ds);
    const files = fs.readdirSync(path.join(layout.root, "verdicts")).sort();
    assert.deepEqual(
      files,
      [`v3-${chainDigest(ds).slice(7)}.json`, ...ds.map((d) => `v3-layer-${d.slice(7)}.json`).sort()].sort(),
    );
    const again = JSON.parse(
      fs.readFileSync(path.join(layout.root, "verdicts", `v3-${chainDigest(ds).slice(7)}.json`), "utf8"),
    ) as { layers: unknown };
    assert.deepEqual(again.layers, first);
    // With the blobs gone, another order of the same layers (another chain) is still checked from
    // the recorded entries: ".wh.a" below "a" removes nothing, "a" stays.
    for (const d of ds) fs.rmSync(layout.blobPath(d));
    assert.notEqual(chainDigest(ds), chainDigest([...ds].reverse()));
    assert.deepEqual(await checkLayerStack(layout, [...ds].reverse()), [
      { remove: ["a"], opaque: [] },
      { remove: [], opaque: [] },
    ]);
  });
});

describe("build and load of an image whose layers escape", () => {
  it("build FROM it with only RUN true is refused before anything is unpacked; nothing outside changes", async () => {
    const home = path.join(tmp, "home");
    const store = new OciLayout(dataPaths.store(home));
    await store.init();
    const evil: CraftedLayer[] = await symlinkEscapeLayers(store, outside, "whiteout+file");
    await craftImage(store, "evil/base:1", evil);
    const ctx = path.join(tmp, "ctx");
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM evil/base:1\nRUN true\n");
    await assert.rejects(
      buildImage({ context: ctx, tag: "x/y:1", home, buildMode: "lite" }),
      (err: Error) => {
        assert.match(
          err.message,
          /Kubefile:1.*base image evil\/base:1.*layer 2 of 3 \(sha256:[0-9a-f]{64}\), entry "tree\/evildir\/\.wh\.victim"/s,
        );
        return true;
      },
    );
    assert.deepEqual(tree(outside), OUTSIDE_BEFORE);
  });

  it("load records what it checked once the load is in: the first run reads no layer again", async () => {
    const src = new OciLayout(path.join(tmp, "src-ok"));
    await src.init();
    const layers = [
      await craftLayer(src, [
        { name: "etc/", type: "dir" },
        { name: "etc/a", type: "file", data: "a" },
      ]),
      await craftLayer(src, [{ name: "etc/b", type: "file", data: "b" }]),
    ];
    await craftImage(src, "good/app:1", layers);
    const file = path.join(tmp, "good.tar");
    await saveImages(src, ["good/app:1"], file);
    const dest = new OciLayout(path.join(tmp, "dest-ok"));
    await loadArchive(dest, file);
    const recorded = fs.readdirSync(path.join(dest.root, "verdicts"));
    const hex = (d: string) => d.slice("sha256:".length);
    const digests = layers.map((l) => l.digest);
    assert.ok(
      recorded.some((f) => f.endsWith(`-${hex(chainDigest(digests))}.json`)),
      `the stack's verdict is recorded: ${recorded.join(", ")}`,
    );
    for (const d of digests)
      assert.ok(
        recorded.some((f) => f.endsWith(`-layer-${hex(d)}.json`)),
        `layer ${d} skeleton recorded`,
      );
    // The recorded verdict is the one a check returns.
    assert.deepEqual(
      (
        JSON.parse(
          fs.readFileSync(
            path.join(
              dest.root,
              "verdicts",
              recorded.find((f) => f.endsWith(`-${hex(chainDigest(digests))}.json`))!,
            ),
            "utf8",
          ),
        ) as { layers: unknown }
      ).layers,
      await checkLayerStack(dest, digests),
    );
  });

  it("load refuses it, naming layer and path, and loads nothing", async () => {
    const src = new OciLayout(path.join(tmp, "src"));
    await src.init();
    await craftImage(src, "evil/base:1", await symlinkEscapeLayers(src, outside, "whiteout+file"));
    const file = path.join(tmp, "evil.tar");
    await saveImages(src, ["evil/base:1"], file);
    const dest = new OciLayout(path.join(tmp, "dest"));
    await assert.rejects(loadArchive(dest, file), (err: Error) => {
      assert.match(
        err.message,
        /layer 2 of 3 \(sha256:[0-9a-f]{64}\), entry "tree\/evildir\/\.wh\.victim".*nothing was loaded/s,
      );
      return true;
    });
    assert.deepEqual((await dest.readIndex()).manifests, []);
    assert.equal(fs.readdirSync(path.join(dest.root, "blobs", "sha256")).length, 0);
    assert.ok(!fs.existsSync(path.join(dest.root, "verdicts")));
    assert.deepEqual(tree(outside), OUTSIDE_BEFORE);
  });
});

/**
 * The node blob GC script, run with sh on a data root laid out as nodes have it: clusters sharing
 * one blob store, each naming its layers in layers.json.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { blobGcScript, parseBlobGc } from "../../provider/core/exec/blob-gc";

const hex = (c: string): string => c.repeat(64);

describe("node blob GC (sh on a data root)", () => {
  let dr: string;
  const blobs = () => path.join(dr, "blobs", "sha256");
  const put = (name: string, ageMinutes: number) => {
    const f = path.join(blobs(), name);
    fs.writeFileSync(f, name);
    const t = new Date(Date.now() - ageMinutes * 60_000);
    fs.utimesSync(f, t, t);
  };
  const cluster = (name: string, layers?: string[]) => {
    fs.mkdirSync(path.join(dr, name, "rootfs"), { recursive: true });
    if (layers)
      fs.writeFileSync(
        path.join(dr, name, "layers.json"),
        JSON.stringify({ layers: layers.map((l) => `sha256:${l}`) }) + "\n",
      );
  };
  const gc = (self: string) =>
    parseBlobGc(execFileSync("sh", ["-c", blobGcScript(dr, self)], { encoding: "utf8" }));
  const left = () => fs.readdirSync(blobs()).sort();

  beforeEach(() => {
    dr = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-gc-"));
    fs.mkdirSync(blobs(), { recursive: true });
    for (const c of ["a", "b", "c"]) put(hex(c), 120);
    put(hex("d"), 0); // just arrived
    put(`${hex("e")}.partial`, 120);
    put(`${hex("f")}.sum.123`, 120);
  });
  afterEach(() => fs.rmSync(dr, { recursive: true, force: true }));

  it("removes blobs no cluster names; keeps another cluster's, recent ones while others share the host, partials", () => {
    cluster("one", [hex("a")]);
    cluster("two", [hex("b")]);
    const r = gc("one");
    assert.deepEqual(r.removed, [`sha256:${hex("c")}`]);
    assert.equal(r.removedBytes, 64);
    assert.deepEqual(r.recent, [`sha256:${hex("d")}`]);
    assert.equal(r.deferred, undefined);
    assert.deepEqual(left(), [hex("a"), hex("b"), hex("d"), `${hex("e")}.partial`, `${hex("f")}.sum.123`]);
  });

  it("with no other cluster on the host every unreferenced blob goes (the deleted cluster's own)", () => {
    cluster("one", [hex("a")]);
    fs.mkdirSync(path.join(dr, "relay", "inbox"), { recursive: true }); // the relay's, not a cluster
    const r = gc("one");
    assert.deepEqual(
      r.removed.sort(),
      [hex("b"), hex("c"), hex("d")].map((h) => `sha256:${h}`),
    );
    assert.deepEqual(left(), [hex("a"), `${hex("e")}.partial`, `${hex("f")}.sum.123`]);
    fs.rmSync(path.join(dr, "one"), { recursive: true });
    assert.deepEqual(gc("one").removed, [`sha256:${hex("a")}`]);
  });

  it("collects nothing while another cluster is mid-install (no layers.json, a rebuild, or its apply lock)", () => {
    cluster("one", [hex("a")]);
    cluster("two"); // distribute started, layers.json not written yet
    const r = gc("one");
    assert.match(r.deferred ?? "", /cluster two is being installed/);
    assert.deepEqual(r.removed, []);
    fs.writeFileSync(path.join(dr, "two", "layers.json"), JSON.stringify({ layers: [] }));
    fs.mkdirSync(path.join(dr, "two", "rootfs.new"));
    assert.match(gc("one").deferred ?? "", /cluster two/);
    fs.rmdirSync(path.join(dr, "two", "rootfs.new"));
    fs.mkdirSync(path.join(dr, "two", "apply.lock"));
    assert.match(gc("one").deferred ?? "", /cluster two/);
    assert.equal(left().length, 6);
  });

  it("one pass at a time: a held gc.lock defers; the pass releases its lock", () => {
    cluster("one", [hex("a")]);
    fs.mkdirSync(path.join(dr, "blobs", "gc.lock"));
    assert.match(gc("one").deferred ?? "", /another blob collection/);
    fs.rmdirSync(path.join(dr, "blobs", "gc.lock"));
    assert.equal(gc("one").removed.length, 3);
    assert.ok(!fs.existsSync(path.join(dr, "blobs", "gc.lock")));
  });

  it("extracted layer trees follow the same rule; what a cut receive left goes when no other cluster is there", () => {
    const trees = path.join(dr, "layers");
    const tree = (name: string, ageMinutes: number) => {
      fs.mkdirSync(path.join(trees, name, "etc"), { recursive: true });
      fs.writeFileSync(path.join(trees, name, "etc", "f"), "12345");
      fs.writeFileSync(path.join(trees, `${name}.list`), "digest\n");
      const t = new Date(Date.now() - ageMinutes * 60_000);
      fs.utimesSync(path.join(trees, `${name}.list`), t, t);
    };
    tree(hex("a"), 120);
    tree(hex("c"), 120);
    tree(hex("d"), 0);
    fs.mkdirSync(path.join(trees, `${hex("e")}.partial`), { recursive: true });
    cluster("one", [hex("a")]);
    cluster("two", [hex("b")]);
    const r = gc("one");
    assert.ok(r.removed.includes(`sha256:${hex("c")}`), JSON.stringify(r));
    assert.ok(r.recent.includes(`sha256:${hex("d")}`), JSON.stringify(r));
    // The layers/ directory is the store, not a cluster: it does not defer the pass.
    assert.equal(r.deferred, undefined);
    assert.deepEqual(fs.readdirSync(trees).sort(), [
      hex("a"),
      `${hex("a")}.list`,
      hex("d"),
      `${hex("d")}.list`,
      `${hex("e")}.partial`,
    ]);
    // Alone on the host: every unreferenced tree and the cut receive's leftovers go.
    fs.rmSync(path.join(dr, "two"), { recursive: true });
    gc("one");
    assert.deepEqual(fs.readdirSync(trees).sort(), [hex("a"), `${hex("a")}.list`]);
  });

  it("a data root with no blob store is done, not an error; a path with shell characters is quoted", () => {
    const odd = path.join(dr, "it's $HOME; here");
    const run = () => parseBlobGc(execFileSync("sh", ["-c", blobGcScript(odd, "x")], { encoding: "utf8" }));
    assert.deepEqual(run(), { removed: [], removedBytes: 0, recent: [] });
    fs.mkdirSync(path.join(odd, "blobs", "sha256"), { recursive: true });
    fs.writeFileSync(path.join(odd, "blobs", "sha256", hex("9")), "x");
    assert.deepEqual(run().removed, [`sha256:${hex("9")}`]);
    assert.equal(left().length, 6, "the other data root's store is untouched");
  });
});

import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setLogSink } from "../../provider/core/log";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { BuildCache } from "../../provider/core/image/build-cache";
import { imageFacts } from "../../provider/core/image/facts";
import {
  findImage,
  inspectImage,
  listImages,
  pruneStore,
  removeImages,
  resolveManifest,
  tagImage,
  takeLease,
} from "../../provider/core/image/store";
import { Annotations, Manifest, MediaTypes } from "../../provider/core/image/types";
import { packageRoot } from "../../provider/core/package-info";
import { cleanStaleTemp, ownedTempName, ownerAlive } from "../../provider/core/temp-owner";

let tmp: string;
let home: string;
let layout: OciLayout;
let restore: ReturnType<typeof setLogSink> | undefined;

function ctx(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, name);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

function blobsOnDisk(): Set<string> {
  return new Set(fs.readdirSync(path.join(home, "store", "blobs", "sha256")).map((h) => `sha256:${h}`));
}

describe("store verbs", () => {
  let a: Awaited<ReturnType<typeof buildImage>>;
  let b: Awaited<ReturnType<typeof buildImage>>;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "a2-store-"));
    home = path.join(tmp, "home");
    layout = new OciLayout(path.join(home, "store"));
    restore = setLogSink({ write: () => undefined });
    const shared = { "shared/s.txt": "shared content\n" };
    a = await buildImage({
      context: ctx("a", {
        ...shared,
        Kubefile: "FROM scratch\nCOPY shared shared\nCOPY only only\n",
        "only/a.txt": "only in a\n",
      }),
      tag: "team/a:1",
      home,
      buildMode: "lite",
    });
    b = await buildImage({
      context: ctx("b", {
        ...shared,
        Kubefile: "FROM scratch\nCOPY shared shared\nCOPY only only\n",
        "only/b.txt": "only in b, longer\n",
      }),
      tag: "team/b:1",
      home,
      buildMode: "lite",
    });
  });
  after(() => {
    if (restore) setLogSink(restore);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("lists images with name, tag, id, platforms and size", async () => {
    const list = await listImages(layout);
    assert.deepEqual(
      list.map((i) => [i.reference, i.name, i.tag, i.id, i.platforms]),
      [
        ["docker.io/team/a:1", "team/a", "1", a.digest.slice(7, 19), ["linux/amd64"]],
        ["docker.io/team/b:1", "team/b", "1", b.digest.slice(7, 19), ["linux/amd64"]],
      ],
    );
    const r = await resolveManifest(layout, "team/a:1");
    const expected = [a.digest, r.manifest.config.digest, ...r.manifest.layers.map((l) => l.digest)].reduce(
      (n, d) => n + fs.statSync(layout.blobPath(d)).size,
      0,
    );
    assert.equal(list[0]!.size, expected);
    assert.match(list[0]!.created ?? "", /^\d{4}-\d\d-\d\dT/);
  });

  it("tags, finds by id prefix, and refuses an ambiguous rmi by id without -f", async () => {
    assert.equal(
      await tagImage(layout, "team/a:1", "127.0.0.1:5000/team/a:copy"),
      "127.0.0.1:5000/team/a:copy",
    );
    assert.equal((await layout.resolve("127.0.0.1:5000/team/a:copy"))?.digest, a.digest);
    await assert.rejects(tagImage(layout, "team/none:1", "x:1"), {
      message: "image team/none:1 not found in the local store; see sealer images",
    });
    const id = a.digest.slice(7, 19);
    assert.deepEqual((await findImage(layout, id))?.refs, [
      "127.0.0.1:5000/team/a:copy",
      "docker.io/team/a:1",
    ]);
    await assert.rejects(removeImages(layout, [id]), {
      message: `${id} is referenced by 127.0.0.1:5000/team/a:copy, docker.io/team/a:1: remove them by name, or use -f to remove all`,
    });
    // One bad name: nothing is removed.
    await assert.rejects(removeImages(layout, ["127.0.0.1:5000/team/a:copy", "team/missing:1"]), {
      message: "image team/missing:1 not found in the local store",
    });
    assert.ok(await layout.resolve("127.0.0.1:5000/team/a:copy"));
    assert.deepEqual(await removeImages(layout, ["127.0.0.1:5000/team/a:copy"]), [
      "127.0.0.1:5000/team/a:copy",
    ]);
    assert.deepEqual((await findImage(layout, id))?.refs, ["docker.io/team/a:1"]);
  });

  it("prune deletes exactly the blobs no reference reaches, and keeps blobs of a live build lease", async () => {
    const ra = await resolveManifest(layout, "team/a:1");
    const rb = await resolveManifest(layout, "team/b:1");
    const reachableB = new Set([
      b.digest,
      rb.manifest.config.digest,
      ...rb.manifest.layers.map((l) => l.digest),
    ]);
    const onlyA = [a.digest, ra.manifest.config.digest, ...ra.manifest.layers.map((l) => l.digest)].filter(
      (d) => !reachableB.has(d),
    );
    assert.equal(onlyA.length, 3); // manifest, config, the "only" layer; the shared layer stays
    const sizes = onlyA.reduce((n, d) => n + fs.statSync(layout.blobPath(d)).size, 0);
    await tagImage(layout, "team/a:1", "team/a:2");
    assert.deepEqual(await removeImages(layout, [a.digest], true), [
      "docker.io/team/a:1",
      "docker.io/team/a:2",
    ]);
    // A build in progress (lease of this live process) protects what it wrote after it started.
    const lease = await takeLease(layout);
    await new Promise((r) => setTimeout(r, 1100));
    for (const d of onlyA) await lease.touch(d);
    assert.deepEqual(await pruneStore(layout), { blobs: 0, bytes: 0 });
    await lease.release();
    assert.deepEqual(await pruneStore(layout), { blobs: 3, bytes: sizes });
    assert.deepEqual([...blobsOnDisk()].sort(), [...reachableB].sort());
    assert.deepEqual(await pruneStore(layout), { blobs: 0, bytes: 0 });
    // The build cache forgets the layer whose blob went (a's "only" layer), and only that.
    const cache = new BuildCache(path.join(home, "build-cache"), layout);
    assert.equal(await cache.pruneMissing(), 1);
    assert.equal(await cache.pruneMissing(), 0);
    const info = await inspectImage(layout, "team/b:1");
    assert.equal(info.layers.length, 2);
    await assert.rejects(inspectImage(layout, "team/a:1"), {
      message: `image team/a:1 not found in the local store (${layout.root}); build it, or run sealer pull team/a:1`,
    });
  });

  it("image facts read layer paths from the tar when the annotation is missing (images built by others)", async () => {
    const r = await resolveManifest(layout, "team/b:1");
    const stripped: Manifest = {
      ...r.manifest,
      layers: r.manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    delete stripped.annotations;
    const d = await layout.putJson(stripped, MediaTypes.manifest);
    await layout.setRef("others/b:1", d);
    const facts = await imageFacts(layout, "others/b:1");
    const ours = await imageFacts(layout, "team/b:1");
    assert.deepEqual(facts.layers, ours.layers);
    assert.deepEqual(
      ours.layers.map((l) => l.paths),
      [["shared/s.txt"], ["only/b.txt"]],
    );
    assert.equal(facts.imageType, "app-installer");
    assert.deepEqual(facts.apps, []);
    assert.equal(r.manifest.layers[0]!.annotations?.[Annotations.layerPaths], '["shared/s.txt"]');
  });

  it("inspect reports an image's incomplete list and refuses a malformed one in plain words", async () => {
    const r = await resolveManifest(layout, "team/b:1");
    const withList = async (ref: string, value: string) => {
      const m: Manifest = {
        ...r.manifest,
        annotations: { ...r.manifest.annotations, [Annotations.incompleteImages]: value },
      };
      await layout.setRef(ref, await layout.putJson(m, MediaTypes.manifest));
    };
    await withList("others/listed:1", '["chart web: no such repo"]');
    assert.deepEqual((await inspectImage(layout, "others/listed:1")).incompleteImages, [
      "chart web: no such repo",
    ]);
    assert.equal((await inspectImage(layout, "team/b:1")).incompleteImages, undefined);
    const refused = {
      name: "UserError",
      message: `the image's ${Annotations.incompleteImages} annotation is not a JSON list of strings; rebuild the image`,
    };
    await withList("others/broken:1", "[not json");
    await assert.rejects(inspectImage(layout, "others/broken:1"), refused);
    await withList("others/numbers:1", "[1, 2]");
    await assert.rejects(inspectImage(layout, "others/numbers:1"), refused);
  });
});

describe("temp entries of killed processes", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-temp-owner-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("tells live owners from dead ones and from a reused pid", async () => {
    const mine = ownedTempName("build");
    const [, pid, start] = mine.split("-");
    assert.equal(pid, String(process.pid));
    // A process that has exited: spawnSync waited for it.
    const dead = spawnSync("true").pid as number;
    const names = {
      live: mine,
      liveOldFormat: `load-${process.pid}-abcdef012345`,
      dead: `build-${dead}-${start}-abcdef012345`,
      deadOldFormat: `blob-${dead}-abcdef012345`,
      // pid 1 lives, but it started long before this name says: its pid was reused.
      reused: `build-1-${Number(start) + 1}-abcdef012345`,
      other: "pull-0123abcd.partial",
    };
    assert.deepEqual(Object.fromEntries(Object.entries(names).map(([k, n]) => [k, ownerAlive(n)])), {
      live: true,
      liveOldFormat: true,
      dead: false,
      deadOldFormat: false,
      reused: false,
      other: undefined,
    });
    for (const n of Object.values(names)) {
      fs.mkdirSync(path.join(dir, n, "sub"), { recursive: true });
      fs.writeFileSync(path.join(dir, n, "sub", "f"), "12345");
    }
    assert.deepEqual(await cleanStaleTemp(dir), { entries: 3, bytes: 15 });
    assert.deepEqual(fs.readdirSync(dir).sort(), [names.live, names.liveOldFormat, names.other].sort());
  });

  for (const signal of ["SIGINT", "SIGKILL"] as const)
    it(`a build killed by ${signal} leaves nothing once ${signal === "SIGINT" ? "it exits" : "sealer prune ran"}`, async () => {
      const h = path.join(dir, "home");
      const context = path.join(dir, "ctx");
      fs.mkdirSync(path.join(context, "big"), { recursive: true });
      // Incompressible, so the layer takes a while to write: the kill lands in the middle.
      const chunk = crypto.randomBytes(1 << 20);
      const fd = fs.openSync(path.join(context, "big", "blob.bin"), "w");
      for (let i = 0; i < 150; i++) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
      fs.writeFileSync(path.join(context, "Kubefile"), "FROM scratch\nCOPY big big\n");
      const sealer = path.join(packageRoot(__dirname), "bin", "sealer.js");
      const env = { ...process.env, SEALER_HOME: h };
      const child = spawn(
        process.execPath,
        [sealer, "build", "--build-mode", "lite", "-t", "big:1", context],
        {
          env,
          stdio: "ignore",
        },
      );
      const exited = new Promise<string | null>((r) => child.on("exit", (_c, sig) => r(sig)));
      const tmpDirs = [path.join(h, "tmp"), path.join(h, "store", "tmp")];
      const used = () => tmpDirs.reduce((n, d) => n + (fs.existsSync(d) ? fs.readdirSync(d).length : 0), 0);
      // Wait until the build has its work directory, lease and a partly written layer.
      while (used() < 3 && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      assert.equal(child.exitCode, null, "the build ended before it could be interrupted");
      child.kill(signal);
      assert.equal(await exited, signal);
      if (signal === "SIGKILL") {
        assert.ok(used() >= 3, "SIGKILL cannot be caught: the leftovers are still there");
        const r = spawnSync(process.execPath, [sealer, "prune"], { env, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        assert.match(
          r.stdout,
          /work directory of killed builds removed|work directories of killed builds removed/,
        );
      }
      for (const d of tmpDirs) assert.deepEqual(fs.existsSync(d) ? fs.readdirSync(d) : [], [], d);
    });
});

import * as assert from "node:assert/strict";
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
});

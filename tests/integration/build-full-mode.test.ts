/**
 * Full build mode end to end: the builder runs the container-image cache on the manifests it
 * built, adds a final registry/ layer and lists the images in the manifest annotation; a
 * rebuild is all cache hits; a --no-cache rebuild with the source registry gone still gives the
 * same image (offline); lite mode stores no images.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { setLogSink } from "../../provider/core/log";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { inspectImage } from "../../provider/core/image/store";
import { pushImage } from "../../provider/core/registry/push";
import { makeTestImage, startRegistry, tempDir, TestRegistry } from "../harness/registry";

describe("integration: build in full mode caches container images into registry/", function () {
  this.timeout(120_000);
  let work: string;
  let src: TestRegistry | undefined;
  let restore: ReturnType<typeof setLogSink> | undefined;

  before(async () => {
    work = tempDir("a2-fullmode");
    restore = setLogSink({ write: () => undefined });
    src = await startRegistry();
    const seed = new OciLayout(path.join(work, "seed"));
    await makeTestImage(seed, `${src.host}/team/web:1`, { layers: [2048] });
    await pushImage(`${src.host}/team/web:1`, { store: seed, home: path.join(work, "seed-home") });
    const ctx = path.join(work, "ctx");
    fs.mkdirSync(path.join(ctx, "manifests"), { recursive: true });
    fs.writeFileSync(
      path.join(ctx, "manifests", "web.yaml"),
      [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata: { name: web }",
        "spec:",
        "  template:",
        "    spec:",
        "      containers:",
        `        - name: web`,
        `          image: ${src.host}/team/web:1`,
        "",
      ].join("\n"),
    );
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nCOPY manifests manifests\n");
  });
  after(async () => {
    if (restore) setLogSink(restore);
    await src?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("adds the registry/ layer and the annotation; rebuilds from cache, also offline", async () => {
    const home = path.join(work, "home");
    const ctx = path.join(work, "ctx");
    const host = src!.host;
    const r1 = await buildImage({ context: ctx, tag: "full:1", home });
    assert.equal(r1.layers.length, 2);
    assert.deepEqual(r1.layers[1]!.paths, ["registry/docker/registry/"]);
    assert.deepEqual(
      r1.containerImages.map((c) => c.image),
      [`${host}/team/web:1`],
    );
    const info = await inspectImage(new OciLayout(path.join(home, "store")), "full:1");
    assert.deepEqual(
      info.containerImages.map((c) => c.image),
      [`${host}/team/web:1`],
    );
    assert.equal(info.layers[1]!.instruction, "CACHE container images -> registry/");
    assert.equal(info.history.length, 2);

    const r2 = await buildImage({ context: ctx, tag: "full:1", home });
    assert.deepEqual([r2.builtLayers, r2.cachedLayers], [0, 2]);
    assert.equal(r2.digest, r1.digest);

    await src!.stop();
    src = undefined;
    const r3 = await buildImage({ context: ctx, tag: "full:1", home, noCache: true });
    assert.deepEqual([r3.builtLayers, r3.cachedLayers], [2, 0]);
    assert.equal(r3.digest, r1.digest);

    const lite = await buildImage({ context: ctx, tag: "lite:1", home, buildMode: "lite" });
    assert.equal(lite.layers.length, 1);
    assert.equal(lite.layers[0]!.digest, r1.layers[0]!.digest);
    assert.deepEqual(lite.containerImages, []);
  });
});

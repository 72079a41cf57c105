/**
 * Push and pull against a real docker-registry (distribution 2.8) on loopback over plain HTTP,
 * with skopeo as the independent client on the other side.
 */
import * as assert from "node:assert/strict";
import { OciLayout } from "../../provider/core/image/layout";
import { Index, Manifest, MediaTypes } from "../../provider/core/image/types";
import { pullImage } from "../../provider/core/registry/pull";
import { pushImage } from "../../provider/core/registry/push";
import {
  TestRegistry,
  makeTestImage,
  makeTestIndex,
  skopeo,
  startRegistry,
  useWorkDir,
} from "../harness/registry";

describe("registry push/pull (docker-registry, plain HTTP on loopback)", function () {
  this.timeout(120_000);
  let reg: TestRegistry;
  const work = useWorkDir("regtest");
  const home = () => work("home");
  const fast = () => ({ home: home(), minRetryMs: 20 });

  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });

  it("pushes an image skopeo accepts; a re-push sends zero blob bytes", async () => {
    const store = new OciLayout(work("s1"));
    const d = await makeTestImage(store, "team/app:1", { layers: [3000, 70_000] });
    const ref = `${reg.host}/team/app:1`;
    const first = await pushImage(ref, { ...fast(), store, source: "team/app:1" });
    assert.equal(first.digest, d.digest);
    assert.equal(first.blobsUploaded, 3);
    assert.ok(first.bytesUploaded > 70_000);
    const info = JSON.parse(skopeo(["inspect", "--tls-verify=false", `docker://${ref}`])) as {
      Digest: string;
      Layers: string[];
    };
    assert.equal(info.Digest, d.digest);
    const m = await store.readJson<Manifest>(d.digest);
    assert.deepEqual(
      info.Layers,
      m.layers.map((l) => l.digest),
    );
    // skopeo copies the whole image out (reads and verifies every blob we uploaded).
    skopeo(["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${work("skopeo-out")}:x`]);
    const again = await pushImage(ref, { ...fast(), store, source: "team/app:1" });
    assert.deepEqual([again.blobsUploaded, again.bytesUploaded, again.blobsSkipped], [0, 0, 3]);
  });

  it("pulls an image skopeo pushed, verifies it, and pulls nothing the second time", async () => {
    const src = new OciLayout(work("src"));
    const d = await makeTestImage(src, "x:1", { layers: [5000, 9000], docker: false });
    skopeo([
      "copy",
      "--dest-tls-verify=false",
      `oci:${src.root}:docker.io/library/x:1`,
      `docker://${reg.host}/other/thing:v2`,
    ]);
    const store = new OciLayout(work("s2"));
    const r = await pullImage(`${reg.host}/other/thing:v2`, { ...fast(), store });
    assert.equal(r.digest, d.digest);
    assert.equal(r.blobsDownloaded, 3);
    assert.equal((await store.resolve(`${reg.host}/other/thing:v2`))?.digest, d.digest);
    for (const l of (await store.readJson<Manifest>(d.digest)).layers)
      assert.ok(await store.hasBlob(l.digest));
    const r2 = await pullImage(`${reg.host}/other/thing:v2`, { ...fast(), store });
    assert.deepEqual([r2.blobsDownloaded, r2.blobsSkipped], [0, 3]);
    // The pulled store is itself a valid layout for skopeo.
    const info = JSON.parse(skopeo(["inspect", `oci:${store.root}:${reg.host}/other/thing:v2`])) as {
      Digest: string;
    };
    assert.equal(info.Digest, d.digest);
  });

  it("pulls Docker schema 2 manifests byte for byte", async () => {
    const src = new OciLayout(work("srcd"));
    const d = await makeTestImage(src, "d:1", { layers: [100], docker: true });
    await pushImage(`${reg.host}/docker/style:1`, { ...fast(), store: src, source: "d:1" });
    const raw = JSON.parse(
      skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/docker/style:1`]),
    ) as { mediaType: string };
    assert.equal(raw.mediaType, MediaTypes.dockerManifest);
    const store = new OciLayout(work("sd"));
    const r = await pullImage(`${reg.host}/docker/style:1`, { ...fast(), store });
    assert.equal(r.digest, d.digest);
    assert.equal(r.mediaType, MediaTypes.dockerManifest);
  });

  it("mounts blobs across repositories instead of uploading them", async () => {
    const store = new OciLayout(work("s3"));
    await makeTestImage(store, "m:1", { layers: [20_000, 20_000] });
    await pushImage(`${reg.host}/team/base:1`, { ...fast(), store, source: "m:1" });
    const r = await pushImage(`${reg.host}/team/copy:1`, { ...fast(), store, source: "m:1" });
    assert.equal(r.blobsMounted, 3);
    assert.equal(r.bytesUploaded, 0);
    skopeo(["inspect", "--tls-verify=false", `docker://${reg.host}/team/copy:1`]);
  });

  it("uploads big blobs in PATCH chunks", async () => {
    const store = new OciLayout(work("s4"));
    const d = await makeTestImage(store, "c:1", { layers: [300_000], gzipLevel: 0 });
    const r = await pushImage(`${reg.host}/chunked/img:1`, {
      ...fast(),
      store,
      source: "c:1",
      monolithicMax: 1000,
      chunkSize: 64 * 1024,
    });
    assert.equal(r.blobsUploaded, 2);
    skopeo([
      "copy",
      "--src-tls-verify=false",
      `docker://${reg.host}/chunked/img:1`,
      `oci:${work("chunk-out")}:x`,
    ]);
    const pulled = new OciLayout(work("s4b"));
    assert.equal(
      (await pullImage(`${reg.host}/chunked/img:1`, { ...fast(), store: pulled })).digest,
      d.digest,
    );
  });

  it("pushes and pulls a multi-platform index; --platform stores only that platform", async () => {
    const store = new OciLayout(work("s5"));
    const plats = [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
    ];
    const idx = await makeTestIndex(store, "multi:1", plats, { layers: [2000] });
    await pushImage(`${reg.host}/multi/img:1`, { ...fast(), store, source: "multi:1" });
    const raw = JSON.parse(
      skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/multi/img:1`]),
    ) as Index;
    assert.equal(raw.manifests.length, 2);
    const arm = new OciLayout(work("s5arm"));
    const r = await pullImage(`${reg.host}/multi/img:1`, { ...fast(), store: arm, platform: "linux/arm64" });
    assert.equal(r.digest, idx.digest);
    assert.deepEqual(r.platforms, ["linux/arm64/v8"]);
    const index = await arm.readJson<Index>(idx.digest);
    const [amd, armd] = [index.manifests[0]!, index.manifests[1]!];
    assert.equal(await arm.hasBlob(armd.digest), true);
    assert.equal(await arm.hasBlob(amd.digest), false);
    assert.equal(r.manifestDigest, armd.digest);
    const all = new OciLayout(work("s5all"));
    const r2 = await pullImage(`${reg.host}/multi/img:1`, { ...fast(), store: all });
    assert.deepEqual(r2.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert.equal(await all.hasBlob(amd.digest), true);
    await assert.rejects(
      pullImage(`${reg.host}/multi/img:1`, { ...fast(), store: all, platform: "linux/s390x" }),
      /has no linux\/s390x image; it offers: linux\/amd64, linux\/arm64\/v8/,
    );
    // Pushing the arm-only pull elsewhere is refused with the reason, not half done.
    await assert.rejects(
      pushImage(`${reg.host}/multi/partial:1`, { ...fast(), store: arm, source: `${reg.host}/multi/img:1` }),
      /incomplete in the local store.*pulled for one platform only/,
    );
  });

  it("pull by digest verifies it", async () => {
    const store = new OciLayout(work("s6"));
    const src = new OciLayout(work("s1"));
    const d = (await src.resolve("team/app:1"))!;
    const r = await pullImage(`${reg.host}/team/app@${d.digest}`, { ...fast(), store });
    assert.equal(r.digest, d.digest);
  });

  it("says which manifest is unknown", async () => {
    const store = new OciLayout(work("s7"));
    await assert.rejects(pullImage(`${reg.host}/team/app:2`, { ...fast(), store }), (err: Error) => {
      assert.equal(err.message, `manifest unknown: team/app:2 not found on ${reg.host}`);
      return true;
    });
    assert.deepEqual(await store.listRefs(), []);
    await assert.rejects(
      pushImage(`${reg.host}/team/app:3`, { ...fast(), store, source: "nope:1" }),
      /image nope:1 is not in the local store/,
    );
  });
});

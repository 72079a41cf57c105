/**
 * Container images discovered in a rootfs are pulled (build platform only) and written in
 * the registry's filesystem-storage layout; a stock docker-registry serving that directory
 * serves them (checked with skopeo); a rebuild pulls nothing and works with the source
 * registry gone; a missing image fails with its name and file:line, or with allowIncomplete is
 * returned as incomplete.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { OciLayout } from "../../provider/core/image/layout";
import { Index, Manifest } from "../../provider/core/image/types";
import { cacheContainerImages } from "../../provider/core/registry/image-cache";
import { pushImage } from "../../provider/core/registry/push";
import {
  TestRegistry,
  makeTestImage,
  makeTestIndex,
  skopeo,
  startRegistry,
  useWorkDir,
} from "../harness/registry";

function write(root: string, rel: string, text: string) {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

describe("container images cached inside the cluster image (docker-registry + skopeo)", function () {
  this.timeout(120_000);
  const work = useWorkDir("imgcache");
  let src: TestRegistry;
  let rootfs: string;
  const digests: Record<string, string> = {};
  let armIndex: Index;
  const amd64 = { os: "linux", architecture: "amd64" };
  const client = () => ({ home: work("home"), minRetryMs: 20, retries: 1 });
  /** Caches what `root` needs for linux/amd64 into `outDir`, with the shared pull cache. */
  const cache = (
    root: string,
    outDir: string,
    more: Partial<Parameters<typeof cacheContainerImages>[0]> = {},
  ) =>
    cacheContainerImages({
      rootfs: root,
      outDir,
      platform: amd64,
      cacheDir: work("cache"),
      client: client(),
      ...more,
    });

  before(async () => {
    src = await startRegistry();
    const store = new OciLayout(work("src-store"));
    for (const name of ["team/web:1", "team/init:1", "team/chart:2", "team/listed:3"]) {
      const d = await makeTestImage(store, name, { layers: [2000, 3000] });
      await pushImage(`${src.host}/${name}`, { ...client(), store, source: name });
      digests[name] = d.digest;
    }
    const idx = await makeTestIndex(store, "team/multi:1", [amd64, { os: "linux", architecture: "arm64" }], {
      layers: [4000],
    });
    await pushImage(`${src.host}/team/multi:1`, { ...client(), store, source: "team/multi:1" });
    armIndex = await store.readJson<Index>(idx.digest);

    rootfs = work("rootfs");
    write(
      rootfs,
      "manifests/app.yaml",
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - {name: init, image: "${src.host}/team/init:1"}
      containers:
        - name: web
          image: ${src.host}/team/web:1
          sidecarImage: ${src.host}/team/not-an-image:1
`,
    );
    write(rootfs, "charts/c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\nappVersion: '2'\n");
    write(
      rootfs,
      "charts/c/values.yaml",
      `image:\n  repository: ${src.host}/team/chart\n  tag: ""\nunused:\n  image: ${src.host}/team/values-only:9\n`,
    );
    write(
      rootfs,
      "charts/c/templates/deploy.yaml",
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}}
spec:
  template:
    spec:
      containers:
        - name: c
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
`,
    );
    write(
      rootfs,
      "manifests/imageList",
      `# extra images\n${src.host}/team/multi:1\n${src.host}/team/base-only:1   # in the base image\n`,
    );
  });
  after(async () => {
    await src?.stop();
  });

  const expected = () => [
    `${src.host}/team/init:1`,
    `${src.host}/team/web:1`,
    `${src.host}/team/chart:2`,
    `${src.host}/team/multi:1`,
  ];

  it("caches every needed image; a stock registry on that directory serves them", async () => {
    const extra = work("extra-list");
    fs.writeFileSync(extra, `${src.host}/team/listed:3\n`);
    const outDir = work("out1");
    const r = await cache(rootfs, outDir, {
      imageListFiles: [extra],
      baseImages: [{ image: `${src.host}/team/base-only:1` }],
    });
    assert.deepEqual(
      r.images.map((i) => i.image),
      [...expected(), `${src.host}/team/listed:3`],
    );
    assert.equal(r.pulled, 5);
    assert.equal(r.wrote, true);
    // Each entry records the manifest digest written into registry/ (the build platform's).
    for (const name of ["team/web:1", "team/init:1", "team/chart:2", "team/listed:3"])
      assert.equal(r.images.find((i) => i.image === `${src.host}/${name}`)?.digest, digests[name], name);
    const served = await startRegistry({ rootDir: outDir, readOnly: true });
    try {
      for (const name of ["team/web:1", "team/init:1", "team/chart:2", "team/listed:3"]) {
        const info = JSON.parse(
          skopeo(["inspect", "--tls-verify=false", `docker://${served.host}/${name}`]),
        ) as { Digest: string };
        assert.equal(info.Digest, digests[name], name);
      }
      // Only the build platform of the multi-platform image is stored, served under the tag.
      const raw = JSON.parse(
        skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${served.host}/team/multi:1`]),
      ) as Manifest;
      assert.equal(raw.layers.length, 1);
      const amdChild = armIndex.manifests.find((m) => m.platform?.architecture === "amd64")!;
      const armChild = armIndex.manifests.find((m) => m.platform?.architecture === "arm64")!;
      const info = JSON.parse(
        skopeo(["inspect", "--tls-verify=false", `docker://${served.host}/team/multi:1`]),
      ) as { Digest: string; Architecture: string };
      assert.deepEqual([info.Digest, info.Architecture], [amdChild.digest, "amd64"]);
      const blobsDir = path.join(outDir, "docker/registry/v2/blobs/sha256");
      assert.equal(
        fs.existsSync(path.join(blobsDir, armChild.digest.slice(7, 9), armChild.digest.slice(7))),
        false,
      );
      // skopeo can copy the whole image out of it (every blob readable and verified).
      skopeo([
        "copy",
        "--src-tls-verify=false",
        `docker://${served.host}/team/chart:2`,
        `oci:${work("copy-out")}:x`,
      ]);
    } finally {
      await served.stop();
    }
  });

  it("a missing image fails with its name and file:line; --ignored-image-list skips it", async () => {
    const bad = work("rootfs-bad");
    write(
      bad,
      "manifests/x.yaml",
      `kind: Pod\nspec:\n  containers:\n    - name: a\n      image: ${src.host}/team/missing:1\n`,
    );
    await assert.rejects(cache(bad, work("outbad")), (err: Error) => {
      assert.match(err.message, /^container images could not be cached for linux\/amd64/);
      assert.ok(
        err.message.includes(
          `${src.host}/team/missing:1 (referenced at manifests/x.yaml:5): manifest unknown: team/missing:1 not found on ${src.host}`,
        ),
        err.message,
      );
      return true;
    });
    const ign = work("ignore");
    fs.writeFileSync(ign, `${src.host}/team/missing:1\n`);
    const r = await cache(bad, work("outbad2"), {
      ignoredImageListFiles: [ign],
    });
    assert.deepEqual(r.images, []);
    assert.equal(r.wrote, false);
    // --allow-incomplete: the build goes on; what is missing is returned for the image metadata.
    const partial = await cache(bad, work("outbad3"), {
      allowIncomplete: true,
    });
    assert.deepEqual(partial.images, []);
    assert.equal(partial.incomplete.length, 1);
    assert.match(
      partial.incomplete[0]!,
      /team\/missing:1 \(referenced at manifests\/x\.yaml:5\): manifest unknown/,
    );
  });

  it("pulls through a mirror and keeps the original name; a mirror without the image fails naming both", async () => {
    const viaMirror = work("rootfs-mirror");
    write(
      viaMirror,
      "manifests/x.yaml",
      "kind: Pod\nspec:\n  containers:\n    - {name: a, image: docker.io/team/web:1}\n    - {name: b, image: quay.io/team/absent:1}\n",
    );
    const run = (mirrors: Record<string, string>, ignored?: string) =>
      cache(viaMirror, work(`out-mirror-${Object.keys(mirrors).length}-${ignored ? 1 : 0}`), {
        cacheDir: work("cache-mirror"),
        mirrors,
        ...(ignored ? { ignoredImageListFiles: [ignored] } : {}),
      });
    await assert.rejects(run({ "docker.io": src.host, "quay.io": `${src.host}/quay` }), (err: Error) => {
      assert.ok(
        err.message.includes(
          `quay.io/team/absent:1 (referenced at manifests/x.yaml:5) from mirror ${src.host}/quay/team/absent:1: manifest unknown`,
        ),
        err.message,
      );
      return true;
    });
    const ign = work("ignore-absent");
    fs.writeFileSync(ign, "quay.io/team/absent:1\n");
    const r = await run({ "docker.io": src.host }, ign);
    assert.deepEqual(
      r.images.map((i) => [i.image, i.digest]),
      [["docker.io/team/web:1", digests["team/web:1"]]],
    );
    const served = await startRegistry({ rootDir: work("out-mirror-1-1"), readOnly: true });
    try {
      const info = JSON.parse(
        skopeo(["inspect", "--tls-verify=false", `docker://${served.host}/team/web:1`]),
      ) as {
        Digest: string;
      };
      assert.equal(info.Digest, digests["team/web:1"]);
    } finally {
      await served.stop();
    }
  });

  it("a rebuild pulls nothing and works with the source registry stopped (offline)", async () => {
    await src.stop();
    const outDir = work("out2");
    const r = await cache(rootfs, outDir, {
      baseImages: [{ image: `${src.host}/team/base-only:1` }],
    });
    assert.equal(r.pulled, 0);
    assert.deepEqual(
      r.images.map((i) => i.image),
      expected(),
    );
    const served = await startRegistry({ rootDir: outDir, readOnly: true });
    try {
      const info = JSON.parse(
        skopeo(["inspect", "--tls-verify=false", `docker://${served.host}/team/web:1`]),
      ) as { Digest: string };
      assert.equal(info.Digest, digests["team/web:1"]);
    } finally {
      await served.stop();
    }
  });
});

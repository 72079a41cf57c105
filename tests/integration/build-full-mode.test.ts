/**
 * Full build mode end to end: the builder runs the container-image cache on the manifests it
 * built, adds a final registry/ layer and lists the images in the manifest annotation; a
 * rebuild is all cache hits; a --no-cache rebuild with the source registry gone still gives the
 * same image (offline); lite mode stores no images. Real public charts and manifests are built
 * through registry mirrors (a local docker-registry seeded with skopeo) without internet access;
 * a chart Helm cannot render fails the build unless --allow-incomplete.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { setLogSink } from "../../provider/core/log";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { materializeLayers } from "../../provider/core/image/materialize";
import { InspectResult, inspectImage } from "../../provider/core/image/store";
import { pushImage } from "../../provider/core/registry/push";
import {
  makeTestImage,
  repoRoot,
  skopeo,
  startRegistry,
  tempDir,
  TestRegistry,
  useWorkDir,
} from "../harness/registry";
import { runSealer } from "../harness/cli";

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

describe("integration: full build of real charts + manifests through registry mirrors (no internet)", function () {
  this.timeout(300_000);
  const work = useWorkDir("fullmirror");
  let mirror: TestRegistry;
  const home = () => work("home");
  const seeded: Record<string, string> = {};
  /** Original reference -> where the mirror holds it. */
  const images: Record<string, string> = {
    "docker.io/grafana/grafana:12.3.1": "hub/grafana/grafana:12.3.1",
    "docker.io/bats/bats:v1.4.1": "hub/bats/bats:v1.4.1",
    "docker.io/grafana/promtail:3.5.1": "hub/grafana/promtail:3.5.1",
    "docker.io/bitnami/redis:8.2.1-debian-12-r0": "hub/bitnami/redis:8.2.1-debian-12-r0",
    "registry.k8s.io/metrics-server/metrics-server:v0.8.1": "k8s/metrics-server/metrics-server:v0.8.1",
    "docker.io/library/nginx:1.27": "hub/library/nginx:1.27",
    "quay.io/acme/init:2": "quay/acme/init:2",
  };

  const sealer = (...args: string[]) => runSealer(home(), ...args);

  before(async () => {
    mirror = await startRegistry();
    // Seed the mirror with skopeo from an OCI layout made here: small images under mirror paths.
    const seed = new OciLayout(work("seed"));
    for (const [original, at] of Object.entries(images)) {
      const d = await makeTestImage(seed, original, { layers: [1500] });
      seeded[original] = d.digest;
      skopeo([
        "copy",
        "--dest-tls-verify=false",
        `oci:${work("seed")}:${original}`,
        `docker://${mirror.host}/${at}`,
      ]);
    }
    const ctx = work("ctx");
    for (const chart of ["grafana", "promtail", "redis", "metrics-server"])
      fs.cpSync(path.join(repoRoot(), "tests/fixtures/charts", chart), path.join(ctx, "charts", chart), {
        recursive: true,
      });
    fs.mkdirSync(path.join(ctx, "manifests"));
    fs.writeFileSync(
      path.join(ctx, "manifests", "web.yaml"),
      [
        "apiVersion: apps/v1",
        "kind: DaemonSet",
        "metadata: { name: web }",
        "spec:",
        "  template:",
        "    spec:",
        "      initContainers: [{ name: init, image: quay.io/acme/init:2 }]",
        "      containers:",
        "        - name: web",
        "          image: nginx:1.27",
        "",
      ].join("\n"),
    );
    fs.writeFileSync(
      path.join(ctx, "Kubefile"),
      "FROM scratch\nCOPY charts charts\nCOPY manifests manifests\n",
    );
    // quay.io's mirror comes from the data directory's mirrors.yaml, the others from flags.
    fs.mkdirSync(home(), { recursive: true });
    fs.writeFileSync(path.join(home(), "mirrors.yaml"), `mirrors:\n  quay.io: ${mirror.host}/quay\n`);
  });
  after(async () => {
    await mirror?.stop();
  });

  it("caches every image under its original name; inspect lists them with digests", async () => {
    const built = await sealer(
      "build",
      "-t",
      "mirrored:1",
      "--registry-mirror",
      `docker.io=${mirror.host}/hub`,
      "--registry-mirror",
      `registry.k8s.io=${mirror.host}/k8s`,
      work("ctx"),
    );
    assert.equal(built.code, 0, built.stderr);
    const listed = await sealer("inspect", "--images", "mirrored:1");
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(/\s+/).slice(0, 2));
    assert.deepEqual(
      rows.sort(),
      Object.keys(images)
        .map((i) => [i, seeded[i]!])
        .sort(),
    );
    // The image's registry/ serves each image by its original repository name.
    const layout = new OciLayout(path.join(home(), "store"));
    const info = await inspectImage(layout, "mirrored:1");
    assert.equal(info.incompleteImages, undefined);
    const root = work("unpacked");
    await materializeLayers(
      layout,
      info.layers.map((l) => l.digest),
      root,
    );
    const served = await startRegistry({ rootDir: path.join(root, "registry"), readOnly: true });
    try {
      for (const original of Object.keys(images)) {
        const repo = original.replace(/^[^/]+\//, "");
        const got = JSON.parse(
          skopeo(["inspect", "--tls-verify=false", `docker://${served.host}/${repo}`]),
        ) as {
          Digest: string;
        };
        assert.equal(got.Digest, seeded[original], original);
      }
    } finally {
      await served.stop();
    }
  });

  it("a chart Helm cannot render fails the build naming chart and reason; --allow-incomplete records it", async () => {
    const ctx = work("ctx-bad");
    fs.cpSync(work("ctx"), ctx, { recursive: true });
    fs.cpSync(
      path.join(repoRoot(), "tests/fixtures/charts/external-dns"),
      path.join(ctx, "charts", "external-dns"),
      {
        recursive: true,
      },
    );
    const mirrors = [
      "--registry-mirror",
      `docker.io=${mirror.host}/hub`,
      "--registry-mirror",
      `registry.k8s.io=${mirror.host}/k8s`,
    ];
    const failed = await sealer("build", "-t", "bad:1", ...mirrors, ctx);
    assert.equal(failed.code, 2, failed.stderr);
    assert.match(failed.stderr, /Helm chart charts\/external-dns: helm template failed: .*policy/);
    assert.match(failed.stderr, /--allow-incomplete/);
    assert.doesNotMatch(failed.stderr, /\n\s+at |TypeError|ENOENT/);
    assert.doesNotMatch((await sealer("images")).stdout, /\bbad\b/);

    const allowed = await sealer("build", "-t", "bad:1", "--allow-incomplete", ...mirrors, ctx);
    assert.equal(allowed.code, 0, allowed.stderr);
    const info = JSON.parse((await sealer("inspect", "bad:1")).stdout) as InspectResult;
    assert.equal(info.incompleteImages?.length, 1);
    assert.match(info.incompleteImages![0]!, /^Helm chart charts\/external-dns: helm template failed/);
    assert.equal(info.containerImages.length, Object.keys(images).length);
  });
});

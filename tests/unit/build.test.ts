import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { setLogSink } from "../../provider/core/log";
import { buildImage, BuildOptions, parseKeyValues } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { materializeLayers } from "../../provider/core/image/materialize";
import { detectAppType } from "../../provider/core/image/metadata";
import { inspectImage, resolveManifest } from "../../provider/core/image/store";
import { imageFacts } from "../../provider/core/image/facts";
import { Index, MediaTypes } from "../../provider/core/image/types";
import { forEachLayerEntry } from "../../provider/core/image/materialize";
import { packageRoot } from "../../provider/core/package-info";
import { makeTestCa } from "../harness/registry";

const repoRoot = (): string => packageRoot(__dirname);
const FIXTURE = path.join(repoRoot(), "tests", "fixtures", "build", "basic");

let tmp: string;
let logs: string[] = [];
let restoreSink: ReturnType<typeof setLogSink> | undefined;

function write(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
}

/** A fresh context dir with the given files. */
function context(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, name);
  fs.rmSync(dir, { recursive: true, force: true });
  write(dir, files);
  return dir;
}

function build(home: string, opts: Partial<BuildOptions> & { context: string }) {
  return buildImage({ tag: "test/app:1", buildMode: "lite", home: path.join(tmp, home), ...opts });
}

async function layerNames(layout: OciLayout, digest: string): Promise<string[]> {
  const names: string[] = [];
  await forEachLayerEntry(layout, digest, async (h) => {
    names.push(h.name);
  });
  return names;
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "a2-build-"));
  restoreSink = setLogSink({ write: (l) => logs.push(l) });
});
after(() => {
  if (restoreSink) setLogSink(restoreSink);
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  logs = [];
});

describe("build: metadata from the Kubefile", () => {
  it("builds the fixture into an image with the sealer extension, labels, env and one layer per COPY/APP/CNI", async () => {
    const r = await build("meta", { context: FIXTURE });
    const layout = new OciLayout(path.join(tmp, "meta", "store"));
    const info = await inspectImage(layout, "test/app:1");
    assert.equal(info.digest, r.digest);
    assert.equal(info.mediaType, MediaTypes.manifest);
    assert.deepEqual(
      info.layers.map((l) => [l.instruction, l.paths]),
      [
        ["COPY bin bin", ["bin/kubeadm"]],
        ["COPY etc etc", ["etc/kubeadm.yml"]],
        ["COPY arch/amd64/tool bin/tool", ["bin/tool"]],
        ["APP web local://manifests", ["application/apps/web/"]],
        ["APP chart local://charts/mychart", ["application/apps/chart/"]],
        ["APP setup local://scripts", ["application/apps/setup/"]],
        ["CNI calico local://manifests", ["application/apps/calico/"]],
      ],
    );
    assert.deepEqual(info.extension, {
      buildClient: {
        sealerVersion: `pulumi-sealer-${require(path.join(repoRoot(), "package.json")).version}`,
      },
      type: "kube-installer",
      applications: [
        { name: "calico", type: "kube", files: ["web.yaml"] },
        {
          name: "chart",
          type: "helm",
          files: ["Chart.yaml", "templates/deploy.yaml", "values.yaml"],
          env: { replicas: "2", version: "1.0" },
        },
        { name: "setup", type: "shell", files: ["install.sh"] },
        { name: "web", type: "kube", files: ["web.yaml"], cmds: ["kubectl apply -f web.yaml -n web"] },
      ],
      env: { REGION: "local" },
      launch: { app_names: ["web", "chart"] },
    });
    assert.deepEqual(info.labels, {
      "app.alpha.sealer.io/supported-kube-version": ">=1.20",
      "cluster.alpha.sealer.io/cluster-runtime-version": "v1.28.2",
      "cluster.alpha.sealer.io/container-runtime-type": "containerd",
      "cluster.alpha.sealer.io/kube-cni-calico": "true",
    });
    assert.equal(info.author, "team@example.com");
    assert.deepEqual(info.env, ["REGION=local"]);
    assert.deepEqual(info.containerImages, []);
    assert.equal(info.history.length, 15);
    assert.deepEqual(info.history[0], { created_by: "ARG VERSION=1.0", empty_layer: true });
    const config = await layout.readJson<{ created: string; history: Array<{ created: string }> }>(
      info.configDigest,
    );
    assert.equal(config.created, "1970-01-01T00:00:00Z");
    assert.ok(config.history.every((h) => h.created === "1970-01-01T00:00:00Z"));
    assert.deepEqual(
      r.layers.map((l) => l.digest),
      info.layers.map((l) => l.digest),
    );
    assert.ok(logs.includes("STEP 8/16: COPY arch/amd64/tool bin/tool"), logs.join("\n"));

    const facts = await imageFacts(layout, "test/app:1");
    assert.equal(facts.imageType, "kube-installer");
    assert.equal(facts.kubeVersion, "v1.28.2");
    assert.equal(facts.containerRuntime, "containerd");
    assert.deepEqual(facts.launch, { appNames: ["web", "chart"] });
    assert.deepEqual(facts.env, { REGION: "local" });
    assert.deepEqual(facts.platforms, ["linux/amd64"]);
    assert.equal(facts.manifestDigest, r.digest);
    assert.deepEqual(
      facts.layers.map((l) => l.paths[0]),
      [
        "bin/kubeadm",
        "etc/kubeadm.yml",
        "bin/tool",
        "application/apps/web/",
        "application/apps/chart/",
        "application/apps/setup/",
        "application/apps/calico/",
      ],
    );
  });

  const types: Array<[string[], string]> = [
    [["Chart.yaml", "values.yaml", "templates/a.yaml"], "helm"],
    [["mychart/Chart.yaml", "mychart/values.yaml", "mychart/templates/a.yaml"], "helm"],
    [["Chart.yaml", "templates/a.yaml"], "kube"],
    [["a.yaml", "b/c.yml"], "kube"],
    [["a.sh", "b.sh"], "shell"],
    [["a.sh", "b.yaml"], "other"],
    [["README"], "other"],
    [[], "other"],
  ];
  for (const [files, want] of types)
    it(`detects app type ${want} for ${JSON.stringify(files)}`, () =>
      assert.equal(detectAppType(files), want));

  it("is app-installer without bin/kubeadm, and a RUN deleting bin/kubeadm makes it app-installer again", async () => {
    const ctx = context("noadm", { Kubefile: "FROM scratch\nCOPY m manifests\n", "m/a.yaml": "a: 1\n" });
    const r = await build("noadm", { context: ctx });
    assert.equal(r.extension.type, "app-installer");
    const ctx2 = context("rmadm", {
      Kubefile: "FROM scratch\nCOPY bin bin\nRUN rm bin/kubeadm\n",
      "bin/kubeadm": "x",
    });
    const r2 = await build("rmadm", { context: ctx2 });
    assert.equal(r2.extension.type, "app-installer");
    const again = await build("rmadm", { context: ctx2 });
    assert.equal(again.cachedLayers, 2);
    assert.equal(again.digest, r2.digest);
  });
});

describe("build: reproducibility", () => {
  it("gives the identical manifest digest in another data dir, from another path, with touched files and other permissions", async () => {
    const a = path.join(tmp, "repro-a");
    const b = path.join(tmp, "elsewhere", "repro-b");
    fs.cpSync(FIXTURE, a, { recursive: true });
    fs.cpSync(FIXTURE, b, { recursive: true });
    const later = new Date(Date.now() + 3600_000);
    for (const f of ["etc/kubeadm.yml", "manifests/web.yaml", "charts/mychart/values.yaml"])
      fs.utimesSync(path.join(b, f), later, later);
    fs.chmodSync(path.join(b, "etc/kubeadm.yml"), 0o600);
    fs.chmodSync(path.join(b, "bin/kubeadm"), 0o700);
    const r1 = await build("repro-home-1", { context: a });
    const r2 = await build("repro-home-2", { context: b, tag: "other/name:2" });
    assert.equal(r2.digest, r1.digest);
    assert.deepEqual(r2.layers, r1.layers);
    assert.equal(r1.builtLayers, 7);
    assert.equal(r2.builtLayers, 7);
  });
});

describe("build: cache", () => {
  it("rebuilds nothing when nothing changed, only the changed layer and later ones after an edit, everything with noCache", async () => {
    const ctx = context("cache", {
      Kubefile: "FROM scratch\nCOPY one one\nCOPY two two\nCOPY three three\nRUN echo ran >> ran.log\n",
      "one/a": "1",
      "two/b": "2",
      "three/c": "3",
    });
    const r1 = await build("cache-home", { context: ctx });
    assert.deepEqual([r1.builtLayers, r1.cachedLayers], [4, 0]);

    const r2 = await build("cache-home", { context: ctx });
    assert.deepEqual([r2.builtLayers, r2.cachedLayers], [0, 4]);
    assert.equal(r2.digest, r1.digest);
    assert.ok(logs.includes("STEP 3/5: COPY two two (cached)"), logs.join("\n"));

    // Touching without changing content is still a hit (keys are on content).
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(ctx, "two/b"), later, later);
    const r3 = await build("cache-home", { context: ctx });
    assert.deepEqual([r3.builtLayers, r3.cachedLayers], [0, 4]);

    fs.writeFileSync(path.join(ctx, "two/b"), "2 changed");
    const r4 = await build("cache-home", { context: ctx });
    assert.deepEqual([r4.builtLayers, r4.cachedLayers], [3, 1]);
    assert.notEqual(r4.digest, r1.digest);
    assert.equal(r4.layers[0]!.digest, r1.layers[0]!.digest);
    assert.notEqual(r4.layers[1]!.digest, r1.layers[1]!.digest);
    // Rebuilt because its parent key changed, but the same content gives the same blob.
    assert.equal(r4.layers[2]!.digest, r1.layers[2]!.digest);

    const r5 = await build("cache-home", { context: ctx, noCache: true });
    assert.deepEqual([r5.builtLayers, r5.cachedLayers], [4, 0]);
    assert.equal(r5.digest, r4.digest);
  });

  it("keys RUN on the ARG values it sees", async () => {
    const ctx = context("runarg", { Kubefile: "FROM scratch\nARG V=1\nRUN echo $V > v.txt\n" });
    const r1 = await build("runarg-home", { context: ctx });
    const r2 = await build("runarg-home", { context: ctx });
    const r3 = await build("runarg-home", { context: ctx, buildArgs: { V: "2" } });
    assert.deepEqual([r1.builtLayers, r2.builtLayers, r3.builtLayers], [1, 0, 1]);
    assert.notEqual(r3.layers[0]!.digest, r1.layers[0]!.digest);
  });
});

describe("build: RUN and whiteouts", () => {
  it("turns deletions into whiteouts and a replaced dir into an opaque dir; materialising applies them", async () => {
    const base = context("wh-base", {
      Kubefile: "FROM scratch\nCOPY files /\n",
      "files/keep.txt": "keep",
      "files/gone.txt": "gone",
      "files/d/old.txt": "old",
      "files/e/x/y.txt": "y",
    });
    await build("wh-home", { context: base, tag: "base:1" });
    const child = context("wh-child", {
      Kubefile:
        "FROM base:1\nRUN rm gone.txt && rm -rf d && mkdir d && echo new > d/new.txt && rm -r e/x && echo hi > hello.txt && test -x bin/tool || true\n",
    });
    const r = await build("wh-home", { context: child, tag: "child:1" });
    const layout = new OciLayout(path.join(tmp, "wh-home", "store"));
    assert.equal(r.layers.length, 2);
    const names = await layerNames(layout, r.layers[1]!.digest);
    assert.deepEqual(names, [
      ".wh.gone.txt",
      "d/",
      "d/.wh..wh..opq",
      "d/new.txt",
      "e/",
      "e/.wh.x",
      "hello.txt",
    ]);
    assert.deepEqual(r.layers[1]!.paths, ["d/", "e/x", "gone.txt", "hello.txt"]);
    const out = path.join(tmp, "wh-out");
    await materializeLayers(
      layout,
      r.layers.map((l) => l.digest),
      out,
    );
    const list = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) =>
          e.isDirectory()
            ? [e.name + "/", ...list(path.join(dir, e.name)).map((c) => `${e.name}/${c}`)]
            : [e.name],
        )
        .sort();
    assert.deepEqual(list(out), ["d/", "d/new.txt", "e/", "hello.txt", "keep.txt"]);
    assert.equal(fs.readFileSync(path.join(out, "d/new.txt"), "utf8"), "new\n");
  });

  it("runs with cwd = rootfs, rootfs/bin on PATH (after the host's) and ARG/ENV and ARCH in the environment", async () => {
    const ctx = context("runenv", {
      Kubefile:
        'FROM scratch\nCOPY bin bin\nARG A=from-arg\nENV E=from-env\nRUN mytool > out.txt && echo "$A $E $(basename $(pwd)) ${ARCH}" >> out.txt\n',
      "bin/mytool": "#!/bin/sh\necho mytool ran\n",
    });
    fs.chmodSync(path.join(ctx, "bin/mytool"), 0o755);
    const r = await build("runenv-home", { context: ctx });
    const layout = new OciLayout(path.join(tmp, "runenv-home", "store"));
    const out = path.join(tmp, "runenv-out");
    await materializeLayers(
      layout,
      r.layers.map((l) => l.digest),
      out,
    );
    assert.equal(
      fs.readFileSync(path.join(out, "out.txt"), "utf8"),
      "mytool ran\nfrom-arg from-env rootfs-amd64 amd64\n",
    );
  });

  it("a failing RUN leaves the store's index.json unchanged and no temp dirs", async () => {
    const ok = context("fail-ok", { Kubefile: "FROM scratch\nCOPY a a\n", a: "a" });
    await build("fail-home", { context: ok });
    const indexFile = path.join(tmp, "fail-home", "store", "index.json");
    const before = fs.readFileSync(indexFile, "utf8");
    const bad = context("fail-bad", {
      Kubefile: "FROM scratch\nCOPY a a\nRUN echo partial > p.txt; echo boom >&2; exit 3\n",
      a: "changed",
    });
    await assert.rejects(build("fail-home", { context: bad }), (err: Error) => {
      assert.equal(
        err.message,
        `${path.relative(process.cwd(), path.join(bad, "Kubefile"))}:3: RUN echo partial > p.txt; echo boom >&2; exit 3 exited with code 3; last output:\nboom`,
      );
      return true;
    });
    assert.equal(fs.readFileSync(indexFile, "utf8"), before);
    assert.deepEqual(fs.readdirSync(path.join(tmp, "fail-home", "tmp")), []);
    assert.deepEqual(fs.readdirSync(path.join(tmp, "fail-home", "store", "tmp")), []);
  });
});

describe("build: FROM a local image", () => {
  it("inherits layers, labels, env, apps and CMD lines but not LAUNCH/CMDS; re-declaring an app replaces its dir", async () => {
    const base = context("inh-base", {
      Kubefile: [
        "FROM scratch",
        "LABEL tier=base",
        "ENV A=1 B=base",
        "COPY bin bin",
        "APP web local://web",
        "APP old local://old",
        "CMD echo base-cmd",
      ].join("\n"),
      "bin/kubeadm": "#!/bin/sh\n",
      "web/a.yaml": "a: 1\n",
      "old/x.sh": "echo old\n",
    });
    const rb = await build("inh-home", { context: base, tag: "base:1" });
    assert.equal(rb.extension.type, "kube-installer");
    const child = context("inh-child", {
      Kubefile: [
        "FROM base:1",
        "ENV B=child",
        "APP old local://new",
        "CMD echo child-cmd",
        "APPENV web k=v",
      ].join("\n"),
      "new/y.yaml": "y: 1\n",
    });
    const rc = await build("inh-home", { context: child, tag: "child:1" });
    assert.deepEqual(rc.layers.slice(0, 3), rb.layers);
    assert.equal(rc.layers.length, 4);
    const layout = new OciLayout(path.join(tmp, "inh-home", "store"));
    const info = await inspectImage(layout, "child:1");
    assert.deepEqual(info.labels, { tier: "base" });
    assert.deepEqual(info.env, ["A=1", "B=child"]);
    assert.deepEqual(info.extension, {
      buildClient: rc.extension.buildClient,
      type: "kube-installer",
      applications: [
        { name: "old", type: "kube", files: ["y.yaml"] },
        { name: "web", type: "kube", files: ["a.yaml"], env: { k: "v" } },
      ],
      env: { A: "1", B: "child" },
      launch: {},
      legacyCmds: ["echo base-cmd", "echo child-cmd"],
    });
    assert.deepEqual(await layerNames(layout, rc.layers[3]!.digest), [
      "application/",
      "application/apps/",
      "application/apps/old/",
      "application/apps/old/.wh..wh..opq",
      "application/apps/old/y.yaml",
    ]);
    const out = path.join(tmp, "inh-out");
    await materializeLayers(
      layout,
      rc.layers.map((l) => l.digest),
      out,
    );
    assert.deepEqual(fs.readdirSync(path.join(out, "application/apps/old")), ["y.yaml"]);

    const launchBase = context("inh-launch", {
      Kubefile: 'FROM scratch\nAPP web local://web\nLAUNCH ["web"]\n',
      "web/a.yaml": "a: 1\n",
    });
    await build("inh-home", { context: launchBase, tag: "launcher:1" });
    const child2 = context("inh-child2", { Kubefile: "FROM launcher:1\nENV X=1\n" });
    const r2 = await build("inh-home", { context: child2, tag: "child:2" });
    assert.deepEqual(r2.extension.launch, {});
    assert.deepEqual(
      r2.extension.applications.map((a) => a.name),
      ["web"],
    );
  });

  it("pulls a base image that is not in the store, naming the FROM line when that fails", async () => {
    // A loopback registry that knows no image: the pull fails at once with its answer.
    const registry = http.createServer((req, res) => {
      if (req.url === "/v2/") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
    });
    await new Promise<void>((r) => registry.listen(0, "127.0.0.1", r));
    const port = (registry.address() as AddressInfo).port;
    try {
      const ctx = context("nobase", { Kubefile: `FROM 127.0.0.1:${port}/none/such:1\nCOPY a a\n`, a: "a" });
      const indexBefore = fs.existsSync(path.join(tmp, "nobase-home", "store", "index.json"));
      await assert.rejects(build("nobase-home", { context: ctx }), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`Kubefile:1: pulling base image 127\\.0\\.0\\.1:${port}/none/such:1: .*not found`),
        );
        return true;
      });
      assert.equal(indexBefore, false);
    } finally {
      await new Promise<void>((r) => registry.close(() => r()));
    }
  });
});

describe("build: APP from a URL and multi-platform", () => {
  let server: https.Server;
  let port: number;
  let caFile: string;
  before(async () => {
    const tls = makeTestCa(path.join(tmp, "tls"));
    caFile = tls.caFile;
    server = https.createServer(
      { key: fs.readFileSync(tls.keyFile), cert: fs.readFileSync(tls.certFile) },
      (req, res) => {
        if (req.url === "/files/app.yaml") {
          res.writeHead(200, { "content-type": "text/yaml" });
          res.end("kind: ConfigMap\n");
        } else if (req.url === "/moved.yaml") {
          res.writeHead(302, { location: "/files/app.yaml" });
          res.end();
        } else {
          res.writeHead(404);
          res.end();
        }
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it("downloads an https APP source (with the given CA) into application/apps/<name>/", async () => {
    const ctx = context("url", {
      Kubefile: `FROM scratch\nAPP remote https://127.0.0.1:${port}/files/app.yaml https://127.0.0.1:${port}/moved.yaml\n`,
    });
    await assert.rejects(
      build("url-home", { context: ctx }),
      /Kubefile:2: downloading https:\/\/127\.0\.0\.1:\d+\/files\/app\.yaml failed: unable to verify the first certificate \(pass the issuing CA with --ca-file\)$/,
    );
    const r = await build("url-home", { context: ctx, caFile });
    assert.deepEqual(r.extension.applications, [
      { name: "remote", type: "kube", files: ["app.yaml", "moved.yaml"] },
    ]);
    const out = path.join(tmp, "url-out");
    await materializeLayers(
      new OciLayout(path.join(tmp, "url-home", "store")),
      r.layers.map((l) => l.digest),
      out,
    );
    assert.equal(
      fs.readFileSync(path.join(out, "application/apps/remote/app.yaml"), "utf8"),
      "kind: ConfigMap\n",
    );
    assert.equal(
      fs.readFileSync(path.join(out, "application/apps/remote/moved.yaml"), "utf8"),
      "kind: ConfigMap\n",
    );
    const bad = context("url-bad", {
      Kubefile: `FROM scratch\nAPP remote https://127.0.0.1:${port}/missing.yaml\n`,
    });
    await assert.rejects(
      build("url-home", { context: bad, caFile }),
      /Kubefile:2: downloading https:\/\/127\.0\.0\.1:\d+\/missing\.yaml failed: HTTP 404$/,
    );
  });

  it("builds one manifest per platform with ${ARCH} substituted, under an OCI index", async () => {
    const r = await build("multi-home", { context: FIXTURE, platforms: ["linux/amd64", "linux/arm64"] });
    const layout = new OciLayout(path.join(tmp, "multi-home", "store"));
    assert.equal(r.mediaType, MediaTypes.index);
    const index = await layout.readJson<Index>(r.digest);
    assert.deepEqual(
      index.manifests.map((m) => m.platform),
      [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ],
    );
    const arm = await resolveManifest(layout, "test/app:1", "linux/arm64");
    const amd = await resolveManifest(layout, "test/app:1", "linux/amd64");
    assert.equal(arm.config.architecture, "arm64");
    assert.equal(arm.manifest.layers[0]!.digest, amd.manifest.layers[0]!.digest);
    assert.notEqual(arm.manifest.layers[2]!.digest, amd.manifest.layers[2]!.digest);
    assert.equal(
      arm.manifest.layers[2]!.annotations?.["io.pulumi-sealer.layer.instruction"],
      "COPY arch/arm64/tool bin/tool",
    );
    const out = path.join(tmp, "multi-out");
    await materializeLayers(
      layout,
      arm.manifest.layers.map((l) => l.digest),
      out,
    );
    assert.equal(fs.readFileSync(path.join(out, "bin/tool"), "utf8"), "arm64-tool\n");
    // The single-platform build of the fixture has the same amd64 manifest.
    const single = await build("multi-home", { context: FIXTURE, tag: "test/app:amd64" });
    assert.equal(single.digest, amd.manifestDigest);
    const facts = await imageFacts(layout, "test/app:1", "linux/arm64");
    assert.equal(facts.manifestDigest, arm.manifestDigest);
    assert.deepEqual(facts.platforms, ["linux/amd64", "linux/arm64"]);
  });
});

describe("build: context checks", () => {
  it("refuses context files named like OCI whiteouts", async () => {
    const ctx = context("whname", {
      Kubefile: "FROM scratch\nCOPY files etc\n",
      "files/.wh.secret": "x",
      "files/ok": "y",
    });
    await assert.rejects(build("whname-home", { context: ctx }), (err: Error) => {
      assert.match(
        err.message,
        /Kubefile:2: "etc\/\.wh\.secret" cannot go into an image: names starting with \.wh\. mark deletions in OCI layers; rename it$/,
      );
      return true;
    });
  });
});

describe("build: flag parsing", () => {
  const ok: Array<[string[], Record<string, string>]> = [
    [[], {}],
    [["a=1", "b=x=y", "c="], { a: "1", b: "x=y", c: "" }],
    [["a=1", "a=2"], { a: "2" }],
  ];
  for (const [items, want] of ok)
    it(`parses ${JSON.stringify(items)}`, () => assert.deepEqual(parseKeyValues(items, "--build-arg"), want));
  it("reports every malformed item at once", () => {
    assert.throws(() => parseKeyValues(["novalue"], "--label"), {
      message: '--label "novalue" must be KEY=VALUE',
    });
    assert.throws(() => parseKeyValues(["a", "=b", "c=1"], "--build-arg"), {
      message:
        'bad --build-arg values:\n - --build-arg "a" must be KEY=VALUE\n - --build-arg "=b" must be KEY=VALUE',
    });
  });
  it("refuses a platform given twice and a malformed one", async () => {
    await assert.rejects(build("flags", { context: FIXTURE, platforms: ["linux/amd64", "linux/amd64"] }), {
      message: "--platform lists linux/amd64 twice",
    });
    await assert.rejects(build("flags", { context: FIXTURE, platforms: ["amd64"] }), {
      message: 'invalid platform "amd64": use os/arch[/variant], e.g. linux/amd64',
    });
  });
  it("names the Kubefile it cannot read", async () => {
    const missing = path.join(tmp, "nowhere", "Kubefile");
    await assert.rejects(build("flags", { context: tmp, kubefile: missing }), {
      message: `cannot read Kubefile ${missing} (it does not exist); pass it with -f or put a Kubefile in the context directory`,
    });
  });
});

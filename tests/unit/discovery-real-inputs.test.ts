/**
 * Image discovery on inputs taken from real projects (sealerio/applications, the real charts in
 * tests/fixtures/charts) in the shapes users give them: manifests Helm and kubectl accept, charts
 * with names Helm would refuse as release names, packaged charts, library charts next to the
 * charts using them, and sealer's `COPY imageList manifests` / `COPY x.tgz charts` layouts.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { discoverImages } from "../../provider/core/image/discovery/discover";
import { renderChart } from "../../provider/core/image/discovery/helm-render";
import { imagesInYaml } from "../../provider/core/image/discovery/manifest-images";
import { repoRoot } from "../harness/registry";

const real = (f: string) => path.join(repoRoot(), "tests/fixtures/discovery-real", f);
const chart = (name: string) => path.join(repoRoot(), "tests/fixtures/charts", name);
const METRICS_SERVER = "registry.k8s.io/metrics-server/metrics-server:v0.8.1";
const TIGERA = "quay.io/tigera/operator:v1.25.3";

/** A fresh rootfs (removed afterwards) with a writer and a copier for files in it. */
async function withRootfs(
  fn: (t: {
    root: string;
    put: (rel: string, from: string) => void;
    write: (rel: string, text: string) => void;
  }) => Promise<void>,
): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-disc-real-"));
  const ensure = (rel: string) => fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  try {
    await fn({
      root,
      put: (rel, from) => (ensure(rel), fs.cpSync(from, path.join(root, rel), { recursive: true })),
      write: (rel, text) => (ensure(rel), fs.writeFileSync(path.join(root, rel), text)),
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** `helm package`'s layout: a gzipped tar of the chart directory. */
function pack(chartDir: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  execFileSync("tar", ["-czf", to, "-C", path.dirname(chartDir), path.basename(chartDir)]);
}

const lineOf = (file: string, text: string) =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .findIndex((l) => l.includes(text)) + 1;

describe("image discovery on real inputs", function () {
  this.timeout(120_000);

  it("reads manifests whose quoted strings continue at the key's indentation (calico, as kubectl does)", async () => {
    await withRootfs(async ({ root, put }) => {
      put("manifests/calico/tigera-operator.yaml", real("calico-tigera-operator.yaml"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => [i.image, i.source]),
        [
          [
            TIGERA,
            `manifests/calico/tigera-operator.yaml:${lineOf(real("calico-tigera-operator.yaml"), "image:")}`,
          ],
        ],
      );
    });
  });

  it("still reports a truly broken file with its line", async () => {
    await withRootfs(async ({ root, write }) => {
      const text = fs.readFileSync(real("calico-tigera-operator.yaml"), "utf8");
      // Drop the closing quote of the description: the string now runs to the end of the file.
      write(
        "manifests/broken.yaml",
        text.replace("api-conventions.md#resources'", "api-conventions.md#resources"),
      );
      const d = await discoverImages(root);
      assert.deepEqual(d.images, []);
      assert.equal(d.problems.length, 1, d.problems.join("\n"));
      assert.match(
        d.problems[0]!,
        /^manifests\/broken\.yaml:\d+: not valid YAML, so its images cannot be read \(.*single quoted.* at line \d+, column \d+\)$/,
      );
      assert.doesNotMatch(d.problems[0]!, /\n|YAMLException|at .*\.js/);
    });
  });

  it("follows merge keys (<<: *base) as go-yaml does", () => {
    const found = imagesInYaml(
      "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n" +
        "      - &base\n        name: app\n        image: example/app:1\n" +
        "      - <<: *base\n        name: sidecar\n" +
        "      initContainers:\n      - <<: {image: example/init:2}\n        name: init\n",
    );
    assert.deepEqual(found, [
      { image: "example/app:1", line: 8 },
      { image: "example/app:1", line: 9 },
      { image: "example/init:2", line: 12 },
    ]);
  });

  it("renders charts and helm apps whose names Helm refuses as release names", async () => {
    await withRootfs(async ({ root, put }) => {
      const long = `Metrics_Server-${"x".repeat(60)}`;
      put(`charts/${long}`, chart("metrics-server"));
      put("application/apps/Metrics_Server", chart("metrics-server"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => [i.image, i.appName ?? ""]),
        [[METRICS_SERVER, ""]],
      );
      assert.match(d.images[0]!.source, new RegExp(`^charts/${long}/templates/`));
    });
  });

  it("renders packaged charts in charts/ and in apps", async () => {
    await withRootfs(async ({ root }) => {
      pack(chart("metrics-server"), path.join(root, "charts/metrics-server-3.13.1.tgz"));
      pack(chart("metrics-server"), path.join(root, "application/apps/ms/metrics-server-3.13.1.tgz"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => [i.image, i.source]),
        [
          [
            METRICS_SERVER,
            "charts/metrics-server-3.13.1.tgz/templates/deployment.yaml (rendered by helm template)",
          ],
        ],
      );
    });
    await withRootfs(async ({ root }) => {
      pack(chart("metrics-server"), path.join(root, "application/apps/ms/metrics-server-3.13.1.tgz"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => [i.image, i.appName]),
        [[METRICS_SERVER, "ms"]],
      );
    });
  });

  it("skips library charts (bitnami common) next to the charts using them", async () => {
    await withRootfs(async ({ root, put }) => {
      put("charts/common", chart("redis/charts/common"));
      put("charts/packaged/common-2.31.10.tgz", chart("postgresql/charts/common-2.31.10.tgz"));
      put("charts/metrics-server", chart("metrics-server"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => i.image),
        [METRICS_SERVER],
      );
    });
  });

  it("reads a file named manifests as sealer's image list (`COPY imageList manifests`)", async () => {
    await withRootfs(async ({ root, put }) => {
      put("manifests", real("calico-imageList"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(d.images.length, 7);
      assert.deepEqual([d.images[0]!.image, d.images[0]!.source], [TIGERA, "manifests:3"]);
    });
    await withRootfs(async ({ root, put }) => {
      put("manifests", real("calico-tigera-operator.yaml"));
      const d = await discoverImages(root);
      assert.equal(d.problems.length, 1, d.problems.join("\n"));
      assert.match(
        d.problems[0]!,
        /^manifests is a file, not a directory, so it was read as the image list .* \(`COPY app\.yaml manifests\/`\)$/,
      );
      assert.ok(!d.problems[0]!.includes(root), d.problems[0]);
    });
  });

  it("renders a file named charts as a packaged chart (`COPY x.tgz charts`), and says when it is not one", async () => {
    await withRootfs(async ({ root }) => {
      pack(chart("metrics-server"), path.join(root, "charts"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => i.image),
        [METRICS_SERVER],
      );
    });
    await withRootfs(async ({ root, put }) => {
      put("charts", real("calico-imageList"));
      const d = await discoverImages(root);
      assert.equal(d.problems.length, 1, d.problems.join("\n"));
      assert.match(
        d.problems[0]!,
        /^Helm chart charts: helm template failed: .*; charts is a file, not a directory/,
      );
      assert.ok(!d.problems[0]!.includes(root), d.problems[0]);
    });
  });

  it("keeps a chart's template whole when its text carries its own `# Source:` lines", async () => {
    await withRootfs(async ({ root, put, write }) => {
      write("charts/tigera/Chart.yaml", "apiVersion: v2\nname: tigera\nversion: 0.1.0\n");
      put("charts/tigera/templates/tigera-operator.yaml", real("calico-tigera-operator.yaml"));
      const d = await discoverImages(root);
      assert.deepEqual(d.problems, []);
      assert.deepEqual(
        d.images.map((i) => [i.image, i.source]),
        [[TIGERA, "charts/tigera/templates/tigera-operator.yaml (rendered by helm template)"]],
      );
    });
  });

  it("says Helm 4's logged error once", async () => {
    await withRootfs(async ({ root, write }) => {
      write(
        "helm",
        '#!/bin/sh\n[ "$1" = version ] && { echo v4.1.4; exit 0; }\n' +
          "echo 'level=ERROR msg=\"render failed\" error=\"boom\"' >&2\necho 'Error: render failed: boom' >&2\nexit 1\n",
      );
      fs.chmodSync(path.join(root, "helm"), 0o755);
      write("charts/x/Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.1.0\n");
      const saved = process.env.SEALER_HELM;
      process.env.SEALER_HELM = path.join(root, "helm");
      try {
        assert.deepEqual(await renderChart(root, "charts/x", {}), {
          ok: false,
          reason: "render failed: boom",
        });
      } finally {
        if (saved === undefined) delete process.env.SEALER_HELM;
        else process.env.SEALER_HELM = saved;
      }
    });
  });
});

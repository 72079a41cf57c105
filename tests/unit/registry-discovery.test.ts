import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { discoverImages } from "../../provider/core/image/discovery/discover";
import { helmBinary, locateHelm } from "../../provider/core/image/discovery/helm-binary";
import { parseImageList } from "../../provider/core/image/discovery/image-list";
import { imagesInYaml } from "../../provider/core/image/discovery/manifest-images";
import { parseChallenge, mergeScopes } from "../../provider/core/registry/auth";
import { normalizeRegistryHost, isLoopbackHost } from "../../provider/core/registry/credentials";
import {
  loadMirrorsFile,
  mirrorReference,
  parseMirrorFlags,
  resolveMirrors,
} from "../../provider/core/registry/mirrors";
import { platformMatches, parsePlatform } from "../../provider/core/registry/remote";
import { normalizeReference } from "../../provider/core/common/reference";
import { repoRoot } from "../harness/registry";

const fixture = () => path.join(repoRoot(), "tests/fixtures/registry/rootfs");
const chartFixtures = () => path.join(repoRoot(), "tests/fixtures/charts");

/** Runs `fn` in a fresh temp dir (removed afterwards) with a writer for files in it. */
async function withTempRoot(
  prefix: string,
  fn: (t: { dir: string; write: (rel: string, text: string) => void }) => Promise<void> | void,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  try {
    await fn({ dir, write });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A `helm` that reports an old version. */
function oldHelm(dir: string, write: (rel: string, text: string) => void): string {
  write("bin/helm", "#!/bin/sh\necho v3.7.2\n");
  fs.chmodSync(path.join(dir, "bin/helm"), 0o755);
  return path.join(dir, "bin/helm");
}

/**
 * Derived by hand from each chart's values.yaml and templates with default values (see
 * tests/fixtures/charts/README.md), not from our output.
 */
const EXPECTED: Record<string, string[]> = {
  "ingress-nginx": [
    "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1",
    "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd",
  ],
  prometheus: [
    "quay.io/prometheus/prometheus:v3.14.0",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
    "quay.io/prometheus/alertmanager:v0.34.0",
    "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
    "quay.io/prometheus/node-exporter:v1.12.1",
    "quay.io/prometheus/pushgateway:v1.11.3",
  ],
  grafana: ["docker.io/grafana/grafana:12.3.1", "docker.io/bats/bats:v1.4.1"],
  promtail: ["docker.io/grafana/promtail:3.5.1"],
  redis: ["docker.io/bitnami/redis:8.2.1-debian-12-r0"],
  postgresql: ["docker.io/bitnami/postgresql:17.6.0-debian-12-r4"],
  nginx: ["docker.io/bitnami/nginx:1.29.1-debian-12-r0"],
  "metrics-server": ["registry.k8s.io/metrics-server/metrics-server:v0.8.1"],
};

describe("container image discovery", function () {
  this.timeout(120_000);

  it("finds images by container-spec shape in every workload kind, never by key name", () => {
    const podSpec = (img: string) => `spec: {containers: [{name: c, image: "${img}"}]}`;
    const y = [
      `kind: Pod\n${podSpec("pod:1")}\n  `,
      `kind: Deployment\nspec:\n  template:\n    ${podSpec("deploy:1")}`,
      `kind: StatefulSet\nspec:\n  template:\n    ${podSpec("sts:1")}`,
      `kind: DaemonSet\nspec:\n  template:\n    ${podSpec("ds:1")}`,
      `kind: ReplicaSet\nspec:\n  template:\n    ${podSpec("rs:1")}`,
      `kind: Job\nspec:\n  template:\n    ${podSpec("job:1")}`,
      "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n" +
        "          initContainers:\n            - {name: i, image: cron-init:1}\n" +
        "          containers:\n            - name: c\n              image: cron:1\n",
      `kind: PodTemplate\ntemplate:\n  ${podSpec("podtemplate:1")}`,
      "kind: Pod\nspec:\n  ephemeralContainers:\n    - {name: dbg, image: 'debug:1'}\n  containers: []\n",
      `apiVersion: example.com/v1\nkind: Whatever\nspec:\n  workers:\n    template:\n      ${podSpec("crd:1")}`,
      "kind: List\nitems:\n  - kind: Pod\n    spec:\n      containers:\n        - &c {name: a, image: listed:1}\n        - *c\n",
      // Not container specs: keys ending in "image", a values-style image object, an env value.
      "kind: Thing\nspec:\n  image: not/collected:1\n  sidecarImage: also/not:1\n  image2: {repository: x, tag: '1'}\n" +
        "  containers: [{name: x, image: {repository: not/string, tag: '1'}}, {name: y, env: [{name: IMAGE, value: no:1}]}]\n",
    ].join("\n---\n");
    const found = imagesInYaml(y);
    assert.deepEqual(
      found.map((f) => f.image),
      [
        "pod:1",
        "deploy:1",
        "sts:1",
        "ds:1",
        "rs:1",
        "job:1",
        "cron-init:1",
        "cron:1",
        "podtemplate:1",
        "debug:1",
        "crd:1",
        "listed:1",
        "listed:1",
      ],
    );
    const lines = y.split("\n");
    for (const f of found) assert.ok(lines[f.line - 1]!.includes(f.image), `${f.image} at line ${f.line}`);
  });

  it("finds images in manifests, charts rendered by Helm (sprig, include by path), apps, imageList", async () => {
    const d = await discoverImages(fixture());
    const rendered = (f: string) => `${f} (rendered by helm template)`;
    assert.deepEqual(
      d.images.map((i) => [i.image, i.source, i.appName ?? ""]),
      [
        ["busybox:1.36", "manifests/deploy.yaml:9", ""],
        ["nginx:1.25", "manifests/deploy.yaml:12", ""],
        ["quay.io/org/op:v3", "manifests/deploy.yaml:26", ""],
        ["ghcr.io/acme/api:2.0", rendered("charts/mychart/templates/deployment.yaml"), ""],
        ["acme/migrate:1.1", rendered("charts/mychart/templates/job-extra.yaml"), ""],
        ["acme/migrate:1.2", rendered("charts/mychart/templates/job-extra.yaml"), ""],
        ["busybox:1.37", rendered("charts/mychart/templates/job-extra.yaml"), ""],
        ["alpine:3.19", rendered("application/apps/helmapp/templates/job.yaml"), "helmapp"],
        ["alpine:3.20", rendered("application/apps/helmapp/templates/job.yaml"), "helmapp"],
        ["redis:7", "application/apps/myapp/pod.yaml:7", "myapp"],
        ["registry.k8s.io/pause:3.9", "manifests/imageList:2", ""],
      ],
    );
    // sealer#1913: none of these are images.
    const all = d.images.map((i) => i.image).join(" ");
    for (const not of ["evil/", "not/collected", "also/not", "other/thing", "acme/sidecar"])
      assert.ok(!all.includes(not), not);
    assert.deepEqual(d.problems, []);
  });

  for (const [chart, expected] of Object.entries(EXPECTED))
    it(`real chart ${chart}: Helm discovery equals the hand-derived image list`, async () => {
      await withTempRoot("sealer-chart-", async ({ dir }) => {
        fs.mkdirSync(path.join(dir, "charts"));
        fs.cpSync(path.join(chartFixtures(), chart), path.join(dir, "charts", chart), { recursive: true });
        const d = await discoverImages(dir);
        assert.deepEqual(d.problems, []);
        assert.deepEqual(
          d.images.map((i) => i.ref).sort(),
          expected.map((e) => normalizeReference(e)).sort(),
        );
        for (const i of d.images)
          assert.match(i.source, new RegExp(`^charts/${chart}/.*\\(rendered by helm template\\)$`));
      });
    });

  it("reports a chart Helm cannot render, naming the chart and the template", async () => {
    await withTempRoot("sealer-badchart-", async ({ dir, write }) => {
      fs.mkdirSync(path.join(dir, "charts"));
      fs.cpSync(path.join(chartFixtures(), "external-dns"), path.join(dir, "charts", "external-dns"), {
        recursive: true,
      });
      write("charts/bad/Chart.yaml", "apiVersion: v2\nname: bad\nversion: 0.1.0\n");
      write("charts/bad/templates/ok.yaml", "kind: Pod\nspec: {containers: [{name: a, image: ok:1}]}\n");
      write(
        "charts/bad/templates/broken.yaml",
        'kind: ConfigMap\ndata:\n  x: {{ someHelmOnlyFunction "a" }}\n',
      );
      write("manifests/bad.yaml", "kind: Pod\nspec:\n  containers:\n    - image: [unclosed\n");
      const d = await discoverImages(dir);
      assert.equal(d.problems.length, 3, d.problems.join("\n"));
      assert.match(d.problems[0]!, /^manifests\/bad\.yaml:\d+: not valid YAML, so its images cannot be read/);
      assert.match(
        d.problems[1]!,
        /^Helm chart charts\/bad: helm template failed: .*bad\/templates\/broken\.yaml:3.*someHelmOnlyFunction/,
      );
      assert.match(
        d.problems[2]!,
        /^Helm chart charts\/external-dns: helm template failed: .*external-dns.*policy/,
      );
      // Nothing from the unrenderable chart counts as found.
      assert.deepEqual(d.images, []);
    });
  });

  it("renders charts at any depth under charts/, packaged (.tgz) subcharts with the parent's values", async () => {
    await withTempRoot("sealer-tgz-", async ({ dir, write }) => {
      write("src/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 1.2.3\n");
      write("src/db/values.yaml", "image: {repository: postgres, tag: '15'}\n");
      write(
        "src/db/templates/sts.yaml",
        "kind: StatefulSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: db\n          image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n",
      );
      write(
        "root/charts/group/app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - {name: db, version: 1.2.3}\n",
      );
      write("root/charts/group/app/values.yaml", "db:\n  image: {tag: '16'}\n");
      fs.mkdirSync(path.join(dir, "root/charts/group/app/charts"), { recursive: true });
      execFileSync("tar", [
        "-czf",
        path.join(dir, "root/charts/group/app/charts/db-1.2.3.tgz"),
        "-C",
        path.join(dir, "src"),
        "db",
      ]);
      const d = await discoverImages(path.join(dir, "root"));
      assert.deepEqual(
        d.images.map((i) => [i.image, i.source]),
        [["postgres:16", "charts/group/app/charts/db/templates/sts.yaml (rendered by helm template)"]],
      );
      assert.deepEqual(d.problems, []);
    });
  });

  it("renders charts for the image's Kubernetes version when it declares one", async () => {
    await withTempRoot("sealer-kubever-", async ({ dir, write }) => {
      write("charts/k/Chart.yaml", "apiVersion: v2\nname: k\nversion: 0.1.0\nkubeVersion: '>=1.24.0-0'\n");
      write(
        "charts/k/templates/pod.yaml",
        "kind: Pod\nspec:\n  containers:\n    - name: a\n" +
          '      image: {{ if semverCompare ">=1.29-0" .Capabilities.KubeVersion.Version }}new:1{{ else }}old:1{{ end }}\n',
      );
      const images = async (kubeVersion: string) =>
        (await discoverImages(dir, { kubeVersion })).images.map((i) => i.image);
      assert.deepEqual(await images("v1.25.3"), ["old:1"]);
      assert.deepEqual(await images("1.31.0"), ["new:1"]);
      const old = await discoverImages(dir, { kubeVersion: "v1.23.0" });
      assert.match(
        old.problems.join("\n"),
        /^Helm chart charts\/k: helm template failed: .*requires kubeVersion: >=1\.24\.0-0/,
      );
    });
  });

  it("applies --image-list and --ignored-image-list", async () => {
    await withTempRoot("sealer-disc-", async ({ dir, write }) => {
      write("extra", "docker.io/library/postgres:16\n");
      write("ignore", "# not wanted\nbusybox:1.36\ndocker.io/library/redis:7\n");
      const d = await discoverImages(fixture(), {
        imageListFiles: [path.join(dir, "extra")],
        ignoredImageListFiles: [path.join(dir, "ignore")],
      });
      const names = d.images.map((i) => i.image);
      assert.ok(names.includes("docker.io/library/postgres:16"));
      assert.ok(!names.includes("busybox:1.36"));
      assert.ok(!names.includes("redis:7"));
      assert.equal(
        d.images.find((i) => i.image.includes("postgres"))?.source,
        `${path.join(dir, "extra")}:1`,
      );
      await assert.rejects(
        discoverImages(fixture(), { imageListFiles: [path.join(dir, "nope")] }),
        /--image-list .*nope: no such file/,
      );
    });
  });

  it("parseImageList reports bad references with file:line", () => {
    assert.deepEqual(parseImageList("ok:1\n\n  # c\nBad Ref\n", "list"), {
      images: [{ image: "ok:1", line: 1 }],
      problems: [
        "list:4: invalid image reference \"Bad Ref\": repository names are lowercase letters, digits and separators ('.', '_', '-') between '/'",
      ],
    });
  });
});

describe("Helm binary", () => {
  it("prefers $SEALER_HELM, then PATH, then the package's .tools/bin/helm; says how to get one", async () => {
    await withTempRoot("sealer-helmbin-", async ({ dir, write }) => {
      const helm = oldHelm(dir, write);
      assert.deepEqual(locateHelm({ SEALER_HELM: helm, PATH: "" }), {
        path: helm,
        from: "$SEALER_HELM",
      });
      assert.deepEqual(locateHelm({ PATH: path.dirname(helm) }), {
        path: helm,
        from: "PATH",
      });
      assert.deepEqual(locateHelm({ PATH: path.join(dir, "empty") }), {
        path: path.join(repoRoot(), ".tools", "bin", "helm"),
        from: "the package's .tools/bin",
      });
      assert.throws(
        () => locateHelm({ SEALER_HELM: path.join(dir, "nope"), PATH: "" }),
        /\$SEALER_HELM is ".*nope", which is not an executable file; install Helm 3\.8 or newer/,
      );
    });
  });

  it("refuses a Helm older than 3.8, naming it", async () => {
    await withTempRoot("sealer-oldhelm-", async ({ dir, write }) => {
      await assert.rejects(
        helmBinary({ SEALER_HELM: oldHelm(dir, write) }),
        /helm \(Helm from \$SEALER_HELM\) is version 3\.7\.2; full build mode needs 3\.8\.0 or newer/,
      );
      assert.ok((await helmBinary({ SEALER_HELM: path.join(repoRoot(), ".tools/bin/helm") })).version);
    });
  });
});

describe("registry mirrors", () => {
  it("maps SRC/repo:tag to MIRROR[/prefix]/repo:tag; docker.io covers short names", () => {
    const m = parseMirrorFlags([
      "docker.io=127.0.0.1:5000/hub",
      "quay.io=localhost:5001",
      "index.docker.io=x.example:1/y",
    ]);
    assert.deepEqual(m, { "docker.io": "x.example:1/y", "quay.io": "localhost:5001" });
    const mm = parseMirrorFlags(["docker.io=127.0.0.1:5000/hub/mirror", "quay.io=localhost:5001"]);
    assert.equal(
      mirrorReference(normalizeReference("nginx"), mm),
      "127.0.0.1:5000/hub/mirror/library/nginx:latest",
    );
    assert.equal(
      mirrorReference(normalizeReference("quay.io/prometheus/prometheus:v3.14.0"), mm),
      "localhost:5001/prometheus/prometheus:v3.14.0",
    );
    const pinned = `registry.k8s.io/pause:3.9@sha256:${"a".repeat(64)}`;
    assert.equal(mirrorReference(normalizeReference(pinned), mm), undefined);
    assert.equal(
      mirrorReference(normalizeReference(pinned), { "registry.k8s.io": "m.example/k8s" }),
      `m.example/k8s/pause:3.9@sha256:${"a".repeat(64)}`,
    );
  });

  it("refuses malformed mirrors, saying the expected form", () => {
    for (const bad of [
      "docker.io",
      "docker.io=",
      "=m.example",
      "docker.io=https://m.example",
      "docker.io=mirror/x",
      "docker.io=m.example/Bad",
    ])
      assert.throws(
        () => parseMirrorFlags([bad]),
        /--registry-mirror ".*": expected SRC=MIRROR with MIRROR as host\[:port\]\[\/prefix\]/,
        bad,
      );
  });

  it("reads <data dir>/mirrors.yaml; a flag wins over the file", async () => {
    await withTempRoot("sealer-mirrors-", async ({ dir, write }) => {
      assert.deepEqual(loadMirrorsFile(dir), {});
      write("mirrors.yaml", "mirrors:\n  docker.io: 127.0.0.1:5000/hub\n  quay.io: 127.0.0.1:5000/quay\n");
      assert.deepEqual(resolveMirrors(dir, ["quay.io=127.0.0.1:6000"]), {
        "docker.io": "127.0.0.1:5000/hub",
        "quay.io": "127.0.0.1:6000",
      });
      write("mirrors.yaml", "mirrors:\n  docker.io: [a]\n");
      assert.throws(
        () => loadMirrorsFile(dir),
        /mirrors\.yaml: mirrors\.docker\.io must be a string host\[:port\]\[\/prefix\]/,
      );
      write("mirrors.yaml", "mirrors: {docker.io: 'x\n");
      assert.throws(() => loadMirrorsFile(dir), /mirrors\.yaml:1: not valid YAML/);
      fs.rmSync(path.join(dir, "mirrors.yaml"));
      fs.mkdirSync(path.join(dir, "mirrors.yaml"));
      assert.throws(() => loadMirrorsFile(dir), {
        name: "UserError",
        message: `mirrors file ${path.join(dir, "mirrors.yaml")} is not a regular file; fix it or remove it`,
      });
    });
  });
});

describe("registry pure helpers", () => {
  it("parses WWW-Authenticate challenges", () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
      ),
      {
        scheme: "bearer",
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:a/b:pull,push",
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="r"'), { scheme: "basic", realm: "r" });
    assert.equal(parseChallenge("Negotiate"), undefined);
    assert.equal(parseChallenge('Bearer service="x"'), undefined);
  });
  it("merges scopes per resource", () => {
    assert.deepEqual(mergeScopes(["repository:b:push", "repository:a:pull", "repository:b:pull"]), [
      "repository:a:pull",
      "repository:b:pull,push",
    ]);
  });
  it("normalises registry hosts and knows loopback", () => {
    assert.equal(normalizeRegistryHost("https://index.docker.io/v1/"), "docker.io");
    assert.equal(normalizeRegistryHost("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    assert.deepEqual(
      ["localhost:5000", "127.3.0.1:1", "[::1]:5000", "10.0.0.1:5000", "registry.example.com"].map(
        isLoopbackHost,
      ),
      [true, true, true, false, false],
    );
  });
  it("matches platforms", () => {
    assert.equal(
      platformMatches(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64" }),
      true,
    );
    assert.equal(
      platformMatches(parsePlatform("linux/arm64"), { os: "linux", architecture: "amd64" }),
      false,
    );
    assert.throws(() => parsePlatform("amd64"), /invalid platform "amd64"/);
  });
});

import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { discoverImages, imagesInYaml, parseImageList } from "../../provider/core/registry/discovery";
import { parseChallenge, mergeScopes } from "../../provider/core/registry/auth";
import { normalizeRegistryHost, isLoopbackHost } from "../../provider/core/registry/credentials";
import { platformMatches, parsePlatform } from "../../provider/core/registry/remote";
import { repoRoot } from "../harness/registry";

const fixture = () => path.join(repoRoot(), "tests/fixtures/registry/rootfs");

describe("container image discovery", () => {
  it("finds images in container lists only, with file:line, charts rendered, apps named", () => {
    const d = discoverImages(fixture());
    assert.deepEqual(
      d.images.map((i) => [i.image, i.source, i.appName ?? ""]),
      [
        ["busybox:1.36", "manifests/deploy.yaml:9", ""],
        ["nginx:1.25", "manifests/deploy.yaml:12", ""],
        ["quay.io/org/op:v3", "manifests/deploy.yaml:26", ""],
        [
          "ghcr.io/acme/api:2.0",
          "charts/mychart/templates/deployment.yaml (rendered with default values)",
          "",
        ],
        [
          "alpine:3.19",
          "application/apps/helmapp/templates/job.yaml (rendered with default values)",
          "helmapp",
        ],
        [
          "alpine:3.20",
          "application/apps/helmapp/templates/job.yaml (rendered with default values)",
          "helmapp",
        ],
        ["redis:7", "application/apps/myapp/pod.yaml:7", "myapp"],
        ["registry.k8s.io/pause:3.9", "manifests/imageList:2", ""],
      ],
    );
    // sealer#1913: none of these are images.
    const all = d.images.map((i) => i.image).join(" ");
    for (const not of ["evil/", "not/collected", "also/not", "other/thing", "acme/sidecar"])
      assert.ok(!all.includes(not), not);
    assert.deepEqual(d.problems, [
      'charts/mychart/templates/broken.yaml: function "someHelmOnlyFunction" is not supported by this renderer (template not rendered; list its images in manifests/imageList if it has any)',
    ]);
  });

  it("applies --image-list and --ignored-image-list", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-disc-"));
    try {
      fs.writeFileSync(path.join(dir, "extra"), "docker.io/library/postgres:16\n");
      fs.writeFileSync(path.join(dir, "ignore"), "# not wanted\nbusybox:1.36\ndocker.io/library/redis:7\n");
      const d = discoverImages(fixture(), {
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
      assert.throws(
        () => discoverImages(fixture(), { imageListFiles: [path.join(dir, "nope")] }),
        /--image-list .*nope: no such file/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("renders packaged subcharts (.tgz) with the parent's values; refuses entries that escape", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-tgz-"));
    try {
      const w = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
      };
      w("src/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 1.2.3\n");
      w("src/db/values.yaml", "image: {repository: postgres, tag: '15'}\n");
      w(
        "src/db/templates/sts.yaml",
        "kind: StatefulSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: db\n          image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n",
      );
      w(
        "root/charts/app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - {name: db, version: 1.2.3}\n",
      );
      w("root/charts/app/values.yaml", "db:\n  image: {tag: '16'}\n");
      fs.mkdirSync(path.join(dir, "root/charts/app/charts"), { recursive: true });
      execFileSync("tar", [
        "-czf",
        path.join(dir, "root/charts/app/charts/db-1.2.3.tgz"),
        "-C",
        path.join(dir, "src"),
        "db",
      ]);
      const d = discoverImages(path.join(dir, "root"));
      assert.deepEqual(
        d.images.map((i) => [i.image, i.source]),
        [["postgres:16", "charts/app/charts/db-1.2.3.tgz/templates/sts.yaml (rendered with default values)"]],
      );
      assert.deepEqual(d.problems, []);
      // An archive whose entry climbs out of the chart is refused, not written.
      w("evil/x/Chart.yaml", "name: x\n");
      execFileSync("tar", [
        "-czf",
        path.join(dir, "root/charts/app/charts/x.tgz"),
        "-C",
        path.join(dir, "evil"),
        "--transform",
        "s,^x,../../x,",
        "x",
      ]);
      const d2 = discoverImages(path.join(dir, "root"));
      assert.match(
        d2.problems.join("\n"),
        /charts\/app\/charts\/x\.tgz: archive entry "\.\.\/\.\.\/x\/Chart.yaml" escapes the chart/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("imagesInYaml handles CronJob-style nesting and repeated images", () => {
    const y =
      "spec:\n  containers:\n    - image: a:1\n    - image: a:1\n  initContainers: [{image: 'b:2'}]\n";
    assert.deepEqual(imagesInYaml(y), [
      { image: "a:1", line: 3 },
      { image: "a:1", line: 4 },
      { image: "b:2", line: 5 },
    ]);
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

/**
 * Per-path layer digests: a layer that changes in one path re-runs the steps reading that path,
 * not every step reading any path of the layer. Checked on the digests themselves, on the plan,
 * on real builds (a built layer and the same layer read back as a foreign tar), and for clusters
 * recorded before the digests existed.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { layerGroups, type GroupEntry } from "../../provider/core/image/layer-groups";
import { layerPaths } from "../../provider/core/image/layer";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { imageFacts } from "../../provider/core/image/facts";
import { listLayerSummary } from "../../provider/core/image/materialize";
import { plan } from "../../provider/core/plan/planner";
import type { ImageFacts, LayerFacts } from "../../provider/core/plan/types";
import { setLogSink } from "../../provider/core/log";
import {
  baseImage,
  clusterfile,
  digest,
  distributeAll,
  each,
  ids,
  installed,
  M,
  spec,
  W,
} from "../fixtures/clusterfile/plan-world";

const file = (p: string, content: string, mode = 0o755): GroupEntry => ({
  path: p,
  type: "file",
  mode,
  size: content.length,
  content,
});
const dir = (p: string, mode = 0o755): GroupEntry => ({ path: p, type: "dir", mode, size: 0, content: "" });

function groupsOf(entries: GroupEntry[]): Record<string, string> {
  return layerGroups(entries, layerPaths(entries));
}

/** Keys whose digest differs between two group maps (and keys only one has). */
function changedKeys(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}

describe("layer groups: a digest per summary path", () => {
  const scripts = [
    dir("scripts/"),
    file("scripts/containerd.sh", "a"),
    file("scripts/init-kube.sh", "b"),
    dir("charts/"),
    dir("charts/web/"),
    dir("charts/web/templates/"),
    file("charts/web/templates/deploy.yaml", "c"),
    file("charts/web/Chart.yaml", "d"),
  ];
  const base = groupsOf(scripts);

  it("keys every summary path, and only those", () => {
    assert.deepEqual(Object.keys(base).sort(), layerPaths(scripts).sort());
    assert.deepEqual(Object.keys(base).sort(), [
      "charts/web/Chart.yaml",
      "charts/web/templates/",
      "scripts/containerd.sh",
      "scripts/init-kube.sh",
    ]);
  });

  it("a changed file's content changes its own path's digest only", () => {
    const next = groupsOf(scripts.map((e) => (e.path === "scripts/init-kube.sh" ? file(e.path, "B") : e)));
    assert.deepEqual(changedKeys(base, next), ["scripts/init-kube.sh"]);
  });

  it("a file below depth 3 changes the digest of the dir it is summarised under", () => {
    const next = groupsOf(scripts.map((e) => (e.path.endsWith("deploy.yaml") ? file(e.path, "C") : e)));
    assert.deepEqual(changedKeys(base, next), ["charts/web/templates/"]);
  });

  it("a mode counts, and so does the mode of a dir above (every path under it changes)", () => {
    const mode = groupsOf(
      scripts.map((e) => (e.path === "scripts/containerd.sh" ? file(e.path, "a", 0o644) : e)),
    );
    assert.deepEqual(changedKeys(base, mode), ["scripts/containerd.sh"]);
    const dirMode = groupsOf(scripts.map((e) => (e.path === "scripts/" ? dir(e.path, 0o700) : e)));
    assert.deepEqual(changedKeys(base, dirMode), ["scripts/containerd.sh", "scripts/init-kube.sh"]);
    const chartMode = groupsOf(scripts.map((e) => (e.path === "charts/web/" ? dir(e.path, 0o700) : e)));
    assert.deepEqual(changedKeys(base, chartMode), ["charts/web/Chart.yaml", "charts/web/templates/"]);
  });

  it("a whiteout counts toward the path it deletes; an opaque dir toward the dir", () => {
    const wh = [
      dir("scripts/"),
      file("scripts/.wh.containerd.sh", "", 0o644),
      file("scripts/init-kube.sh", "b"),
    ];
    const g = groupsOf(wh);
    assert.deepEqual(Object.keys(g).sort(), ["scripts/containerd.sh", "scripts/init-kube.sh"]);
    const opq = groupsOf([dir("etc/"), file("etc/.wh..wh..opq", "", 0o644), file("etc/a.conf", "x")]);
    assert.deepEqual(Object.keys(opq), ["etc/"]);
  });

  it("a symlink's target is its content", () => {
    const link = (t: string): GroupEntry => ({
      path: "bin/tool",
      type: "symlink",
      mode: 0o777,
      size: 0,
      content: t,
    });
    assert.notEqual(groupsOf([link("a")])["bin/tool"], groupsOf([link("b")])["bin/tool"]);
  });
});

describe("layer groups: the plan re-runs only the steps whose paths changed", () => {
  const cluster = spec(clusterfile());
  const ALL = [...M, ...W];
  const D = distributeAll(ALL);
  const SAVE = "save-clusterfile";
  const MIXED = [
    "scripts/containerd.sh",
    "scripts/init-kube.sh",
    "application/apps/web/",
    "application/apps/db/",
  ];

  /** The base image with one layer holding the runtime script, a host script and both apps. */
  function mixedImage(groups: Record<string, string> | undefined, tag: string): ImageFacts {
    const img = baseImage();
    const mixed: LayerFacts = {
      digest: digest(`mixed-${tag}`),
      size: 4000,
      paths: MIXED,
      ...(groups ? { groups } : {}),
    };
    const layers = img.layers.map((l) => ({
      ...l,
      groups: Object.fromEntries(l.paths.map((p) => [p, `g-${p}`])),
    }));
    return { ...img, manifestDigest: digest(`manifest-${tag}`), layers: [...layers, mixed] };
  }
  const g1 = Object.fromEntries(MIXED.map((p) => [p, `v1-${p}`]));
  const bump = (p: string) => ({ ...g1, [p]: `v2-${p}` });

  const rows: Array<[string, string, string[]]> = [
    ["a host script -> init-host only", "scripts/init-kube.sh", [...D, ...each("init-host", ALL), SAVE]],
    [
      "the runtime script -> container-runtime only",
      "scripts/containerd.sh",
      [...D, ...each("container-runtime", ALL), SAVE],
    ],
    ["one app's files -> that app's launch only", "application/apps/db/", [...D, "launch-app:db", SAVE]],
  ];
  for (const [name, changed, expected] of rows)
    it(name, () => {
      const before = { cluster, image: mixedImage(g1, "v1") };
      const p = plan({ cluster, image: mixedImage(bump(changed), "v2") }, installed(before));
      assert.deepEqual(ids(p), [...expected].sort());
    });

  it("without per-path digests the whole layer counts (every reader of any of its paths re-runs)", () => {
    const before = { cluster, image: mixedImage(undefined, "v1") };
    const p = plan({ cluster, image: mixedImage(undefined, "v2") }, installed(before));
    assert.deepEqual(
      ids(p),
      [
        ...D,
        ...each("init-host", ALL),
        ...each("container-runtime", ALL),
        "launch-app:web",
        "launch-app:db",
        SAVE,
      ].sort(),
    );
  });

  it("a cluster recorded before per-path digests existed plans nothing for the same image with them", () => {
    const legacy = (img: ImageFacts): ImageFacts => ({
      ...img,
      layers: img.layers.map(({ groups: _g, ...l }) => l),
    });
    const img = mixedImage(g1, "v1");
    const applied = installed({ cluster, image: legacy(img) });
    const p = plan({ cluster, image: img }, applied);
    assert.deepEqual(ids(p), []);
    // A real change then re-runs its readers, named by what changed. container-runtime runs once
    // too: its record holds only the older key, which hashed the whole layer.
    const changed = plan({ cluster, image: mixedImage(bump("scripts/init-kube.sh"), "v2") }, applied);
    const initHost = changed.steps.find((s) => s.id === `init-host:${M[0]}`);
    const runtime = changed.steps.find((s) => s.id === `container-runtime:${M[0]}`);
    assert.ok(initHost && runtime, ids(changed).join(" "));
    assert.match(initHost.reason, /scripts\/init-kube\.sh/);
  });
});

describe("layer groups: real builds", function () {
  this.timeout(60_000);
  let tmp: string;
  let restore: ReturnType<typeof setLogSink> | undefined;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "layer-groups-"));
    restore = setLogSink({ write: () => undefined });
  });
  after(() => {
    if (restore) setLogSink(restore);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function ctx(name: string, initKube: string): string {
    const d = path.join(tmp, name);
    fs.mkdirSync(path.join(d, "scripts"), { recursive: true });
    fs.writeFileSync(path.join(d, "Kubefile"), "FROM scratch\nCOPY scripts scripts\n");
    fs.writeFileSync(path.join(d, "scripts", "containerd.sh"), "#!/bin/sh\necho runtime\n", { mode: 0o755 });
    fs.writeFileSync(path.join(d, "scripts", "init-kube.sh"), initKube, { mode: 0o755 });
    return d;
  }

  it("editing one file of a COPY layer changes that path's digest, and the foreign listing agrees", async () => {
    const home = path.join(tmp, "home");
    const layout = new OciLayout(path.join(home, "store"));
    const facts = async (c: string) => {
      await buildImage({ context: c, tag: "test/groups:1", buildMode: "lite", home });
      return imageFacts(layout, "test/groups:1");
    };
    const a = (await facts(ctx("a", "#!/bin/sh\necho one\n"))).layers[0];
    const b = (await facts(ctx("b", "#!/bin/sh\necho two\n"))).layers[0];
    assert.ok(a?.groups && b?.groups, "built layers carry per-path digests");
    assert.notEqual(a.digest, b.digest);
    assert.deepEqual(changedKeys(a.groups, b.groups), ["scripts/init-kube.sh"]);

    // The same blob read as an image without our annotations: same paths, and again only
    // the edited path differs between the two layers.
    const la = await listLayerSummary(layout, a.digest);
    const lb = await listLayerSummary(layout, b.digest);
    assert.deepEqual(la.paths, a.paths);
    assert.deepEqual(changedKeys(la.groups, lb.groups), ["scripts/init-kube.sh"]);

    // A tar made by GNU tar (a layer nobody here wrote) lists the same way.
    const gnu = path.join(tmp, "gnu");
    fs.mkdirSync(gnu);
    const blob = path.join(gnu, "layer.tar");
    execFileSync("tar", ["-C", path.join(tmp, "a"), "-cf", blob, "scripts"]);
    const sha = execFileSync("sha256sum", [blob], { encoding: "utf8" }).split(" ")[0] as string;
    fs.copyFileSync(blob, layout.blobPath(`sha256:${sha}`));
    const g = await listLayerSummary(layout, `sha256:${sha}`);
    assert.deepEqual(g.paths, ["scripts/containerd.sh", "scripts/init-kube.sh"]);
  });

  it("layers umoci wrote: one edited file changes its path's digest only; a new mtime alone changes none", async () => {
    const um = path.join(tmp, "umoci");
    const src = (name: string, initKube: string, mtime: number) => {
      const d = path.join(um, name, "scripts");
      fs.mkdirSync(d, { recursive: true });
      for (const [f, text] of [
        ["containerd.sh", "#!/bin/sh\necho runtime\n"],
        ["init-kube.sh", initKube],
      ] as const) {
        fs.writeFileSync(path.join(d, f), text, { mode: 0o755 });
        fs.utimesSync(path.join(d, f), mtime, mtime);
      }
      return path.dirname(d);
    };
    const layout = path.join(um, "layout");
    const umoci = (...args: string[]) => execFileSync("umoci", args, { stdio: "pipe" });
    umoci("init", "--layout", layout);
    // unpack + repack: the layer umoci's own diff of the bundle makes (its `insert` wrote a
    // tar without the end-of-archive blocks here, which GNU tar refuses too).
    const topLayer = (tag: string, dir: string) => {
      umoci("new", "--image", `${layout}:${tag}`);
      const bundle = path.join(um, `bundle-${tag}`);
      umoci("unpack", "--rootless", "--image", `${layout}:${tag}`, bundle);
      fs.cpSync(path.join(dir, "scripts"), path.join(bundle, "rootfs", "scripts"), {
        recursive: true,
        preserveTimestamps: true,
      });
      umoci("repack", "--image", `${layout}:${tag}`, bundle);
      const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as {
        manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
      };
      const m = index.manifests.find((x) => x.annotations?.["org.opencontainers.image.ref.name"] === tag)!;
      const manifest = JSON.parse(
        fs.readFileSync(path.join(layout, "blobs", "sha256", m.digest.slice(7)), "utf8"),
      ) as { layers: Array<{ digest: string }> };
      return manifest.layers.at(-1)!.digest;
    };
    const store = new OciLayout(layout);
    const a = await listLayerSummary(store, topLayer("a", src("a", "#!/bin/sh\necho one\n", 1_000_000)));
    const b = await listLayerSummary(store, topLayer("b", src("b", "#!/bin/sh\necho two\n", 2_000_000)));
    const c = await listLayerSummary(store, topLayer("c", src("c", "#!/bin/sh\necho one\n", 3_000_000)));
    assert.deepEqual(a.paths, ["scripts/containerd.sh", "scripts/init-kube.sh"]);
    assert.deepEqual(changedKeys(a.groups, b.groups), ["scripts/init-kube.sh"]);
    assert.deepEqual(changedKeys(a.groups, c.groups), []);
  });
});

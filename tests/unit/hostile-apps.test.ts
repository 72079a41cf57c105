/**
 * Hostile app names and app file names: a Config's appName may not lead out of the rootfs, and
 * names from an image (its files, its metadata) stay data in the launch commands on master0.
 * Expected outcomes come from what sh does with the command text.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { configTarget } from "../../provider/core/exec/templates";
import { buildImage } from "../../provider/core/image/builder";
import { imageFacts } from "../../provider/core/image/facts";
import { OciLayout } from "../../provider/core/image/layout";
import { inspectImage, readExtension } from "../../provider/core/image/store";
import { Annotations, MediaTypes, type Manifest } from "../../provider/core/image/types";
import { setLogSink } from "../../provider/core/log";
import { resolveLaunch } from "../../provider/core/plan/phases/apps";
import type { ImageFacts } from "../../provider/core/plan/types";
import { baseImage, clusterfile, spec } from "../fixtures/clusterfile/plan-world";

const HOSTILE = "../../../../../../../../etc";

describe("hostile app names: Config appName", () => {
  const text = `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: c1 }
spec:
  image: app:1
  hosts:
    - ips: [ 10.0.0.2 ]
      roles: [ master ]
---
apiVersion: sealer.io/v2
kind: Config
metadata: { name: cron }
spec:
  appName: "${HOSTILE}"
  path: cron.d/x
  data: "* * * * * root touch /PWNED"
`;

  it("a Clusterfile whose Config appName leaves application/apps/ is refused at load, naming file, line and field", () => {
    assert.throws(
      () => loadClusterfile(text, { file: "/tmp/my/Clusterfile" }),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(
          e.message,
          /\/tmp\/my\/Clusterfile:14 spec\.appName: app name "\.\.\/\.\.\/.*" is not valid/,
        );
        assert.doesNotMatch(e.message, /\n\s+at /);
        return true;
      },
    );
  });

  it("ordinary app names still load", () => {
    const { spec: s } = loadClusterfile(text.replace(`"${HOSTILE}"`, "web.v2_x-1"));
    assert.equal(s.configs[0]?.appName, "web.v2_x-1");
  });

  it("configTarget refuses a result outside the rootfs, naming the Config", () => {
    for (const appName of [HOSTILE, "../../..", "a/../../../..", "x/../../../../etc"])
      assert.throws(
        () => configTarget({ name: "cron", appName, path: "cron.d/x", data: "" }),
        (e: unknown) =>
          e instanceof UserError && /^Config cron: .*not inside the cluster rootfs/.test(e.message),
        appName,
      );
    assert.equal(
      configTarget({ name: "c", appName: "web", path: "etc/a.yaml", data: "" }),
      "application/apps/web/etc/a.yaml",
    );
    assert.equal(configTarget({ name: "c", path: "/etc/a.yaml", data: "" }), "etc/a.yaml");
  });
});

/** Runs each command with `sh -c` in `cwd`, with stub kubectl/helm/bash that log their argv. */
function runWithStubs(cwd: string, cmds: string[]): string[][] {
  const bin = path.join(cwd, ".stub-bin");
  const log = path.join(cwd, ".argv.log");
  fs.mkdirSync(bin, { recursive: true });
  for (const tool of ["kubectl", "helm", "bash"]) {
    const stub = path.join(bin, tool);
    fs.writeFileSync(
      stub,
      `#!/bin/sh\n{ printf '%s' "${tool}"; for a; do printf '\\t%s' "$a"; done; printf '\\n'; } >> "$ARGV_LOG"\n`,
    );
    fs.chmodSync(stub, 0o755);
  }
  fs.writeFileSync(log, "");
  for (const c of cmds)
    execFileSync("/bin/sh", ["-c", c], {
      cwd,
      env: { PATH: `${bin}:/usr/bin:/bin`, ARGV_LOG: log },
      stdio: ["ignore", "pipe", "pipe"],
    });
  return fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t"));
}

/** Every PWNED file under `dir`. */
function pwned(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => path.basename(f) === "PWNED");
}

describe("hostile app names: launch commands", function () {
  this.timeout(60_000);
  let tmp: string;
  let restore: ReturnType<typeof setLogSink> | undefined;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hostile-apps-"));
    restore = setLogSink({ write: () => undefined });
  });
  after(() => {
    if (restore) setLogSink(restore);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const HOSTILE_FILES = ["a$(touch PWNED).yaml", "my file.yaml", "b`touch PWNED`;x'y.yaml"];

  it("file names of a built image reach kubectl as one argument each and run nothing", async () => {
    const ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "web"), { recursive: true });
    fs.writeFileSync(path.join(ctx, "Kubefile"), 'FROM scratch\nAPP web local://web\nLAUNCH ["web"]\n');
    for (const f of [...HOSTILE_FILES, "plain.yaml"]) fs.writeFileSync(path.join(ctx, "web", f), "a: 1\n");
    const home = path.join(tmp, "home");
    await buildImage({ context: ctx, tag: "test/hostile-files:1", buildMode: "lite", home });
    const facts = await imageFacts(new OciLayout(path.join(home, "store")), "test/hostile-files:1");
    const { apps } = resolveLaunch(spec(clusterfile()), facts);
    const cmds = apps.flatMap((a) => a.cmds);
    assert.ok(
      cmds.includes("kubectl apply -f application/apps/web/plain.yaml"),
      "ordinary names read as before",
    );

    const run = path.join(tmp, "run");
    fs.mkdirSync(path.join(run, "application/apps/web"), { recursive: true });
    const argv = runWithStubs(run, cmds);
    assert.deepEqual(pwned(tmp), []);
    assert.deepEqual(
      argv.sort(),
      [...HOSTILE_FILES, "plain.yaml"]
        .map((f) => ["kubectl", "apply", "-f", `application/apps/web/${f}`])
        .sort(),
    );
  });

  it("helm and shell apps: names with spaces or $(...) stay single arguments", () => {
    const img: ImageFacts = baseImage({
      apps: [
        { name: "db x$(touch PWNED)", type: "helm", files: ["Chart.yaml"] },
        { name: "job", type: "shell", files: ["run $(touch PWNED).sh", "lib.txt"] },
      ],
    });
    const { apps } = resolveLaunch(
      spec(clusterfile({ extraSpec: '  appNames: [ "db x$(touch PWNED)", job ]\n' })),
      img,
    );
    const run = path.join(tmp, "run2");
    fs.mkdirSync(run, { recursive: true });
    const argv = runWithStubs(
      run,
      apps.flatMap((a) => a.cmds),
    );
    assert.deepEqual(pwned(tmp), []);
    assert.deepEqual(argv, [
      ["helm", "upgrade", "--install", "db x$(touch PWNED)", "application/apps/db x$(touch PWNED)"],
      ["bash", "application/apps/job/run $(touch PWNED).sh"],
    ]);
  });

  it("readExtension refuses an app name from image metadata that is not a valid app name", () => {
    const manifest = (ext: unknown): Manifest => ({
      schemaVersion: 2,
      mediaType: MediaTypes.manifest,
      config: { mediaType: MediaTypes.config, digest: `sha256:${"0".repeat(64)}`, size: 2 },
      layers: [],
      annotations: { [Annotations.sealerExtension]: JSON.stringify(ext) },
    });
    const ext = (name: string, launch: string[] = []) => ({
      type: "app-installer",
      applications: [{ name, type: "kube", files: ["a.yaml"] }],
      launch: { app_names: launch },
    });
    for (const [e, bad] of [
      [ext("x$(touch PWNED)"), "x$(touch PWNED)"],
      [ext("../../etc"), "../../etc"],
      [ext("web", ["web", "a b"]), "a b"],
    ] as const)
      assert.throws(
        () => readExtension(manifest(e), "evil/app:1"),
        (err: unknown) =>
          err instanceof UserError &&
          err.message.startsWith("image evil/app:1 names an app that cannot be used") &&
          err.message.includes(`"${bad}"`),
      );
    assert.equal(readExtension(manifest(ext("web", ["web"])), "ok:1")?.applications[0]?.name, "web");
  });

  it("an image in the store whose metadata names a hostile app is refused when read, naming the image", async () => {
    const home = path.join(tmp, "home");
    const layout = new OciLayout(path.join(home, "store"));
    const ctx = path.join(tmp, "ctx-ok");
    fs.mkdirSync(path.join(ctx, "web"), { recursive: true });
    fs.writeFileSync(path.join(ctx, "Kubefile"), 'FROM scratch\nAPP web local://web\nLAUNCH ["web"]\n');
    fs.writeFileSync(path.join(ctx, "web", "a.yaml"), "a: 1\n");
    await buildImage({ context: ctx, tag: "test/ok:1", buildMode: "lite", home });
    // What `sealer load` of a crafted archive would leave: same layers, edited metadata.
    const desc = await layout.resolve("test/ok:1");
    assert.ok(desc);
    const m = await layout.readJson<Manifest>(desc.digest);
    const e = JSON.parse(m.annotations?.[Annotations.sealerExtension] ?? "{}");
    e.applications[0].name = "x$(touch PWNED)";
    e.launch = { app_names: ["x$(touch PWNED)"] };
    m.annotations = { ...m.annotations, [Annotations.sealerExtension]: JSON.stringify(e) };
    await layout.setRef("evil/app:1", await layout.putJson(m, MediaTypes.manifest));
    await assert.rejects(
      imageFacts(layout, "evil/app:1"),
      (err: unknown) =>
        err instanceof UserError &&
        /^image \S*evil\/app:1 names an app that cannot be used: app name "x\$\(touch PWNED\)" is not valid/.test(
          err.message,
        ),
    );
  });
  it("a layer annotation that is not what we write is refused naming image, layer and annotation (no JS error text)", async () => {
    const home = path.join(tmp, "home");
    const layout = new OciLayout(path.join(home, "store"));
    const desc = await layout.resolve("test/ok:1");
    assert.ok(desc, "built by the test before");
    const m = await layout.readJson<Manifest>(desc.digest);
    for (const [key, value] of [
      [Annotations.layerPaths, "[not json"],
      [Annotations.layerPaths, '["ok", 5]'],
      [Annotations.layerGroups, '["a list"]'],
    ] as const) {
      const bad: Manifest = {
        ...m,
        layers: m.layers.map((l, i) =>
          i === 0 ? { ...l, annotations: { ...l.annotations, [key]: value } } : l,
        ),
      };
      await layout.setRef("evil/paths:1", await layout.putJson(bad, MediaTypes.manifest));
      for (const read of [
        () => imageFacts(layout, "evil/paths:1"),
        () => inspectImage(layout, "evil/paths:1"),
      ])
        await assert.rejects(read(), (err: unknown) => {
          assert.ok(err instanceof UserError, String(err));
          assert.match(
            err.message,
            new RegExp(
              `^image \\S*evil/paths:1, layer ${m.layers[0]!.digest.slice(0, 19)}: its ${key.replace(/\./g, "\\.")} annotation is not a JSON`,
            ),
          );
          assert.doesNotMatch(err.message, /Unexpected token|SyntaxError|TypeError/);
          return true;
        });
    }
  });
});

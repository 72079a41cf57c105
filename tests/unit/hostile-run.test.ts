/**
 * RUN executes on the build host: a base image must not be able to swap its interpreter or the
 * host's tools (bin/sh, bin/cp in the image), nor make the loader or shells run its code (ENV
 * LD_PRELOAD, BASH_ENV...). The image's own tools that the host lacks stay callable.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setLogSink } from "../../provider/core/log";
import { buildImage, isUnsafeRunEnv, runPath } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { materializeLayers } from "../../provider/core/image/materialize";
import { dataPaths } from "../../provider/core/paths";

let tmp: string;
let logs: string[] = [];
let restoreSink: ReturnType<typeof setLogSink> | undefined;

function write(dir: string, files: Record<string, string>, mode = 0o644): void {
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content, { mode });
  }
}

describe("build: RUN from a hostile base image", () => {
  // Inside the describe: a root-level hook would take the log sink of every other test file.
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-hostile-run-"));
    restoreSink = setLogSink({ write: (l) => logs.push(l) });
  });
  after(() => {
    if (restoreSink) setLogSink(restoreSink);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("uses the host's sh and cp, drops the image's loader/shell ENV, still finds image-only tools", async () => {
    const home = path.join(tmp, "home");
    const markers = path.join(tmp, "markers");
    fs.mkdirSync(markers);
    // On the host, outside any image: what BASH_ENV names.
    const bashEnvScript = path.join(tmp, "bash-env.sh");
    fs.writeFileSync(bashEnvScript, `echo sourced >> ${markers}/bash-env\n`);
    const marker = (name: string, real: string) =>
      `#!/bin/sh\necho ran >> ${markers}/${name}\nexec ${real} "$@"\n`;

    const base = path.join(tmp, "base");
    write(base, {
      Kubefile: `FROM scratch\nCOPY bin bin\nENV LD_PRELOAD=/nonexistent/libhostile.so BASH_ENV=${bashEnvScript} ENV=${bashEnvScript} PATH=/hostile KEEP=kept\n`,
    });
    write(
      base,
      {
        "bin/sh": marker("sh", "/bin/sh"),
        "bin/cp": marker("cp", "/bin/cp"),
        "bin/only-in-image": "#!/bin/sh\necho image tool ran\n",
      },
      0o755,
    );
    await buildImage({ context: base, tag: "hostile-base:1", buildMode: "lite", home });

    const hasBash = fs.existsSync("/bin/bash") || fs.existsSync("/usr/bin/bash");
    const child = path.join(tmp, "child");
    write(child, {
      Kubefile:
        "FROM hostile-base:1\n" +
        "RUN sh -c 'echo hello > f' && cp f g && only-in-image > o.txt && env > env.txt" +
        (hasBash ? " && bash -c 'echo via bash > b.txt'" : "") +
        "\n",
    });
    logs = [];
    const r = await buildImage({ context: child, tag: "derived:1", buildMode: "lite", home });

    assert.deepEqual(fs.readdirSync(markers), [], "no script of the image ran on the build host");
    assert.ok(!logs.some((l) => /ld\.so|cannot be preloaded/i.test(l)), logs.join("\n"));
    assert.ok(
      logs.some((l) =>
        l.includes("RUN does not get the image's ENV BASH_ENV, ENV, LD_PRELOAD, PATH on the build host"),
      ),
      logs.join("\n"),
    );

    const out = path.join(tmp, "out");
    await materializeLayers(
      new OciLayout(dataPaths.store(home)),
      r.layers.map((l) => l.digest),
      out,
    );
    const read = (f: string) => fs.readFileSync(path.join(out, f), "utf8");
    assert.equal(read("f"), "hello\n");
    assert.equal(read("g"), "hello\n");
    assert.equal(read("o.txt"), "image tool ran\n");
    if (hasBash) assert.equal(read("b.txt"), "via bash\n");
    const env = read("env.txt");
    assert.match(env, /^KEEP=kept$/m);
    assert.doesNotMatch(env, /^(LD_PRELOAD|BASH_ENV|ENV)=.*(hostile|bash-env)/m);
    const pathLine = env.split("\n").find((l) => l.startsWith("PATH=")) ?? "";
    assert.ok(!pathLine.split(":").includes("/hostile"), pathLine);
    assert.ok(pathLine.endsWith("/bin"), pathLine);
    assert.ok(pathLine.split(":").pop()?.includes("rootfs-"), `the image's bin/ comes last: ${pathLine}`);
    // The image keeps its Env: only RUN on the build host goes without it.
    const cfg = JSON.parse(
      fs.readFileSync(
        path.join(dataPaths.store(home), "blobs", ...r.platforms[0]!.configDigest.split(":")),
        "utf8",
      ),
    ) as { config?: { Env?: string[] } };
    assert.ok(cfg.config?.Env?.includes("LD_PRELOAD=/nonexistent/libhostile.so"));
  });

  it("runPath keeps only absolute host entries, then the rootfs bin", () => {
    assert.equal(runPath("/r", "::/usr/bin:.:rel/dir:/bin:"), "/usr/bin:/bin:/r/bin");
    assert.equal(runPath("/r", ""), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/r/bin");
  });

  it("withholds loader, shell and interpreter start-up variables only", () => {
    for (const n of ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "BASH_ENV", "ENV"])
      assert.ok(isUnsafeRunEnv(n), n);
    for (const n of ["PATH", "CDPATH", "IFS", "BASH_FUNC_cp%%", "NODE_OPTIONS", "PYTHONPATH", "GCONV_PATH"])
      assert.ok(isUnsafeRunEnv(n), n);
    for (const n of ["HOME", "KubeVersion", "ARCH", "HTTP_PROXY", "MY_LD_PRELOAD", "ENVIRONMENT"])
      assert.ok(!isUnsafeRunEnv(n), n);
  });
});

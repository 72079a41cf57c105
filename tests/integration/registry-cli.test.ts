/** `sealer login/logout/push/pull` as a user runs them, against real docker-registry instances. */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { OciLayout } from "../../provider/core/image/layout";
import { dataPaths } from "../../provider/core/paths";
import {
  TestRegistry,
  makeTestCa,
  makeTestImage,
  repoRoot,
  startRegistry,
  tempDir,
} from "../harness/registry";

function sealer(
  home: string,
  args: string[],
  input?: string,
): { code: number; stdout: string; stderr: string } {
  const ts = __filename.endsWith(".ts");
  const main = ts
    ? path.join(repoRoot(), "provider/cli/main.ts")
    : path.join(repoRoot(), "dist/provider/cli/main.js");
  // From sources (tsx), main.ts's require of the package.json that sits next to dist/ needs a nudge.
  const prelude = ts
    ? `const M=require("module");const o=M._resolveFilename;M._resolveFilename=function(r,...a){if(r.endsWith("/package.json"))return ${JSON.stringify(path.join(repoRoot(), "package.json"))};return o.call(this,r,...a)};`
    : "";
  const r = spawnSync(
    process.execPath,
    [
      ...(ts ? ["--require", "tsx/cjs"] : []),
      "-e",
      `${prelude}require(${JSON.stringify(main)}).main(["node","sealer",...process.argv.slice(1)])`,
      ...args,
    ],
    {
      cwd: repoRoot(),
      env: { ...process.env, SEALER_HOME: home, DOCKER_CONFIG: path.join(home, "no-docker"), CI: "true" },
      input: input ?? "",
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("sealer login/logout/push/pull (CLI)", function () {
  this.timeout(120_000);
  let work: string;
  let home: string;
  let reg: TestRegistry;
  let tlsReg: TestRegistry;

  before(async () => {
    work = tempDir("regcli");
    home = path.join(work, "home");
    reg = await startRegistry({ htpasswd: { carol: "pa55-word" } });
    tlsReg = await startRegistry({ tls: makeTestCa(path.join(work, "ca")) });
    await makeTestImage(new OciLayout(dataPaths.store(home)), `${reg.host}/team/cli:1`, { layers: [3000] });
  });
  after(async () => {
    await reg?.stop();
    await tlsReg?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("push without login names the login command", () => {
    const r = sealer(home, ["push", `${reg.host}/team/cli:1`]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(`authentication required for ${reg.host}/team/cli — run sealer login ${reg.host}`),
    );
  });

  it("login refuses a wrong password and saves nothing", () => {
    const r = sealer(home, ["login", reg.host, "-u", "carol", "--password-stdin"], "wrong-password\n");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /login to .* failed: the registry rejected the credentials for "carol"/);
    assert.equal(fs.existsSync(dataPaths.auth(home)), false);
  });

  it("login --password-stdin, push, pull --json, logout", () => {
    const l = sealer(home, ["login", reg.host, "-u", "carol", "--password-stdin"], "pa55-word\n");
    assert.equal(l.code, 0, l.stderr);
    assert.equal(fs.statSync(dataPaths.auth(home)).mode & 0o777, 0o600);
    assert.doesNotMatch(l.stderr, /pa55-word/);
    const p = sealer(home, ["push", `${reg.host}/team/cli:1`, "--json"]);
    assert.equal(p.code, 0, p.stderr);
    const pushed = JSON.parse(p.stdout) as { digest: string; blobsUploaded: number };
    assert.equal(pushed.blobsUploaded, 2);
    const home2 = path.join(work, "home2");
    fs.mkdirSync(home2, { recursive: true });
    fs.copyFileSync(dataPaths.auth(home), dataPaths.auth(home2));
    const pl = sealer(home2, ["pull", `${reg.host}/team/cli:1`, "--json"]);
    assert.equal(pl.code, 0, pl.stderr);
    assert.equal((JSON.parse(pl.stdout) as { digest: string }).digest, pushed.digest);
    const o = sealer(home, ["logout", reg.host]);
    assert.equal(o.code, 0);
    assert.match(o.stderr, /removed credentials for/);
    assert.equal(sealer(home, ["push", `${reg.host}/team/cli:1`]).code, 2);
  });

  it("login --ca-file persists the registry's CA for later pushes", () => {
    const bad = sealer(home, ["push", `${tlsReg.host}/t/x:1`, "--source", `${reg.host}/team/cli:1`]);
    assert.match(bad.stderr, /TLS: certificate signed by unknown authority/);
    const l = sealer(home, ["login", tlsReg.host, "--ca-file", path.join(work, "ca", "ca.crt")]);
    assert.equal(l.code, 0, l.stderr);
    const p = sealer(home, ["push", `${tlsReg.host}/t/x:1`, "--source", `${reg.host}/team/cli:1`]);
    assert.equal(p.code, 0, p.stderr);
  });
});

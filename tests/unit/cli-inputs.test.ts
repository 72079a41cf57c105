/**
 * What the CLI says when its inputs are wrong in ways an audit tried: a registry that refuses
 * the connection or is not a host name, an empty --password-stdin, a damaged store index, and
 * files that are not regular files (/dev/zero, a directory) given as a key or an image list.
 * Never Node's own error text ("ECONNREFUSED", "Invalid URL", "EISDIR", "Unexpected token"),
 * never a hang or a crash.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { saveClusterfile } from "../../provider/core/state";
import { runSealer, runSealerStdin } from "../harness/cli";

const RAW = /ECONNREFUSED|Invalid URL|EISDIR|ENOENT|Unexpected token|TypeError|is not a function|at Object\./;

describe("CLI: wrong inputs get words, not Node's errors", function () {
  this.timeout(120_000);
  let dir: string;
  let home: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-cli-inputs-"));
    home = path.join(dir, "home");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const failsWith = async (args: string[], re: RegExp, stdin?: string, h = home) => {
    const r = await runSealerStdin(h, stdin ?? "", ...args);
    const out = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, out);
    assert.match(out, re);
    assert.doesNotMatch(out, RAW);
  };

  it("login: a refused connection, a name that is no host, a bad port, an empty --password-stdin", async () => {
    await failsWith(["login", "127.0.0.1:1"], /login in 127\.0\.0\.1:1: the connection was refused/);
    for (const bad of ["bad host!!", "127.0.0.1:abc", "127.0.0.1:70000"])
      await failsWith(["login", bad], /is not a registry host \(expected e\.g\./);
    await failsWith(
      ["login", "127.0.0.1:1", "-u", "u", "--password-stdin"],
      /--password-stdin read no password/,
      "",
    );
  });

  it("whole-number flags refuse what is not one (instead of NaN or a silent clamp)", async () => {
    for (const v of ["abc", "-1", "1e23", "2.5", "0"])
      await failsWith(
        ["apply", "-f", path.join(dir, "none"), `--concurrency=${v}`],
        /--concurrency: ".*" must be a whole number from 1 to 1024/,
      );
    await failsWith(
      ["nodes", "create", "--count", "abc", "--name", "x"],
      /--count: "abc" must be a whole number from 1 to 200/,
    );
  });

  it("tag refuses a digest as the new name; tagging with the name it has changes nothing", async () => {
    const ctx = path.join(dir, "ctx-tag");
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nCOPY a a\n");
    fs.writeFileSync(path.join(ctx, "a"), "a");
    assert.equal((await runSealer(home, "build", "-t", "t:1", "--build-mode", "lite", ctx)).code, 0);
    await failsWith(
      ["tag", "t:1", `y@sha256:${"0".repeat(64)}`],
      /the new name y@sha256:0+ holds a digest; give a tag instead/,
    );
    const before = (await runSealer(home, "images", "--json")).stdout;
    assert.equal((await runSealer(home, "tag", "t:1", "t:1")).code, 0);
    assert.equal((await runSealer(home, "images", "--json")).stdout, before, "same name: nothing changed");
  });

  it("rmi refuses an image a recorded cluster uses, unless -f", async () => {
    // t:1 was built by the test before; a cluster recorded as applied with it.
    const spec = loadClusterfile(
      "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: { name: prod }\nspec:\n  image: t:1\n  ssh: { passwd: pw-1234 }\n  hosts:\n    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n",
    ).spec;
    await saveClusterfile(spec, home);
    await failsWith(
      ["rmi", "t:1"],
      /docker\.io\/library\/t:1 is used by the recorded cluster prod: its next apply needs the image; use -f/,
    );
    const r = await runSealer(home, "rmi", "-f", "t:1");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Untagged: docker\.io\/library\/t:1/);
  });

  it("a damaged store index is named, whatever the command", async () => {
    const h = path.join(dir, "damaged");
    fs.mkdirSync(path.join(h, "store"), { recursive: true });
    fs.writeFileSync(path.join(h, "store", "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    for (const text of ["{bad", '{"manifests":5}']) {
      fs.writeFileSync(path.join(h, "store", "index.json"), text);
      for (const args of [["images"], ["rmi", "x:1"]])
        await failsWith(args, /the image store's index .*index\.json is damaged/, undefined, h);
    }
  });

  it("a key or an image list that is not a regular file", async () => {
    const ctx = path.join(dir, "ctx");
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nCOPY a a\n");
    fs.writeFileSync(path.join(ctx, "a"), "a");
    for (const f of ["/dev/zero", dir])
      await failsWith(
        ["build", "-t", "x:1", "--build-mode", "full", "--ignored-image-list", f, ctx],
        /--ignored-image-list file .* is not a regular file/,
      );
    // The key is read before any host is dialled (127.0.0.2: loopback, nothing listens).
    assert.equal((await runSealer(home, "build", "-t", "x:1", "--build-mode", "lite", ctx)).code, 0);
    for (const f of ["/dev/zero", dir])
      await failsWith(
        ["run", "x:1", "-m", "127.0.0.2", "--pk", f],
        /SSH private key .* is not a regular file/,
      );
  });
});

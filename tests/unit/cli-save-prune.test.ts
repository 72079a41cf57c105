import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { OciLayout } from "../../provider/core/image/layout";
import { pruneStore, takeLease } from "../../provider/core/image/store";
import { MediaTypes } from "../../provider/core/image/types";
import { packageRoot } from "../../provider/core/package-info";

const sealer = path.join(packageRoot(__dirname), "bin", "sealer.js");

/** A failure the user sees: no stack, no bare Node error code, and it names -o. */
function assertPlainRefusal(r: ReturnType<typeof spawnSync>, output: string): string {
  const err = String(r.stderr);
  assert.notEqual(r.status, 0, `save should fail: ${err}`);
  assert.doesNotMatch(err, /^\s+at /m, `no stack trace: ${err}`);
  assert.doesNotMatch(err, /\b(ENOENT|EACCES|EISDIR|ENOTDIR|EPERM|EFBIG)\b/, `no raw error code: ${err}`);
  assert.doesNotMatch(err, /Emitted 'error' event|Unhandled/, err);
  assert.ok(err.includes(`-o ${output}`), `names -o ${output}: ${err}`);
  return err;
}

/** Temp files save left next to `file`. */
function leftovers(file: string): string[] {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.startsWith(`.${path.basename(file)}.tmp-`));
}

describe("sealer save -o: refuses unusable outputs in plain words, leaves nothing behind", function () {
  this.timeout(120_000);
  let root: string;
  let home: string;
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [sealer, ...args], {
      env: { ...process.env, SEALER_HOME: home, ...env },
      encoding: "utf8",
      timeout: 60_000,
    });

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-save-out-"));
    home = path.join(root, "home");
    const ctx = path.join(root, "ctx");
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, "a.txt"), "hello\n");
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nCOPY a.txt /a.txt\n");
    const r = run(["build", "--build-mode", "lite", "-t", "tiny:1", ctx]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("-o a directory", () => {
    const out = path.join(root, "outdir");
    fs.mkdirSync(out);
    const err = assertPlainRefusal(run(["save", "-o", out, "tiny:1"]), out);
    assert.match(err, /is a directory; give the path of the archive file/);
    assert.ok(fs.statSync(out).isDirectory());
    assert.deepEqual(fs.readdirSync(out), []);
    assert.deepEqual(leftovers(out), []);
  });

  it("-o a named pipe (and a symbolic link to one): not opened, not replaced", () => {
    const fifo = path.join(root, "pipe");
    execFileSync("mkfifo", [fifo]);
    const link = path.join(root, "pipe-link");
    fs.symlinkSync(fifo, link);
    for (const out of [fifo, link]) {
      const err = assertPlainRefusal(run(["save", "-o", out, "tiny:1"]), out);
      assert.match(err, /is a named pipe, not a regular file/);
      assert.deepEqual(leftovers(out), []);
    }
    assert.ok(fs.lstatSync(fifo).isFIFO(), "the pipe is still a pipe");
    assert.ok(fs.lstatSync(link).isSymbolicLink(), "the link is still a link");
  });

  it("-o under a missing directory: refused, the directory is not created", () => {
    const out = path.join(root, "missing", "deeper", "a.tar");
    const err = assertPlainRefusal(run(["save", "-o", out, "tiny:1"]), out);
    assert.match(err, /does not exist; create it first \(mkdir -p /);
    assert.equal(fs.existsSync(path.join(root, "missing")), false);
  });

  it("-o in a directory this user cannot write (as nobody)", function () {
    const skip = (why: string) => {
      if (this.test) this.test.title += ` (skipped: ${why})`;
      this.skip();
    };
    if (process.getuid?.() !== 0) skip("not root, so the CLI cannot run as nobody");
    if (spawnSync("runuser", ["--help"]).error) skip("runuser is not installed");
    // nobody needs its own data directory and a path to the CLI and to it.
    fs.chmodSync(root, 0o755);
    const nbHome = path.join(root, "nobody-home");
    execFileSync("cp", ["-a", home, nbHome]);
    execFileSync("chown", ["-R", "nobody", nbHome]);
    const dir = path.join(root, "root-only");
    fs.mkdirSync(dir, { mode: 0o755 });
    const out = path.join(dir, "a.tar");
    const r = spawnSync(
      "runuser",
      [
        "-u",
        "nobody",
        "--",
        "env",
        `SEALER_HOME=${nbHome}`,
        process.execPath,
        sealer,
        "save",
        "-o",
        out,
        "tiny:1",
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    const err = assertPlainRefusal(r, out);
    assert.match(err, /permission denied: this user cannot write in /);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("a write that fails midway (file size limit): plain words, no temp file, old file kept", function () {
    if (spawnSync("bash", ["-c", "true"]).error) {
      if (this.test) this.test.title += " (skipped: bash is not installed)";
      this.skip();
    }
    const out = path.join(root, "limited.tar");
    fs.writeFileSync(out, "old\n");
    // SIGXFSZ ignored: a write past `ulimit -f` (1 KiB blocks) then fails with EFBIG.
    const r = spawnSync(
      "bash",
      [
        "-c",
        'trap "" XFSZ; ulimit -f 2; exec "$0" "$@"',
        process.execPath,
        sealer,
        "save",
        "-o",
        out,
        "tiny:1",
      ],
      { env: { ...process.env, SEALER_HOME: home }, encoding: "utf8", timeout: 60_000 },
    );
    const err = assertPlainRefusal(r, out);
    assert.match(err, /ulimit -f/);
    assert.equal(fs.readFileSync(out, "utf8"), "old\n");
    assert.deepEqual(leftovers(out), []);
  });

  it("an existing regular file is replaced (also through a symbolic link, which stays)", () => {
    const out = path.join(root, "existing.tar");
    fs.writeFileSync(out, "old\n");
    const r = run(["save", "-o", out, "tiny:1"]);
    assert.equal(r.status, 0, r.stderr);
    const tar = fs.readFileSync(out);
    assert.ok(tar.length > 1024 && tar.subarray(0, 6).toString() === "blobs/", "a tar of the layout");
    assert.deepEqual(leftovers(out), []);

    const link = path.join(root, "existing-link.tar");
    fs.symlinkSync("existing.tar", link);
    fs.writeFileSync(out, "old again\n");
    const viaLink = run(["save", "-o", link, "tiny:1"]);
    assert.equal(viaLink.status, 0, viaLink.stderr);
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.deepEqual(fs.readFileSync(out), tar);
  });
});

describe("sealer prune against a build that reuses a stored blob", () => {
  let root: string;
  let layout: OciLayout;
  const HOUR_AGO = new Date(Date.now() - 3_600_000);

  /** A blob as an earlier, since removed, image left it: unreferenced and old. */
  async function oldBlob(content: string): Promise<string> {
    const d = await layout.putBlob(content, MediaTypes.layerGzip);
    fs.utimesSync(layout.blobPath(d.digest), HOUR_AGO, HOUR_AGO);
    return d.digest;
  }

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-prune-race-"));
    layout = new OciLayout(path.join(root, "store"));
    await layout.init();
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("keeps a blob that putBlob / putBlobFile found already stored after the lease started", async () => {
    const reused = await oldBlob("reused by putBlob");
    const reusedFile = await oldBlob("reused by putBlobFile");
    const garbage = await oldBlob("nobody wants this");
    const lease = await takeLease(layout);
    try {
      await layout.putBlob("reused by putBlob", MediaTypes.layerGzip);
      const file = path.join(root, "layer.tgz");
      fs.writeFileSync(file, "reused by putBlobFile");
      assert.equal((await layout.putBlobFile(file)).digest, reusedFile);
      assert.equal(fs.existsSync(file), false, "the source file is consumed");
      const r = await pruneStore(layout);
      assert.equal(r.blobs, 1);
      assert.equal(await layout.hasBlob(reused), true);
      assert.equal(await layout.hasBlob(reusedFile), true);
      assert.equal(await layout.hasBlob(garbage), false);
    } finally {
      await lease.release();
    }
  });

  it("a build that takes its lease and reuses the blob after prune looked at the leases: kept", async () => {
    const reused = await oldBlob("reused while prune runs");
    let lease: Awaited<ReturnType<typeof takeLease>> | undefined;
    const r = await pruneStore(layout, {
      async checked(digest) {
        if (digest !== reused) return;
        lease = await takeLease(layout);
        await layout.putBlob("reused while prune runs", MediaTypes.layerGzip);
      },
    });
    assert.deepEqual(r, { blobs: 0, bytes: 0 });
    assert.equal(await layout.hasBlob(reused), true);
    assert.equal((await layout.readBlob(reused)).toString(), "reused while prune runs");
    await lease?.release();
    assert.deepEqual(fs.readdirSync(layout.tmpDir()), [], "prune left nothing in tmp");
    // Without the build, the blob is garbage again.
    assert.equal((await pruneStore(layout)).blobs, 1);
    assert.equal(await layout.hasBlob(reused), false);
  });

  it("a build that reuses the blob while prune has it moved aside writes it again: kept", async () => {
    const reused = await oldBlob("reused after the move");
    let lease: Awaited<ReturnType<typeof takeLease>> | undefined;
    let sawMissing = false;
    await pruneStore(layout, {
      async moved(digest) {
        if (digest !== reused) return;
        sawMissing = !(await layout.hasBlob(reused));
        lease = await takeLease(layout);
        await layout.putBlob("reused after the move", MediaTypes.layerGzip);
      },
    });
    assert.ok(sawMissing, "the interleaving under test happened");
    assert.equal((await layout.readBlob(reused)).toString(), "reused after the move");
    await lease?.release();
  });

  it("never considers a blob an index entry references, however old", async () => {
    const config = await layout.putJson({ rootfs: { type: "layers", diff_ids: [] } }, MediaTypes.config);
    const layer = await layout.putBlob("referenced layer", MediaTypes.layerGzip);
    const manifest = await layout.putJson(
      { schemaVersion: 2, mediaType: MediaTypes.manifest, config, layers: [layer] },
      MediaTypes.manifest,
    );
    await layout.setRef("kept:1", manifest);
    for (const d of [config, layer, manifest]) fs.utimesSync(layout.blobPath(d.digest), HOUR_AGO, HOUR_AGO);
    const garbage = await oldBlob("garbage");
    const considered: string[] = [];
    const r = await pruneStore(layout, {
      checked: async (d) => {
        considered.push(d);
      },
    });
    assert.deepEqual(considered, [garbage]);
    assert.equal(r.blobs, 1);
    for (const d of [config, layer, manifest]) assert.equal(await layout.hasBlob(d.digest), true);
  });
});

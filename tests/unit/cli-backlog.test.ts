/**
 * CLI defects found in review: commander's usage errors and their exit codes, `load -t` checked
 * before the archive, `sealer pull` under a store lease, what an interrupted long command says,
 * and `sealer exec` naming a host once.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { hostOutputText } from "../../provider/cli/commands/lifecycle";
import { buildProgram } from "../../provider/cli/main";
import { OciLayout } from "../../provider/core/image/layout";
import { pruneStore } from "../../provider/core/image/store";
import { MediaTypes, type Descriptor, type Manifest } from "../../provider/core/image/types";
import { execOnCluster } from "../../provider/core/lifecycle/exec";
import { packageRoot, packageVersion } from "../../provider/core/package-info";
import { captureStdout } from "../harness/cli";
import { setEnv } from "../harness/env";
import { freePort, makeTestImage, tarOf } from "../harness/registry";

const sealer = path.join(packageRoot(__dirname), "bin", "sealer.js");
const HOUR_AGO = new Date(Date.now() - 3_600_000);

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-cli-backlog-"));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function run(args: string[], home = path.join(root, "home")) {
  return spawnSync(process.execPath, [sealer, ...args], {
    env: { ...process.env, SEALER_HOME: home, DOCKER_CONFIG: path.join(root, "docker") },
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** Resolves once `cond` holds, checking every 20 ms: waits for something a process does, not for time. */
async function until(cond: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("sealer usage errors: exit 2 like other bad input; 1 under plan --detailed-exitcode", function () {
  this.timeout(60_000);
  const cases: Array<[string, string[], RegExp]> = [
    ["an unknown option", ["images", "--bogus"], /^error: unknown option '--bogus'/],
    ["a missing argument", ["tag", "only-one:1"], /^error: missing required argument 'target'/],
    ["a missing required option", ["save", "app:1"], /^error: required option '-o, --output <file>'/],
    ["an unknown command", ["frob"], /^error: unknown command 'frob'/],
    [
      "a bad option argument",
      ["run", "app:1", "--distribute", "carrier-pigeon"],
      /argument 'carrier-pigeon' is invalid/,
    ],
    ["an option without its value", ["plan", "-f"], /argument missing/],
  ];
  for (const [what, args, message] of cases)
    it(`${what} (sealer ${args.join(" ")}): exit 2, commander's message and the usage`, () => {
      const r = run(args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Usage: sealer/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    });

  it("no command at all, or a command group without its verb: the usage, exit 2", () => {
    for (const args of [[], ["nodes"]]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^Usage: sealer/);
    }
  });

  it("plan --detailed-exitcode: a usage error exits 1 (2 would read as 'changes pending'), wherever the flag stands", () => {
    for (const args of [
      ["plan", "--detailed-exitcode", "--bogus"],
      ["plan", "--bogus", "--detailed-exitcode"],
      ["plan", "--detailed-exitcode", "-f"],
    ]) {
      const r = run(args);
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^error: /);
    }
    assert.equal(run(["plan", "--bogus"]).status, 2, "without the flag: 2, as any bad input");
  });

  it("--help and --version still print to stdout and exit 0", () => {
    const version = run(["--version"]);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${packageVersion()}\n`);
    assert.equal(version.stderr, "");
    for (const args of [["--help"], ["help"], ["load", "--help"], ["help", "plan"]]) {
      const r = run(args);
      assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: sealer/);
      assert.equal(r.stderr, "");
    }
  });
});

describe("sealer load -t: a bad name is the flag's problem, found before the archive is read", function () {
  this.timeout(60_000);

  it("names -t and what is wrong with the value, whatever the archive", () => {
    const garbage = path.join(root, "garbage.tar");
    fs.writeFileSync(garbage, "not an archive");
    const fifo = path.join(root, "nobody-writes");
    execFileSync("mkfifo", [fifo]);
    const home = path.join(root, "load-t-home");
    // A missing file, a file that is no archive, and a named pipe nobody writes to (reading it
    // would wait --fifo-wait seconds): the answer is the same, at once.
    for (const input of [path.join(root, "missing.tar"), garbage, fifo]) {
      const r = run(["load", "-i", input, "-t", "Bad Name:1", "--fifo-wait", "60"], home);
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        /^sealer: -t\/--tag "Bad Name:1" is not a usable image name: repository names are lowercase .*; give NAME:TAG/,
      );
      assert.doesNotMatch(
        r.stderr,
        /archive|garbage|missing\.tar|nobody-writes/,
        "the archive is not blamed",
      );
    }
    const digest = run(["load", "-i", garbage, "-t", `app@sha256:${"0".repeat(64)}`], home);
    assert.equal(digest.status, 2, digest.stderr);
    assert.match(digest.stderr, /^sealer: -t\/--tag "app@sha256:0+" holds a digest.*give NAME:TAG/);
    assert.equal(fs.existsSync(path.join(home, "store", "index.json")), false, "the store was not touched");
  });

  it("a good -t still lets the archive's own problem be reported", () => {
    const garbage = path.join(root, "garbage2.tar");
    fs.writeFileSync(garbage, "not an archive");
    const r = run(["load", "-i", garbage, "-t", "team/app:1"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /garbage2\.tar is not a usable OCI archive/);
  });
});

/**
 * A loopback registry serving `manifests` (by tag) and the blobs of `source`. `blob` answers a
 * blob request instead of the plain answer when it returns true.
 */
async function serveImages(
  source: OciLayout,
  manifests: Record<string, Descriptor>,
  blob: (digest: string, res: http.ServerResponse, bytes: Buffer) => Promise<boolean> = async () => false,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.url === "/v2/") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end("{}");
      }
      const m = /^\/v2\/.+\/(manifests|blobs)\/([^/]+)$/.exec(req.url ?? "");
      const d = m?.[1] === "manifests" ? (manifests[m[2] as string] ?? { digest: m[2] }) : { digest: m?.[2] };
      if (!m || !d.digest?.startsWith("sha256:") || !(await source.hasBlob(d.digest))) {
        res.writeHead(404, { "content-type": "application/json" });
        return res.end(JSON.stringify({ errors: [{ code: "NOT_FOUND", message: "not here" }] }));
      }
      const bytes = await source.readBlob(d.digest);
      if (m[1] === "blobs" && (await blob(d.digest, res, bytes))) return;
      res.writeHead(200, {
        "content-type": m[1] === "manifests" ? MediaTypes.manifest : "application/octet-stream",
        "content-length": bytes.length,
        "docker-content-digest": d.digest,
      });
      res.end(bytes);
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("sealer pull holds a store lease, as a build does", function () {
  this.timeout(60_000);

  it("a prune between the pull's blobs and its reference keeps every blob the pull stored or found stored", async () => {
    const home = path.join(root, "lease-home");
    fs.mkdirSync(home, { mode: 0o700 });
    const store = new OciLayout(path.join(home, "store"));
    const source = new OciLayout(path.join(root, "lease-source"));
    const image = await makeTestImage(source, undefined, { layers: [4096, 4096] });
    const manifest = await source.readJson<Manifest>(image.digest);
    const [reused, last] = manifest.layers as [Descriptor, Descriptor];
    // The first layer is already stored, left by an image removed since: unreferenced and old,
    // like the garbage blob beside it, which prune may free.
    await store.init();
    await store.putBlob(await source.readBlob(reused.digest), reused.mediaType);
    const garbage = await store.putBlob("nobody wants this", MediaTypes.layerGzip);
    for (const d of [reused.digest, garbage.digest]) fs.utimesSync(store.blobPath(d), HOUR_AGO, HOUR_AGO);

    // Prune runs while the pull waits for its last layer: the config is downloaded by then
    // and the first layer found stored, and no reference names them yet.
    const considered: string[] = [];
    let pruned: { blobs: number } | undefined;
    const registry = await serveImages(source, { "1": image }, async (digest) => {
      if (digest !== last.digest) return false;
      await until(
        () => fs.existsSync(store.blobPath(manifest.config.digest)),
        "the config blob to be stored",
      );
      pruned = await pruneStore(store, {
        checked: async (d) => void considered.push(d),
      });
      return false;
    });
    const restore = setEnv({ SEALER_HOME: home, DOCKER_CONFIG: path.join(root, "docker") });
    try {
      await captureStdout(() =>
        buildProgram()
          .exitOverride()
          .parseAsync(["node", "sealer", "pull", `127.0.0.1:${registry.port}/team/app:1`]),
      );
    } finally {
      restore();
      await registry.close();
    }
    assert.deepEqual(considered, [garbage.digest], "prune looked at the garbage blob only");
    assert.equal(pruned?.blobs, 1);
    for (const d of [image.digest, manifest.config.digest, reused.digest, last.digest])
      assert.equal(await store.hasBlob(d), true, `${d} is still stored`);
    assert.equal((await store.resolve(`127.0.0.1:${registry.port}/team/app:1`))?.digest, image.digest);
    assert.deepEqual(
      fs.readdirSync(store.tmpDir()).filter((n) => n.startsWith("lease-")),
      [],
      "the lease is released",
    );
  });
});

/**
 * `sealer ARGS` as a child of sh, as a user's shell runs it: resolves its pid (to signal it) and
 * the exit status the shell reports for it.
 */
function startInShell(
  home: string,
  args: string[],
): { pid: Promise<number>; status: Promise<number>; stderr: () => string } {
  const child = spawn(
    "sh",
    [
      "-c",
      '"$@" & echo "sealer-pid $!" >&2; wait $!; echo "sealer-status $?" >&2',
      "sh",
      process.execPath,
      sealer,
      ...args,
    ],
    {
      env: { ...process.env, SEALER_HOME: home, DOCKER_CONFIG: path.join(root, "docker") },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  child.stderr.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const field = (name: string) =>
    new Promise<number>((resolve, reject) => {
      const look = () => {
        const m = new RegExp(`^${name} (\\d+)$`, "m").exec(err);
        if (m) resolve(Number(m[1]));
        return m !== null;
      };
      const onData = () => {
        if (look()) child.stderr.off("data", onData);
      };
      child.stderr.on("data", onData);
      child.on("close", () => {
        if (!look()) reject(new Error(`sh ended without "${name}": ${err}`));
      });
    });
  return { pid: field("sealer-pid"), status: field("sealer-status"), stderr: () => err };
}

/** sealer's own stderr lines (without the shell's). */
function sealerLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l && !/^sealer-(pid|status) /.test(l));
}

describe("a long command stopped by SIGINT / SIGTERM says so, dies of the signal, and leaves only what it says", function () {
  this.timeout(120_000);

  it("pull + SIGINT: one line, shell status 130, no reference, no temp entry but the resumable partial blob", async () => {
    const home = path.join(root, "sigint-home");
    const store = new OciLayout(path.join(home, "store"));
    const source = new OciLayout(path.join(root, "sigint-source"));
    const image = await makeTestImage(source, undefined, { layers: [3 << 20], gzipLevel: 0 });
    const layer = (await source.readJson<Manifest>(image.digest)).layers[0] as Descriptor;
    // The layer's answer stops half-way and stays open: the pull is busy downloading it.
    let halfSent = false;
    const registry = await serveImages(source, { "1": image }, async (digest, res, bytes) => {
      if (digest !== layer.digest) return false;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length });
      res.write(bytes.subarray(0, bytes.length >> 1), () => {
        halfSent = true;
      });
      return true;
    });
    try {
      const p = startInShell(home, ["pull", `127.0.0.1:${registry.port}/team/app:1`]);
      const pid = await p.pid;
      const partial = path.join(store.tmpDir(), `pull-${layer.digest.slice(7)}.partial`);
      await until(
        () => halfSent && fs.existsSync(partial) && fs.statSync(partial).size > 0,
        "the partial blob",
      );
      process.kill(pid, "SIGINT");
      assert.equal(await p.status, 130, p.stderr());
      const lines = sealerLines(p.stderr());
      assert.equal(lines.filter((l) => l.startsWith("sealer: interrupted")).length, 1, p.stderr());
      assert.match(
        lines.join("\n"),
        /^sealer: interrupted \(SIGINT\) during pull; the image is named only once all its blobs are stored, so no image was added .*a partly downloaded blob stays in the store's tmp\/ so the next pull resumes it$/m,
      );
      assert.doesNotMatch(p.stderr(), /^\s+at |Error:/m, "no stack, no JavaScript error text");
      assert.deepEqual((await store.readIndex()).manifests, [], "no reference was set");
      // What the line says stays: the partial blob and the lock of its download (a dead pid's
      // lock, taken over by the next pull). The lease and any temp blob file are gone.
      assert.deepEqual(fs.readdirSync(store.tmpDir()).sort(), [
        path.basename(partial),
        `${path.basename(partial)}.lock`,
      ]);
      for (const hex of fs.readdirSync(path.join(store.root, "blobs", "sha256")))
        assert.equal(
          crypto
            .createHash("sha256")
            .update(fs.readFileSync(path.join(store.root, "blobs", "sha256", hex)))
            .digest("hex"),
          hex,
          "only whole, verified blobs are in the store",
        );
    } finally {
      await registry.close();
    }
  });

  it("load + SIGTERM: one line, shell status 143, staging removed, store unchanged", async () => {
    const home = path.join(root, "sigterm-home");
    const fifo = path.join(root, "load-pipe");
    execFileSync("mkfifo", [fifo]);
    const p = startInShell(home, ["load", "-i", fifo]);
    const pid = await p.pid;
    // The start of an archive: one blob entry, cut short; the writer stays open, so load waits
    // in the middle of that blob.
    const content = crypto.randomBytes(1 << 20);
    const hex = crypto.createHash("sha256").update(content).digest("hex");
    const tar = tarOf({ [`blobs/sha256/${hex}`]: content });
    const writer = await fs.promises.open(fifo, "w");
    try {
      await writer.write(tar.subarray(0, 512 + 65536));
      const tmp = path.join(home, "store", "tmp");
      await until(
        () => fs.existsSync(tmp) && fs.readdirSync(tmp).some((n) => n.startsWith("load-")),
        "load's staging directory",
      );
      process.kill(pid, "SIGTERM");
      assert.equal(await p.status, 143, p.stderr());
      assert.match(
        sealerLines(p.stderr()).join("\n"),
        /^sealer: interrupted \(SIGTERM\) during load; the staging directory was removed; the images are named in one index write at the end, so none was added/m,
      );
      assert.deepEqual(fs.readdirSync(tmp), [], "no temp entry left");
      const store = new OciLayout(path.join(home, "store"));
      assert.deepEqual((await store.readIndex()).manifests, []);
      assert.deepEqual(fs.readdirSync(path.join(store.root, "blobs", "sha256")), []);
    } finally {
      await writer.close();
    }
  });
});

describe("sealer exec names a host once", function () {
  this.timeout(60_000);

  it("an error that names its host already gets no second prefix; other lines get one each", () => {
    assert.deepEqual(
      hostOutputText({
        host: "10.0.0.5",
        code: -1,
        stdout: "",
        stderr: "",
        error: '[10.0.0.5] step "connect": dial 1/1 to [10.0.0.5]:22 failed',
      }),
      { stdout: "", stderr: '[10.0.0.5] step "connect": dial 1/1 to [10.0.0.5]:22 failed\n' },
    );
    assert.deepEqual(
      hostOutputText({ host: "10.0.0.5", code: 3, stdout: "a\nb\n", stderr: "warn\n", error: "timed out" }),
      { stdout: "[10.0.0.5] a\n[10.0.0.5] b\n", stderr: "[10.0.0.5] warn\n[10.0.0.5] timed out\n" },
    );
  });

  it("with the SSH layer's own error for a host that refuses the connection", async () => {
    const port = await freePort();
    const clusterfile = path.join(root, "exec-Clusterfile");
    fs.writeFileSync(
      clusterfile,
      [
        "apiVersion: sealer.io/v2",
        "kind: Cluster",
        "metadata: { name: exec-once }",
        "spec:",
        "  image: test/none:1",
        `  ssh: { user: root, passwd: not-used, port: "${port}" }`,
        "  hosts:",
        "    - { ips: [ 127.0.0.1 ], roles: [ master ] }",
        "",
      ].join("\n"),
    );
    const home = path.join(root, "exec-home");
    const printed: Array<{ stdout: string; stderr: string }> = [];
    const results = await execOnCluster({
      clusterfile,
      command: "true",
      home,
      knownHostsFile: path.join(root, "exec-known_hosts"),
      ssh: { dialAttempts: 1, dialTimeoutMs: 5000 },
      onHost: (h) => printed.push(hostOutputText(h)),
    });
    assert.equal(results[0]?.code, -1);
    assert.ok(
      results[0]?.error?.startsWith("[127.0.0.1] "),
      `the error names its host: ${results[0]?.error}`,
    );
    assert.equal(printed.length, 1);
    assert.equal(printed[0]?.stdout, "");
    assert.match(printed[0]?.stderr ?? "", /^\[127\.0\.0\.1\] step "connect": .*\n$/);
    assert.doesNotMatch(printed[0]?.stderr ?? "", /\[127\.0\.0\.1\] \[127\.0\.0\.1\]/);
  });
});

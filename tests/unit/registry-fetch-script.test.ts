/**
 * The node's fetch of one layer in registry mode (fetchLayerScript), run with sh on this machine
 * against a stand-in curl that records what it was given and prints the blob: the credentials go
 * in on curl's stdin (a config), never in its arguments; a resumed fetch asks for the rest with
 * -C; the script exits with its sink's status; a CA is written to a temp file that is gone after.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../provider/core/errors";
import { fetchLayerScript } from "../../provider/core/exec/registry-distribute";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("registry mode: a node's fetch of one layer (sh, stand-in curl)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-fetch-"));
    fs.mkdirSync(path.join(dir, "bin"));
    // Records argv and stdin, then prints 10 bytes, or fails as curl does on a refused connection.
    fs.writeFileSync(
      path.join(dir, "bin", "curl"),
      [
        "#!/bin/sh",
        `printf '%s\\n' "$@" > ${dir}/argv`,
        `cat > ${dir}/stdin`,
        `for a in "$@"; do case "$a" in --cacert) ca=1;; *) [ -n "$ca" ] && { cp "$a" ${dir}/ca.seen; echo "$a" > ${dir}/ca.path; ca=; };; esac; done`,
        `[ -n "$FAIL" ] && { echo "curl: (7) Failed to connect" >&2; exit 7; }`,
        "printf 0123456789",
      ].join("\n"),
      { mode: 0o755 },
    );
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, env: Record<string, string> = {}) =>
    spawnSync("sh", ["-c", script], {
      env: { PATH: `${dir}/bin:/usr/bin:/bin`, ...env },
      encoding: "utf8",
    });
  const sink = () => `wc -c > ${dir}/got; [ "$(cat ${dir}/got)" -eq 10 ] || exit 91`;

  it("puts the authorization in curl's config on stdin, never in its arguments, and pipes the blob into the sink", () => {
    const r = run(
      fetchLayerScript({
        baseUrl: "https://10.0.0.9:5000",
        repo: "lib/app",
        digest: DIGEST,
        offset: 0,
        sink: sink(),
        authorization: "Basic c2VjcmV0OnB3",
      }),
    );
    assert.equal(r.status, 0, r.stderr);
    const argv = fs.readFileSync(path.join(dir, "argv"), "utf8");
    assert.ok(!argv.includes("c2VjcmV0OnB3"), argv);
    assert.match(argv, /^-K\n-\n/m);
    assert.match(argv, new RegExp(`https://10\\.0\\.0\\.9:5000/v2/lib/app/blobs/${DIGEST}`));
    assert.ok(!argv.includes("-C\n"), "a fresh fetch asks for the whole blob");
    assert.equal(
      fs.readFileSync(path.join(dir, "stdin"), "utf8"),
      'header = "Authorization: Basic c2VjcmV0OnB3"\n',
    );
    assert.equal(fs.readFileSync(path.join(dir, "got"), "utf8").trim(), "10");
  });

  it("resumes with -C from the byte given, and trusts the CA only through a temp file removed afterwards", () => {
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    const r = run(
      fetchLayerScript({
        baseUrl: "https://reg:5000",
        repo: "app",
        digest: DIGEST,
        offset: 4096,
        sink: sink(),
        caPem: ca,
      }),
    );
    assert.equal(r.status, 0, r.stderr);
    const argv = fs.readFileSync(path.join(dir, "argv"), "utf8");
    assert.match(argv, /^-C\n4096\n/m);
    assert.ok(!argv.includes("-K"), "no config without credentials");
    assert.equal(fs.readFileSync(path.join(dir, "ca.seen"), "utf8").trim(), ca);
    const caPath = fs.readFileSync(path.join(dir, "ca.path"), "utf8").trim();
    assert.ok(!fs.existsSync(caPath), `${caPath} is removed when the script ends`);
  });

  it("exits with the sink's status: a fetch that fails leaves the sink short, and curl's message on stderr", () => {
    const r = run(
      fetchLayerScript({ baseUrl: "http://reg:5000", repo: "app", digest: DIGEST, offset: 0, sink: sink() }),
      { FAIL: "1" },
    );
    assert.equal(r.status, 91);
    assert.match(r.stderr, /curl: \(7\) Failed to connect/);
  });

  it("refuses an authorization a curl config line could not hold", () => {
    assert.throws(
      () =>
        fetchLayerScript({
          baseUrl: "http://reg:5000",
          repo: "app",
          digest: DIGEST,
          offset: 0,
          sink: "cat",
          authorization: 'Bearer a"b\nheader = x',
        }),
      UserError,
    );
  });
});

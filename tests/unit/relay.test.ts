/**
 * Relay distribution, pure parts: the fixed receiver (run with sh, as sshd runs it for the relay's
 * key), the authorized_keys options, the relay's known_hosts, the setup output.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  authorizedKeyOptions,
  keyMarker,
  parseRelaySetup,
  receiverScript,
  relayKnownHosts,
  relayPaths,
} from "../../provider/core/exec/relay";

describe("relay receiver (sh)", () => {
  let dir: string;
  let script: string;
  const data = crypto.randomBytes(100_000);
  const hex = crypto.createHash("sha256").update(data).digest("hex");
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-relay-unit-"));
    script = path.join(dir, "receive.sh");
    fs.mkdirSync(path.join(dir, "inbox"));
    fs.writeFileSync(script, receiverScript(path.join(dir, "inbox")));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const recv = (cmd: string, stdin: Buffer = Buffer.alloc(0)) => {
    const r = spawnSync("/bin/sh", [script], {
      input: stdin,
      env: { PATH: process.env.PATH, SSH_ORIGINAL_COMMAND: cmd },
    });
    return { code: r.status, out: r.stdout.toString().trim(), err: r.stderr.toString().trim() };
  };
  const inbox = (f: string) => path.join(dir, "inbox", f);

  it("answers ping and refuses anything else", () => {
    assert.deepEqual(recv("ping"), { code: 0, out: "sealer-relay-ok", err: "" });
    for (const [cmd, why] of [
      ["", "unknown command"],
      ["sh -c id", "unknown command"],
      ["ping x", "ping takes no argument"],
      ["size ../../etc/passwd", "not a sha256 hex digest"],
      [`size ${hex.slice(1)}`, "not a sha256 hex digest"],
      [`size ${hex.toUpperCase()}`, "not a sha256 hex digest"],
      [`recv ${hex} 10`, "recv takes three arguments"],
      [`recv ${hex} 10 -1`, "sizes must be decimal numbers"],
      [`recv ${hex} 10 $(id)`, "sizes must be decimal numbers"],
      [`recv ${hex} 10 11`, "offset beyond size"],
      [`recv ${hex} 9999999999999999 0`, "size too large"],
      [`size *`, "not a sha256 hex digest"],
    ])
      assert.deepEqual(recv(cmd!), { code: 2, out: "", err: `sealer relay receiver: refused: ${why}` }, cmd);
    assert.deepEqual(fs.readdirSync(path.join(dir, "inbox")), []);
  });

  it("receives, verifies and renames; size reports partial and done", () => {
    assert.equal(recv(`size ${hex}`).out, "0");
    assert.deepEqual(recv(`recv ${hex} ${data.length} 0`, data.subarray(0, 30_000)), {
      code: 91,
      out: "",
      err: `short transfer of sha256:${hex}: 30000 of ${data.length} bytes`,
    });
    assert.equal(recv(`size ${hex}`).out, "30000");
    assert.equal(recv(`recv ${hex} ${data.length} 30000`, data.subarray(30_000)).code, 0);
    assert.equal(recv(`size ${hex}`).out, "done");
    assert.ok(fs.readFileSync(inbox(hex)).equals(data));
    assert.deepEqual(fs.readdirSync(path.join(dir, "inbox")), [hex]);
  });

  it("a resume at the wrong offset drops the partial (93); wrong bytes are removed (92)", () => {
    recv(`recv ${hex} ${data.length} 0`, data.subarray(0, 500));
    assert.equal(recv(`recv ${hex} ${data.length} 400`, data.subarray(400)).code, 93);
    assert.equal(fs.existsSync(inbox(hex + ".partial")), false);
    const bad = Buffer.from(data);
    bad[5] = bad[5]! ^ 1;
    const r = recv(`recv ${hex} ${data.length} 0`, bad);
    assert.equal(r.code, 92);
    assert.match(
      r.err,
      /^digest mismatch for sha256:[0-9a-f]{64} \(got sha256:[0-9a-f]{64}\): the received bytes were removed$/,
    );
    assert.deepEqual(fs.readdirSync(path.join(dir, "inbox")), []);
  });
});

describe("relay pure helpers", () => {
  it("authorized_keys options restrict the key to the relay and the receiver", () => {
    assert.equal(
      authorizedKeyOptions(["10.0.0.2", "fd00::2"], "/var/lib/sealer/relay/receive.sh"),
      'restrict,from="10.0.0.2,fd00::2",command="/bin/sh /var/lib/sealer/relay/receive.sh"',
    );
    assert.throws(() => authorizedKeyOptions(['10.0.0.2" x'], "/r"), /not an address/);
    assert.throws(() => authorizedKeyOptions(["10.0.0.2"], '/r"; id'), /unsafe receiver path/);
  });

  it("paths and markers", () => {
    assert.deepEqual(relayPaths("/var/lib/sealer/", "c1", "ab12"), {
      dir: "/var/lib/sealer/relay",
      receiver: "/var/lib/sealer/relay/receive.sh",
      inbox: "/var/lib/sealer/relay/inbox",
      run: "/var/lib/sealer/relay/run-c1-ab12",
      key: "/var/lib/sealer/relay/run-c1-ab12/id_ed25519",
      knownHosts: "/var/lib/sealer/relay/run-c1-ab12/known_hosts",
      blobs: "/var/lib/sealer/blobs/sha256",
    });
    assert.equal(keyMarker("c1", "ab12"), "sealer-relay:c1:ab12");
    assert.equal(keyMarker("c1"), "sealer-relay:c1:");
  });

  it("known_hosts for the relay holds only the operator's pinned keys of the targets", () => {
    const entries = [
      { hosts: ["10.0.0.3"], keyType: "ssh-ed25519", keyBase64: "AAA3" },
      { hosts: ["[10.0.0.4]:2222"], keyType: "ssh-ed25519", keyBase64: "AAA4" },
      { hosts: ["10.0.0.9"], keyType: "ssh-rsa", keyBase64: "AAA9" },
    ];
    assert.deepEqual(
      relayKnownHosts(entries, [
        { host: "10.0.0.3", port: 22 },
        { host: "10.0.0.4", port: 2222 },
        { host: "10.0.0.5", port: 22 },
        { host: "10.0.0.4", port: 22 },
      ]),
      {
        text: "10.0.0.3 ssh-ed25519 AAA3\n[10.0.0.4]:2222 ssh-ed25519 AAA4\n",
        unpinned: ["10.0.0.5", "10.0.0.4"],
      },
    );
  });

  it("setup output: the public key and the relay's addresses (loopback and junk dropped, via first)", () => {
    assert.deepEqual(
      parseRelaySetup(
        "pub=ssh-ed25519 AAAAC3Nza+/= sealer-relay:c:1\naddrs=10.0.0.2 172.17.0.1 127.0.0.1 fe80::1 x;y \n",
        "10.0.0.2",
      ),
      { publicKey: "ssh-ed25519 AAAAC3Nza+/=", addresses: ["10.0.0.2", "172.17.0.1", "fe80::1"] },
    );
    assert.throws(() => parseRelaySetup("pub=ssh-rsa AAAA\naddrs=\n", "10.0.0.2"), /no ed25519 public key/);
  });
});

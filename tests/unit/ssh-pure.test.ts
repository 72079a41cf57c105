import * as assert from "node:assert/strict";
import {
  checkHostKey,
  formatKnownHost,
  keyTypeOf,
  parseKnownHosts,
} from "../../provider/core/ssh/known-hosts";
import { envPrefix, shellQuote, tailLines, wrapCommand } from "../../provider/core/ssh/shell";

function keyBlob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}

describe("ssh: shell text (pure)", () => {
  for (const [input, out] of [
    ["plain/path-1.txt", "plain/path-1.txt"],
    ["", "''"],
    ["it's", `'it'\\''s'`],
    ["a b", "'a b'"],
    ["$(rm -rf /)", "'$(rm -rf /)'"],
  ] as const)
    it(`quotes ${JSON.stringify(input)}`, () => assert.equal(shellQuote(input), out));

  it("wraps commands for each sudo mode; the password never appears", () => {
    assert.equal(wrapCommand("id -u", "none"), "id -u");
    assert.equal(wrapCommand("id -u", "nopasswd"), "sudo -n sh -c 'id -u'");
    assert.equal(
      wrapCommand("echo 'x'", "password", { B: "2", A: "o'k" }),
      `sudo -k -S -p '' sh -c 'export A='\\''o'\\''\\'\\'''\\''k'\\''; export B=2; echo '\\''x'\\'''`,
    );
  });

  it("rejects bad env names and keeps the last lines of output", () => {
    assert.throws(() => envPrefix({ "A-B": "1" }), /invalid environment variable name "A-B"/);
    assert.equal(tailLines("1\n2\n3\n4\n", 2), "3\n4");
  });
});

describe("ssh: known_hosts (pure)", () => {
  const k1 = keyBlob("ssh-ed25519", "one");
  const k2 = keyBlob("ssh-ed25519", "two");
  const text = [
    "# comment",
    formatKnownHost("10.0.0.1", 22, "ssh-ed25519", k1.toString("base64")),
    formatKnownHost("10.0.0.1", 2222, "ssh-ed25519", k2.toString("base64")),
    "|1|hashed= ssh-rsa AAAA",
    "",
  ].join("\n");

  it("parses OpenSSH lines and formats non-22 ports in brackets", () => {
    const e = parseKnownHosts(text);
    assert.deepEqual(
      e.map((x) => x.hosts),
      [["10.0.0.1"], ["[10.0.0.1]:2222"], ["|1|hashed="]],
    );
    assert.equal(keyTypeOf(k1), "ssh-ed25519");
  });

  for (const [host, port, key, status] of [
    ["10.0.0.1", 22, k1, "match"],
    ["10.0.0.1", 22, k2, "mismatch"],
    ["10.0.0.1", 2222, k2, "match"],
    ["10.0.0.2", 22, k1, "unknown"],
  ] as const)
    it(`${host}:${port} with key ${key === k1 ? 1 : 2} -> ${status}`, () =>
      assert.equal(checkHostKey(parseKnownHosts(text), host, port, key).status, status));
});

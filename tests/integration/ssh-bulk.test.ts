/**
 * Big streams through OpenSSH's client (ssh/bulk.ts) against real sshd nodes: which logins use
 * it, what it is told (strict host-key check against the pool's file, no agent, no config),
 * resumes from an offset, failures as the ssh2 path gives them, and the fall-back to ssh2 where
 * `ssh` cannot log in (the stream is then sent again over ssh2: nothing ran on the host). A shim first on PATH logs each `ssh` run and then runs the real client.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CommandError, type SshTarget } from "../../provider/core/ssh";
import { setLogSink } from "../../provider/core/log";
import { useNodes } from "../harness/nodes";

const MIB = 1024 * 1024;

describe("bulk streams through OpenSSH's client (integration, local nodes)", function () {
  this.timeout(120_000);
  const nodes = useNodes(1, { sudoUser: { name: "deploy", nopasswd: true } });
  let blob: string;
  let shimDir: string;
  let calls: string;
  let savedPath: string | undefined;
  let restoreLog: ReturnType<typeof setLogSink> | undefined;
  const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
  let bytes: Buffer;

  function shim(body: string): void {
    // One line per run: the command argument holds newlines.
    const log = `printf '%s' "$*" | tr '\\n' ' ' >> ${calls}; echo >> ${calls}`;
    fs.writeFileSync(path.join(shimDir, "ssh"), `#!/bin/sh\n${log}\n${body}\n`, {
      mode: 0o755,
    });
  }
  const runs = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").split("\n").filter(Boolean) : []);

  before(() => {
    shimDir = path.join(nodes.dir, "ssh-shim");
    fs.mkdirSync(shimDir, { recursive: true });
    calls = path.join(nodes.dir, "ssh-calls");
    bytes = crypto.randomBytes(20 * MIB);
    blob = path.join(nodes.dir, "blob.bin");
    fs.writeFileSync(blob, bytes);
    savedPath = process.env.PATH;
    process.env.PATH = `${shimDir}:${process.env.PATH ?? "/usr/bin:/bin"}`;
    restoreLog = setLogSink({ write: () => undefined });
  });
  after(() => {
    process.env.PATH = savedPath;
    if (restoreLog) setLogSink(restoreLog);
  });
  beforeEach(() => {
    fs.rmSync(calls, { force: true });
    shim(`exec /usr/bin/ssh "$@"`);
  });

  it("a key-file login streams through ssh, from byte 0 and from an offset, the host key checked strictly", async () => {
    const pool = nodes.pool({ bulkMinBytes: 8 * MIB });
    const t = nodes.targets()[0]!;
    let seen = 0;
    const whole = await pool.execFromFile(
      t,
      "sha256sum",
      { path: blob, start: 0 },
      { onStdinBytes: (n) => (seen = n) },
    );
    assert.equal(whole.stdout.slice(0, 64), sha(bytes));
    assert.equal(seen, bytes.length);
    const start = 5 * MIB + 3;
    let tail = 0;
    const rest = await pool.execFromFile(
      t,
      "sha256sum",
      { path: blob, start },
      { onStdinBytes: (n) => (tail = n) },
    );
    assert.equal(rest.stdout.slice(0, 64), sha(bytes.subarray(start)));
    assert.equal(tail, bytes.length - start);
    const r = runs();
    assert.equal(r.length, 2, r.join("\n"));
    for (const line of r) {
      for (const o of [
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        `UserKnownHostsFile="${nodes.knownHostsFile}"`,
        "GlobalKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
      ])
        assert.ok(line.includes(`-o ${o}`), `${o} missing from: ${line}`);
      assert.ok(line.startsWith("-F /dev/null "), line);
    }
    await pool.close();
  });

  it("a non-zero exit is a CommandError naming host, step, status and the output's tail", async () => {
    const pool = nodes.pool({ bulkMinBytes: 8 * MIB });
    const t = nodes.targets()[0]!;
    await assert.rejects(
      pool.execFromFile(
        t,
        "cat > /dev/null; echo 'no room' >&2; exit 7",
        { path: blob, start: 0 },
        { step: "send x" },
      ),
      (err: unknown) =>
        err instanceof CommandError &&
        err.code === 7 &&
        err.message === `[${t.host}] step "send x" failed with exit code 7:\nno room`,
    );
    assert.equal(runs().length, 1);
    await pool.close();
  });

  it("a NOPASSWD sudo user's stream runs as root through ssh", async () => {
    const pool = nodes.pool({ bulkMinBytes: 8 * MIB });
    const n = nodes.list[0]!;
    const t: SshTarget = { host: n.ip, port: 22, user: "deploy", privateKeyPath: n.keyPath, sudo: true };
    const res = await pool.execFromFile(t, "id -u; wc -c", { path: blob, start: 0 });
    assert.equal(res.stdout, `0\n${bytes.length}\n`);
    assert.ok(
      runs().some((l) => l.includes("-l deploy") && l.includes("sudo -n sh -c")),
      runs().join("\n"),
    );
    await pool.close();
  });

  it("an inline key, a passphrase-less path with %, a small file or SEALER_SSH_CLIENT=ssh2 stay on ssh2", async () => {
    const pool = nodes.pool({ bulkMinBytes: 8 * MIB });
    const t = nodes.targets()[0]!;
    const inline: SshTarget = {
      host: t.host,
      port: t.port,
      user: t.user,
      privateKey: fs.readFileSync(t.privateKeyPath!),
    };
    assert.equal(
      (await pool.execFromFile(inline, "sha256sum", { path: blob, start: 0 })).stdout.slice(0, 64),
      sha(bytes),
    );
    const small = path.join(nodes.dir, "small.bin");
    fs.writeFileSync(small, bytes.subarray(0, MIB));
    assert.equal((await pool.execFromFile(t, "wc -c", { path: small, start: 0 })).stdout.trim(), String(MIB));
    const pct = path.join(nodes.dir, "key%h");
    fs.copyFileSync(t.privateKeyPath!, pct);
    fs.chmodSync(pct, 0o600);
    assert.equal(
      (
        await pool.execFromFile({ ...t, privateKeyPath: pct }, "wc -c", { path: blob, start: 0 })
      ).stdout.trim(),
      String(bytes.length),
    );
    process.env.SEALER_SSH_CLIENT = "ssh2";
    try {
      assert.equal(
        (await pool.execFromFile(t, "wc -c", { path: blob, start: 0 })).stdout.trim(),
        String(bytes.length),
      );
    } finally {
      delete process.env.SEALER_SSH_CLIENT;
    }
    assert.deepEqual(runs(), []);
    await pool.close();
  });

  it("a host ssh cannot log in to, or no ssh at all, keeps ssh2 for its streams, with the same result", async () => {
    shim("echo 'Permission denied (publickey).' >&2; exit 255");
    const pool = nodes.pool({ bulkMinBytes: 8 * MIB });
    const t = nodes.targets()[0]!;
    for (let i = 0; i < 2; i++)
      assert.equal(
        (await pool.execFromFile(t, "sha256sum", { path: blob, start: 0 })).stdout.slice(0, 64),
        sha(bytes),
      );
    // ssh was tried once; after its failed login the host's streams go to ssh2 straight away.
    assert.equal(runs().length, 1);
    await pool.close();
    // No ssh at all on this machine: the same.
    const empty = path.join(nodes.dir, "no-ssh");
    fs.mkdirSync(empty, { recursive: true });
    const saved = process.env.PATH;
    process.env.PATH = empty;
    const bare = nodes.pool({ bulkMinBytes: 8 * MIB });
    try {
      assert.equal(
        (await bare.execFromFile(t, "sha256sum", { path: blob, start: 0 })).stdout.slice(0, 64),
        sha(bytes),
      );
    } finally {
      process.env.PATH = saved;
      await bare.close();
    }
  });
});

/**
 * The SSH layer against real sshd nodes (network namespaces on this machine): key, password and
 * passphrase-key login, sudo users (NOPASSWD and password), host-key pinning, dial retries,
 * streamed atomic uploads, failures that name host + step + exit code + output tail.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { execInNode, regenerateHostKey, startSshd, stopSshd } from "../../provider/core/infra/local";
import { setLogSink } from "../../provider/core/log";
import {
  CommandError,
  ConnectionLostError,
  HostKeyMismatchError,
  forgetHostKey,
  type SshTarget,
} from "../../provider/core/ssh";
import { TransientError, UserError } from "../../provider/core/errors";
import { DialError } from "../../provider/core/ssh/pool";
import { useNodes } from "../harness/nodes";

function captureLogs(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const prev = setLogSink({ write: (l) => lines.push(l) });
  return { lines, restore: () => setLogSink(prev) };
}

describe("ssh (integration, local nodes)", function () {
  this.timeout(120_000);

  describe("root logins", () => {
    const nodes = useNodes(2, { rootPassword: "root-pw-Xy1" });

    it("logs in with the node key, streams lines with the host prefix, pins the host key on first contact", async () => {
      const pool = nodes.pool();
      const [a, b] = nodes.targets();
      const cap = captureLogs();
      try {
        const out = await pool.run(a!, "hostname; id -u; printf 'one\\ntwo\\n'");
        assert.equal(out, `${nodes.list[0]!.name}\n0\none\ntwo\n`);
        assert.equal((await pool.run(b!, "hostname")).trim(), nodes.list[1]!.name);
      } finally {
        cap.restore();
      }
      assert.ok(cap.lines.includes(`[${a!.host}] two`), cap.lines.join("\n"));
      const known = fs.readFileSync(nodes.knownHostsFile, "utf8").trim().split("\n").sort();
      assert.deepEqual(known, nodes.list.map((n) => `${n.ip} ${n.hostKeyPub}`).sort());
    });

    it("logs in with a password", async () => {
      const pool = nodes.pool();
      const n = nodes.list[0]!;
      assert.equal(
        (
          await pool.run({ host: n.ip, port: 22, user: "root", password: "root-pw-Xy1" }, "echo pw-ok")
        ).trim(),
        "pw-ok",
      );
      await assert.rejects(
        pool.run({ host: n.ip, port: 22, user: "root", password: "wrong-pw" }, "true"),
        (err: unknown) => err instanceof UserError && /authentication failed for root@/.test(err.message),
      );
    });

    it("logs in with a passphrase-protected key and says so when the passphrase is wrong", async () => {
      const n = nodes.list[1]!;
      const key = path.join(nodes.dir, "pp_key");
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "correct horse", "-f", key]);
      const pub = fs.readFileSync(key + ".pub", "utf8").trim();
      assert.equal((await execInNode(n, `echo '${pub}' >> /root/.ssh/authorized_keys`)).code, 0);
      const pool = nodes.pool();
      const t: SshTarget = {
        host: n.ip,
        port: 22,
        user: "root",
        privateKeyPath: key,
        passphrase: "correct horse",
      };
      assert.equal((await pool.run(t, "echo key-ok")).trim(), "key-ok");
      const other = nodes.pool();
      await assert.rejects(
        other.run({ ...t, passphrase: "wrong" }, "true"),
        (err: unknown) => err instanceof UserError && /passphrase/.test(err.message),
      );
    });

    it("reports host, step, exit code and the output tail of a failing command; allowFail returns it", async () => {
      const pool = nodes.pool();
      const t = nodes.targets()[0]!;
      await assert.rejects(
        pool.exec(t, "echo progress; echo broken-thing >&2; exit 7", { step: "init-host" }),
        (err: unknown) => {
          assert.ok(err instanceof CommandError);
          assert.equal(err.host, t.host);
          assert.equal(err.step, "init-host");
          assert.equal(err.code, 7);
          assert.match(
            err.message,
            new RegExp(
              `^\\[${t.host.replace(/\./g, "\\.")}\\] step "init-host" failed with exit code 7:\\nprogress\\nbroken-thing$`,
            ),
          );
          return true;
        },
      );
      const res = await pool.exec(t, "echo x; exit 4", { allowFail: true });
      assert.deepEqual(res, { code: 4, stdout: "x\n", stderr: "" });
    });

    it("passes environment and stdin; times out a hung command", async () => {
      const pool = nodes.pool();
      const t = nodes.targets()[0]!;
      assert.equal(
        await pool.run(t, 'echo "$A|$B"; cat', { env: { A: "it's", B: "x y" }, stdin: "in-data" }),
        "it's|x y\nin-data",
      );
      await assert.rejects(
        pool.exec(t, "sleep 30", { step: "hang", timeoutMs: 500 }),
        /step "hang": timed out after 1s/,
      );
    });

    it("uploads streamed and atomically: a cut transfer leaves the old file", async () => {
      const pool = nodes.pool();
      const t = nodes.targets()[1]!;
      const n = nodes.list[1]!;
      await pool.upload(t, Buffer.from("old-content"), "/var/lib/sealer-test/up/file.txt", { mode: 0o600 });
      assert.equal(
        (
          await execInNode(
            n,
            "cat /var/lib/sealer-test/up/file.txt; stat -c %a /var/lib/sealer-test/up/file.txt",
          )
        ).stdout,
        "old-content600\n",
      );
      // A file source and a stream of unknown length.
      const local = path.join(nodes.dir, "local.bin");
      fs.writeFileSync(local, Buffer.alloc(300_000, 7));
      await pool.upload(t, local, "/var/lib/sealer-test/up/local.bin");
      await pool.upload(
        t,
        Readable.from([Buffer.from("a"), Buffer.from("b")]),
        "/var/lib/sealer-test/up/stream.txt",
      );
      assert.equal(
        (
          await execInNode(
            n,
            "wc -c < /var/lib/sealer-test/up/local.bin; cat /var/lib/sealer-test/up/stream.txt",
          )
        ).stdout,
        "300000\nab",
      );
      // Now a big upload whose connection is dropped in the middle.
      let dropped = false;
      const big = Readable.from(
        (function* () {
          for (let i = 0; i < 400; i++) yield Buffer.alloc(64 * 1024, i % 251);
        })(),
      );
      await assert.rejects(
        pool.upload(t, big, "/var/lib/sealer-test/up/file.txt", {
          onBytes: (b) => {
            if (b > 2 * 1024 * 1024 && !dropped) {
              dropped = true;
              pool.dropConnection(t);
            }
          },
        }),
        (err: unknown) =>
          err instanceof ConnectionLostError &&
          err.message.includes(`[${t.host}] step "upload /var/lib/sealer-test/up/file.txt"`),
      );
      assert.ok(dropped);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await execInNode(n, "cat /var/lib/sealer-test/up/file.txt")).stdout, "old-content");
    });

    it("re-dials transparently when a pooled connection died while idle", async () => {
      const pool = nodes.pool();
      const t = nodes.targets()[1]!;
      const n = nodes.list[1]!;
      assert.equal((await pool.run(t, "echo first")).trim(), "first");
      // Kill this connection's sshd session processes on the node, keep the listener.
      const pids = execFileSync("ip", ["netns", "pids", n.netns], { encoding: "utf8" })
        .split("\n")
        .map(Number)
        .filter((p) => p > 0 && p !== n.holderPid && p !== n.sshdPid);
      assert.ok(pids.length > 0);
      for (const p of pids) process.kill(p, "SIGKILL");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await pool.run(t, "echo second")).trim(), "second");
    });

    it("retries the dial while sshd is not up yet, then connects", async () => {
      const n0 = nodes.list[0]!;
      nodes.update(await stopSshd(n0));
      const pool = nodes.pool({ dialAttempts: 6, dialBackoffMs: 300 });
      const cap = captureLogs();
      let restarted: Promise<void> | undefined;
      try {
        const timer = new Promise((r) => setTimeout(r, 700)).then(async () =>
          nodes.update(await startSshd(nodes.list[0]!)),
        );
        restarted = timer;
        assert.equal((await pool.run(nodes.targets()[0]!, "echo late-ok")).trim(), "late-ok");
      } finally {
        await restarted;
        cap.restore();
      }
      assert.ok(
        cap.lines.some((l) =>
          l.startsWith(`[${n0.ip}] WARN Dial 1/6 to ${n0.ip} failed: ECONNREFUSED; retrying in`),
        ),
        cap.lines.join("\n"),
      );
    });

    it("gives up after the last dial attempt, naming host and step", async () => {
      const n1 = nodes.list[1]!;
      nodes.update(await stopSshd(n1));
      try {
        const pool = nodes.pool({ dialAttempts: 2, dialBackoffMs: 100 });
        await assert.rejects(pool.run(nodes.targets()[1]!, "true"), (err: unknown) => {
          assert.ok(err instanceof TransientError && err instanceof DialError, String(err));
          assert.equal(err.host, n1.ip);
          assert.match(
            err.message,
            new RegExp(
              `^\\[${n1.ip.replace(/\./g, "\\.")}\\] step "connect": dial 2/2 to ${n1.ip.replace(/\./g, "\\.")} failed: ECONNREFUSED; giving up`,
            ),
          );
          return true;
        });
      } finally {
        nodes.update(await startSshd(nodes.list[1]!));
      }
    });

    it("refuses a changed host key with a message that says how to accept it, and accepts after forget-key", async () => {
      const pool1 = nodes.pool();
      const t = nodes.targets()[0]!;
      await pool1.run(t, "true");
      await pool1.close();
      const n0 = await regenerateHostKey(nodes.list[0]!);
      nodes.update(await startSshd(n0));
      const pool2 = nodes.pool();
      await assert.rejects(pool2.run(t, "true"), (err: unknown) => {
        assert.ok(err instanceof HostKeyMismatchError, String(err));
        assert.match(
          err.message,
          new RegExp(
            `^host key for ${t.host.replace(/\./g, "\\.")} has CHANGED \\(now ssh-ed25519 SHA256:[A-Za-z0-9+/]+\\); refusing to connect\\. If the host was reinstalled on purpose, accept the new key with \`sealer nodes forget-key ${t.host.replace(/\./g, "\\.")}\``,
          ),
        );
        assert.ok(err.message.includes(nodes.knownHostsFile));
        return true;
      });
      assert.equal(await forgetHostKey(nodes.knownHostsFile, t.host), 1);
      assert.equal((await nodes.pool().run(t, "echo accepted")).trim(), "accepted");
      assert.ok(
        fs.readFileSync(nodes.knownHostsFile, "utf8").includes(`${t.host} ${nodes.list[0]!.hostKeyPub}`),
      );
    });
  });

  describe("sudo users", () => {
    const nopw = useNodes(1, { sudoUser: { name: "deploy", nopasswd: true } });
    const pw = useNodes(1, { sudoUser: { name: "ops", password: "Sudo-Pass-42", nopasswd: false } });

    it("runs commands and uploads as root for a NOPASSWD sudo user", async () => {
      const n = nopw.list[0]!;
      const pool = nopw.pool();
      const t: SshTarget = { host: n.ip, port: 22, user: "deploy", privateKeyPath: n.keyPath, sudo: true };
      assert.equal((await pool.run(t, "id -un; echo $HOME")).split("\n")[0], "root");
      await pool.upload(t, Buffer.from("root-owned"), "/var/lib/sealer-test/sudo/file");
      assert.equal(
        (
          await execInNode(
            n,
            "stat -c '%U %a' /var/lib/sealer-test/sudo/file; cat /var/lib/sealer-test/sudo/file",
          )
        ).stdout,
        "root 644\nroot-owned",
      );
      // Without sudo the same user cannot write there.
      const plain = await pool.exec({ ...t, sudo: false }, "id -un; touch /var/lib/sealer-test/sudo/x", {
        allowFail: true,
      });
      assert.notEqual(plain.code, 0);
      assert.equal(plain.stdout, "deploy\n");
    });

    it("feeds the sudo password on stdin (never in a log or on a command line) and keeps the command's stdin intact", async () => {
      const n = pw.list[0]!;
      const pool = pw.pool();
      const t: SshTarget = { host: n.ip, port: 22, user: "ops", password: "Sudo-Pass-42", sudo: true };
      const cap = captureLogs();
      try {
        assert.equal(await pool.run(t, "id -un; cat", { stdin: "line1\nline2\n" }), "root\nline1\nline2\n");
        assert.equal(await pool.run(t, "ps -eo args | grep -c '[S]udo-Pass-42' || true"), "0\n");
        await pool.upload(t, Buffer.alloc(200_000, 1), "/var/lib/sealer-test/pw/blob");
        await pool.upload(t, Readable.from([Buffer.from("x")]), "/var/lib/sealer-test/pw/stream");
      } finally {
        cap.restore();
      }
      assert.equal(
        (await execInNode(n, "stat -c '%U %s' /var/lib/sealer-test/pw/blob /var/lib/sealer-test/pw/stream"))
          .stdout,
        "root 200000\nroot 1\n",
      );
      assert.ok(!cap.lines.some((l) => l.includes("Sudo-Pass-42")), cap.lines.join("\n"));
    });

    it("says what to do when sudo needs a password that was not given", async () => {
      const n = pw.list[0]!;
      const pool = pw.pool();
      await assert.rejects(
        pool.run({ host: n.ip, port: 22, user: "ops", privateKeyPath: n.keyPath, sudo: true }, "true", {
          step: "init-host",
        }),
        (err: unknown) =>
          err instanceof UserError &&
          err.message ===
            `[${n.ip}] step "init-host": user ops needs a password for sudo; give the sudo password (Clusterfile ssh.passwd / --sudo-password) or allow NOPASSWD for this user`,
      );
    });
  });
});

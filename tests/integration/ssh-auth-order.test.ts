/**
 * SSH authentication order: with a key and a password (a sudo password that is not the login
 * password), the key is offered first. Two extra sshd processes inside one local node log every
 * authentication request they get (LogLevel DEBUG1): one accepts only keys, one keys and
 * passwords. The order is read from sshd's own log, not from timing.
 */
import * as assert from "node:assert/strict";
import { sshAnswers, type LocalNode } from "../../provider/core/infra/local";
import { authHandlerFor, authOrder, type AuthMethod } from "../../provider/core/ssh/pool";
import { useNodes } from "../harness/nodes";
import { nodeSh } from "../harness/sandbox";

const LOGIN_PW = "Login-Pw-1";

describe("ssh auth order", () => {
  it("offers the key, then the password, then keyboard-interactive", () => {
    assert.deepEqual(authOrder(true, true), ["publickey", "password", "keyboard-interactive"]);
    assert.deepEqual(authOrder(false, true), ["password", "keyboard-interactive"]);
    assert.deepEqual(authOrder(true, false), ["publickey"]);
  });

  it("skips methods the server does not list, and stops when none is left", () => {
    const h = authHandlerFor(["publickey", "password", "keyboard-interactive"]);
    const tried: Array<AuthMethod | false> = [];
    const next = (m: unknown) => void tried.push(m as AuthMethod | false);
    h(null as unknown as [], false, next);
    h(["publickey", "keyboard-interactive"], false, next);
    h(["publickey"], false, next);
    assert.deepEqual(tried, ["publickey", "keyboard-interactive", false]);
  });
});

describe("integration: ssh auth order against sshd (key only, key and password)", function () {
  this.timeout(120_000);
  const extra: number[] = [];
  // Registered before useNodes so it runs before the node is deleted.
  after(async () => {
    const n = nodes.list[0];
    for (const port of extra) if (n) await nodeSh(n, `kill $(cat /run/sshd-${port}.pid)`);
  });

  const nodes = useNodes(1, { rootPassword: LOGIN_PW });

  /** A second sshd in the node (it daemonises) on `port`, logging each auth request to /tmp/sshd-<port>.log there. */
  async function extraSshd(n: LocalNode, port: number, passwords: boolean): Promise<void> {
    const opts = {
      ListenAddress: `${n.ip}:${port}`,
      PidFile: `/run/sshd-${port}.pid`,
      PermitRootLogin: "yes",
      PasswordAuthentication: passwords ? "yes" : "no",
      KbdInteractiveAuthentication: "no",
      UsePAM: "yes",
      LogLevel: "DEBUG1",
    };
    const args = Object.entries(opts)
      .map(([k, v]) => `-o ${k}=${v}`)
      .join(" ");
    await nodeSh(
      n,
      `/usr/sbin/sshd -E /tmp/sshd-${port}.log -h /etc/ssh/sealer_node_host_ed25519_key ${args}`,
    );
    extra.push(port);
    for (let i = 0; i < 100 && !(await sshAnswers(n.ip, port)); i++)
      await new Promise((r) => setTimeout(r, 100));
  }

  /** The methods sshd on `port` was asked for, in order ("none" left out). */
  const methods = async (n: LocalNode, port: number): Promise<string[]> =>
    [
      ...(await sshdLog(n, port)).matchAll(
        /userauth-request for user root service ssh-connection method (\S+)/g,
      ),
    ]
      .map((m) => m[1] as string)
      .filter((m) => m !== "none");
  const sshdLog = (n: LocalNode, port: number) => nodeSh(n, `cat /tmp/sshd-${port}.log`);

  for (const passwords of [false, true])
    it(`key plus a sudo-only password: the key is offered first and accepted (sshd ${passwords ? "accepts keys and passwords" : "accepts keys only"})`, async () => {
      const n = nodes.list[0] as LocalNode;
      const port = passwords ? 2202 : 2201;
      await extraSshd(n, port, passwords);
      const pool = nodes.pool({ dialAttempts: 1 });
      try {
        const r = await pool.exec(
          { host: n.ip, port, user: "root", privateKeyPath: n.keyPath, password: "Sudo-Only-Pw-2" },
          "echo in",
        );
        assert.equal(r.stdout.trim(), "in");
      } finally {
        await pool.close();
      }
      assert.deepEqual(await methods(n, port), ["publickey", "publickey"]);
      const text = await sshdLog(n, port);
      assert.match(text, /Accepted publickey for root/);
      assert.doesNotMatch(text, /Failed password/);
    });

  it("the password still works when no key is given (sshd accepting both)", async () => {
    const n = nodes.list[0] as LocalNode;
    const port = 2202;
    const pool = nodes.pool({ dialAttempts: 1 });
    try {
      const r = await pool.exec({ host: n.ip, port, user: "root", password: LOGIN_PW }, "echo in");
      assert.equal(r.stdout.trim(), "in");
    } finally {
      await pool.close();
    }
    assert.match(await sshdLog(n, port), /Accepted password for root/);
  });
});

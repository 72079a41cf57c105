/**
 * `sealer nodes` and the local-node library on this machine: isolation of each node (own IP,
 * hostname, copy-on-write /etc, private /tmp), sudo user, and a delete that leaves nothing:
 * processes started over SSH, namespaces, bridge, state, pinned keys.
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Command } from "commander";
import { register as registerNodes } from "../../provider/cli/commands/nodes";
import { UserError } from "../../provider/core/errors";
import { createLocalNodes, listLocalNodes } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import { SshPool } from "../../provider/core/ssh";
import { uniquePrefix } from "../harness/nodes";
import { captureStdout } from "../harness/cli";
import { setEnv } from "../harness/env";

function cli(args: string[]): Promise<string> {
  // Only the nodes group (main.ts finds package.json relative to dist/).
  const program = new Command("sealer").exitOverride();
  registerNodes(program);
  return captureStdout(() => program.parseAsync(["node", "sealer", ...args]));
}

/** Running (a zombie left for a non-reaping pid 1 counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("local nodes (integration)", function () {
  this.timeout(120_000);
  let home: string;
  let restoreEnv: (() => void) | undefined;
  const prefix = uniquePrefix("nd");

  before(async () => {
    home = await fs.promises.mkdtemp(path.join(os.tmpdir(), "sealer-nodes-home-"));
    restoreEnv = setEnv({ SEALER_HOME: home });
  });
  after(async () => {
    await cli(["nodes", "delete", "--name", prefix]).catch(() => undefined);
    restoreEnv?.();
    await fs.promises.rm(home, { recursive: true, force: true });
  });

  it("validates options and names every problem at once", async () => {
    await assert.rejects(
      createLocalNodes({ count: 0, prefix: "Bad_Name", subnet: "10.1.2.3/16" }),
      (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.deepEqual(err.problems, [
          'node name prefix must be 1-12 lowercase letters, digits or dashes, starting with a letter (got "Bad_Name")',
          "--count must be between 1 and 200 (got 0)",
          "--subnet must look like 10.1.2.0/24 (got 10.1.2.3/16)",
        ]);
        return true;
      },
    );
    await assert.rejects(
      cli(["nodes", "create", "--count", "1", "--password", "x"]),
      /--password, --sudo and --sudo-password-required apply to --user; give --user NAME/,
    );
  });

  it("refuses to run without root, saying so", () => {
    const isTs = __filename.endsWith(".ts");
    const mod = path.join(__dirname, "../../provider/core/infra/local" + (isTs ? "/index.ts" : "/index.js"));
    const r = spawnSync(
      "setpriv",
      [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        process.execPath,
        ...(isTs ? ["-r", "tsx/cjs"] : []),
        "-e",
        `require(${JSON.stringify(mod)}).createLocalNodes({count:1,prefix:"x"}).catch(e=>{process.stderr.write(e.message);process.exit(3)})`,
      ],
      { encoding: "utf8", env: { ...process.env, SEALER_HOME: "/nonexistent-sealer-home" } },
    );
    assert.equal(r.status, 3, r.stderr);
    assert.equal(
      r.stderr.trim().split("\n").pop(),
      "local nodes need root (network namespaces, bridges and overlay mounts): run this command as root, e.g. with sudo",
    );
  });

  it("creates isolated nodes with the CLI, lists them, and deletes everything they left", async () => {
    const created = JSON.parse(
      await cli(["nodes", "create", "--count", "2", "--name", prefix, "--user", "deploy", "--json"]),
    ) as Array<{ name: string; ip: string; keyPath: string; sshd: string; sudoUser: string; subnet: string }>;
    assert.deepEqual(
      created.map((n) => [n.name, n.sshd, n.sudoUser]),
      [
        [`${prefix}-1`, "running", "deploy"],
        [`${prefix}-2`, "running", "deploy"],
      ],
    );
    const [a, b] = created as [(typeof created)[0], (typeof created)[0]];
    const pool = new SshPool({ knownHostsFile: dataPaths.knownHosts() });
    let serverPid: number;
    try {
      const ta = { host: a.ip, port: 22, user: "root", privateKeyPath: a.keyPath };
      const tb = { host: b.ip, port: 22, user: "root", privateKeyPath: b.keyPath };
      // Own hostname and IP; copy-on-write /etc; private /tmp.
      assert.equal(
        await pool.run(
          ta,
          `hostname; ip -4 -o addr show dev eth0 | awk '{print $4}'; echo node-a > /etc/sealer-marker; echo t > /tmp/sealer-marker; cat /etc/sealer-marker`,
        ),
        `${a.name}\n${a.ip}/24\nnode-a\n`,
      );
      assert.equal(
        await pool.run(tb, "cat /etc/sealer-marker /tmp/sealer-marker 2>&1 || true"),
        "cat: /etc/sealer-marker: No such file or directory\ncat: /tmp/sealer-marker: No such file or directory\n",
      );
      assert.equal(fs.existsSync("/etc/sealer-marker"), false);
      assert.equal(
        await pool.run(
          { host: b.ip, port: 22, user: "deploy", privateKeyPath: b.keyPath, sudo: true },
          "id -un",
        ),
        "root\n",
      );
      // Nodes reach each other.
      assert.equal(
        await pool.run(ta, `timeout 5 bash -c 'exec 3<>/dev/tcp/${b.ip}/22 && head -c 4 <&3'`),
        "SSH-",
      );
      // A background server started over SSH, bound to the node's IP.
      serverPid = Number(
        (await pool.run(ta, `nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 & echo $!`)).trim(),
      );
      assert.ok(alive(serverPid), "background process runs");
    } finally {
      await pool.close();
    }
    // Nothing is routed between the bridge and other interfaces.
    const fwd = execFileSync("iptables", ["-S", "FORWARD"], { encoding: "utf8" });
    assert.equal(
      fwd.split("\n").filter((l) => l.includes(`sealer-local-${prefix}`) && l.endsWith("-j DROP")).length,
      2,
      fwd,
    );
    // Creating over an existing group is refused and leaves the group alone.
    await assert.rejects(
      cli(["nodes", "create", "--count", "1", "--name", prefix]),
      new RegExp(
        `local nodes with prefix "${prefix}" already exist \\(${prefix}-1, ${prefix}-2\\); delete them first`,
      ),
    );
    const listed = JSON.parse(await cli(["nodes", "list", "--name", prefix, "--json"])) as Array<{
      name: string;
      sshd: string;
    }>;
    assert.deepEqual(
      listed.map((n) => [n.name, n.sshd]),
      created.map((n) => [n.name, "running"]),
    );
    const state = await listLocalNodes(prefix);
    assert.ok(fs.readFileSync(dataPaths.knownHosts(), "utf8").includes(a.ip + " "));

    assert.equal(
      (await cli(["nodes", "delete", "--name", prefix])).trim(),
      `deleted ${prefix}-1, ${prefix}-2`,
    );
    assert.equal(alive(serverPid!), false, "processes started over SSH are killed");
    for (const n of state) {
      assert.equal(alive(n.holderPid), false);
      assert.equal(alive(n.sshdPid!), false);
      assert.equal(fs.existsSync(n.stateDir), false);
    }
    const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.ok(!netns.includes(prefix), netns);
    const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
    assert.ok(!links.includes(state[0]!.bridge), "bridge removed");
    assert.ok(
      !fs.readFileSync(dataPaths.knownHosts(), "utf8").includes(a.ip + " "),
      "pinned keys of deleted nodes are forgotten",
    );
    assert.ok(
      !execFileSync("iptables", ["-S", "FORWARD"], { encoding: "utf8" }).includes(`sealer-local-${prefix}`),
      "isolation rules removed",
    );
    assert.deepEqual(await listLocalNodes(prefix), []);
    assert.equal(
      (await cli(["nodes", "delete", "--name", prefix])).trim(),
      `no local nodes named ${prefix}-N`,
    );
  });
});

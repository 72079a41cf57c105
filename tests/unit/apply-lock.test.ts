/** The apply lock on master0 through the host interface (recording fake host): taken, refused, stale taken over. */
import { strict as assert } from "node:assert";
import * as os from "node:os";
import { UserError } from "../../provider/core/errors";
import { acquireApplyLock } from "../../provider/core/exec/lock";
import { FakeHosts } from "../harness/fake-host";

const M0 = "10.0.0.2";
const DIR = "/var/lib/sealer/demo";
const host = { ip: M0, sshUser: "ops" };
/** A pid no process of this machine has (above the kernel's limit). */
const GONE_PID = 4_194_305;

const owner = (o: { machine: string; pid: number }) =>
  JSON.stringify({ ...o, user: "someone", since: "2026-01-01T00:00:00.000Z", command: "apply" });

describe("apply lock (fake host)", () => {
  it("takes the lock with an atomic mkdir on master0 and releases it by removing the directory", async () => {
    const io = new FakeHosts();
    const release = await acquireApplyLock(io, host, DIR, "demo");
    const [take] = io.bodies(M0);
    assert.match(take!, new RegExp(`^mkdir -p ${DIR} && mkdir ${DIR}/apply\\.lock 2>/dev/null && printf`));
    assert.ok(take!.includes(`"pid":${process.pid}`), take);
    await release();
    assert.deepEqual(io.bodies(M0).slice(1), [`rm -rf ${DIR}/apply.lock`]);
    assert.deepEqual(io.hosts(), [M0]);
  });

  it("a lock held by a live process elsewhere is refused naming who holds it and how to remove it", async () => {
    const io = new FakeHosts()
      .answer({ match: /^mkdir -p /, code: 1 })
      .answer({ match: /^cat .*owner\.json/, stdout: owner({ machine: "other-box", pid: 42 }) });
    await assert.rejects(
      acquireApplyLock(io, host, DIR, "demo"),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes(`cluster demo is locked on ${M0} by apply by someone@other-box (pid 42)`) &&
        e.message.includes(`ssh ops@${M0} rm -rf ${DIR}/apply.lock`),
    );
    assert.ok(!io.bodies(M0).some((b) => b.startsWith("rm -rf")), "another machine's lock is never removed");
  });

  it("a lock left by a process of this machine that is gone is taken over once", async () => {
    let tries = 0;
    const io = new FakeHosts().answer({
      match: /^cat .*owner\.json/,
      stdout: owner({ machine: os.hostname(), pid: GONE_PID }),
    });
    // The first mkdir finds the stale lock; after it is removed the second succeeds.
    const take = io.run.bind(io);
    io.run = (ip, step, command, opts) =>
      /^mkdir -p /.test(command) && tries++ === 0
        ? Promise.resolve({ code: 1, stdout: "", stderr: "" })
        : take(ip, step, command, opts);
    await acquireApplyLock(io, host, DIR, "demo");
    assert.deepEqual(
      io.bodies(M0).map((b) => b.split(" ")[0]),
      ["cat", "rm", "mkdir"],
    );
    assert.equal(io.bodies(M0)[1], `rm -rf ${DIR}/apply.lock`);
  });
});

/**
 * The apply lock on master0: `mkdir <dataRoot>/<cluster>/apply.lock` is atomic on the node, so two
 * applies (from this machine or another) cannot run on one cluster at once. The lock holds
 * owner.json (machine, pid, user, time) for the refusal message; a lock from a process of this
 * machine that is gone is taken over (stale), any other lock is reported with how to remove it.
 */
import * as os from "node:os";
import { UserError } from "../errors";
import { pidAlive } from "../fsutil";
import { shellQuote, type SshPool, type SshTarget } from "../ssh";

export interface LockOwner {
  machine: string;
  pid: number;
  user: string;
  since: string;
  command?: string;
}

export async function acquireApplyLock(
  pool: SshPool,
  target: SshTarget,
  clusterDir: string,
  cluster: string,
  command = "apply",
): Promise<() => Promise<void>> {
  const dir = `${clusterDir}/apply.lock`;
  const me: LockOwner = {
    machine: os.hostname(),
    pid: process.pid,
    user: os.userInfo().username,
    since: new Date().toISOString(),
    command,
  };
  const take = `mkdir -p ${shellQuote(clusterDir)} && mkdir ${shellQuote(dir)} 2>/dev/null && printf '%s' ${shellQuote(JSON.stringify(me))} > ${shellQuote(dir + "/owner.json")}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await pool.exec(target, take, { step: "lock", allowFail: true, logLevel: "debug" });
    if (r.code === 0) {
      return async () => {
        await pool.exec(target, `rm -rf ${shellQuote(dir)}`, {
          step: "unlock",
          allowFail: true,
          logLevel: "debug",
        });
      };
    }
    const o = await pool.exec(target, `cat ${shellQuote(dir + "/owner.json")} 2>/dev/null || true`, {
      step: "lock",
      logLevel: "debug",
    });
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(o.stdout) as LockOwner;
    } catch {
      owner = undefined;
    }
    if (owner && owner.machine === me.machine && !pidAlive(owner.pid) && attempt === 0) {
      await pool.exec(target, `rm -rf ${shellQuote(dir)}`, { step: "lock", logLevel: "debug" });
      continue;
    }
    const who = owner
      ? `${owner.command ?? "apply"} by ${owner.user}@${owner.machine} (pid ${owner.pid}) since ${owner.since}`
      : "an unknown process";
    throw new UserError(
      `cluster ${cluster} is locked on ${target.host} by ${who}. Wait for it to finish; if that process is gone, remove the stale lock with ` +
        `\`ssh ${target.user}@${target.host} rm -rf ${dir}\` and try again.`,
    );
  }
  throw new UserError(`cluster ${cluster}: could not take the apply lock ${dir} on ${target.host}`);
}

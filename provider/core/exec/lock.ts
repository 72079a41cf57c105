/**
 * The apply lock on master0: `mkdir <dataRoot>/<cluster>/apply.lock` is atomic on the node, so two
 * applies (from this machine or another) cannot run on one cluster at once. The lock holds
 * owner.json (machine, pid, user, time) for the refusal message; a lock from a process of this
 * machine that is gone is taken over (stale), any other lock is reported with how to remove it.
 */
import * as os from "node:os";
import { UserError } from "../errors";
import { pidAlive } from "../fsutil";
import { shellQuote } from "../ssh";
import type { HostIo } from "./host-io";

export interface LockOwner {
  machine: string;
  pid: number;
  user: string;
  since: string;
  command?: string;
}

/** Takes the lock on `host` (master0) through `io`; `sshUser` is named in the refusal's remedy. */
export async function acquireApplyLock(
  io: HostIo,
  host: { ip: string; sshUser: string },
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
    const r = await io.run(host.ip, "lock", take, { allowFail: true, quiet: true });
    if (r.code === 0) {
      return async () => {
        await io.run(host.ip, "unlock", `rm -rf ${shellQuote(dir)}`, { allowFail: true, quiet: true });
      };
    }
    const o = await io.run(host.ip, "lock", `cat ${shellQuote(dir + "/owner.json")} 2>/dev/null || true`, {
      quiet: true,
    });
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(o.stdout) as LockOwner;
    } catch {
      owner = undefined;
    }
    if (owner && owner.machine === me.machine && !pidAlive(owner.pid) && attempt === 0) {
      await io.run(host.ip, "lock", `rm -rf ${shellQuote(dir)}`, { quiet: true });
      continue;
    }
    const who = owner
      ? `${owner.command ?? "apply"} by ${owner.user}@${owner.machine} (pid ${owner.pid}) since ${owner.since}`
      : "an unknown process";
    throw new UserError(
      `cluster ${cluster} is locked on ${host.ip} by ${who}. Wait for it to finish; if that process is gone, remove the stale lock with ` +
        `\`ssh ${host.sshUser}@${host.ip} rm -rf ${dir}\` and try again.`,
    );
  }
  throw new UserError(`cluster ${cluster}: could not take the apply lock ${dir} on ${host.ip}`);
}

/** Running this host's own tools (ip, ssh-keygen, nsenter) for local nodes, with errors that say what failed. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { poll } from "../../common/retry";
import { UserError } from "../../errors";
import { pidAlive } from "../../fsutil";

export const execFileP = promisify(execFile);

export function requireRoot(what = "local nodes"): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0)
    throw new UserError(
      `${what} need root (network namespaces, bridges and overlay mounts): run this command as root, e.g. with sudo`,
    );
}

export async function sh(cmd: string, args: string[], what: string): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${what}: ${cmd} ${args.join(" ")} failed: ${(e.stderr || e.message).trim()}`, {
      cause: err,
    });
  }
}

/** A recorded pid (absent when the node never got that far) that is still running. */
export function pidRunning(pid: number | null | undefined): boolean {
  return !!pid && pidAlive(pid);
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  await poll(async () => ((await check()) ? true : undefined), what, {
    minMs: 20,
    maxMs: 250,
    maxTotalMs: timeoutMs,
  });
}

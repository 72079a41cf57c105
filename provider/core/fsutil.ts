import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { retry } from "./common/retry";
import { UserError } from "./errors";
import { describeFsWriteError } from "./limits";

// Pure hashing lives in a leaf the planner may import; callers of fsutil keep their import.
export { sha256Hex, stableStringify } from "./common/hash";

/**
 * Atomic file write: write a temp file in the same directory, fsync, rename.
 * Readers see the old content or the new, never a half-written file.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
  const fh = await fs.promises.open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.promises.chmod(tmp, mode);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

export async function writeJsonAtomic(file: string, value: unknown, mode = 0o644): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n", mode);
}

export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.promises.readFile(file, "utf8")) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.promises.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** The lock file is there: retried until the lock's timeout. */
class LockHeld extends Error {}

/**
 * A simple cross-process lock: exclusive create of `<file>`; stale locks (dead pid on this
 * machine) are taken over. Returns a release function.
 */
export async function acquireLock(
  file: string,
  what: string,
  timeoutMs = 60_000,
): Promise<() => Promise<void>> {
  const cannot = (err: unknown) => {
    return new UserError(
      `cannot take the lock of ${what} (${file}): ${describeFsWriteError(err, path.dirname(file))}`,
    );
  };
  await fs.promises.mkdir(path.dirname(file), { recursive: true }).catch((err: unknown) => {
    throw cannot(err);
  });
  return retry(
    async () => {
      try {
        const fh = await fs.promises.open(file, "wx", 0o600).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") throw err;
          throw cannot(err);
        });
        await fh.writeFile(String(process.pid));
        await fh.close();
        return async () => {
          await fs.promises.rm(file, { force: true });
        };
      } catch (err) {
        if (err instanceof UserError || (err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const pid = Number((await fs.promises.readFile(file, "utf8").catch(() => "")).trim());
        // A dead holder's lock is removed; the next attempt takes it.
        if (pid > 0 && !pidAlive(pid)) await fs.promises.rm(file, { force: true });
        throw new LockHeld(
          `${what} is locked by process ${pid} (${file}); wait for it or remove the file if that process is gone`,
        );
      }
    },
    {
      retries: Infinity,
      minMs: 100,
      maxMs: 100,
      maxTotalMs: timeoutMs,
      shouldRetry: (e) => e instanceof LockHeld,
    },
  );
}

/** True if a process with this pid exists (EPERM: it exists but is not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

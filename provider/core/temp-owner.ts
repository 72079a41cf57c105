import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { pidAlive } from "./fsutil";

/**
 * Temp files and directories owned by a process: `<kind>-<pid>-<start>-<random>`, where
 * <start> is the process's start time (clock ticks since boot, from /proc). A later process
 * that reuses the pid has another start time, so its predecessor's leftovers are still
 * recognised as dead. Whoever finds an entry whose owner is gone may delete it (the next
 * build, load, and `sealer prune` do).
 *
 * SIGINT, SIGTERM and SIGHUP remove the entries the process registered before it exits;
 * SIGKILL cannot be caught, which is what the stale-entry cleanup is for.
 */

/** This process's start time, or "0" where /proc is not available. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (the command name) may hold spaces and parentheses; fields after it do not.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

const ownStart = startTimeOf(process.pid) ?? "0";

/** A fresh name for a temp entry of this process. */
export function ownedTempName(kind: string, suffix = ""): string {
  return `${kind}-${process.pid}-${ownStart}-${crypto.randomBytes(6).toString("hex")}${suffix}`;
}

export function ownedTempPath(dir: string, kind: string, suffix = ""): string {
  return path.join(dir, ownedTempName(kind, suffix));
}

const OWNED = /^[a-z]+-(\d+)-(?:(\d+)-)?[0-9a-f]+(?:\.[a-z]+)?$/;

/**
 * Whether the process that made the temp entry `name` still runs: true/false for owned names
 * (older names without a start time are judged by the pid alone), undefined for other names.
 */
export function ownerAlive(name: string): boolean | undefined {
  const m = OWNED.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  if (pid === process.pid) return m[2] === undefined || m[2] === ownStart;
  if (!pidAlive(pid)) return false;
  const recorded = m[2];
  if (recorded === undefined || recorded === "0") return true;
  const now = startTimeOf(pid);
  return now === undefined || now === recorded;
}

/** Deletes the entries of `dir` whose owner is gone; returns how many and their bytes. */
export async function cleanStaleTemp(dir: string): Promise<{ entries: number; bytes: number }> {
  let entries = 0;
  let bytes = 0;
  for (const n of await fs.promises.readdir(dir).catch(() => [] as string[])) {
    if (ownerAlive(n) !== false) continue;
    const p = path.join(dir, n);
    bytes += await sizeOf(p);
    await fs.promises.rm(p, { recursive: true, force: true });
    entries++;
  }
  return { entries, bytes };
}

/** Bytes of the regular files under `p` (not following links). */
export async function sizeOf(p: string): Promise<number> {
  const st = await fs.promises.lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let total = 0;
  for (const n of await fs.promises.readdir(p).catch(() => [] as string[]))
    total += await sizeOf(path.join(p, n));
  return total;
}

const registered = new Set<string>();
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function onSignal(sig: NodeJS.Signals): void {
  for (const p of registered) fs.rmSync(p, { recursive: true, force: true });
  registered.clear();
  for (const s of SIGNALS) process.off(s, onSignal);
  // Die of the same signal, as the default handler would have (exit status 128+n).
  process.kill(process.pid, sig);
}

/**
 * Removes `p` if the process is interrupted before the returned function is called. The
 * handlers exist only while something is registered, so they change nothing otherwise.
 */
export function removeOnSignal(p: string): () => void {
  if (registered.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  registered.add(p);
  return () => {
    registered.delete(p);
    if (registered.size === 0) for (const s of SIGNALS) process.off(s, onSignal);
  };
}

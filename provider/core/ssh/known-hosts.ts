import * as fs from "node:fs";
import * as path from "node:path";
import { acquireLock } from "../fsutil";

/**
 * Host-key pinning in OpenSSH known_hosts format, so the file can be read (and edited) with the
 * usual tools: `host keytype base64` for port 22, `[host]:port keytype base64` otherwise.
 * Hashed host names (`|1|...`) written by OpenSSH are kept untouched but not matched.
 */
export interface KnownHostEntry {
  hosts: string[];
  keyType: string;
  keyBase64: string;
}

export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith("@")) continue;
    const [hosts, keyType, keyBase64] = line.split(/\s+/);
    if (!hosts || !keyType || !keyBase64) continue;
    out.push({ hosts: hosts.split(","), keyType, keyBase64 });
  }
  return out;
}

export function formatKnownHost(host: string, port: number, keyType: string, keyBase64: string): string {
  return `${hostPattern(host, port)} ${keyType} ${keyBase64}`;
}

/** The key type inside an SSH public-key blob (its first length-prefixed string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString("latin1");
}

export type HostKeyCheck =
  { status: "match" } | { status: "unknown" } | { status: "mismatch"; recorded: KnownHostEntry[] };

/** Pure: compares a presented key with the recorded entries for host:port. */
export function checkHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  keyBlob: Buffer,
): HostKeyCheck {
  const pattern = hostPattern(host, port);
  const recorded = entries.filter((e) => e.hosts.includes(pattern));
  if (recorded.length === 0) return { status: "unknown" };
  const b64 = keyBlob.toString("base64");
  if (recorded.some((e) => e.keyBase64 === b64)) return { status: "match" };
  return { status: "mismatch", recorded };
}

export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await fs.promises.readFile(file, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** Appends an entry under a lock (several processes may dial new hosts at once). */
export async function recordHostKey(
  file: string,
  host: string,
  port: number,
  keyBlob: Buffer,
): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const release = await acquireLock(file + ".lock", `known hosts file ${file}`);
  try {
    const entries = await readKnownHosts(file);
    if (checkHostKey(entries, host, port, keyBlob).status === "match") return;
    await fs.promises.appendFile(
      file,
      formatKnownHost(host, port, keyTypeOf(keyBlob), keyBlob.toString("base64")) + "\n",
      { mode: 0o600 },
    );
  } finally {
    await release();
  }
}

/** Removes every entry for host:port; returns how many lines went. (`sealer nodes forget-key`.) */
export async function forgetHostKey(file: string, host: string, port = 22): Promise<number> {
  const release = await acquireLock(file + ".lock", `known hosts file ${file}`);
  try {
    let text: string;
    try {
      text = await fs.promises.readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw err;
    }
    const pattern = hostPattern(host, port);
    let removed = 0;
    const kept = text.split("\n").filter((line) => {
      const e = parseKnownHosts(line)[0];
      if (e && e.hosts.includes(pattern)) {
        removed++;
        return false;
      }
      return true;
    });
    if (removed > 0) await fs.promises.writeFile(file, kept.join("\n"), { mode: 0o600 });
    return removed;
  } finally {
    await release();
  }
}

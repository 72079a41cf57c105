/**
 * Registry credentials and per-registry connection settings.
 *
 * - Credentials: docker-style `{ "auths": { "<registry>": { "auth": base64(user:pass) } } }` in
 *   dataPaths.auth() (mode 0600). `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) is read
 *   too, so a user who already ran `docker login` needs nothing else; our file wins.
 * - Settings: `registries.json` next to the credentials: `{ "<registry>": { ca?: PEM, insecure?: true } }`.
 *   The CA is copied in (not referenced by path) so the setting survives the file being moved.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../errors";
import { readJsonIfExists, writeJsonAtomic, acquireLock } from "../fsutil";
import { registerSecret } from "../log";
import { dataPaths, sealerHome } from "../paths";

export interface Credentials {
  username: string;
  password: string;
}

export interface RegistrySettings {
  /** PEM bundle trusted for this registry in addition to the system CAs. */
  ca?: string;
  /** Plain HTTP, or HTTPS without certificate verification, for this registry only. */
  insecure?: boolean;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  [k: string]: unknown;
}

/** The registry key used in files: docker.io is stored under docker's legacy URL, like docker does. */
const DOCKER_HUB_KEYS = [
  "https://index.docker.io/v1/",
  "index.docker.io",
  "docker.io",
  "registry-1.docker.io",
];

export function normalizeRegistryHost(input: string): string {
  let h = input.trim().replace(/^https?:\/\//, "");
  h = h.replace(/\/.*$/, "");
  // A DNS name or IPv4 address, or a bracketed IPv6 one, and an optional port of 1-65535.
  const m =
    /^(?:[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i.exec(
      h,
    );
  if (!h || !m || (m[4] !== undefined && (Number(m[4]) < 1 || Number(m[4]) > 65535)))
    throw new UserError(
      `"${input}" is not a registry host (expected e.g. registry.example.com or 127.0.0.1:5000)`,
    );
  if (DOCKER_HUB_KEYS.includes(h) || h === "index.docker.io") return "docker.io";
  return h.toLowerCase();
}

function fileKey(host: string): string {
  return host === "docker.io" ? "https://index.docker.io/v1/" : host;
}

function findEntry(file: AuthFile | undefined, host: string): Credentials | undefined {
  const auths = file?.auths;
  if (!auths) return undefined;
  for (const [key, entry] of Object.entries(auths)) {
    let k: string;
    try {
      k = normalizeRegistryHost(key);
    } catch {
      continue;
    }
    if (k !== host) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) continue;
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  }
  return undefined;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG
    ? path.join(env.DOCKER_CONFIG, "config.json")
    : path.join(os.homedir(), ".docker", "config.json");
}

/** Credentials for a registry: ours first, then docker's. Registered as secrets. */
export async function loadCredentials(
  registry: string,
  home = sealerHome(),
): Promise<Credentials | undefined> {
  const host = normalizeRegistryHost(registry);
  const ours = findEntry(await readJsonIfExists<AuthFile>(dataPaths.auth(home)), host);
  const found =
    ours ?? findEntry(await readJsonIfExists<AuthFile>(dockerConfigPath()).catch(() => undefined), host);
  if (found) registerSecret(found.password);
  return found;
}

async function withAuthFile(home: string, fn: (f: AuthFile) => AuthFile): Promise<void> {
  const file = dataPaths.auth(home);
  const release = await acquireLock(file + ".lock", `credentials file ${file}`);
  try {
    const cur = (await readJsonIfExists<AuthFile>(file)) ?? {};
    await writeJsonAtomic(file, fn(cur), 0o600);
    await fs.promises.chmod(file, 0o600);
  } finally {
    await release();
  }
}

export async function saveCredentials(
  registry: string,
  creds: Credentials,
  home = sealerHome(),
): Promise<void> {
  const host = normalizeRegistryHost(registry);
  registerSecret(creds.password);
  await withAuthFile(home, (f) => {
    const { auths } = withoutHost(f.auths, host);
    auths[fileKey(host)] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") };
    return { ...f, auths };
  });
}

/** Removes stored credentials; returns whether there were any. */
export async function removeCredentials(registry: string, home = sealerHome()): Promise<boolean> {
  const host = normalizeRegistryHost(registry);
  let found = false;
  if (!fs.existsSync(dataPaths.auth(home))) return false;
  await withAuthFile(home, (f) => {
    const rest = withoutHost(f.auths, host);
    found = rest.found;
    return { ...f, auths: rest.auths };
  });
  return found;
}

/** A copy of `auths` without the entries for `host` (under any spelling of its key). */
function withoutHost<T>(
  auths: Record<string, T> | undefined,
  host: string,
): { auths: Record<string, T>; found: boolean } {
  const rest = { ...(auths ?? {}) };
  let found = false;
  for (const k of Object.keys(rest))
    if (safeNormalize(k) === host) {
      delete rest[k];
      found = true;
    }
  return { auths: rest, found };
}

function safeNormalize(k: string): string | undefined {
  try {
    return normalizeRegistryHost(k);
  } catch {
    return undefined;
  }
}

export function settingsPath(home = sealerHome()): string {
  return path.join(path.dirname(dataPaths.auth(home)), "registries.json");
}

export async function loadSettings(registry: string, home = sealerHome()): Promise<RegistrySettings> {
  const all = (await readJsonIfExists<Record<string, RegistrySettings>>(settingsPath(home))) ?? {};
  return all[normalizeRegistryHost(registry)] ?? {};
}

/** Merges `patch` into the registry's settings (undefined fields are left alone). */
export async function saveSettings(
  registry: string,
  patch: RegistrySettings,
  home = sealerHome(),
): Promise<void> {
  const host = normalizeRegistryHost(registry);
  const file = settingsPath(home);
  const release = await acquireLock(file + ".lock", `registry settings ${file}`);
  try {
    const all = (await readJsonIfExists<Record<string, RegistrySettings>>(file)) ?? {};
    const next: RegistrySettings = { ...(all[host] ?? {}) };
    if (patch.ca !== undefined) next.ca = patch.ca;
    if (patch.insecure !== undefined) next.insecure = patch.insecure;
    all[host] = next;
    await writeJsonAtomic(file, all, 0o600);
  } finally {
    await release();
  }
}

/** Docker lets loopback registries speak plain HTTP without configuration; so do we. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The CLI's record of each cluster: <data dir>/clusters/<name>/state.json (the AppliedState,
 * mode 0600: it holds join material), clusterfile.yaml beside it (the merged Clusterfile without
 * secrets) and secrets.json (its SSH and registry secrets, mode 0600), each written atomically so
 * a crash never leaves half a file.
 * The executor saves after every step; `sealer plan` reads it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors";
import { readJsonIfExists, writeFileAtomic, writeJsonAtomic } from "../fsutil";
import { describeFsError } from "../limits";
import { log } from "../log";
import { dataPaths } from "../paths";
import { dumpClusterfile, loadClusterfile } from "../clusterfile";
import { clusterSecrets, hasSecrets, withSecrets, type ClusterSecrets } from "../clusterfile/spec-secrets";
import type { ClusterSpec } from "../clusterfile/types";
import { checkClusterName } from "../clusterfile/syntax";
import { emptyApplied, type AppliedState } from "../plan/types";

export function clusterDir(name: string, home?: string): string {
  const err = checkClusterName(name);
  if (err) throw new UserError(err);
  return path.join(dataPaths.clusters(home), name);
}

export function statePath(name: string, home?: string): string {
  return path.join(clusterDir(name, home), "state.json");
}

const CLUSTERFILE = "clusterfile.yaml";
const SECRETS_FILE = "secrets.json";

export function clusterfilePath(name: string, home?: string): string {
  return path.join(clusterDir(name, home), CLUSTERFILE);
}

/** The recorded state, or undefined when this cluster was never applied from this machine. */
export async function loadState(name: string, home?: string): Promise<AppliedState | undefined> {
  return loadStateFrom(clusterDir(name, home));
}

/** Why a record file cannot be read, in words: broken JSON or the file-system reason, never Node's error text. */
function unreadable(err: unknown): string {
  return err instanceof SyntaxError ? "it is not valid JSON" : describeFsError(err);
}

/** The state in a cluster record directory (apply takes it by directory). */
export async function loadStateFrom(dir: string): Promise<AppliedState | undefined> {
  const file = path.join(dir, "state.json");
  let s: AppliedState | undefined;
  try {
    s = await readJsonIfExists<AppliedState>(file);
  } catch (err) {
    throw new UserError(
      `${file}: cannot read the cluster state (${unreadable(err)}); restore it from master0 (<dataRoot>/${path.basename(dir)}/state.json) or remove it to plan a full install`,
      { cause: err },
    );
  }
  if (s === undefined) return undefined;
  if (s.version !== 1 || typeof s.steps !== "object" || typeof s.hosts !== "object")
    throw new UserError(
      `${file}: not a cluster state this version understands (version ${String((s as { version?: unknown }).version)})`,
    );
  return s;
}

export async function loadStateOrEmpty(name: string, home?: string): Promise<AppliedState> {
  return (await loadState(name, home)) ?? emptyApplied(name);
}

export async function saveState(state: AppliedState, home?: string): Promise<void> {
  await saveStateTo(clusterDir(state.cluster, home), state);
}

export async function saveStateTo(dir: string, state: AppliedState): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(path.join(dir, "state.json"), state, 0o600);
}

/** The Clusterfile record of a cluster in the data directory (see saveClusterfileTo). */
export async function saveClusterfile(spec: ClusterSpec, home?: string): Promise<void> {
  await saveClusterfileTo(clusterDir(spec.name, home), spec);
}

/**
 * Records the Clusterfile in a cluster record directory: clusterfile.yaml without any secret (it
 * can be shown or shared) and secrets.json beside it (SSH and registry passwords and keys, 0600),
 * or no secrets.json when the spec has none. Secrets first: a crash in between leaves the old
 * Clusterfile with secrets that also worked for the steps that finished.
 */
export async function saveClusterfileTo(dir: string, spec: ClusterSpec): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const secrets = clusterSecrets(spec);
  const secretsFile = path.join(dir, SECRETS_FILE);
  if (hasSecrets(secrets)) await writeJsonAtomic(secretsFile, { version: 1, ...secrets }, 0o600);
  else await fs.promises.rm(secretsFile, { force: true });
  await writeFileAtomic(path.join(dir, CLUSTERFILE), dumpClusterfile(spec), 0o600);
}

/** Whether a Clusterfile is recorded for this cluster. */
export async function hasSavedClusterfile(name: string, home?: string): Promise<boolean> {
  return fs.promises.access(clusterfilePath(name, home)).then(
    () => true,
    () => false,
  );
}

/**
 * The recorded Clusterfile with its secrets merged back. A record written by an older version
 * keeps the secrets inline in clusterfile.yaml: it is rewritten the current way on first read.
 */
export async function loadSavedClusterfile(name: string, home?: string): Promise<ClusterSpec | undefined> {
  const dir = clusterDir(name, home);
  const file = path.join(dir, CLUSTERFILE);
  let text: string;
  try {
    text = await fs.promises.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UserError(`${file}: cannot read the recorded Clusterfile (${describeFsError(err)})`, {
      cause: err,
    });
  }
  const inline = loadClusterfile(text, { file }).spec;
  const secretsFile = path.join(dir, SECRETS_FILE);
  let recorded: ClusterSecrets | undefined;
  try {
    recorded = await readJsonIfExists<ClusterSecrets & { version?: number }>(secretsFile);
  } catch (err) {
    throw new UserError(
      `${secretsFile}: cannot read the recorded secrets (${unreadable(err)}); run sealer apply -f Clusterfile again to record them`,
      { cause: err },
    );
  }
  const spec = recorded ? withSecrets(inline, recorded) : inline;
  if (hasSecrets(clusterSecrets(inline))) {
    // Migration only: reading the record must not fail because it cannot be rewritten.
    try {
      await saveClusterfileTo(dir, spec);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      log.warn(
        `${file}: keeps secrets inline and could not be rewritten without them (${code}); check the permissions of ${dir}`,
      );
    }
  }
  return spec;
}

/** Names of the clusters recorded on this machine. */
export async function listClusters(home?: string): Promise<string[]> {
  try {
    const entries = await fs.promises.readdir(dataPaths.clusters(home), { withFileTypes: true });
    return entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

export async function removeClusterState(name: string, home?: string): Promise<void> {
  await fs.promises.rm(clusterDir(name, home), { recursive: true, force: true });
}

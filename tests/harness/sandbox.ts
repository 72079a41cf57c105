/**
 * Helpers for the tests that run the sandbox images (examples/sandbox-base, examples/app) onto
 * local nodes: the node journal the sandbox's kubeadm/kubectl/seautil stand-ins write, shell on a
 * node, the images built into a test home, applyCluster with short SSH timeouts, and the
 * lifecycle CLI run in this process.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { Command } from "commander";
import { applyCluster, type ApplyResult } from "../../provider/core/apply";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { execInNode, type LocalNode } from "../../provider/core/infra/local";
import { register } from "../../provider/cli/commands/lifecycle";
import { dataPaths } from "../../provider/core/paths";
import { repoRoot, tempDir } from "./registry";
import { setEnv } from "./env";

/** One line of /var/log/sealer-sandbox/journal.jsonl: a call of a sandbox stand-in. */
export interface JournalEntry {
  ts: number;
  tool: string;
  argv: string[];
  cwd: string;
  uid: number;
  env: Record<string, string>;
}

/**
 * The node's journal; with `since` (seconds), only the lines written from then on (nodes are
 * copy-on-write over this machine's /var, so older lines may come from elsewhere).
 */
export async function journal(n: LocalNode, since?: number): Promise<JournalEntry[]> {
  const r = await execInNode(n, "cat /var/log/sealer-sandbox/journal.jsonl 2>/dev/null || true");
  const lines = r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
  return since === undefined ? lines : lines.filter((l) => l.ts >= since);
}

/** stdout of `cmd` on the node, whatever its exit code. */
export async function nodeOut(n: LocalNode, cmd: string): Promise<string> {
  return (await execInNode(n, cmd)).stdout;
}

/** stdout of `cmd` on the node, which must exit 0. */
export async function nodeSh(n: LocalNode, cmd: string): Promise<string> {
  const r = await execInNode(n, cmd);
  assert.equal(r.code, 0, `${n.name}: ${cmd}: ${r.stderr}`);
  return r.stdout;
}

export const SANDBOX_BASE = "sandbox-base:v1.28.2";

/** Builds examples/sandbox-base as sandbox-base:v1.28.2 into `home` (lite mode). */
export function buildSandboxBase(home: string, platforms?: string[]): ReturnType<typeof buildImage> {
  return buildImage({
    context: path.join(repoRoot(), "examples/sandbox-base"),
    tag: SANDBOX_BASE,
    home,
    buildMode: "lite",
    ...(platforms ? { platforms } : {}),
  });
}

/**
 * Mocha hooks for the enclosing describe: a fresh $SEALER_HOME with the sandbox base built into
 * it; afterwards the previous $SEALER_HOME is back and the directory is gone.
 */
export function useSandboxHome(label: string): { home: () => string; store: () => OciLayout } {
  let home = "";
  let restoreEnv: (() => void) | undefined;
  let store: OciLayout | undefined;
  before(async function () {
    this.timeout(240_000);
    home = tempDir(label);
    restoreEnv = setEnv({ SEALER_HOME: home });
    store = new OciLayout(dataPaths.store(home));
    await buildSandboxBase(home);
  });
  after(async () => {
    restoreEnv?.();
    if (home) await fs.promises.rm(home, { recursive: true, force: true });
  });
  return {
    home: () => home,
    store: () => {
      if (!store) throw new Error("useSandboxHome: the store exists only once its before hook ran");
      return store;
    },
  };
}

/** Two SSH dial attempts of 5 s each, so a dead node fails a test fast. */
const QUICK_SSH = { dialAttempts: 2, dialTimeoutMs: 5000 };

/** applyCluster as the tests run it, with QUICK_SSH. */
export function applyQuick(o: Parameters<typeof applyCluster>[0]): Promise<ApplyResult> {
  return applyCluster({ ssh: QUICK_SSH, ...o });
}

/** The options of the lifecycle operations (scale, backup, restore, rollback) as the tests run them. */
export function lifecycleOpts(
  clusterName: string,
  store: OciLayout,
  knownHostsFile: string,
): { clusterName: string; store: OciLayout; knownHostsFile: string; ssh: typeof QUICK_SSH } {
  return { clusterName, store, knownHostsFile, ssh: QUICK_SSH };
}

/** Runs the lifecycle CLI in this process; returns stdout (stderr goes to the test log). */
export async function lifecycleCli(args: string[]): Promise<string> {
  const program = new Command();
  program.exitOverride();
  register(program);
  let out = "";
  const write = process.stdout.write.bind(process.stdout);
  (process.stdout as unknown as { write: (c: string) => boolean }).write = (c: string) => ((out += c), true);
  try {
    await program.parseAsync(args, { from: "user" });
  } finally {
    (process.stdout as unknown as { write: typeof write }).write = write;
  }
  return out;
}

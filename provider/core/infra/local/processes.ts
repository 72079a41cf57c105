/** Processes of a node: running a command inside its namespaces, and killing what runs there. */
import * as fs from "node:fs";
import { pidAlive } from "../../fsutil";
import { execFileP, pidRunning, waitFor } from "./host-cmd";
import type { LocalNode } from "./types";

/** PATH for commands run inside a node without SSH (what a root login on a fresh Debian host has). */
const NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** nsenter's arguments that run `argv` inside the node's mount, UTS and network namespaces. */
export function nsenterArgs(node: LocalNode, argv: string[]): string[] {
  return ["--target", String(node.holderPid), "--mount", "--uts", "--net", "--", ...argv];
}

/** Kills every process of the node (sshd, its sessions, anything started over SSH) but the holder. */
export async function killNodeProcesses(
  node: LocalNode,
  opts: { includeHolder?: boolean } = {},
): Promise<number[]> {
  const pids = (await netnsPids(node.netns)).filter((p) => opts.includeHolder || p !== node.holderPid);
  await killAndWait(pids);
  return pids;
}

/** Runs a command inside the node (its mount and network namespaces) without SSH: for tests and inspection. */
export async function execInNode(
  node: LocalNode,
  command: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(
      "nsenter",
      nsenterArgs(node, ["sh", "-c", command]),
      // The node's environment, not this process's (whose PATH may name host-only tool shims).
      { maxBuffer: 64 << 20, env: { PATH: NODE_PATH, HOME: "/root", LANG: "C.UTF-8" } },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? String(err),
    };
  }
}

export async function netnsPids(ns: string): Promise<number[]> {
  try {
    const { stdout } = await execFileP("ip", ["netns", "pids", ns]);
    return stdout
      .split("\n")
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

export async function killAndWait(pids: Array<number | null | undefined>): Promise<void> {
  const live = pids.filter((p): p is number => pidRunning(p));
  for (const p of live) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await waitFor(
    async () => live.every((p) => !pidAlive(p) || isZombie(p)),
    10_000,
    `processes ${live.join(", ")} to exit`,
  );
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

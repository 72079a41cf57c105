/** Where local nodes are recorded (one node.json each under the data directory), and reading them back. */
import * as fs from "node:fs";
import * as path from "node:path";
import { readJsonIfExists } from "../../fsutil";
import { sealerHome } from "../../paths";
import { pidRunning } from "./host-cmd";
import type { LocalNode } from "./types";

export function localNodesDir(home = sealerHome()): string {
  return path.join(home, "local-nodes");
}

/** Every local node recorded under the data dir (optionally one prefix), sorted by name. */
export async function listLocalNodes(prefix?: string, home = sealerHome()): Promise<LocalNode[]> {
  const dir = localNodesDir(home);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: LocalNode[] = [];
  for (const name of names) {
    const n = await readJsonIfExists<LocalNode>(path.join(dir, name, "node.json"));
    if (n && (prefix === undefined || n.prefix === prefix)) out.push(n);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

export function nodeRunning(n: LocalNode): { holder: boolean; sshd: boolean } {
  return { holder: pidRunning(n.holderPid), sshd: pidRunning(n.sshdPid) };
}

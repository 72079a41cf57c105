/**
 * A real docker-registry in a local node's network namespace, for the benchmarks that compare
 * registry distribution with SSH: a registry the nodes reach that is not this machine, so the
 * bridge's transmit counter is exactly what left this machine for the nodes and the registry
 * (node <-> node frames are switched between the bridge's ports and never counted there).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LocalNode } from "../provider/core/infra/local";

/** Bytes the bridge has sent so far (to its ports: the nodes). */
export const txBytes = (bridge: string): number =>
  Number(fs.readFileSync(`/sys/class/net/${bridge}/statistics/tx_bytes`, "utf8"));

/** docker-registry inside the node's network namespace, on its IP:5000; resolves when it answers. */
export async function startRegistryIn(n: LocalNode, dir: string): Promise<ChildProcess> {
  fs.mkdirSync(dir, { recursive: true });
  const cfg = path.join(dir, "registry.yml");
  fs.writeFileSync(
    cfg,
    [
      "version: 0.1",
      "log: { level: error, accesslog: { disabled: true } }",
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, "data"))} } }`,
      `http: { addr: "${n.ip}:5000", secret: ${crypto.randomBytes(8).toString("hex")} }`,
      "",
    ].join("\n"),
  );
  const child = spawn("ip", ["netns", "exec", n.netns, "docker-registry", "serve", cfg], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${n.ip}:5000/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`docker-registry did not answer on ${n.ip}:5000`);
}

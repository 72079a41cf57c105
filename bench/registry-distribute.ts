/**
 * Registry distribution vs SSH distribution, operator egress and wall time, on 6 and 30 local
 * nodes. A real docker-registry runs in one extra node's network namespace (bench/node-registry).
 *
 *   ssh       the distribute step with --distribute ssh: every node gets every blob from here
 *   registry  the distribute step with the registry: the image is pushed once, nodes fetch it
 * Both end with the same verified blob store and rootfs on every node.
 *
 *   npm run build && node dist/bench/registry-distribute.js   # BENCH_RD_MIB=256 BENCH_RD_NODES=6,30
 * Needs root (local nodes). Removes its nodes, registry and data at the end.
 */
import type { ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadClusterfile } from "../provider/core/clusterfile";
import { ExecContext } from "../provider/core/exec/context";
import { distribute } from "../provider/core/exec/steps/distribute";
import { buildImage } from "../provider/core/image/builder";
import { imageFacts } from "../provider/core/image/facts";
import { OciLayout } from "../provider/core/image/layout";
import { createLocalNodes, deleteLocalNodes, execInNode } from "../provider/core/infra/local";
import { formatBytes, setLogLevel } from "../provider/core/log";
import { emptyApplied, type Step } from "../provider/core/plan/types";
import { saveSettings } from "../provider/core/registry/credentials";
import { SshPool } from "../provider/core/ssh";
import { fmt, time } from "./helpers";
import { startRegistryIn, txBytes } from "./node-registry";
import { clusterYaml } from "../tests/harness/clusterfile";

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error("bench/registry-distribute needs root (it creates local nodes)");
  setLogLevel("warn");
  const mib = Number(process.env.BENCH_RD_MIB ?? 256);
  const sizes = (process.env.BENCH_RD_NODES ?? "6,30").split(",").map(Number);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-bench-rd-"));
  const home = path.join(work, "home");
  process.env.SEALER_HOME = home;
  const prefix = `br${process.pid.toString(36)}`.slice(0, 10);
  const rows: string[] = [];
  let registry: ChildProcess | undefined;
  try {
    const ctxDir = path.join(work, "context");
    fs.mkdirSync(path.join(ctxDir, "data"), { recursive: true });
    const kubefile = ["FROM scratch"];
    for (let i = 0; i < 4; i++) {
      const f = path.join(ctxDir, "data", `part-${i}.bin`);
      const fd = fs.openSync(f, "w");
      const chunk = Buffer.alloc(1 << 20);
      for (let m = 0; m < mib / 4; m++) fs.writeSync(fd, crypto.randomFillSync(chunk));
      fs.closeSync(fd);
      kubefile.push(`COPY data/part-${i}.bin data/`);
    }
    fs.writeFileSync(path.join(ctxDir, "Kubefile"), kubefile.join("\n") + "\n");
    console.log(`building a ${mib} MiB image (4 layers of random data)…`);
    await buildImage({ context: ctxDir, tag: "bench/rd:1", home, buildMode: "lite" });
    const layout = new OciLayout(path.join(home, "store"));
    const image = await imageFacts(layout, "bench/rd:1");
    const layers = image.layers.map((l) => l.digest);
    const total = layers.reduce((n, d) => n + fs.statSync(layout.blobPath(d)).size, 0);

    for (const count of sizes) {
      console.log(`\n${count} nodes + 1 registry node: creating…`);
      const [regNode, ...nodes] = await createLocalNodes({ count: count + 1, prefix }, home);
      registry = await startRegistryIn(regNode!, path.join(work, `registry-${count}`));
      await saveSettings(`${regNode!.ip}:5000`, { insecure: true }, home);
      const pool = new SshPool({ knownHostsFile: path.join(home, "known_hosts") });
      const step = {
        id: "distribute",
        kind: "distribute",
        hosts: nodes.map((n) => n.ip),
        layers,
        reason: "bench",
        key: "k",
        after: [],
      } as unknown as Extract<Step, { kind: "distribute" }>;
      const measure = async (mode: "ssh" | "registry", name: string) => {
        const spec = loadClusterfile(
          clusterYaml({
            name,
            image: "bench/rd:1",
            pk: nodes[0]!.keyPath,
            masters: [nodes[0]!.ip],
            nodes: nodes.slice(1).map((n) => n.ip),
            spec: [
              `  dataRoot: /var/lib/sealer-${name}`,
              `  registry: { externalRegistry: { domain: ${regNode!.ip}, port: 5000 } }`,
            ],
          }),
        ).spec;
        const ctx = new ExecContext({
          spec,
          image,
          layout,
          pool,
          state: emptyApplied(name),
          stateDir: path.join(work, name),
          concurrency: count,
          distribution: mode,
        });
        const before = txBytes(regNode!.bridge);
        const t = await time(() => distribute.run(ctx, step));
        return { ms: t.ms, egress: txBytes(regNode!.bridge) - before };
      };
      const ssh = await measure("ssh", `rds${count}`);
      const reg = await measure("registry", `rdr${count}`);
      await pool.close();
      const check = await execInNode(
        nodes[nodes.length - 1]!,
        `cd /var/lib/sealer-rdr${count}/blobs/sha256 && ls | wc -l`,
      );
      const row = `${count} nodes, image ${formatBytes(total)}: ssh ${fmt(ssh.ms)} egress ${formatBytes(ssh.egress)} (${(ssh.egress / total).toFixed(2)}x image) | registry ${fmt(reg.ms)} egress ${formatBytes(reg.egress)} (${(reg.egress / total).toFixed(2)}x image) | wall ratio registry/ssh ${(reg.ms / ssh.ms).toFixed(2)} | blobs on the last node: ${check.stdout.trim()}`;
      rows.push(row);
      console.log(row);
      registry.kill();
      registry = undefined;
      await deleteLocalNodes(prefix, home);
    }
  } finally {
    registry?.kill();
    await deleteLocalNodes(prefix, home).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log("\n" + rows.join("\n"));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

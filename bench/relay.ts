/**
 * Relay distribution benchmark: direct vs relay to 6 local nodes with the operator's uplink
 * shaped to 200 mbit/s (`tc qdisc ... tbf` on the nodes' bridge).
 *
 * Why shaping the bridge shapes only the operator's uplink: the bridge device's own egress is
 * what this host sends into the node network; frames between two nodes are switched from one
 * veth port to another and never leave through the bridge device. The benchmark checks that
 * claim: it reads the bridge's tx_bytes around the relay run and prints it next to the bytes the
 * relay forwarded (5x the image) — the bridge carried about 1x.
 *
 *   direct   distributeLayers: the operator streams the image to each of the 6 nodes
 *   relay    distributeLayers({ relay }): once to node 1, which forwards to the 5 others (fan-out 4)
 *
 *   npm run build && node dist/bench/relay.js     # BENCH_RELAY_MIB=128 BENCH_RELAY_NODES=6 BENCH_RELAY_RATE=200mbit
 * Needs root (local nodes, tc). Removes the qdisc, the nodes and its data at the end.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { sshHostIoOf } from "../provider/core/exec/host-io";
import { distributeLayers } from "../provider/core/exec/distribute";
import { OciLayout } from "../provider/core/image/layout";
import {
  createLocalNodes,
  deleteLocalNodes,
  execInNode,
  nodeTarget,
  type LocalNode,
} from "../provider/core/infra/local";
import { setLogLevel } from "../provider/core/log";
import { SshPool } from "../provider/core/ssh";
import { fmt, randomLayer } from "./helpers";

const txBytes = (dev: string) => Number(fs.readFileSync(`/sys/class/net/${dev}/statistics/tx_bytes`, "utf8"));
const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/relay needs root (local nodes, tc)");
  setLogLevel("warn");
  const sizeMib = Number(process.env.BENCH_RELAY_MIB ?? 128);
  const count = Number(process.env.BENCH_RELAY_NODES ?? 6);
  const rate = process.env.BENCH_RELAY_RATE ?? "200mbit";
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-bench-relay-"));
  const prefix = `br${process.pid.toString(36)}`.slice(0, 12);
  const pool = new SshPool({ knownHostsFile: path.join(work, "known_hosts") });
  let nodes: LocalNode[] = [];
  let shaped: string | undefined;
  try {
    const store = new OciLayout(path.join(work, "store"));
    await store.init();
    console.log(`generating a ${sizeMib} MiB image (4 layers of random data)…`);
    const layers: string[] = [];
    for (let i = 0; i < 4; i++)
      layers.push(await randomLayer(store, `data/layer-${i}.bin`, Math.floor((sizeMib << 20) / 4)));
    const total = layers.reduce((n, d) => n + fs.statSync(store.blobPath(d)).size, 0);
    console.log(`creating ${count} local nodes (sudo user logins)…`);
    nodes = await createLocalNodes({ count, prefix, sudoUser: { name: "bench", nopasswd: true } });
    const targets = nodes.map((n) => nodeTarget(n, { asSudoUser: true }));
    const bridge = nodes[0]!.bridge;
    spawnSync("sh", ["-c", `cat ${layers.map((d) => store.blobPath(d)).join(" ")} > /dev/null`]);
    // Dial every node once, so neither contender pays for first connections.
    await Promise.all(targets.map((t) => pool.run(t, "true")));

    execFileSync("tc", [
      "qdisc",
      "add",
      "dev",
      bridge,
      "root",
      "tbf",
      "rate",
      rate,
      "burst",
      "256kb",
      "latency",
      "100ms",
    ]);
    shaped = bridge;
    console.log(`shaped ${bridge} egress (operator -> nodes) to ${rate}`);

    const run = async (root: string, relay: boolean) => {
      const before = txBytes(bridge);
      const t0 = process.hrtime.bigint();
      const res = await distributeLayers(sshHostIoOf(pool, targets), targets, {
        layout: store,
        layers,
        dataRoot: root,
        cluster: "bench",
        concurrency: count,
        ...(relay ? { relay: { via: nodes[0]!.ip, fanout: 4, knownHostsFile: pool.knownHostsFile } } : {}),
      });
      return { ms: Number(process.hrtime.bigint() - t0) / 1e6, res, wire: txBytes(bridge) - before };
    };
    const direct = await run("/var/lib/sealer-bench-direct", false);
    if (direct.res.sentBytes !== total * count) throw new Error(`direct sent ${direct.res.sentBytes}`);
    const relay = await run("/var/lib/sealer-bench-relay", true);
    if (relay.res.sentBytes !== total)
      throw new Error(`relay mode: the operator sent ${relay.res.sentBytes}`);
    if (relay.res.relayedBytes !== total * (count - 1)) throw new Error(`relayed ${relay.res.relayedBytes}`);
    const noop = await run("/var/lib/sealer-bench-relay", true);
    if (noop.res.sentBytes !== 0 || noop.res.relayedBytes !== 0)
      throw new Error("the no-op relay run moved bytes");
    for (const n of nodes) {
      const r = await execInNode(
        n,
        `cd /var/lib/sealer-bench-relay/blobs/sha256 && sha256sum ${layers.map((d) => d.slice(7)).join(" ")}`,
      );
      for (const d of layers)
        if (!r.stdout.includes(`${d.slice(7)}  ${d.slice(7)}`))
          throw new Error(`${n.ip}: blob ${d} not verified`);
    }

    console.log(`\nimage ${mib(total)} -> ${count} nodes, operator uplink ${rate}`);
    console.log(
      `direct: ${fmt(direct.ms)}   operator sent ${mib(direct.res.sentBytes)}; bridge egress ${mib(direct.wire)}`,
    );
    console.log(
      `relay:  ${fmt(relay.ms)}   operator sent ${mib(relay.res.sentBytes)}; bridge egress ${mib(relay.wire)}; relay forwarded ${mib(relay.res.relayedBytes ?? 0)} node-to-node`,
    );
    console.log(`relay no-op re-run: ${fmt(noop.ms)}`);
    console.log(
      `claim check: bridge egress / image = ${(relay.wire / total).toFixed(3)} in relay mode (node<->node traffic bypasses the shaped egress), ${(direct.wire / total).toFixed(3)} direct`,
    );
    console.log(
      `\nratio relay/direct (time): ${(relay.ms / direct.ms).toFixed(3)}  (direct is ${(direct.ms / relay.ms).toFixed(2)}x slower)`,
    );
  } finally {
    if (shaped) spawnSync("tc", ["qdisc", "del", "dev", shaped, "root"]);
    await pool.close();
    await Promise.all(
      nodes.map((n) => execInNode(n, "rm -rf /var/lib/sealer-bench-direct /var/lib/sealer-bench-relay")),
    );
    await deleteLocalNodes(prefix).catch((e: unknown) => console.error(`cleanup: ${String(e)}`));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});

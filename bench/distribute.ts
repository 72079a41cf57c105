/**
 * Distribution benchmark: a ≥ 1 GiB image (4 layers of random data, uncompressed tar so no
 * contender pays for gzip) to 6 local nodes (sshd in network namespaces on this machine).
 *
 *   ours      distributeLayers: list, stream, sha256-verify on the node, extract the rootfs
 *   cat       the practical limit: per host one `ssh root@ip 'cat > file' < blob` per layer, 6 hosts in parallel
 *   ansible   `ansible-playbook -f 6` with the `copy` module (Debian ansible), same 4 files
 * then a no-op re-distribution vs an ansible re-run. Prints times and ratios (ours/peer; < 1 means we are faster).
 *
 *   npm run build && node dist/bench/distribute.js        # BENCH_DIST_MIB=1088 BENCH_DIST_NODES=6 by default
 * Needs root (local nodes). Cleans up its nodes and data at the end.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
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
import { fmt, randomLayer, time } from "./helpers";

function run(
  cmd: string,
  args: string[],
  opts: { stdinFile?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [opts.stdinFile ? "pipe" : "ignore", "ignore", "pipe"],
      env: opts.env ?? process.env,
    });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    if (opts.stdinFile) fs.createReadStream(opts.stdinFile).pipe(child.stdin!);
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.slice(-2).join(" ")} exited ${code}: ${err.slice(-2000)}`)),
    );
  });
}

function sshArgs(n: LocalNode): string[] {
  return [
    "-i",
    n.keyPath,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    `root@${n.ip}`,
  ];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/distribute needs root (it creates local nodes)");
  setLogLevel("warn");
  const mib = Number(process.env.BENCH_DIST_MIB ?? 1088);
  const count = Number(process.env.BENCH_DIST_NODES ?? 6);
  const layersN = 4;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-bench-dist-"));
  const prefix = `bd${process.pid.toString(36)}`.slice(0, 12);
  const knownHosts = path.join(work, "known_hosts");
  let nodes: LocalNode[] = [];
  const pool = new SshPool({ knownHostsFile: knownHosts });
  try {
    const store = new OciLayout(path.join(work, "store"));
    await store.init();
    console.log(`generating a ${mib} MiB image (${layersN} layers of random data)…`);
    const per = Math.floor((mib * 1024 * 1024) / layersN);
    const layers: string[] = [];
    for (let i = 0; i < layersN; i++) layers.push(await randomLayer(store, `data/layer-${i}.bin`, per));
    const files = layers.map((d) => store.blobPath(d));
    const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    console.log(`creating ${count} local nodes…`);
    nodes = await createLocalNodes({ count, prefix });
    const targets = nodes.map((n) => nodeTarget(n));
    spawnSync("sh", ["-c", `cat ${files.join(" ")} > /dev/null`]); // warm the page cache for everyone

    const ours = {
      layout: store,
      layers,
      dataRoot: "/var/lib/sealer-bench",
      cluster: "bench",
      concurrency: count,
    };
    // ours: cold
    let sendDone = 0;
    const t0 = Date.now();
    const cold = await time(() =>
      distributeLayers(pool, targets, {
        ...ours,
        onProgress: (p) => {
          if (p.phase === "sent") sendDone = Math.max(sendDone, Date.now() - t0);
        },
      }),
    );
    if (cold.value.sentBytes !== total * count)
      throw new Error(`ours sent ${cold.value.sentBytes}, expected ${total * count}`);
    const noop = await time(() => distributeLayers(pool, targets, ours));
    if (noop.value.sentBytes !== 0) throw new Error("the no-op run sent bytes");
    await Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/sealer-bench")));

    // (a) parallel ssh 'cat > file'
    const cat = await time(() =>
      Promise.all(
        nodes.map(async (n) => {
          for (const [i, f] of files.entries())
            await run(
              "ssh",
              [...sshArgs(n), `mkdir -p /var/lib/bench-cat && cat > /var/lib/bench-cat/layer-${i}`],
              { stdinFile: f },
            );
        }),
      ),
    );
    await Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/bench-cat")));

    // (b) ansible copy
    const inv = path.join(work, "inventory.ini");
    fs.writeFileSync(
      inv,
      "[nodes]\n" +
        nodes
          .map(
            (n) =>
              `${n.ip} ansible_user=root ansible_ssh_private_key_file=${n.keyPath} ansible_python_interpreter=/usr/bin/python3`,
          )
          .join("\n") +
        "\n",
    );
    const play = path.join(work, "copy.yml");
    fs.writeFileSync(
      play,
      `- hosts: nodes\n  gather_facts: false\n  tasks:\n    - file: { path: /var/lib/bench-ansible, state: directory }\n` +
        files.map((f, i) => `    - copy: { src: ${f}, dest: /var/lib/bench-ansible/layer-${i} }\n`).join(""),
    );
    const env = {
      ...process.env,
      ANSIBLE_HOST_KEY_CHECKING: "False",
      ANSIBLE_SSH_ARGS: "-o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=60s",
      ANSIBLE_LOCAL_TEMP: path.join(work, "ansible-tmp"),
      ANSIBLE_NOCOLOR: "1",
    };
    const ans = await time(() => run("ansible-playbook", ["-i", inv, "-f", String(count), play], { env }));
    const ans2 = await time(() => run("ansible-playbook", ["-i", inv, "-f", String(count), play], { env }));
    await Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/bench-ansible")));

    const gib = (total * count) / 1024 ** 3;
    console.log(
      `\nimage ${(total / 1024 ** 2).toFixed(0)} MiB in ${layersN} layers -> ${count} nodes (${gib.toFixed(2)} GiB moved per cold run)`,
    );
    console.log(
      `ours cold (send + sha256 verify + rootfs extract): ${fmt(cold.ms)}  (${(gib / (cold.ms / 1000)).toFixed(2)} GiB/s; all bytes sent and verified after ${fmt(sendDone)})`,
    );
    console.log(
      `(a) parallel ssh 'cat > file':                    ${fmt(cat.ms)}  (${(gib / (cat.ms / 1000)).toFixed(2)} GiB/s)`,
    );
    console.log(`(b) ansible copy -f ${count}:                          ${fmt(ans.ms)}`);
    console.log(`ours no-op re-distribution:                        ${fmt(noop.ms)}`);
    console.log(`ansible re-run (no change):                        ${fmt(ans2.ms)}`);
    console.log(`\nratio ours/cat (cold, total):        ${(cold.ms / cat.ms).toFixed(2)}`);
    console.log(`ratio ours/cat (cold, send+verify):  ${(sendDone / cat.ms).toFixed(2)}`);
    console.log(`ratio ours/ansible (cold):           ${(cold.ms / ans.ms).toFixed(3)}`);
    console.log(`ratio ours/ansible (no-op re-run):   ${(noop.ms / ans2.ms).toFixed(3)}`);
  } finally {
    await pool.close();
    await deleteLocalNodes(prefix).catch((e: unknown) => console.error(`cleanup: ${String(e)}`));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});

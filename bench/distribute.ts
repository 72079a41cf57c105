/**
 * Distribution benchmark, timed as a user waits for it: the WHOLE `sealer run` CLI command
 * (a fresh process, the sandbox base plus one layer of random data, onto 1 master + 5 workers:
 * local nodes, sshd in network namespaces on this machine), against the same bytes (every layer
 * blob of the image) moved by
 *   cat       the practical limit: per host one `ssh root@ip 'cat > file' < blob` per layer, all hosts in parallel
 *   ansible   `ansible-playbook -f <nodes>` with the `copy` module (Debian ansible)
 * the whole `sealer run` of the sandbox base alone (the cluster bring-up the whole run includes and
 * cat does not; ours minus it is what the big layer costs), and the whole
 * `sealer apply --distribute registry` of the same image to the same nodes through
 * a real docker-registry in one more node's namespace (bench/node-registry), with what left this
 * machine for the nodes and the registry (the bridge's counter) against ours over SSH.
 * Prints each, the ratios, where the run's time went (from its own log lines, stamped as they
 * arrive) and the CPU seconds per process name while ours and cat ran (bench/cpu-sampler: the
 * nodes share this machine's cores, so CPU per byte bounds the wall time). Then, in the same run,
 * the distribution alone (distributeLayers, no CLI) with the blobs carried by OpenSSH's client
 * against ssh2 (SEALER_SSH_CLIENT=ssh2), alternating (BENCH_DIST_AB runs each, default 2; 0
 * skips it). `SEALER_SSH_CLIENT=ssh2 node dist/bench/distribute.js` runs the whole CLI on ssh2.
 *
 *   npm run build && node dist/bench/distribute.js        # BENCH_DIST_MIB=1024 BENCH_DIST_NODES=6 by default
 *   BENCH_DIST_MIB=256 node dist/bench/distribute.js      # the quick size
 * Needs root (local nodes). Cleans up its nodes and data at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { distributeLayers } from "../provider/core/exec/distribute";
import { sshHostIoOf } from "../provider/core/exec/host-io";
import { buildImage } from "../provider/core/image/builder";
import { OciLayout } from "../provider/core/image/layout";
import { resolveManifest } from "../provider/core/image/store";
import {
  createLocalNodes,
  deleteLocalNodes,
  execInNode,
  nodeTarget,
  type LocalNode,
} from "../provider/core/infra/local";
import { formatBytes, setLogLevel } from "../provider/core/log";
import { packageRoot } from "../provider/core/package-info";
import { dataPaths } from "../provider/core/paths";
import { saveSettings } from "../provider/core/registry/credentials";
import { SshPool } from "../provider/core/ssh";
import { clusterYaml } from "../tests/harness/clusterfile";
import { formatCpu, sampleCpu } from "./cpu-sampler";
import { fmt, time } from "./helpers";
import { startRegistryIn, txBytes } from "./node-registry";

function run(
  cmd: string,
  args: string[],
  opts: { stdinFile?: string; env?: NodeJS.ProcessEnv; onStderrLine?: (line: string) => void } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    // The file itself is the child's stdin (no pipe through this process): cat's row is the
    // limit, so nothing of ours may sit in its path.
    const stdinFd = opts.stdinFile ? fs.openSync(opts.stdinFile, "r") : undefined;
    const child = spawn(cmd, args, {
      stdio: [stdinFd ?? "ignore", "ignore", "pipe"],
      env: opts.env ?? process.env,
    });
    if (stdinFd !== undefined) fs.closeSync(stdinFd);
    let err = "";
    let partial = "";
    child.stderr!.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
      if (!opts.onStderrLine) return;
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) opts.onStderrLine(l);
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.slice(0, 3).join(" ")} exited ${code}: ${err}`)),
    );
  });
}

function sshArgs(n: LocalNode): string[] {
  const o = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR", "BatchMode=yes"];
  return ["-i", n.keyPath, ...o.flatMap((x) => ["-o", x]), `root@${n.ip}`];
}

/** A file of `bytes` random bytes, written in 1 MiB chunks. */
async function randomFile(file: string, bytes: number): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const fh = await fs.promises.open(file, "w");
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let left = bytes; left > 0; left -= chunk.length) {
      crypto.randomFillSync(chunk);
      await fh.write(chunk, 0, Math.min(left, chunk.length));
    }
  } finally {
    await fh.close();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/distribute needs root (it creates local nodes)");
  setLogLevel("warn");
  const mib = Number(process.env.BENCH_DIST_MIB ?? 1024);
  const count = Number(process.env.BENCH_DIST_NODES ?? 6);
  const root = packageRoot(__dirname);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-bench-dist-"));
  const home = path.join(work, "home");
  const prefix = `bd${process.pid.toString(36)}`.slice(0, 12);
  let nodes: LocalNode[] = [];
  let registry: ChildProcess | undefined;
  try {
    console.log(`building the sandbox base and an image with a ${mib} MiB layer of random data…`);
    await buildImage({
      context: path.join(root, "examples/sandbox-base"),
      tag: "sandbox-base:v1.28.2",
      home,
      buildMode: "lite",
    });
    const ctx = path.join(work, "ctx");
    await randomFile(path.join(ctx, "data/random.bin"), mib * 1024 * 1024);
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM sandbox-base:v1.28.2\nCOPY data data\n");
    await buildImage({ context: ctx, tag: "bench/app:1", home, buildMode: "lite" });
    fs.rmSync(ctx, { recursive: true, force: true });
    const store = new OciLayout(dataPaths.store(home));
    const files = (await resolveManifest(store, "bench/app:1")).manifest.layers.map((l) =>
      store.blobPath(l.digest),
    );
    const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    console.log(`creating ${count} local nodes…`);
    // One more node holds the registry of the registry row; the others are the cluster's.
    const [regNode, ...clusterNodes] = await createLocalNodes({ count: count + 1, prefix });
    nodes = clusterNodes;
    await run("sh", ["-c", `cat ${files.join(" ")} > /dev/null`]); // warm the page cache for everyone

    // (a) parallel ssh 'cat > file', right before and right after ours (the machine's load drifts)
    const catOnce = () =>
      time(async () => {
        await Promise.all(
          nodes.map(async (n) => {
            for (const [i, f] of files.entries())
              await run(
                "ssh",
                [...sshArgs(n), `mkdir -p /var/lib/bench-cat && cat > /var/lib/bench-cat/layer-${i}`],
                {
                  stdinFile: f,
                },
              );
          }),
        );
        await Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/bench-cat")));
      });
    const catCpu = sampleCpu();
    const cat1 = await catOnce();
    const catCpuReport = catCpu.stop();

    // ours: the whole CLI command, as a user runs it; its log lines stamped as they arrive
    const [m, ...w] = nodes as [LocalNode, ...LocalNode[]];
    const stamps: Array<{ ms: number; line: string }> = [];
    const t0 = Date.now();
    // The CLI's own CPU (user+sys with its children) from /usr/bin/time: other jobs on this
    // machine run node and sealer processes too, so the sampler cannot tell ours apart.
    const timeFile = path.join(work, "sealer-run.time");
    const sealer = (args: string[], onStderrLine?: (line: string) => void) =>
      run(
        "/usr/bin/time",
        ["-o", timeFile, "-f", "%U %S", process.execPath, path.join(root, "bin/sealer.js"), ...args],
        { env: { ...process.env, SEALER_HOME: home }, ...(onStderrLine ? { onStderrLine } : {}) },
      );
    const sealerRun = (onStderrLine?: (line: string) => void, image = "bench/app:1", cluster = "bench") =>
      sealer(
        [
          "run",
          image,
          "-m",
          m.ip,
          ...(w.length ? ["-n", w.map((n) => n.ip).join(",")] : []),
          "--pk",
          m.keyPath,
          "--cluster-name",
          cluster,
        ],
        onStderrLine,
      );
    const oursCpu = sampleCpu();
    const oursTx = txBytes(regNode!.bridge);
    const ours = await time(() => sealerRun((line) => stamps.push({ ms: Date.now() - t0, line })));
    const oursEgress = txBytes(regNode!.bridge) - oursTx;
    const oursCpuReport = oursCpu.stop();
    const [cliUser, cliSys] = fs
      .readFileSync(timeFile, "utf8")
      .trim()
      .split("\n")
      .pop()!
      .split(" ")
      .map(Number);
    // The same command again: nothing changed, so nothing runs (what a CI re-apply costs).
    const oursNoop = await time(() => sealerRun());
    // The cluster goes (its services hold ports the next one needs), and its disk space.
    await sealer(["delete", "-a", "--cluster-name", "bench", "--force"]);
    const wipe = () => Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/sealer")));
    await wipe();

    // (c) the same image through a registry the nodes reach: pushed once, fetched by the nodes.
    registry = await startRegistryIn(regNode!, path.join(work, "registry"));
    await saveSettings(`${regNode!.ip}:5000`, { insecure: true }, home);
    const clusterfile = path.join(work, "Clusterfile");
    fs.writeFileSync(
      clusterfile,
      clusterYaml({
        name: "benchreg",
        image: "bench/app:1",
        pk: m.keyPath,
        masters: [m.ip],
        nodes: w.map((n) => n.ip),
        spec: [`  registry: { externalRegistry: { domain: ${regNode!.ip}, port: 5000 } }`],
      }),
    );
    const regTx = txBytes(regNode!.bridge);
    const reg = await time(() => sealer(["apply", "-f", clusterfile, "--distribute", "registry"]));
    const regEgress = txBytes(regNode!.bridge) - regTx;
    await sealer(["delete", "-a", "--cluster-name", "benchreg", "--force"]);
    await wipe();
    registry.kill();
    registry = undefined;

    // (d) the same install without the big layer: the cluster bring-up the whole run includes
    // (runtime, registry, kubeadm stand-ins, joins) and cat does not.
    const base = await time(() => sealerRun(undefined, "sandbox-base:v1.28.2", "benchbase"));
    await sealer(["delete", "-a", "--cluster-name", "benchbase", "--force"]);
    await wipe();

    const cat2 = await catOnce();
    const cat = { ms: (cat1.ms + cat2.ms) / 2 };

    // A/B of the SSH client carrying the blobs (distribution alone, no CLI), alternating so both
    // see the same load. A pool per run: each decides its client on first use.
    const reps = Number(process.env.BENCH_DIST_AB ?? 2);
    const clients = ["openssh", "ssh2"] as const;
    const ab: Record<(typeof clients)[number], number[]> = { openssh: [], ssh2: [] };
    const abCpu: Partial<Record<(typeof clients)[number], string>> = {};
    const clientEnv = process.env.SEALER_SSH_CLIENT;
    if (reps > 0) {
      const layers = (await resolveManifest(store, "bench/app:1")).manifest.layers.map((l) => l.digest);
      const targets = nodes.map((n) => nodeTarget(n));
      try {
        for (let r = 0; r < reps; r++)
          for (const client of clients) {
            if (client === "ssh2") process.env.SEALER_SSH_CLIENT = "ssh2";
            else delete process.env.SEALER_SSH_CLIENT;
            const pool = new SshPool({ knownHostsFile: path.join(work, "known_hosts") });
            try {
              const cpu = sampleCpu();
              const t = await time(() =>
                distributeLayers(sshHostIoOf(pool, targets), targets, {
                  layout: store,
                  layers,
                  dataRoot: "/var/lib/sealer-ab",
                  cluster: "ab",
                  concurrency: count,
                }),
              );
              abCpu[client] = formatCpu(cpu.stop(), (total * count) / 1024 ** 3);
              ab[client].push(t.ms);
            } finally {
              await pool.close();
            }
            await Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/sealer-ab")));
          }
      } finally {
        if (clientEnv === undefined) delete process.env.SEALER_SSH_CLIENT;
        else process.env.SEALER_SSH_CLIENT = clientEnv;
      }
    }

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
    // Ansible's re-run: every file is already there (it checksums each one and copies nothing).
    const ansNoop = await time(() =>
      run("ansible-playbook", ["-i", inv, "-f", String(count), play], { env }),
    );
    await Promise.all(nodes.map((n) => execInNode(n, "rm -rf /var/lib/bench-ansible")));

    const gib = (total * count) / 1024 ** 3;
    console.log(
      `\nimage ${(total / 1024 ** 2).toFixed(0)} MiB in ${files.length} layers -> ${count} nodes (${gib.toFixed(2)} GiB moved)`,
    );
    console.log(`ours: whole \`sealer run\` (1 master + ${w.length} workers):   ${fmt(ours.ms)}`);
    console.log(
      `(a) parallel ssh 'cat > file' of the blobs:        ${fmt(cat.ms)}  (${(gib / (cat.ms / 1000)).toFixed(2)} GiB/s; mean of ${fmt(cat1.ms)} before and ${fmt(cat2.ms)} after ours)`,
    );
    console.log(`(b) ansible copy -f ${count} of the blobs:              ${fmt(ans.ms)}`);
    console.log(
      `(c) whole \`sealer apply --distribute registry\`:      ${fmt(reg.ms)}  ratio to cat ${(reg.ms / cat.ms).toFixed(2)}`,
    );
    console.log(
      `(d) whole \`sealer run\` of the sandbox base alone:      ${fmt(base.ms)}  (the bring-up without the big layer); ours minus it ${fmt(ours.ms - base.ms)}, ratio to cat ${((ours.ms - base.ms) / cat.ms).toFixed(2)}`,
    );
    console.log(
      `operator egress: ours over SSH ${formatBytes(oursEgress)} (${(oursEgress / total).toFixed(2)}x image), registry ${formatBytes(regEgress)} (${(regEgress / total).toFixed(2)}x image)`,
    );
    console.log(`\nCPU during ours: ${formatCpu(oursCpuReport, gib)}`);
    console.log(`CPU during cat:  ${formatCpu(catCpuReport, gib)}`);
    console.log(
      `the sealer CLI itself (operator, with its children): ${cliUser!.toFixed(2)}s user + ${cliSys!.toFixed(2)}s sys = ${((cliUser! + cliSys!) / gib).toFixed(2)} CPU-s/GiB`,
    );
    if (reps > 0) {
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      console.log(`\ndistribution alone (no CLI), SSH client A/B, ${reps} alternating runs each:`);
      for (const k of clients)
        console.log(
          `  ${k.padEnd(7)} ${ab[k].map(fmt).join(" ")}  mean ${fmt(mean(ab[k]))}; last run ${abCpu[k]}`,
        );
      console.log(`  ratio ssh2/openssh: ${(mean(ab.ssh2) / mean(ab.openssh)).toFixed(2)}`);
    }
    console.log(`\nratio ours/cat:      ${(ours.ms / cat.ms).toFixed(2)}   (goal <= 1.5)`);
    console.log(`ratio ansible/ours:  ${(ans.ms / ours.ms).toFixed(2)}   (goal >= 6)`);
    console.log(
      `ratio ansible/cat:   ${(ans.ms / cat.ms).toFixed(2)}   (the bound for ansible/ours on this machine)`,
    );
    console.log(
      `\nno-op re-run: ours ${fmt(oursNoop.ms)}, ansible ${fmt(ansNoop.ms)}; ratio ours/ansible ${(oursNoop.ms / ansNoop.ms).toFixed(3)}`,
    );
    // Where the run's time went: the first and last log line of each step, as the CLI printed them.
    const phases = new Map<string, { first: number; last: number }>();
    for (const s of stamps) {
      const step =
        /step "?([a-z][a-z0-9 :-]*)/i.exec(s.line)?.[1] ??
        /\b(distribute|sending|building the rootfs)\b/.exec(s.line)?.[1];
      if (!step) continue;
      const p = phases.get(step) ?? { first: s.ms, last: s.ms };
      p.last = s.ms;
      phases.set(step, p);
    }
    console.log(`\nlog lines of the run (first .. last, seconds since start):`);
    for (const [k, p] of phases)
      console.log(`  ${fmt(p.first).padStart(8)} .. ${fmt(p.last).padStart(8)}  ${k}`);
    if (process.env.BENCH_DIST_LOG)
      fs.writeFileSync(
        process.env.BENCH_DIST_LOG,
        stamps.map((s) => `${fmt(s.ms)} ${s.line}`).join("\n") + "\n",
      );
  } finally {
    registry?.kill();
    await deleteLocalNodes(prefix).catch((e: unknown) => console.error(`cleanup: ${String(e)}`));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});

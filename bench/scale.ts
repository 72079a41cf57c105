/**
 * Growth with the number of nodes: `sealer run` of the sandbox base (the whole CLI command, its
 * own process) onto 3, 10 and 30 local nodes, then a no-op re-run and a one-layer change; and
 * in the same run a baseline that sends the very same commands with a plain parallel SSH loop.
 *
 *   ours      `sealer run sandbox-base:v1.28.2 -m M -n W...` (SEALER_RECORD_COMMANDS records
 *             every command the SSH pool sends, with its stdin)
 *   baseline  the recorded install commands replayed onto the same nodes after `sealer delete -a`:
 *             per phase (the step label before ":"), each host's commands one after another,
 *             hosts through `xargs -P 8` (our step concurrency), one `ssh` process per command
 *   no-op     the same `sealer run` again (nothing changed)
 *   change    the base rebuilt with one file added to its top layer (scripts/), run again
 * Wall time and the operator's CPU seconds (user+sys of the command and its children, from
 * /usr/bin/time) per host, and the ratio ours/baseline (< 1: we are faster).
 * Commands the baseline replays with stale data (a join token from our install's kubeadm init)
 * fail on the node; their count is printed, and they make the baseline shorter, not longer.
 *
 *   npm run build && node dist/bench/scale.js          # BENCH_SCALE_SIZES=3,10,30 by default
 * Needs root (local nodes). Removes its nodes and data at the end.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { printTable } from "../provider/cli/output";
import { buildImage } from "../provider/core/image/builder";
import { createLocalNodes, deleteLocalNodes, type LocalNode } from "../provider/core/infra/local";
import { packageRoot } from "../provider/core/package-info";
import { shellQuote } from "../provider/core/ssh";
import type { RecordedCommand } from "../provider/core/ssh/record";
import { fmt } from "./helpers";

const IMAGE = "sandbox-base:v1.28.2";
const CONCURRENCY = 8;

interface Measured {
  wallMs: number;
  cpuS: number;
}

/** Runs argv under /usr/bin/time; wall and user+sys CPU of it and its children. Throws on failure. */
function timed(argv: string[], env: NodeJS.ProcessEnv, logFile: string): Measured {
  const out = `${logFile}.time`;
  const log = fs.openSync(logFile, "a");
  const r = spawnSync("/usr/bin/time", ["-f", "%e %U %S", "-o", out, ...argv], {
    env,
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  if (r.status !== 0) throw new Error(`${argv.slice(0, 4).join(" ")}… exited ${r.status}; see ${logFile}`);
  const [e, u, s] = fs.readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  return { wallMs: e! * 1000, cpuS: u! + s! };
}

function sshCommand(n: LocalNode, rec: RecordedCommand, stdinFile: string | undefined): string {
  const ssh = [
    "ssh",
    "-i",
    n.keyPath,
    "-p",
    String(rec.port),
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
    `${rec.user}@${rec.host}`,
    shellQuote(rec.command),
  ].join(" ");
  const feed = !rec.stdin
    ? `${ssh} < /dev/null`
    : "file" in rec.stdin
      ? `tail -c +${rec.stdin.start + 1} ${shellQuote(rec.stdin.file)} | ${ssh}`
      : `${ssh} < ${shellQuote(stdinFile!)}`;
  return `${feed} > /dev/null 2>&1 || echo x >> "$FAILS"`;
}

/** Writes the replay of `records` under `dir` and returns the script that runs it. */
function baselineScript(records: RecordedCommand[], nodes: LocalNode[], dir: string): string {
  const byIp = new Map(nodes.map((n) => [n.ip, n]));
  const phases: string[] = [];
  const perPhase = new Map<string, Map<string, string[]>>();
  records.forEach((rec, i) => {
    const phase = rec.step.split(":")[0]!.trim();
    if (!perPhase.has(phase)) {
      phases.push(phase);
      perPhase.set(phase, new Map());
    }
    let stdinFile: string | undefined;
    if (rec.stdin && "base64" in rec.stdin) {
      stdinFile = path.join(dir, `stdin-${i}`);
      fs.writeFileSync(stdinFile, Buffer.from(rec.stdin.base64, "base64"));
    }
    const hosts = perPhase.get(phase)!;
    const list = hosts.get(rec.host) ?? [];
    list.push(sshCommand(byIp.get(rec.host)!, rec, stdinFile));
    hosts.set(rec.host, list);
  });
  const main = ["set -e", `export FAILS=${shellQuote(path.join(dir, "failures"))}`, ': > "$FAILS"'];
  phases.forEach((phase, p) => {
    const files: string[] = [];
    for (const [host, cmds] of perPhase.get(phase)!) {
      const f = path.join(dir, `phase-${p}-${host}.sh`);
      fs.writeFileSync(f, cmds.join("\n") + "\n");
      files.push(f);
    }
    main.push(
      `t=$(date +%s%N)`,
      `printf '%s\\n' ${files.map(shellQuote).join(" ")} | xargs -P ${CONCURRENCY} -n 1 sh`,
      `echo "phase ${p} ${phase.replace(/[^\w .-]/g, "_")}: $(( ($(date +%s%N) - t) / 1000000 )) ms"`,
    );
  });
  const script = path.join(dir, "baseline.sh");
  fs.writeFileSync(script, main.join("\n") + "\n");
  return script;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/scale needs root (it creates local nodes)");
  const sizes = (process.env.BENCH_SCALE_SIZES ?? "3,10,30").split(",").map(Number);
  const root = packageRoot(__dirname);
  const cli = path.join(root, "bin", "sealer.js");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-bench-scale-"));
  const home = path.join(work, "home");
  const env = { ...process.env, SEALER_HOME: home, SEALER_PROGRESS: "off", CI: "true" };
  const base = path.join(root, "examples", "sandbox-base");
  const changed = path.join(work, "sandbox-base-changed");
  fs.cpSync(base, changed, { recursive: true });
  fs.writeFileSync(path.join(changed, "scripts", "bench-change.txt"), "one changed file in the top layer\n");
  const build = (context: string) => buildImage({ context, tag: IMAGE, home, buildMode: "lite" });
  const rows: string[][] = [];
  let nodes: LocalNode[] = [];
  const prefix = `bs${process.pid.toString(36)}`.slice(0, 10);
  try {
    for (const n of sizes) {
      await build(base);
      console.log(`\n${n} nodes: creating…`);
      nodes = await createLocalNodes({ count: n, prefix }, home);
      const [m0, ...ws] = nodes;
      const name = `scale${n}`;
      const dir = path.join(work, name);
      fs.mkdirSync(dir);
      const rec = path.join(dir, "commands.jsonl");
      const logFile = path.join(dir, "sealer.log");
      const run = [
        process.execPath,
        cli,
        "run",
        IMAGE,
        "-m",
        m0!.ip,
        ...(ws.length ? ["-n", ws.map((w) => w.ip).join(",")] : []),
        "--pk",
        m0!.keyPath,
        "--cluster-name",
        name,
      ];
      const install = timed(run, { ...env, SEALER_RECORD_COMMANDS: rec }, logFile);
      const noop = timed(run, env, logFile);
      await build(changed);
      const change = timed(run, env, logFile);
      timed([process.execPath, cli, "delete", "-a", "--force", "--cluster-name", name], env, logFile);
      const records = fs
        .readFileSync(rec, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as RecordedCommand);
      const replay = path.join(dir, "baseline");
      fs.mkdirSync(replay);
      const baseline = timed(
        ["sh", baselineScript(records, nodes, replay)],
        env,
        path.join(dir, "baseline.log"),
      );
      const fails = fs.readFileSync(path.join(replay, "failures"), "utf8").split("\n").filter(Boolean).length;
      const row = [
        String(n),
        fmt(install.wallMs),
        fmt(baseline.wallMs),
        (install.wallMs / baseline.wallMs).toFixed(2),
        (install.cpuS / n).toFixed(3),
        (baseline.cpuS / n).toFixed(3),
        `${fmt(noop.wallMs)} (cpu ${noop.cpuS.toFixed(2)}s)`,
        fmt(change.wallMs),
        `${records.length} (${fails} failed in replay)`,
      ];
      rows.push(row);
      console.log(row.join("  "));
      await deleteLocalNodes(prefix, home);
      nodes = [];
    }
  } finally {
    if (nodes.length) await deleteLocalNodes(prefix, home).catch(() => undefined);
    if (process.env.BENCH_KEEP) console.log(`kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
  const headers = [
    "nodes",
    "install",
    "ssh loop",
    "ratio",
    "cpu s/host",
    "loop cpu s/host",
    "no-op",
    "1-layer change",
    "commands",
  ];
  console.log("");
  printTable(headers, rows);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

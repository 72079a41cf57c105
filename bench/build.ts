/**
 * Build benchmark: one ≥ 500 MiB context (many small files + a few big random ones), built by
 *  - ours:    `sealer build` (FROM scratch + COPY, lite mode), cold (empty data dir) and no-change rebuild;
 *  - buildah: `buildah bud --layers --storage-driver vfs --isolation chroot` with a private
 *             --root/--runroot, cold and rebuild; plus `buildah push oci:` for a like-for-like
 *             result (buildah compresses layers only when it writes an image out);
 *  - the local limit: `tar -cf - data | gzip -6 | sha256sum`, one pass over the same bytes.
 * Prints wall times and ratios. Run: `npm run build && node dist/bench/build.js`
 * (env BENCH_BUILD_MIB to change the size; default 520).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../provider/core/package-info";

const repoRoot = (): string => packageRoot(__dirname);

const root = repoRoot();
const work = path.join(root, "bench", ".work", "build");
const ctx = path.join(work, "ctx");
const totalMiB = Number(process.env.BENCH_BUILD_MIB ?? 520);

/** Words for compressible small files (config-like text), random big files (binaries). */
function generate(): { files: number; bytes: number } {
  const marker = path.join(ctx, ".generated");
  if (fs.existsSync(marker))
    return JSON.parse(fs.readFileSync(marker, "utf8")) as { files: number; bytes: number };
  fs.rmSync(ctx, { recursive: true, force: true });
  const data = path.join(ctx, "data");
  const smallTotal = Math.floor(totalMiB * 0.3) * 1024 * 1024;
  const bigCount = 4;
  const bigSize = Math.floor(((totalMiB * 1024 * 1024 - smallTotal) / bigCount) | 0);
  let files = 0;
  let bytes = 0;
  const words = Array.from({ length: 512 }, () => crypto.randomBytes(6).toString("base64url").toLowerCase());
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
  for (let d = 0; bytes < smallTotal; d++) {
    const dir = path.join(data, "small", `d${d % 40}`, `s${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100 && bytes < smallTotal; f++) {
      const size = 1024 + (rnd() % 30000);
      const parts: string[] = [];
      let n = 0;
      while (n < size) {
        const w = words[rnd() % words.length] as string;
        parts.push(w);
        n += w.length + 1;
      }
      const text = parts.join(rnd() % 7 === 0 ? "\n" : " ");
      fs.writeFileSync(path.join(dir, `f${f}.yaml`), text);
      files++;
      bytes += Buffer.byteLength(text);
    }
  }
  fs.mkdirSync(path.join(data, "big"), { recursive: true });
  for (let i = 0; i < bigCount; i++) {
    const fd = fs.openSync(path.join(data, "big", `blob${i}.bin`), "w");
    for (let left = bigSize; left > 0; left -= 8 << 20)
      fs.writeSync(fd, crypto.randomBytes(Math.min(left, 8 << 20)));
    fs.closeSync(fd);
    files++;
    bytes += bigSize;
  }
  fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nCOPY data /data\n");
  fs.writeFileSync(path.join(ctx, "Containerfile"), "FROM scratch\nCOPY data /data\n");
  const info = { files, bytes };
  fs.writeFileSync(marker, JSON.stringify(info));
  return info;
}

interface Timing {
  /** Wall seconds. */
  wall: number;
  /** CPU seconds (user + sys of the command and its children): robust on a busy machine. */
  cpu: number;
}

/** Runs a shell command under bash's `time`, which counts the CPU of every child process. */
function timed(
  label: string,
  command: string,
  env: NodeJS.ProcessEnv = process.env,
): Timing & { stdout: string } {
  const r = spawnSync("bash", ["-c", `TIMEFORMAT='%R %U %S'\ntime { ( ${command} ) 2>/dev/null; }`], {
    env,
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`${label}: ${command} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const [wall, user, sys] = (r.stderr.trim().split("\n").pop() ?? "").split(" ").map(Number) as [
    number,
    number,
    number,
  ];
  const t = { wall, cpu: user + sys, stdout: r.stdout };
  console.log(
    `  ${label.padEnd(42)} wall ${wall.toFixed(2).padStart(7)} s   cpu ${(user + sys).toFixed(2).padStart(7)} s`,
  );
  return t;
}

function q(s: string): string {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function dropCaches(): void {
  // Not dropping the page cache: every contender reads the same warm files, which isolates
  // CPU/IO work of the tool itself from disk speed.
}

function main(): void {
  fs.mkdirSync(work, { recursive: true });
  console.log(`generating context under ${ctx} (${totalMiB} MiB target)…`);
  const info = generate();
  console.log(`context: ${info.files} files, ${(info.bytes / 1048576).toFixed(0)} MiB`);
  dropCaches();

  // Warm the page cache once so the first contender is not penalised.
  run("sh", ["-c", `tar -C ${JSON.stringify(ctx)} -cf - data > /dev/null`]);

  const limit = timed(
    "tar | gzip -6 | sha256sum",
    `tar -C ${q(ctx)} --sort=name --mtime=@0 --owner=0 --group=0 -cf - data | gzip -6 -n | sha256sum`,
  );

  const home = path.join(work, "home-ours");
  fs.rmSync(home, { recursive: true, force: true });
  const sealer = [
    process.execPath,
    path.join(root, "bin", "sealer.js"),
    "build",
    "--build-mode",
    "lite",
    "-t",
    "bench/build:1",
    "-f",
    path.join(ctx, "Kubefile"),
    ctx,
  ]
    .map(q)
    .join(" ");
  const env = { ...process.env, SEALER_HOME: home, CI: "true" };
  const oursCold = timed("ours: cold build", sealer, env);
  const oursWarm = timed("ours: no-change rebuild", sealer, env);
  if (oursCold.stdout !== oursWarm.stdout)
    throw new Error(`rebuild changed the digest: ${oursCold.stdout} vs ${oursWarm.stdout}`);
  // Touch every file (same content): the cache keys on content, so this is still all hits.
  run("sh", ["-c", `find ${q(path.join(ctx, "data"))} -type f -exec touch {} +`]);
  const oursTouched = timed("ours: rebuild after touching every file", sealer, env);
  if (oursTouched.stdout !== oursCold.stdout)
    throw new Error(`touch changed the digest: ${oursTouched.stdout}`);

  const none: Timing = { wall: NaN, cpu: NaN };
  let buildahCold = none;
  let buildahWarm = none;
  let buildahPush = none;
  let haveBuildah = true;
  try {
    execFileSync("buildah", ["--version"], { stdio: "ignore" });
  } catch {
    haveBuildah = false;
    console.log("  buildah not installed: skipped (apt-get install buildah)");
  }
  if (haveBuildah) {
    const broot = path.join(work, "buildah-root");
    const brun = path.join(work, "buildah-runroot");
    const g = `buildah --root ${q(broot)} --runroot ${q(brun)} --storage-driver vfs`;
    const rmBuildah = () => {
      spawnSync("sh", ["-c", `${g} rm --all; ${g} rmi --all --force`], { stdio: "ignore" });
      fs.rmSync(broot, { recursive: true, force: true });
      fs.rmSync(brun, { recursive: true, force: true });
    };
    rmBuildah();
    const bud = `${g} bud --layers --isolation chroot -f ${q(path.join(ctx, "Containerfile"))} -t bench/build:1 ${q(ctx)}`;
    buildahCold = timed("buildah bud: cold build", bud);
    buildahWarm = timed("buildah bud: no-change rebuild", bud);
    const out = path.join(work, "buildah-oci");
    fs.rmSync(out, { recursive: true, force: true });
    buildahPush = timed("buildah push oci: (gzip layer out)", `${g} push bench/build:1 oci:${q(out)}:bench`);
    rmBuildah();
    fs.rmSync(out, { recursive: true, force: true });
  }

  const r = (a: Timing, b: Timing) =>
    Number.isFinite(a.wall) && Number.isFinite(b.wall)
      ? `wall ${(a.wall / b.wall).toFixed(2)}x   cpu ${(a.cpu / b.cpu).toFixed(2)}x`
      : "n/a";
  const sum = (a: Timing, b: Timing): Timing => ({ wall: a.wall + b.wall, cpu: a.cpu + b.cpu });
  console.log("\nratios (ours / other; < 1 means ours takes less):");
  console.log(`  cold build      vs tar|gzip|sha256sum        ${r(oursCold, limit)}`);
  console.log(`  cold build      vs buildah bud               ${r(oursCold, buildahCold)}`);
  console.log(`  cold build      vs buildah bud + push oci:   ${r(oursCold, sum(buildahCold, buildahPush))}`);
  console.log(`  rebuild         vs buildah bud rebuild       ${r(oursWarm, buildahWarm)}`);
  console.log(`  touched rebuild vs buildah bud rebuild       ${r(oursTouched, buildahWarm)}`);
  console.log(`  ours: ${oursCold.stdout.trim()}`);
  fs.rmSync(home, { recursive: true, force: true });
}

main();

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

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error("package.json not found above " + __dirname);
    dir = up;
  }
  return dir;
}

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

function time(label: string, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`  ${label.padEnd(44)} ${s.toFixed(2)} s`);
  return s;
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

  const limit = time("tar | gzip -6 | sha256sum", () => {
    run("sh", [
      "-c",
      `tar -C ${JSON.stringify(ctx)} --sort=name --mtime=@0 --owner=0 --group=0 -cf - data | gzip -6 -n | sha256sum`,
    ]);
  });

  const home = path.join(work, "home-ours");
  fs.rmSync(home, { recursive: true, force: true });
  const sealer = [
    path.join(root, "bin", "sealer.js"),
    "build",
    "--build-mode",
    "lite",
    "-t",
    "bench/build:1",
    "-f",
    path.join(ctx, "Kubefile"),
    ctx,
  ];
  const env = { ...process.env, SEALER_HOME: home, CI: "true" };
  let oursDigest = "";
  const oursCold = time("ours: cold build", () => {
    oursDigest = run(process.execPath, sealer, env).trim();
  });
  let oursDigest2 = "";
  const oursWarm = time("ours: no-change rebuild", () => {
    oursDigest2 = run(process.execPath, sealer, env).trim();
  });
  if (oursDigest !== oursDigest2)
    throw new Error(`rebuild changed the digest: ${oursDigest} vs ${oursDigest2}`);
  // Touch every file (same content): the cache keys on content, so this is still all hits.
  run("sh", ["-c", `find ${JSON.stringify(path.join(ctx, "data"))} -type f -exec touch {} +`]);
  const oursTouched = time("ours: rebuild after touching every file", () => {
    const d = run(process.execPath, sealer, env).trim();
    if (d !== oursDigest) throw new Error(`touch changed the digest: ${d}`);
  });

  let buildahCold = NaN;
  let buildahWarm = NaN;
  let buildahPush = NaN;
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
    const rmBuildah = () => {
      spawnSync("buildah", ["--root", broot, "--runroot", brun, "--storage-driver", "vfs", "rm", "--all"], {
        stdio: "ignore",
      });
      spawnSync(
        "buildah",
        ["--root", broot, "--runroot", brun, "--storage-driver", "vfs", "rmi", "--all", "--force"],
        { stdio: "ignore" },
      );
      fs.rmSync(broot, { recursive: true, force: true });
      fs.rmSync(brun, { recursive: true, force: true });
    };
    rmBuildah();
    const bud = [
      "--root",
      broot,
      "--runroot",
      brun,
      "--storage-driver",
      "vfs",
      "bud",
      "--layers",
      "--isolation",
      "chroot",
      "-f",
      path.join(ctx, "Containerfile"),
      "-t",
      "bench/build:1",
      ctx,
    ];
    buildahCold = time("buildah bud: cold build", () => run("buildah", bud));
    buildahWarm = time("buildah bud: no-change rebuild", () => run("buildah", bud));
    const out = path.join(work, "buildah-oci");
    fs.rmSync(out, { recursive: true, force: true });
    buildahPush = time("buildah push oci: (gzip layer out)", () =>
      run("buildah", [
        "--root",
        broot,
        "--runroot",
        brun,
        "--storage-driver",
        "vfs",
        "push",
        "bench/build:1",
        `oci:${out}:bench`,
      ]),
    );
    rmBuildah();
    fs.rmSync(out, { recursive: true, force: true });
  }

  const r = (a: number, b: number) =>
    Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : "n/a";
  console.log("\nratios (time of ours / time of other; < 1 means ours is faster):");
  console.log(`  cold build    vs tar|gzip|sha256sum     ${r(oursCold, limit)}`);
  console.log(`  cold build    vs buildah bud            ${r(oursCold, buildahCold)}`);
  console.log(`  cold build    vs buildah bud + push oci ${r(oursCold, buildahCold + buildahPush)}`);
  console.log(`  rebuild       vs buildah bud (rebuild)  ${r(oursWarm, buildahWarm)}`);
  console.log(`  touched rebuild vs buildah bud (rebuild)${r(oursTouched, buildahWarm)}`);
  console.log(`  ours digest: ${oursDigest}`);
  fs.rmSync(home, { recursive: true, force: true });
}

main();

/**
 * Runs the benchmarks one after another (they are heavy: each generates its own data under
 * bench/.work). `npm run bench` runs all; `npm run bench -- build registry` runs the named ones.
 * Each benchmark runs ours and a peer on the same work in the same run and prints the ratio.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const all = ["build", "registry", "plan", "distribute", "relay", "registry-distribute", "scale", "infra"];
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
let failed = 0;
for (const name of wanted) {
  const file = path.join(__dirname, `${name}.js`);
  if (!fs.existsSync(file)) {
    console.error(`bench ${name}: ${file} not found (known: ${all.join(", ")})`);
    failed++;
    continue;
  }
  console.log(`\n=== bench ${name}`);
  const r = spawnSync(process.execPath, [file], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);

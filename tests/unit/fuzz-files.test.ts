/**
 * Fuzzing the file front doors: 300 mutated Kubefiles and Clusterfiles and one input per known
 * class of crash or hang go through the CLI (`build -f`, `plan -f`). Each must end with a
 * non-zero exit and a message that names the file, or succeed for real (the image is in the
 * store; a plan is printed). Never a JavaScript error, a stack trace, a hang (no answer within
 * 10 s) or a death of the process (1 GiB heap). Most inputs run in one worker process that calls
 * the CLI's program in-process; a sample also runs the real binary. Seeded (FUZZ_SEED overrides).
 */
import * as assert from "node:assert/strict";
import * as cp from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { packageRoot } from "../../provider/core/package-info";
import { BASE_IMAGE, BASE_KUBEFILE, CONTEXT_FILES, fuzzInputs, type FuzzInput } from "../harness/fuzz-inputs";
import type { FuzzJob, FuzzResult } from "../harness/fuzz-worker";
import { jsErrorText } from "../harness/js-error-text";

const ROOT = packageRoot(__dirname);
const BIN = path.join(ROOT, "bin", "sealer.js");
const WORKER = path.join(ROOT, "dist", "tests", "harness", "fuzz-worker.js");
const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
const NO_ANSWER_MS = 10_000;
const HEAP = "--max-old-space-size=1024";
/** The classes that crashed or hung before, run by the real binary too (plus every 30th mutated input). */
const SPAWNED = [
  "h-nul-run",
  "h-nul-copy-dest",
  "h-long-path",
  "h-arg-chain",
  "h-glob-stars",
  "h-app-stars",
  "h-huge-kubefile",
  "h-kubefile-missing",
  "h-alias-bomb",
  "h-deep-flow",
  "h-complex-key",
  "h-bad-image",
  "h-bad-image-long",
  "h-missing-image",
  "h-huge-clusterfile",
  "h-clusterfile-dir",
];

interface Prepared {
  input: FuzzInput;
  file: string;
  tag: string;
  readable: boolean;
}

/** Writes an input where the CLI will read it (a huge one in chunks). */
function prepare(dir: string, input: FuzzInput, n: number): Prepared {
  const file = path.join(dir, `${input.id}.${input.kind === "kubefile" ? "Kubefile" : "Clusterfile.yaml"}`);
  const tag = `fuzz/k${n}:1`;
  if (input.special === "directory") fs.mkdirSync(file);
  else if (input.huge) {
    const fd = fs.openSync(file, "w");
    fs.writeSync(fd, input.huge.head);
    const chunk = input.huge.fill.repeat(Math.ceil((1024 * 1024) / input.huge.fill.length));
    for (let written = 0; written < input.huge.bytes; written += chunk.length) fs.writeSync(fd, chunk);
    fs.closeSync(fd);
  } else if (input.special !== "missing") fs.writeFileSync(file, input.text ?? "");
  return { input, file, tag, readable: !input.special && !input.huge };
}

/** What is wrong with one outcome (empty when it is a clean refusal or a real success). */
function judge(
  p: Prepared,
  r: { code?: number; stdout?: string; stderr?: string; crash?: string; inStore?: boolean },
): string[] {
  const wrong: string[] = [];
  if (r.crash) return [`crashed: ${r.crash.split("\n").slice(0, 3).join(" | ")}`];
  const all = `${r.stdout ?? ""}\n${r.stderr ?? ""}`;
  const js = jsErrorText(all);
  if (js.length) wrong.push(`JavaScript error text ${js.join(", ")} in: ${all.slice(0, 400)}`);
  if (r.code === 0) {
    if (p.input.kind === "kubefile" && !r.inStore)
      wrong.push("build said it succeeded but the image is not in the store");
    if (p.input.kind === "clusterfile" && !/^Cluster \S+: /m.test(r.stdout ?? ""))
      wrong.push(`plan succeeded without printing a plan: ${(r.stdout ?? "").slice(0, 200)}`);
    return wrong;
  }
  const stderr = r.stderr ?? "";
  // Progress lines may come first; the last message is the refusal.
  if (!/(^|\n)sealer: /.test(stderr)) wrong.push(`no "sealer: " message: ${stderr.slice(0, 300)}`);
  // Located: the message names the file (problems in the text also name their line).
  const name = path.basename(p.file);
  if (!stderr.includes(name)) wrong.push(`message does not name ${name}: ${stderr.slice(0, 300)}`);
  for (const line of stderr.split("\n").filter((l) => l.startsWith(" - ")))
    if (!line.includes(name)) wrong.push(`problem without its file: ${line.slice(0, 200)}`);
  return wrong;
}

describe("fuzz: hostile and mutated Kubefiles and Clusterfiles through the CLI", function () {
  this.timeout(240_000);
  let work: string;
  let env: NodeJS.ProcessEnv;
  let prepared: Prepared[];

  before(function () {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-fuzz-"));
    env = { ...process.env, SEALER_HOME: path.join(work, "home"), NO_COLOR: "1" };
    const context = path.join(work, "context");
    for (const [rel, content] of Object.entries(CONTEXT_FILES)) {
      fs.mkdirSync(path.dirname(path.join(context, rel)), { recursive: true });
      fs.writeFileSync(path.join(context, rel), content);
    }
    fs.writeFileSync(path.join(work, "base.Kubefile"), BASE_KUBEFILE);
    // The image the Clusterfiles run, built by the real binary.
    const b = cp.spawnSync(
      process.execPath,
      [HEAP, BIN, "build", "-f", "base.Kubefile", "-t", BASE_IMAGE, "context"],
      {
        cwd: work,
        env,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    assert.equal(b.status, 0, `building ${BASE_IMAGE}: ${b.stderr}`);
    const inputs = path.join(work, "in");
    fs.mkdirSync(inputs);
    prepared = fuzzInputs(SEED, 300).map((inp, n) => prepare(inputs, inp, n));
  });

  after(function () {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it(`every input ends cleanly in one worker process (seed ${SEED})`, async function () {
    const results = new Map<string, FuzzResult>();
    const failures: string[] = [];
    let hung = 0;
    let died = 0;
    let remaining = prepared;
    while (remaining.length) {
      const job: FuzzJob = {
        context: path.join(work, "context"),
        results: path.join(work, `results-${remaining.length}.jsonl`),
        inputs: remaining.map((p) => ({
          id: p.input.id,
          kind: p.input.kind,
          file: path.relative(work, p.file),
          tag: p.tag,
          readable: p.readable,
        })),
      };
      fs.writeFileSync(path.join(work, "job.json"), JSON.stringify(job));
      fs.writeFileSync(job.results, "");
      const child = cp.spawn(process.execPath, [HEAP, WORKER, path.join(work, "job.json")], {
        cwd: work,
        env,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let childErr = "";
      child.stderr.on("data", (d: Buffer) => (childErr = (childErr + d.toString()).slice(-2000)));
      const exit = await new Promise<{ code: number | null; signal: string | null; idle: boolean }>(
        (resolve) => {
          let size = 0;
          let lastProgress = Date.now();
          const timer = setInterval(() => {
            const now = fs.statSync(job.results).size;
            if (now !== size) {
              size = now;
              lastProgress = Date.now();
            } else if (Date.now() - lastProgress > NO_ANSWER_MS) {
              child.kill("SIGKILL");
              clearInterval(timer);
              resolve({ code: null, signal: "SIGKILL", idle: true });
            }
          }, 200);
          child.on("exit", (code, signal) => {
            clearInterval(timer);
            resolve({ code, signal, idle: false });
          });
        },
      );
      const lines = fs.readFileSync(job.results, "utf8").split("\n").filter(Boolean);
      let inFlight: string | undefined;
      for (const l of lines) {
        const r = JSON.parse(l) as FuzzResult;
        if (r.phase === "start") inFlight = r.id;
        else {
          results.set(r.id, r);
          inFlight = undefined;
        }
      }
      if (inFlight) {
        const p = prepared.find((x) => x.input.id === inFlight) as Prepared;
        if (exit.idle) {
          hung++;
          failures.push(`${inFlight} (${p.input.note}): no answer within ${NO_ANSWER_MS / 1000} s`);
        } else {
          died++;
          failures.push(
            `${inFlight} (${p.input.note}): the process died (${exit.signal ?? exit.code}): ${childErr.slice(-500)}`,
          );
        }
      } else if (exit.code !== 0)
        failures.push(`worker failed outside any input (${exit.code}): ${childErr}`);
      const done = new Set([...results.keys(), ...(inFlight ? [inFlight] : [])]);
      const next = remaining.filter((p) => !done.has(p.input.id));
      if (next.length === remaining.length) break;
      remaining = next;
    }
    let clean = 0;
    let succeeded = 0;
    let parsedOnly = 0;
    for (const p of prepared) {
      const r = results.get(p.input.id);
      if (!r) continue;
      if (r.parsedOnly) {
        parsedOnly++;
        continue;
      }
      const wrong = judge(p, r);
      if (wrong.length) failures.push(`${p.input.id} (${p.input.note}): ${wrong.join("; ")}`);
      else if (r.code === 0) succeeded++;
      else clean++;
    }
    // The counts the report quotes.
    console.log(
      `      fuzz seed ${SEED}: ${prepared.length} inputs, ${clean} refused cleanly, ${succeeded} succeeded, ${parsedOnly} parsed only (would fetch or run commands), ${hung} hung, ${died} killed the process, ${failures.length} failures`,
    );
    assert.ok(prepared.length >= 300);
    assert.deepStrictEqual(failures, []);
  });

  it("the real binary agrees on a sample (own process, 1 GiB heap, 10 s each)", function () {
    const sample = prepared.filter(
      (p, i) => SPAWNED.includes(p.input.id) || (p.input.id.startsWith("m-") && i % 30 === 0),
    );
    const failures: string[] = [];
    for (const p of sample) {
      if (
        p.readable &&
        p.input.kind === "kubefile" &&
        /^(FROM (?!scratch)|RUN |ADD )/im.test(p.input.text ?? "")
      )
        continue; // would pull, run or download: the worker test covers its parse
      const argv =
        p.input.kind === "kubefile"
          ? ["build", "-f", path.relative(work, p.file), "-t", `${p.tag}-bin`, "context"]
          : ["plan", "-f", path.relative(work, p.file)];
      const r = cp.spawnSync(process.execPath, [HEAP, BIN, ...argv], {
        cwd: work,
        env,
        encoding: "utf8",
        timeout: NO_ANSWER_MS,
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.error || r.signal) {
        failures.push(`${p.input.id} (${p.input.note}): ${r.signal ?? r.error?.message}`);
        continue;
      }
      let inStore: boolean | undefined;
      if (r.status === 0 && p.input.kind === "kubefile")
        inStore =
          cp.spawnSync(process.execPath, [BIN, "inspect", `${p.tag}-bin`], {
            cwd: work,
            env,
            timeout: NO_ANSWER_MS,
          }).status === 0;
      const wrong = judge(p, {
        code: r.status ?? 1,
        stdout: r.stdout,
        stderr: r.stderr,
        ...(inStore === undefined ? {} : { inStore }),
      });
      if (wrong.length) failures.push(`${p.input.id} (${p.input.note}): ${wrong.join("; ")}`);
    }
    assert.ok(sample.length >= 20, `${sample.length} spawned`);
    assert.deepStrictEqual(failures, []);
  });
});

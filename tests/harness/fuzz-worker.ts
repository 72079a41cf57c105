/**
 * Runs fuzz inputs through the CLI's own program in this process, one after the other, and
 * appends one JSON line per input to a results file ("start" before, the outcome after), so the
 * parent can tell which input hung or killed the process. Run as:
 *   node --max-old-space-size=1024 dist/tests/harness/fuzz-worker.js JOB.json
 * The parent sets the working directory and SEALER_HOME.
 */
import * as fs from "node:fs";
import { buildProgram } from "../../provider/cli/main";
import { UserError } from "../../provider/core/errors";
import { parseKubefile } from "../../provider/core/kubefile";

export interface FuzzJob {
  context: string;
  results: string;
  inputs: Array<{
    id: string;
    kind: "kubefile" | "clusterfile";
    file: string;
    tag: string;
    readable: boolean;
  }>;
}

export interface FuzzResult {
  id: string;
  phase: "start" | "end";
  argv?: string[];
  code?: number;
  stdout?: string;
  stderr?: string;
  /** A non-UserError thrown by the command: its text. */
  crash?: string;
  /** Why the CLI was not run (the Kubefile would fetch from the network or run commands here). */
  parsedOnly?: string;
  /** For a successful build: whether the image is in the store afterwards. */
  inStore?: boolean;
}

/** Runs `sealer ARGV` in-process, capturing what it prints; a UserError becomes "sealer: msg" and its exit code, as bin/sealer.js does. */
export async function runCli(
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string; crash?: string }> {
  let stdout = "";
  let stderr = "";
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  }) as typeof process.stderr.write;
  try {
    await buildProgram().parseAsync(["node", "sealer", ...argv]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof UserError)
      return { code: e.exitCode, stdout, stderr: stderr + `sealer: ${e.message}\n` };
    return { code: 1, stdout, stderr, crash: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** Why a Kubefile that parses must not be built here, if so: it would pull a base image, download, or run commands. */
function notHere(text: string): string | undefined {
  let kf;
  try {
    kf = parseKubefile(text, { file: "Kubefile" });
  } catch {
    return undefined; // refused: the CLI must refuse it too
  }
  for (const i of kf.instructions) {
    if (i.kind === "FROM" && i.image !== "scratch") return `FROM ${i.image} would be pulled`;
    if (i.kind === "RUN") return "RUN would run a command on this machine";
    if (
      (i.kind === "ADD" || i.kind === "APP" || i.kind === "CNI" || i.kind === "CSI") &&
      i.sources.some((s) => /^[a-z]+:\/\//i.test(s))
    )
      return "a source would be downloaded";
  }
  return undefined;
}

async function main(): Promise<void> {
  const job = JSON.parse(fs.readFileSync(process.argv[2] as string, "utf8")) as FuzzJob;
  const write = (r: FuzzResult) => fs.appendFileSync(job.results, JSON.stringify(r) + "\n");
  for (const inp of job.inputs) {
    write({ id: inp.id, phase: "start" });
    if (inp.kind === "kubefile") {
      const why = inp.readable ? notHere(fs.readFileSync(inp.file, "utf8")) : undefined;
      if (why) {
        write({ id: inp.id, phase: "end", parsedOnly: why });
        continue;
      }
      const argv = ["build", "-f", inp.file, "-t", inp.tag, job.context];
      const r = await runCli(argv);
      const inStore = r.code === 0 && !r.crash ? (await runCli(["inspect", inp.tag])).code === 0 : undefined;
      write({ id: inp.id, phase: "end", argv, ...r, ...(inStore === undefined ? {} : { inStore }) });
    } else {
      const argv = ["plan", "-f", inp.file];
      write({ id: inp.id, phase: "end", argv, ...(await runCli(argv)) });
    }
  }
}

if (require.main === module)
  main().catch((e: unknown) => {
    process.stderr.write(`fuzz worker: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(3);
  });

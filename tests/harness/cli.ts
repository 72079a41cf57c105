/** Runs the `sealer` CLI as a user would, with a test's own data directory. */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./registry";

const execFileP = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The CLI from the source tree (tsx) when tests run from source, else from dist/, with
 * SEALER_HOME = `home`. A non-zero exit is returned, not thrown.
 */
export async function runSealer(home: string, ...args: string[]): Promise<CliResult> {
  const root = repoRoot();
  const fromSource = __filename.endsWith(".ts");
  const argv = fromSource
    ? [
        "-r",
        "tsx/cjs",
        "-e",
        `require(${JSON.stringify(path.join(root, "provider/cli/main.ts"))}).main(process.argv)`,
        "sealer",
        ...args,
      ]
    : [path.join(root, "bin/sealer.js"), ...args];
  try {
    const r = await execFileP(process.execPath, argv, {
      cwd: root,
      env: { ...process.env, SEALER_HOME: home },
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : -1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
    };
  }
}

/** What `fn` writes to process.stdout (an in-process CLI call); stdout is back even when it throws. */
export async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  const out: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = orig;
  }
  return out.join("");
}

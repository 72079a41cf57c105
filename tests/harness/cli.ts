/** Runs the `sealer` CLI as a user would, with a test's own data directory. */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { repoRoot } from "./registry";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The CLI from the source tree (tsx) when tests run from source, else from dist/, with
 * SEALER_HOME = `home`. A non-zero exit is returned, not thrown.
 */
export function runSealer(home: string, ...args: string[]): Promise<CliResult> {
  return runSealerStdin(home, "", ...args);
}

/** runSealer with `stdin` as the CLI's standard input (e.g. --password-stdin). */
export function runSealerStdin(home: string, stdin: string, ...args: string[]): Promise<CliResult> {
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
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      argv,
      { cwd: root, env: { ...process.env, SEALER_HOME: home }, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        resolve({
          code: err
            ? typeof (err as { code?: unknown }).code === "number"
              ? (err as { code: number }).code
              : -1
            : 0,
          stdout,
          stderr,
        }),
    );
    child.stdin?.end(stdin);
  });
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

/**
 * Opt-in record of every command the SSH pool sends (`SEALER_RECORD_COMMANDS=<file>`), one JSON
 * line each, so a benchmark can replay exactly the same work with a plain SSH loop. The file is
 * created 0600: it holds the commands verbatim, secrets included, and is meant for benchmarks
 * on throw-away nodes only.
 */
import * as fs from "node:fs";
import type { Readable } from "node:stream";

export interface RecordedCommand {
  host: string;
  port: number;
  user: string;
  step: string;
  /** The command as the node's shell receives it (sudo wrapper included). */
  command: string;
  /** stdin: bytes (base64), a local file range, or absent. */
  stdin?: { base64: string } | { file: string; start: number };
}

export function recordCommand(
  t: { host: string; port?: number; user?: string },
  step: string,
  command: string,
  stdin: string | Buffer | Readable | { file: string; start: number } | undefined,
): void {
  const file = process.env.SEALER_RECORD_COMMANDS;
  if (!file) return;
  const rec: RecordedCommand = { host: t.host, port: t.port ?? 22, user: t.user ?? "root", step, command };
  if (typeof stdin === "string" || Buffer.isBuffer(stdin))
    rec.stdin = { base64: Buffer.from(stdin).toString("base64") };
  else if (stdin && "file" in stdin) rec.stdin = stdin;
  else if (stdin instanceof fs.ReadStream)
    rec.stdin = { file: String(stdin.path), start: (stdin as fs.ReadStream & { start?: number }).start ?? 0 };
  fs.appendFileSync(file, JSON.stringify(rec) + "\n", { mode: 0o600 });
}

/**
 * A recording fake of the executor's host interface: every call is kept per host in order,
 * commands are answered from a script (first matching pattern wins), and put/read share an
 * in-memory file map per host. Non-zero exits throw CommandError like the SSH pool does.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import type { Readable } from "node:stream";
import {
  isFileRange,
  type FileRange,
  type HostIo,
  type HostRunOptions,
  type HostStreamOptions,
  type LocalFile,
} from "../../provider/core/exec/host-io";
import { CommandError, type ExecResult } from "../../provider/core/ssh";

export type FakeCall =
  | { op: "run"; step: string; command: string; body: string; stdin?: string }
  | { op: "put"; step: string; file: string; content: string; mode: number }
  | { op: "read"; step: string; file: string }
  /** What a streamed source held: its length and sha256 (hex). */
  | { op: "stream"; step: string; command: string; body: string; bytes: number; sha256: string };

export interface FakeAnswer {
  /** Only on this host (default: any). */
  host?: string;
  match: RegExp;
  stdout?: string;
  stderr?: string;
  code?: number;
  /** Files the command leaves on the host (e.g. kubeadm init's admin.conf). */
  writes?: Record<string, string>;
}

/** ExecContext.sh puts env, PATH and `cd rootfs` before the command: `body` is what follows. */
function bodyOf(command: string): string {
  const m = /^export [\s\S]*?; then cd [^;]*; fi; /.exec(command);
  return m ? command.slice(m[0].length) : command;
}

export class FakeHosts implements HostIo {
  readonly calls = new Map<string, FakeCall[]>();
  readonly files = new Map<string, Map<string, string>>();
  private readonly answers: FakeAnswer[] = [];

  answer(a: FakeAnswer): this {
    this.answers.push(a);
    return this;
  }

  file(ip: string, path: string, content: string): this {
    this.fileMap(ip).set(path, content);
    return this;
  }

  /** Calls on one host, in order. */
  on(ip: string): FakeCall[] {
    return this.calls.get(ip) ?? [];
  }

  /** The command bodies run on one host, in order. */
  bodies(ip: string): string[] {
    return this.on(ip).flatMap((c) => (c.op === "run" ? [c.body] : []));
  }

  /** The hosts that got any call. */
  hosts(): string[] {
    return [...this.calls.keys()].sort();
  }

  run(ip: string, step: string, command: string, opts: HostRunOptions = {}): Promise<ExecResult> {
    const body = bodyOf(command);
    this.record(ip, {
      op: "run",
      step,
      command,
      body,
      ...(opts.stdin !== undefined ? { stdin: opts.stdin.toString() } : {}),
    });
    return this.answerTo(ip, step, body, opts.allowFail);
  }

  /** Reads `source` to its end (as the host would), records its size and digest, answers like run. */
  async stream(
    ip: string,
    step: string,
    command: string,
    source: Readable | string | Buffer | FileRange,
    opts: HostStreamOptions = {},
  ): Promise<ExecResult> {
    const hash = crypto.createHash("sha256");
    let bytes = 0;
    const take = (b: Buffer) => {
      hash.update(b);
      bytes += b.length;
      opts.onStdinBytes?.(bytes);
    };
    if (typeof source === "string" || Buffer.isBuffer(source)) take(Buffer.from(source));
    else if (isFileRange(source))
      for await (const chunk of fs.createReadStream(source.localFile, { start: source.start }))
        take(chunk as Buffer);
    else for await (const chunk of source) take(chunk as Buffer);
    const body = bodyOf(command);
    this.record(ip, { op: "stream", step, command, body, bytes, sha256: hash.digest("hex") });
    const res = await this.answerTo(ip, step, body, opts.allowFail);
    for (const line of res.stdout.split("\n").filter(Boolean)) opts.onLine?.(line, "stdout");
    return res;
  }

  private answerTo(ip: string, step: string, body: string, allowFail?: boolean): Promise<ExecResult> {
    const a = this.answers.find((x) => (!x.host || x.host === ip) && x.match.test(body));
    const testFile = /^test -f (\S+)$/.exec(body);
    const res: ExecResult = a
      ? { code: a.code ?? 0, stdout: a.stdout ?? "", stderr: a.stderr ?? "" }
      : testFile
        ? { code: this.fileMap(ip).has(testFile[1]!) ? 0 : 1, stdout: "", stderr: "" }
        : { code: 0, stdout: "", stderr: "" };
    for (const [f, c] of Object.entries(a?.writes ?? {})) this.fileMap(ip).set(f, c);
    if (res.code !== 0 && !allowFail)
      return Promise.reject(new CommandError(ip, step, res.code, (res.stderr || res.stdout).trim()));
    return Promise.resolve(res);
  }

  put(ip: string, step: string, file: string, content: Buffer | LocalFile, mode: number): Promise<void> {
    const text = (Buffer.isBuffer(content) ? content : fs.readFileSync(content.localFile)).toString("utf8");
    this.record(ip, { op: "put", step, file, content: text, mode });
    this.fileMap(ip).set(file, text);
    return Promise.resolve();
  }

  read(ip: string, step: string, file: string): Promise<string | undefined> {
    this.record(ip, { op: "read", step, file });
    return Promise.resolve(this.fileMap(ip).get(file));
  }

  private record(ip: string, c: FakeCall): void {
    const list = this.calls.get(ip) ?? [];
    list.push(c);
    this.calls.set(ip, list);
  }

  private fileMap(ip: string): Map<string, string> {
    let m = this.files.get(ip);
    if (!m) this.files.set(ip, (m = new Map()));
    return m;
  }
}

/**
 * The narrow way step handlers reach a host: run a command, stream bytes into one, write a
 * file, read a file. The
 * executor uses the SSH implementation; unit tests give a recording fake so every step kind is
 * checked without root or nodes.
 */
import type { Readable } from "node:stream";
import { shellQuote, type ExecResult, type SshPool, type SshTarget } from "../ssh";

export interface HostRunOptions {
  /** A non-zero exit is returned instead of thrown. */
  allowFail?: boolean;
  stdin?: string | Buffer;
  timeoutMs?: number;
  /** Logged at debug level only (probes, reads). */
  quiet?: boolean;
}

/** A file on this machine, streamed rather than read into memory (an etcd snapshot can be gigabytes). */
export interface LocalFile {
  localFile: string;
}

/** A local file from byte `start`: the SSH implementation can hand the file itself to the transport. */
export interface FileRange extends LocalFile {
  start: number;
}

export interface HostStreamOptions {
  /** Bytes of the source sent so far (progress). */
  onStdinBytes?: (n: number) => void;
  /** Each line the command prints, as it arrives. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** A non-zero exit is returned instead of thrown. */
  allowFail?: boolean;
}

export interface HostIo {
  /** Runs shell on the host; a non-zero exit throws CommandError naming host and step unless allowFail. */
  run(ip: string, step: string, command: string, opts?: HostRunOptions): Promise<ExecResult>;
  /**
   * Runs shell on the host with `source` as its stdin, read as it goes out (a layer blob is
   * never whole in memory); plumbing, logged at debug level. Throws like run.
   */
  stream(
    ip: string,
    step: string,
    command: string,
    source: Readable | string | Buffer | FileRange,
    opts?: HostStreamOptions,
  ): Promise<ExecResult>;
  /** Writes a file atomically, creating its directory. */
  put(ip: string, step: string, file: string, content: Buffer | LocalFile, mode: number): Promise<void>;
  /** A file's content; undefined when it does not exist. */
  read(ip: string, step: string, file: string): Promise<string | undefined>;
}

/** HostIo over the SSH pool: each host reached as `target(ip)` says. */
export function sshHostIo(pool: SshPool, target: (ip: string) => SshTarget): HostIo {
  return {
    run: (ip, step, command, opts = {}) =>
      pool.exec(target(ip), command, {
        step,
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.allowFail ? { allowFail: true } : {}),
        ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
        ...(opts.quiet ? { logLevel: "debug" as const } : {}),
      }),
    stream: (ip, step, command, source, opts = {}) => {
      const o = {
        step,
        logLevel: "debug" as const,
        ...(opts.onStdinBytes ? { onStdinBytes: opts.onStdinBytes } : {}),
        ...(opts.onLine ? { onLine: opts.onLine } : {}),
        ...(opts.allowFail ? { allowFail: true } : {}),
      };
      return isFileRange(source)
        ? pool.execFromFile(target(ip), command, { path: source.localFile, start: source.start }, o)
        : pool.exec(target(ip), command, { ...o, stdin: source });
    },
    put: (ip, step, file, content, mode) =>
      pool.upload(target(ip), Buffer.isBuffer(content) ? content : content.localFile, file, { mode, step }),
    read: async (ip, step, file) => {
      const r = await pool.exec(
        target(ip),
        `if [ -f ${shellQuote(file)} ]; then base64 -w0 ${shellQuote(file)}; else echo MISSING; fi`,
        { step, logLevel: "debug" },
      );
      const out = r.stdout.trim();
      return out === "MISSING" ? undefined : Buffer.from(out, "base64").toString("utf8");
    },
  };
}

/** HostIo over the pool for exactly `targets`, each reached by its host address. */
export function sshHostIoOf(pool: SshPool, targets: SshTarget[]): HostIo {
  const byHost = new Map(targets.map((t) => [t.host, t]));
  return sshHostIo(pool, (ip) => {
    const t = byHost.get(ip);
    if (!t) throw new Error(`no SSH target for ${ip} among ${[...byHost.keys()].join(", ")}`);
    return t;
  });
}

export function isFileRange(source: unknown): source is FileRange {
  return typeof source === "object" && source !== null && "localFile" in source && "start" in source;
}

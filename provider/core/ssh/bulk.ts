/**
 * Bulk streams (layer blobs, large file uploads) through OpenSSH's own client instead of ssh2.
 *
 * Why: moving a GiB through ssh2 costs this process about 1.5 CPU-seconds (packets are framed
 * and encrypted one call at a time from JavaScript); `ssh` with AES-GCM moves it for about 0.8,
 * reading the blob file itself as its stdin, so the bytes never enter Node. Distribution to many
 * nodes is bound by the operator's CPU, so that difference is wall time.
 *
 * Only for logins that need nothing interactive: a private key file without passphrase, and root
 * or password-less sudo (the pool decides the sudo part). The host key is checked strictly
 * against the pool's known_hosts (the pool's own connection pinned it before any blob goes: every
 * host is listed first), and a host where `ssh` cannot log in keeps ssh2 (told apart from a cut
 * stream by a line the command prints first). `SEALER_SSH_CLIENT=ssh2` turns it off.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import { log } from "../log";
import { lineSplitter } from "./lines";
import type { ExecResult, SshTarget } from "./pool";

export interface BulkOptions {
  knownHostsFile: string;
  dialTimeoutMs: number;
  keepaliveIntervalMs: number;
}

export interface BulkRun {
  step: string;
  onStdinBytes?: (n: number) => void;
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  logLevel: "info" | "debug";
}

/** The connection was lost after the command started (ssh's own exit status, 255, or ssh killed). */
export class BulkConnectionError extends Error {}

/** `ssh` did not start the command (not installed, or it could not connect or log in): nothing ran. */
export class BulkLoginError extends Error {}

/** The first line the command prints on stderr: a failure before it never reached the command. */
const STARTED = "sealer-bulk-stream-started";

/** ssh's exit status for its own failures (the remote command's status otherwise). */
const SSH_FAILED = 255;

/** AES-GCM first where the CPU has AES instructions (ssh2 orders its ciphers the same way). */
function ciphers(): string {
  let aes = true;
  try {
    aes = /^flags\s*:.*\baes\b/m.test(fs.readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    // not Linux: keep OpenSSH's usual AES-GCM first
  }
  const gcm = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"];
  const chacha = ["chacha20-poly1305@openssh.com"];
  return [...(aes ? [...gcm, ...chacha] : [...chacha, ...gcm]), "aes128-ctr"].join(",");
}

export class BulkSsh {
  private readonly refused = new Set<string>();
  /** Running `ssh` processes by target key, so dropping a host's connection cuts them too. */
  private readonly running = new Map<string, Set<ChildProcess>>();
  private cipherList?: string;

  constructor(private readonly o: BulkOptions) {}

  /**
   * Whether `t` logs in without anything interactive, and its paths survive ssh's own option
   * parsing (`%` tokens, quotes): otherwise ssh2 carries the stream.
   */
  eligible(t: SshTarget): boolean {
    if (process.env.SEALER_SSH_CLIENT === "ssh2") return false;
    if (!t.privateKeyPath || t.privateKey !== undefined || t.passphrase !== undefined) return false;
    return ![t.privateKeyPath, this.o.knownHostsFile].some((p) => /[%"\n]/.test(p));
  }

  /** Whether a stream to `t` may still try `ssh` (it has not failed to log in there). */
  usable(key: string): boolean {
    return !this.refused.has(key);
  }

  /** `ssh` could not log in to this target: its streams use ssh2 from now on. */
  refuse(key: string, t: SshTarget, why: string): void {
    this.refused.add(key);
    log.forHost(t.host).debug(`OpenSSH's client cannot log in (${why}); streams use ssh2`);
  }

  /** Kills the `ssh` processes running for a target (their streams fail as a lost connection). */
  drop(key: string): void {
    for (const c of this.running.get(key) ?? []) c.kill("SIGKILL");
  }

  private args(t: SshTarget, command: string): string[] {
    this.cipherList ??= ciphers();
    const opt = (o: string) => ["-o", o];
    return [
      "-F",
      "/dev/null",
      "-T",
      "-x",
      "-a",
      "-e",
      "none",
      "-p",
      String(t.port),
      "-l",
      t.user,
      "-i",
      t.privateKeyPath!,
      ...opt("BatchMode=yes"),
      ...opt("IdentitiesOnly=yes"),
      ...opt("IdentityAgent=none"),
      ...opt("PreferredAuthentications=publickey"),
      ...opt("StrictHostKeyChecking=yes"),
      ...opt(`UserKnownHostsFile="${this.o.knownHostsFile}"`),
      ...opt("GlobalKnownHostsFile=/dev/null"),
      ...opt("UpdateHostKeys=no"),
      ...opt("CheckHostIP=no"),
      ...opt(`ConnectTimeout=${Math.max(1, Math.ceil(this.o.dialTimeoutMs / 1000))}`),
      ...opt(`ServerAliveInterval=${Math.max(1, Math.ceil(this.o.keepaliveIntervalMs / 1000))}`),
      ...opt("ServerAliveCountMax=3"),
      ...opt("ControlMaster=no"),
      ...opt("ControlPath=none"),
      ...opt("Compression=no"),
      ...opt("LogLevel=ERROR"),
      ...opt(`Ciphers=${this.cipherList}`),
      "--",
      t.host,
      command,
    ];
  }

  /**
   * Runs `command` (already wrapped for sudo) on `t` with `file` from byte `start` as its stdin.
   * From byte 0 the file itself is ssh's stdin, and progress is read from the
   * kernel's record of how far ssh has read it; a resumed stream is piped from `start`.
   * A command that never started throws BulkLoginError; a connection lost after it started
   * (ssh's 255) throws BulkConnectionError; any other status is returned.
   */
  exec(
    t: SshTarget,
    key: string,
    command: string,
    run: BulkRun,
    file: { path: string; start: number },
  ): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      const hlog = log.forHost(t.host);
      let fh: fs.promises.FileHandle | undefined;
      const start = async () => {
        const direct = file.start === 0;
        if (direct) fh = await fs.promises.open(file.path, "r");
        const total = fh ? (await fh.stat()).size : 0;
        const child = spawn("ssh", this.args(t, `echo ${STARTED} >&2\n${command}`), {
          stdio: [fh ? fh.fd : "pipe", "pipe", "pipe"],
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/" },
        });
        // The child holds its own copy of the descriptor.
        void fh?.close();
        const mine = this.running.get(key) ?? new Set<ChildProcess>();
        this.running.set(key, mine.add(child));
        child.once("close", () => mine.delete(child));
        let sent = 0;
        let poll: NodeJS.Timeout | undefined;
        let readFailed: Error | undefined;
        if (!direct && child.stdin) {
          const src = fs.createReadStream(file.path, { start: file.start, highWaterMark: 1 << 20 });
          src.on("data", (b) => {
            sent += b.length;
            run.onStdinBytes?.(sent);
          });
          src.on("error", (e) => {
            readFailed = new Error(
              `[${t.host}] step "${run.step}": reading the local source failed: ${e.message}`,
            );
            child.kill();
          });
          child.stdin.on("error", () => undefined); // EPIPE when the command exits before reading all
          src.pipe(child.stdin);
        } else if (direct && child.pid !== undefined) {
          const info = `/proc/${child.pid}/fdinfo/0`;
          poll = setInterval(() => {
            fs.readFile(info, "utf8", (err, text) => {
              const pos = err ? undefined : /^pos:\s*(\d+)/m.exec(text)?.[1];
              if (pos !== undefined && Number(pos) > sent) run.onStdinBytes?.((sent = Number(pos)));
            });
          }, 250);
        }
        const out: Buffer[] = [];
        const errLines: string[] = [];
        let started = false;
        const so = lineSplitter((line) => {
          run.onLine?.(line, "stdout");
          hlog[run.logLevel](line);
        });
        const se = lineSplitter((line) => {
          if (!started && line === STARTED) return void (started = true);
          errLines.push(line);
          run.onLine?.(line, "stderr");
          hlog[run.logLevel](line);
        });
        child.stdout?.on("data", (d: Buffer) => {
          out.push(d);
          so.push(d);
        });
        child.stderr?.on("data", (d: Buffer) => se.push(d));
        child.on("error", (err) => {
          if (poll) clearInterval(poll);
          reject(new BulkLoginError(err.message));
        });
        child.on("close", (code, signal) => {
          if (poll) clearInterval(poll);
          so.flush();
          se.flush();
          if (readFailed) return reject(readFailed);
          const why = errLines.at(-1) || (signal ? `ssh killed by ${signal}` : `ssh exited with ${code}`);
          if (!started) return reject(new BulkLoginError(why));
          if (code === SSH_FAILED || code === null) return reject(new BulkConnectionError(why));
          if (code === 0 && direct && total > sent) run.onStdinBytes?.(total);
          resolve({
            code,
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: errLines.map((l) => l + "\n").join(""),
          });
        });
      };
      start().catch((err: unknown) => {
        void fh?.close().catch(() => undefined);
        reject(err as Error);
      });
    });
  }
}

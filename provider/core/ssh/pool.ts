import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { Readable, Transform } from "node:stream";
import {
  Client,
  utils as sshUtils,
  type AuthHandlerMiddleware,
  type ClientChannel,
  type ConnectConfig,
} from "ssh2";
import type { LimitFunction } from "p-limit";
import { limiter } from "../common/limit";
import { retry } from "../common/retry";
import { type HostFailure, TransientError, UserError } from "../errors";
import { readUserFile } from "../limits";
import { log, registerSecret } from "../log";
import { checkHostKey, hostPattern, keyTypeOf, readKnownHosts, recordHostKey } from "./known-hosts";
import { shellQuote, type SudoMode, tailLines, wrapCommand } from "./shell";
import { recordCommand } from "./record";
import { BulkConnectionError, BulkLoginError, BulkSsh } from "./bulk";
import { lineSplitter } from "./lines";

/** Where and how to log in. `sudo: true` runs every command as root through sudo for a non-root user. */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  privateKey?: string | Buffer;
  privateKeyPath?: string;
  passphrase?: string;
  sudo?: boolean;
  /** Sent on stdin to `sudo -S` (never on a command line). Defaults to `password` when unset. */
  sudoPassword?: string;
}

export interface SshPoolOptions {
  /** OpenSSH-format known_hosts file; usually dataPaths.knownHosts(). */
  knownHostsFile: string;
  /** Channels open at once across all hosts (default 32). Each host is also capped at 8 (sshd MaxSessions is 10). */
  maxConcurrency?: number;
  /** Per dial attempt, TCP connect + handshake + auth (default 10 s). */
  dialTimeoutMs?: number;
  /** Attempts before giving up (default 5), with exponential back-off and jitter between them. */
  dialAttempts?: number;
  /** First back-off delay (default 500 ms, doubling, at most 5 s). */
  dialBackoffMs?: number;
  /** SSH keep-alive interval (default 5 s); 3 unanswered keep-alives drop the connection. */
  keepaliveIntervalMs?: number;
  /** Record keys of hosts seen for the first time (default true). A changed key is always refused. */
  acceptNewHostKeys?: boolean;
  /** Streams of a local file at least this big go through OpenSSH's client where they can (default 128 MiB). */
  bulkMinBytes?: number;
}

export interface ExecOptions {
  stdin?: string | Buffer | Readable;
  /** Name of the step, for logs and errors ("distribute", "kubeadm init"). */
  step?: string;
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Bytes of stdin sent so far. */
  onStdinBytes?: (n: number) => void;
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Return the result on a non-zero exit instead of throwing CommandError. */
  allowFail?: boolean;
  /** Level for the per-line log (default "info"; plumbing commands use "debug"). */
  logLevel?: "info" | "debug";
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command exited non-zero. Names host, step, exit code and the tail of the output. */
export class CommandError extends Error implements HostFailure {
  override readonly name: string = "CommandError";
  constructor(
    readonly host: string,
    readonly step: string,
    readonly code: number,
    readonly tail: string,
  ) {
    super(`[${host}] step "${step}" failed with exit code ${code}${tail ? `:\n${tail}` : " (no output)"}`);
  }
  get onHost(): string {
    return `"${this.step}" returned exit code ${this.code}${this.tail ? `:\n${this.tail}` : " (no output)"}`;
  }
}

/** The host presented a key different from the one recorded on first contact. */
export class HostKeyMismatchError extends UserError implements HostFailure {
  override readonly name: string = "HostKeyMismatchError";
  get onHost(): string {
    return this.message;
  }
  constructor(
    readonly host: string,
    readonly port: number,
    readonly knownHostsFile: string,
    presentedType: string,
    presentedFingerprint: string,
  ) {
    super(
      `host key for ${hostPattern(host, port)} has CHANGED (now ${presentedType} SHA256:${presentedFingerprint}); refusing to connect. ` +
        `If the host was reinstalled on purpose, accept the new key with \`sealer nodes forget-key ${host}${port === 22 ? "" : ` --port ${port}`}\` ` +
        `(or delete the line for ${hostPattern(host, port)} in ${knownHostsFile}) and try again.`,
    );
  }
}

/** A refusal on one host that trying again will not change (credentials, a key that cannot be used). */
export class HostRefusedError extends UserError implements HostFailure {
  override readonly name: string = "HostRefusedError";
  readonly onHost: string;
  constructor(
    readonly host: string,
    step: string,
    what: string,
  ) {
    super(`[${host}] step "${step}": ${what}`);
    this.onHost = `"${step}": ${what}`;
  }
}

/** A failure on one host that may pass on another try; "[host] step "x": what". */
class HostTransientError extends TransientError implements HostFailure {
  readonly onHost: string;
  constructor(
    readonly host: string,
    step: string,
    what: string,
    opts: { cause?: unknown } = {},
  ) {
    super(`[${host}] step "${step}": ${what}`, opts);
    this.onHost = `"${step}": ${what}`;
  }
}

/** Every dial to a host failed (refused, unreachable, handshake timeouts). */
export class DialError extends HostTransientError {
  override readonly name: string = "DialError";
}

/** The connection dropped while a command ran (sshd killed, network gone, keep-alive timeout). */
export class ConnectionLostError extends HostTransientError {
  override readonly name: string = "ConnectionLostError";
}

/** The channel could not be opened on a pooled connection: the command did not run. */
class NotStartedError extends ConnectionLostError {}

interface Conn {
  client: Client;
  closed: boolean;
  /** Channels open at once on this connection (sshd's MaxSessions defaults to 10). */
  channels: LimitFunction;
  sudo?: Promise<SudoMode>;
}

export type AuthMethod = "publickey" | "password" | "keyboard-interactive";

/**
 * The authentication methods offered, in order: the key first. ssh2's own order tries the
 * password before the key; with a key and a password that is only meant for sudo, the failed
 * password login costs sshd's failure delay (seconds) before the key is even offered.
 */
export function authOrder(hasKey: boolean, hasPassword: boolean): AuthMethod[] {
  const out: AuthMethod[] = [];
  if (hasKey) out.push("publickey");
  if (hasPassword) out.push("password", "keyboard-interactive");
  return out;
}

/** Offers `order` one method at a time, skipping those the server no longer lists as able to continue. */
export function authHandlerFor(order: readonly AuthMethod[]): AuthHandlerMiddleware {
  let next = 0;
  return (methodsLeft, _partialSuccess, callback) => {
    while (next < order.length) {
      const m = order[next++] as AuthMethod;
      if (!methodsLeft || methodsLeft.includes(m)) return callback(m);
    }
    return callback(false as unknown as AuthMethod);
  };
}

/** One connection per user@host:port and credentials (a changed password must not reuse an old login). */
function targetKey(t: SshTarget): string {
  const cred = crypto
    .createHash("sha256")
    .update(
      JSON.stringify([
        t.password ?? null,
        t.privateKeyPath ?? null,
        t.privateKey === undefined ? null : Buffer.from(t.privateKey).toString("base64"),
        t.passphrase ?? null,
        t.sudo ?? false,
        t.sudoPassword ?? null,
      ]),
    )
    .digest("hex")
    .slice(0, 16);
  return `${t.user}@${t.host}:${t.port}#${cred}`;
}

function errCode(err: unknown): string {
  const e = err as { code?: unknown; level?: unknown; message?: unknown } | null;
  if (typeof e?.code === "string") return e.code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Streams smaller than this stay on the pooled connection. A fresh `ssh` login cost 88 ms of CPU
 * here (client and sshd, 20 logins in a row), what the cheaper client saves on about 126 MiB
 * (0.7 CPU-s per GiB). With 8 MiB, 256 MiB images to 30 hosts in 64 MiB layers took 34 s
 * instead of 30 s: 120 logins on the machine's two cores.
 */
const BULK_MIN_BYTES = 128 << 20;

/**
 * A pool of SSH connections (one per user@host:port, reused), with bounded concurrency,
 * dial retries, keep-alive and host-key pinning.
 *
 * - `exec` runs a command and throws CommandError on a non-zero exit unless `allowFail`.
 * - `run` runs a command and returns its stdout (always throws on non-zero).
 * - `upload` streams bytes to a file on the node; the file appears atomically (temp + size
 *   check + mv), also for sudo users (the bytes go through `sudo sh -c 'cat > tmp'`, no SFTP).
 * Every output line is logged with the host prefix; secrets in targets are registered with the
 * redactor.
 */
export class SshPool {
  private readonly conns = new Map<string, Promise<Conn>>();
  private readonly limit: LimitFunction;
  private readonly opts: Required<SshPoolOptions>;
  private closing = false;
  private readonly bulk: BulkSsh;

  constructor(opts: SshPoolOptions) {
    this.opts = {
      maxConcurrency: 32,
      dialTimeoutMs: 10_000,
      dialAttempts: 5,
      dialBackoffMs: 500,
      keepaliveIntervalMs: 5_000,
      acceptNewHostKeys: true,
      bulkMinBytes: BULK_MIN_BYTES,
      ...opts,
    };
    this.limit = limiter(this.opts.maxConcurrency);
    this.bulk = new BulkSsh(this.opts);
  }

  /** The known_hosts file this pool pins host keys in (relay mode copies the pinned keys to the relay). */
  get knownHostsFile(): string {
    return this.opts.knownHostsFile;
  }

  async exec(t: SshTarget, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const step = opts.step ?? command.split("\n")[0]!.slice(0, 60);
    const conn = await this.connection(t);
    const sudo = await this.sudoMode(t, conn, step);
    const full = wrapCommand(command, sudo, opts.env);
    recordCommand(t, step, full, opts.stdin);
    const res = await this.limit(async () => {
      try {
        return await conn.channels(() => this.runChannel(t, conn, full, sudo, step, opts));
      } catch (err) {
        // A pooled connection that died while idle: the command never started, so one fresh
        // dial and a second try are safe. Anything after the start is the caller's to retry.
        if (!(err instanceof NotStartedError)) throw err;
        const fresh = await this.connection(t);
        return await fresh.channels(() => this.runChannel(t, fresh, full, sudo, step, opts));
      }
    });
    return checked(t, step, res, opts.allowFail);
  }

  /**
   * `exec` with a local file from byte `start` as the command's stdin, read as it goes out. A
   * big stream goes through OpenSSH's client where the login allows it (bulk.ts: about half the
   * CPU per byte of ssh2's), else through the pooled ssh2 connection like `exec`.
   */
  async execFromFile(
    t: SshTarget,
    command: string,
    file: { path: string; start: number },
    opts: Omit<ExecOptions, "stdin" | "timeoutMs" | "env"> = {},
  ): Promise<ExecResult> {
    const step = opts.step ?? command.split("\n")[0]!.slice(0, 60);
    const res = await this.bulkExec(t, command, file, step, opts);
    if (res) return checked(t, step, res, opts.allowFail);
    const stdin = fs.createReadStream(file.path, { start: file.start, highWaterMark: 1 << 20 });
    return this.exec(t, command, { ...opts, stdin });
  }

  /** The stream through OpenSSH's client; undefined when it does not carry this one (nothing ran). */
  private async bulkExec(
    t: SshTarget,
    command: string,
    file: { path: string; start: number },
    step: string,
    opts: ExecOptions,
  ): Promise<ExecResult | undefined> {
    const left = (await fs.promises.stat(file.path)).size - file.start;
    const key = targetKey(t);
    if (left < this.opts.bulkMinBytes || !this.bulk.eligible(t) || !this.bulk.usable(key)) return undefined;
    const sudo = await this.sudoMode(t, await this.connection(t), step);
    if (sudo === "password") return undefined;
    const full = wrapCommand(command, sudo);
    recordCommand(t, step, full, { file: file.path, start: file.start });
    return this.limit(async () => {
      try {
        return await this.bulk.exec(
          t,
          key,
          full,
          { step, logLevel: opts.logLevel ?? "info", ...pick(opts) },
          file,
        );
      } catch (err) {
        if (err instanceof BulkConnectionError)
          throw new ConnectionLostError(t.host, step, `connection lost (ssh: ${err.message})`, {
            cause: err,
          });
        if (!(err instanceof BulkLoginError)) throw err;
        // Nothing ran on the host: the stream goes over the pooled ssh2 connection instead.
        this.bulk.refuse(key, t, err.message);
        return undefined;
      }
    });
  }

  /** Runs a command that must succeed; returns its stdout. */
  async run(t: SshTarget, command: string, opts: Omit<ExecOptions, "allowFail"> = {}): Promise<string> {
    return (await this.exec(t, command, { ...opts, allowFail: false })).stdout;
  }

  /**
   * Streams `source` (bytes, a readable stream, or a local file path) to `remotePath` on the
   * node. The file is written to `<remotePath>.sealer-tmp.<pid>`, its size checked against what
   * was sent, then renamed: a reader sees the old file or the complete new one, never a part.
   */
  async upload(
    t: SshTarget,
    source: Readable | Buffer | string,
    remotePath: string,
    opts: { mode?: number; onBytes?: (n: number) => void; step?: string } = {},
  ): Promise<void> {
    const step = opts.step ?? `upload ${remotePath}`;
    const mode = (opts.mode ?? 0o644).toString(8);
    const dest = shellQuote(remotePath);
    const tmpExpr = `${dest}.sealer-tmp.$$`;
    const prologue = `set -e; mkdir -p "$(dirname ${dest})"; tmp=${tmpExpr}; trap 'rm -f "$tmp"' EXIT; cat > "$tmp"; got=$(wc -c < "$tmp")`;
    if (typeof source === "string" || Buffer.isBuffer(source)) {
      // One round trip: the node knows how many bytes to expect.
      const size = Buffer.isBuffer(source) ? source.length : (await fs.promises.stat(source)).size;
      const command = `${prologue}; if [ "$got" -ne ${size} ]; then echo "short upload: $got of ${size} bytes arrived" >&2; exit 90; fi; chmod ${mode} "$tmp"; mv -f "$tmp" ${dest}; trap - EXIT`;
      const o = { step, logLevel: "debug" as const, ...(opts.onBytes ? { onStdinBytes: opts.onBytes } : {}) };
      if (Buffer.isBuffer(source)) await this.exec(t, command, { ...o, stdin: source });
      else await this.execFromFile(t, command, { path: source, start: 0 }, o);
      return;
    }
    // Unknown length: keep the temp file, compare sizes, then rename in a second command.
    let sent = 0;
    const res = await this.exec(t, `${prologue}; trap - EXIT; echo "$tmp $got"`, {
      stdin: source,
      step,
      logLevel: "debug",
      onStdinBytes: (n) => {
        sent = n;
        opts.onBytes?.(n);
      },
    });
    const [tmp, got] = res.stdout.trim().split(" ");
    if (!tmp || Number(got) !== sent) {
      await this.exec(t, `rm -f ${shellQuote(tmp ?? "")}`, { step, allowFail: true, logLevel: "debug" });
      throw new TransientError(
        `[${t.host}] step "${step}": short upload: ${got ?? "?"} of ${sent} bytes arrived`,
      );
    }
    await this.exec(t, `chmod ${mode} ${shellQuote(tmp)} && mv -f ${shellQuote(tmp)} ${dest}`, {
      step,
      logLevel: "debug",
    });
  }

  /** Drops the connection to a target (tests use it to simulate a broken link). */
  dropConnection(t: SshTarget): void {
    this.bulk.drop(targetKey(t));
    const p = this.conns.get(targetKey(t));
    this.conns.delete(targetKey(t));
    void p?.then((c) => c.client.destroy()).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(
      all.map(async (p) => {
        try {
          const c = await p;
          if (c.closed) return;
          await new Promise<void>((resolve) => {
            c.client.once("close", () => resolve());
            c.client.end();
            setTimeout(() => {
              c.client.destroy();
              resolve();
            }, 2000).unref();
          });
        } catch {
          // a dial that failed has nothing to close
        }
      }),
    );
    this.closing = false;
  }

  private async connection(t: SshTarget): Promise<Conn> {
    const key = targetKey(t);
    const existing = this.conns.get(key);
    if (existing) {
      const c = await existing.catch(() => undefined);
      if (c && !c.closed) return c;
      if (this.conns.get(key) === existing) this.conns.delete(key);
    }
    const p = this.dial(t);
    this.conns.set(key, p);
    p.catch(() => {
      if (this.conns.get(key) === p) this.conns.delete(key);
    });
    return p;
  }

  private async dial(t: SshTarget): Promise<Conn> {
    registerSecret(t.password);
    registerSecret(t.sudoPassword);
    registerSecret(t.passphrase);
    if (typeof t.privateKey === "string") registerSecret(t.privateKey);
    const hlog = log.forHost(t.host);
    const attempts = Math.max(1, this.opts.dialAttempts);
    const where = hostPattern(t.host, t.port);
    let tried = 0;
    try {
      return await retry(
        (attempt) => {
          tried = attempt;
          return this.dialOnce(t);
        },
        {
          retries: attempts - 1,
          minMs: this.opts.dialBackoffMs,
          maxMs: Math.max(5_000, this.opts.dialBackoffMs),
          // ssh2's handshake and auth failures carry no error code, so every dial failure but a
          // refusal (host key, credentials) may pass on a second try.
          shouldRetry: (err) => !(err instanceof UserError) && !this.closing,
          onRetry: ({ error, attempt, waitMs }) =>
            hlog.warn(
              `Dial ${attempt}/${attempts} to ${where} failed: ${errCode(error)}; retrying in ${waitMs}ms`,
            ),
        },
      );
    } catch (err) {
      if (err instanceof UserError || this.closing) throw err;
      throw new DialError(
        t.host,
        "connect",
        `dial ${tried}/${attempts} to ${where} failed: ${errCode(err)}; giving up (is sshd running and reachable?)`,
        { cause: err },
      );
    }
  }

  private async dialOnce(t: SshTarget): Promise<Conn> {
    const knownHostsFile = this.opts.knownHostsFile;
    let mismatch: HostKeyMismatchError | undefined;
    let unknownRefused: HostRefusedError | undefined;
    let hostKeyWork: Promise<void> = Promise.resolve();
    const privateKey = t.privateKey ?? (t.privateKeyPath ? await readKeyFile(t.privateKeyPath) : undefined);
    // Parsed before dialling: ssh2 reports a key it cannot use (bad format, wrong or missing
    // passphrase) as an Error value here, instead of a bare error text from connect().
    const parsed = privateKey === undefined ? undefined : sshUtils.parseKey(privateKey, t.passphrase);
    if (parsed instanceof Error)
      throw new HostRefusedError(
        t.host,
        "connect",
        `cannot use the private key for ${t.user}: ${parsed.message} (wrong or missing passphrase?)`,
      );
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      readyTimeout: this.opts.dialTimeoutMs,
      keepaliveInterval: this.opts.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      tryKeyboard: t.password !== undefined,
      authHandler: authHandlerFor(authOrder(privateKey !== undefined, t.password !== undefined)),
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
      hostVerifier: (keyBlob: Buffer, answer: (ok: boolean) => void) => {
        // The check is async: when the handshake timed out meanwhile, ssh2 has torn the
        // connection down and answering throws inside ssh2; the dial already failed, so drop it.
        const verify = (ok: boolean): void => {
          try {
            answer(ok);
          } catch {
            // abandoned handshake
          }
        };
        hostKeyWork = (async () => {
          const check = checkHostKey(await readKnownHosts(knownHostsFile), t.host, t.port, keyBlob);
          switch (check.status) {
            case "match":
              return verify(true);
            case "unknown":
              if (!this.opts.acceptNewHostKeys) {
                unknownRefused = new HostRefusedError(
                  t.host,
                  "connect",
                  `host key of ${hostPattern(t.host, t.port)} is not in ${knownHostsFile} and recording new keys is off; add it (ssh-keyscan) or allow new host keys`,
                );
                return verify(false);
              }
              await recordHostKey(knownHostsFile, t.host, t.port, keyBlob);
              log
                .forHost(t.host)
                .info(
                  `recorded host key ${keyTypeOf(keyBlob)} SHA256:${fingerprint(keyBlob)} in ${knownHostsFile}`,
                );
              return verify(true);
            case "mismatch":
              mismatch = new HostKeyMismatchError(
                t.host,
                t.port,
                knownHostsFile,
                keyTypeOf(keyBlob),
                fingerprint(keyBlob),
              );
              return verify(false);
          }
        })().catch((err: unknown) => {
          unknownRefused = new HostRefusedError(
            t.host,
            "connect",
            `checking its host key against ${knownHostsFile} failed (${errCode(err)}); check that file`,
          );
          verify(false);
        });
      },
    };
    const client = new Client();
    client.setMaxListeners(64); // one close listener per open channel
    const conn: Conn = { client, closed: false, channels: limiter(8) };
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      client.on("ready", () => {
        settled = true;
        resolve();
      });
      client.on("keyboard-interactive", (_name, _instr, _lang, prompts, finish) =>
        finish(prompts.map(() => t.password ?? "")),
      );
      client.on("error", (err: Error & { level?: string }) => {
        conn.closed = true;
        if (settled) return; // errors after ready surface as a lost channel
        settled = true;
        void hostKeyWork.then(() => {
          if (mismatch) return reject(mismatch);
          if (unknownRefused) return reject(unknownRefused);
          if (err.level === "client-authentication")
            return reject(
              new HostRefusedError(
                t.host,
                "connect",
                `authentication failed for ${t.user}@${hostPattern(t.host, t.port)} (${[privateKey !== undefined ? "key" : "", t.password !== undefined ? "password" : ""].filter(Boolean).join(", ") || "no credentials given"}); check the user, key, passphrase or password`,
              ),
            );
          reject(err);
        });
      });
      client.on("close", () => {
        conn.closed = true;
        if (!settled) {
          settled = true;
          reject(new TransientError(`connection closed during handshake`));
        }
      });
      try {
        client.connect(cfg);
      } catch (err) {
        settled = true;
        reject(err);
      }
    });
    return conn;
  }

  private sudoMode(t: SshTarget, conn: Conn, step: string): Promise<SudoMode> {
    if (!t.sudo || t.user === "root") return Promise.resolve("none");
    if (!conn.sudo) {
      conn.sudo = (async () => {
        const res = await conn.channels(() =>
          this.runChannel(t, conn, "sudo -n true", "none", "sudo check", { logLevel: "debug" }),
        );
        if (res.code === 0) return "nopasswd";
        if (res.code === 127 || /not found/.test(res.stderr))
          throw new HostRefusedError(
            t.host,
            step,
            `sudo is not installed for user ${t.user}; install sudo or log in as root`,
          );
        if (t.sudoPassword === undefined && t.password === undefined)
          throw new HostRefusedError(
            t.host,
            step,
            `user ${t.user} needs a password for sudo; give the sudo password (Clusterfile ssh.passwd / --sudo-password) or allow NOPASSWD for this user`,
          );
        return "password";
      })();
      conn.sudo.catch(() => {
        conn.sudo = undefined;
      });
    }
    return conn.sudo;
  }

  private runChannel(
    t: SshTarget,
    conn: Conn,
    command: string,
    sudo: SudoMode,
    step: string,
    opts: ExecOptions,
  ): Promise<ExecResult> {
    const hlog = log.forHost(t.host);
    const level = opts.logLevel ?? "info";
    return new Promise<ExecResult>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, res?: ExecResult) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        if (err) reject(err);
        else resolve(res!);
      };
      let timer: NodeJS.Timeout | undefined;
      const lost = (why: string) => finish(new ConnectionLostError(t.host, step, `connection lost (${why})`));
      if (conn.closed)
        return finish(
          new NotStartedError(t.host, step, "connection lost (closed before the command started)"),
        );
      const onClientClose = () => lost("connection closed");
      conn.client.once("close", onClientClose);
      try {
        conn.client.exec(command, (err, ch: ClientChannel) => {
          if (err) {
            conn.client.removeListener("close", onClientClose);
            return finish(
              new NotStartedError(t.host, step, `could not open a channel: ${err.message}`, { cause: err }),
            );
          }
          const out: Buffer[] = [];
          const errb: Buffer[] = [];
          const emit = (stream: "stdout" | "stderr") => (line: string) => {
            opts.onLine?.(line, stream);
            hlog[level](line);
          };
          const so = lineSplitter(emit("stdout"));
          const se = lineSplitter(emit("stderr"));
          let exitCode: number | undefined;
          let exitSignal: string | undefined;
          ch.on("data", (d: Buffer) => {
            out.push(d);
            so.push(d);
          });
          ch.stderr.on("data", (d: Buffer) => {
            errb.push(d);
            se.push(d);
          });
          ch.on("exit", (code: number | null, signal?: string) => {
            if (code !== null && code !== undefined) exitCode = code;
            else exitSignal = signal ?? "unknown signal";
          });
          ch.on("error", () => undefined); // EPIPE when the command exits before reading all stdin
          ch.on("close", () => {
            conn.client.removeListener("close", onClientClose);
            so.flush();
            se.flush();
            if (exitCode === undefined && exitSignal === undefined)
              return lost("the channel closed without an exit status");
            finish(undefined, {
              code: exitCode ?? 128 + 9,
              stdout: Buffer.concat(out).toString("utf8"),
              stderr:
                Buffer.concat(errb).toString("utf8") + (exitSignal ? `\nkilled by signal ${exitSignal}` : ""),
            });
          });
          if (opts.timeoutMs) {
            timer = setTimeout(() => {
              ch.close();
              finish(
                new TransientError(
                  `[${t.host}] step "${step}": timed out after ${Math.round(opts.timeoutMs! / 1000)}s`,
                ),
              );
            }, opts.timeoutMs);
          }
          if (sudo === "password") ch.write((t.sudoPassword ?? t.password ?? "") + "\n");
          const stdin = opts.stdin;
          if (stdin === undefined) ch.end();
          else if (typeof stdin === "string" || Buffer.isBuffer(stdin)) {
            opts.onStdinBytes?.(Buffer.byteLength(stdin));
            ch.end(stdin);
          } else {
            let n = 0;
            const meter = new Transform({
              transform(chunk: Buffer, _e, cb) {
                n += chunk.length;
                opts.onStdinBytes?.(n);
                cb(null, chunk);
              },
            });
            stdin.on("error", (e) => {
              ch.close();
              finish(
                new Error(`[${t.host}] step "${step}": reading the local source failed: ${e.message}`, {
                  cause: e,
                }),
              );
            });
            stdin.pipe(meter).pipe(ch);
          }
        });
      } catch (err) {
        conn.client.removeListener("close", onClientClose);
        finish(new TransientError(`[${t.host}] step "${step}": ${errCode(err)}`, { cause: err }));
      }
    });
  }
}

function pick(opts: ExecOptions): Pick<ExecOptions, "onStdinBytes" | "onLine"> {
  return {
    ...(opts.onStdinBytes ? { onStdinBytes: opts.onStdinBytes } : {}),
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
  };
}

/** `res`, or CommandError naming host, step, status and the output's tail on a non-zero exit. */
function checked(t: SshTarget, step: string, res: ExecResult, allowFail?: boolean): ExecResult {
  if (res.code !== 0 && !allowFail)
    throw new CommandError(
      t.host,
      step,
      res.code,
      tailLines(
        [res.stdout.replace(/\n+$/, ""), res.stderr.replace(/\n+$/, "")].filter(Boolean).join("\n"),
        20,
      ).trim(),
    );
  return res;
}

/** A private key file: a regular file of at most 1 MiB (not /dev/zero, not a directory). */
function readKeyFile(p: string): Promise<Buffer> {
  const text = readUserFile(p, "SSH private key", 1 << 20, "give the key file with --pk or spec.ssh.pk");
  return Promise.resolve(Buffer.from(text, "utf8"));
}

function fingerprint(keyBlob: Buffer): string {
  // OpenSSH style: base64 of the sha256, without padding.
  return crypto.createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

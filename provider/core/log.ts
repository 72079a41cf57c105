/**
 * Logging for the CLI and the providers. Every line goes to stderr (the Pulumi provider host
 * uses stdout for its handshake), is prefixed with the host it concerns when there is one, and
 * passes through the secret redactor: values registered with `registerSecret` never reach a log.
 */
export type Level = "debug" | "info" | "warn" | "error";

export interface LogSink {
  write(line: string): void;
}

const secrets = new Set<string>();
let sink: LogSink = { write: (line) => process.stderr.write(line + "\n") };
let minLevel: Level = (process.env.SEALER_LOG_LEVEL as Level | undefined) ?? "info";
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Values (passwords, keys, tokens, kubeconfig) that must never appear in a log line. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join("***");
  return out;
}

export function setLogSink(s: LogSink): LogSink {
  const prev = sink;
  sink = s;
  return prev;
}

export function setLogLevel(level: Level): void {
  minLevel = level;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** A logger whose lines start with `[host]`. */
  forHost(host: string): Logger;
}

function make(prefix: string): Logger {
  const emit = (level: Level, msg: string) => {
    if (order[level] < order[minLevel]) return;
    const tag = level === "info" ? "" : `${level.toUpperCase()} `;
    for (const line of redact(msg).split("\n")) sink.write(`${prefix}${tag}${line}`);
  };
  return {
    debug: (m) => emit("debug", m),
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
    forHost: (host) => make(`${prefix}[${host}] `),
  };
}

export const log: Logger = make("");

/**
 * Sizes everywhere (limits, transfers, listings): "900 bytes", "512 KiB", "1 MiB" exact when
 * whole, else two decimals ("1.05 MiB"), so a size just over a limit never reads as the limit.
 */
export function formatBytes(n: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (n < 1024) return `${n} bytes`;
  let i = 0;
  let d = 1024;
  while (i < units.length - 1 && n >= d * 1024) {
    d *= 1024;
    i++;
  }
  return `${n % d === 0 ? n / d : (n / d).toFixed(2)} ${units[i]}`;
}

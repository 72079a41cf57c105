/**
 * Two kinds of failure, as STYLE.md asks:
 * - UserError: bad input (Kubefile, Clusterfile, flags, references). The message names where
 *   (file:line, Clusterfile path, host + step) and what to do. Never retried.
 * - TransientError: something that may succeed when tried again (connection reset, throttling,
 *   5xx). Retry helpers retry these and nothing else.
 * Wrap with context once (`wrap`), keeping `cause`.
 */
export class UserError extends Error {
  override readonly name: string = "UserError";
  /** Individual problems when a validator collected several. */
  readonly problems: string[];
  readonly exitCode: number;
  constructor(message: string, opts: { problems?: string[]; cause?: unknown; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.problems = opts.problems ?? [message];
    this.exitCode = opts.exitCode ?? 2;
  }
}

export class TransientError extends Error {
  override readonly name: string = "TransientError";
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
  }
}

/** Throws one UserError listing every problem ("<title>:\n - a\n - b"), or returns when there are none. */
export function throwIfProblems(title: string, problems: string[]): void {
  if (problems.length === 0) return;
  throw new UserError(`${title}:\n${problems.map((p) => ` - ${p}`).join("\n")}`, { problems });
}

/** Adds context once: "joining worker 10.0.0.5: <cause message>". Keeps the error class. */
export function wrap(context: string, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof UserError)
    return new UserError(`${context}: ${msg}`, {
      problems: err.problems,
      cause: err,
      exitCode: err.exitCode,
    });
  if (err instanceof TransientError) return new TransientError(`${context}: ${msg}`, { cause: err });
  return new Error(`${context}: ${msg}`, { cause: err });
}

/** Node's transient network error codes. */
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

export function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  // Errors that know whether a retry may help say so (registry errors carry `temporary`).
  const temporary = (err as { temporary?: unknown } | null)?.temporary;
  if (typeof temporary === "boolean") return temporary;
  if (err instanceof UserError) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && TRANSIENT_CODES.has(code);
}

/**
 * Two kinds of failure:
 * - UserError: bad input (Kubefile, Clusterfile, flags, references). The message names where
 *   (file:line, Clusterfile path, host + step) and what to do. Never retried.
 * - TransientError: something that may succeed when tried again (connection reset, throttling,
 *   5xx). Retry helpers retry these and nothing else.
 * Wrap with context once (`wrap`), keeping `cause`. A failed step becomes one StepError where
 * steps run. Decisions read classes and fields (`causeOf`, `location`, `reference`, codes),
 * never message text.
 */
export class UserError extends Error {
  override readonly name: string = "UserError";
  /** Individual problems when a validator collected several. */
  readonly problems: string[];
  readonly exitCode: number;
  /** The place the message starts with ("Kubefile:7"), when it names one: callers add no second one. */
  readonly location: string | undefined;
  constructor(
    message: string,
    opts: { problems?: string[]; cause?: unknown; exitCode?: number; location?: string } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.problems = opts.problems ?? [message];
    this.exitCode = opts.exitCode ?? 2;
    this.location = opts.location;
  }
}

/** A UserError about one place: "<where>: <text>", with `location` set to `where`. */
export function userErrorAt(where: string, text: string, opts: { cause?: unknown } = {}): UserError {
  return new UserError(`${where}: ${text}`, { ...opts, location: where });
}

/** A reference that names no image in the local store. */
export class ImageNotInStoreError extends UserError {
  override readonly name: string = "ImageNotInStoreError";
  constructor(
    readonly reference: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A failure on one host, as the SSH layer reports it: the host, and what happened there in
 * words that do not repeat the host ("command \"init-host\" exited with code 7: …").
 */
export interface HostFailure {
  readonly host: string;
  readonly onHost: string;
}

export function isHostFailure(err: unknown): err is HostFailure {
  const e = err as Partial<HostFailure> | null;
  return typeof e?.host === "string" && typeof e.onHost === "string";
}

/**
 * "Step X failed on host Y": the one error a failed step becomes, made once where steps run
 * (the executor) and never wrapped again (`wrap` hands it back as it is). Front doors render
 * it from its fields.
 */
export class StepError extends Error {
  override readonly name: string = "StepError";
  constructor(
    readonly step: { id: string; kind: string; hosts: string[] },
    readonly host: string | undefined,
    override readonly cause: unknown,
    /** Appended to the message: what to do next at this front door. */
    hint = "",
  ) {
    super(stepFailureText(step, host, cause) + hint, { cause });
  }
  /** The failure without any front door's hint. */
  get summary(): string {
    return stepFailureText(this.step, this.host, this.cause);
  }
}

function stepFailureText(step: { id: string }, host: string | undefined, cause: unknown): string {
  const what = isHostFailure(cause) ? cause.onHost : cause instanceof Error ? cause.message : String(cause);
  return `${host ? `[${host}] ` : ""}step ${step.id} failed: ${what}`;
}

/** The first error in `err`'s cause chain that is a `cls` (wrapping keeps the original as cause). */
export function causeOf<T extends Error>(
  err: unknown,
  cls: abstract new (...args: never[]) => T,
): T | undefined {
  const seen = new Set<unknown>();
  for (let e = err; e !== undefined && e !== null && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    if (e instanceof cls) return e;
  }
  return undefined;
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

/**
 * Adds context once: "joining worker 10.0.0.5: <cause message>". Keeps the error class. A
 * StepError already names host and step: it comes back unchanged.
 */
export function wrap(context: string, err: unknown): Error {
  if (err instanceof StepError) return err;
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

/** Node's TLS codes for a server certificate that no trusted CA vouches for. */
const UNTRUSTED_CERT_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_UNTRUSTED",
]);

/** The TLS peer's certificate is not trusted (passing its CA would help). */
export function isUntrustedCertificate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNTRUSTED_CERT_CODES.has(code);
}

import { isTransient } from "../errors";

// p-retry 7 is ESM; Node 22 loads it through require().
const pRetryModule = require("p-retry") as typeof import("p-retry");

/**
 * Thrown by an attempt to stop retrying at once: `retry` rejects with the error it wraps (or a
 * plain Error with its message), whatever the policy says.
 */
export const AbortError = pRetryModule.AbortError;

/** What a retry loop is told about a failure it is about to retry. */
export interface RetryInfo {
  error: Error;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** Attempts allowed in all (Infinity when only a deadline bounds them). */
  attempts: number;
  /** How long the loop now waits before the next attempt. */
  waitMs: number;
}

/**
 * The project's one retry policy: exponential back-off from `minMs` (×`factor`, at most `maxMs`),
 * each wait jittered ±20% so many callers that failed together do not retry together; only
 * failures `shouldRetry` accepts are retried (by default the transient ones).
 */
export interface RetryPolicy {
  /** Retries after the first attempt (Infinity: until `maxTotalMs`). */
  retries: number;
  minMs: number;
  maxMs: number;
  /** Default 2. */
  factor?: number;
  /** No retry starts once this long has passed since the first attempt. */
  maxTotalMs?: number;
  /** Default: `isTransient` (TransientError, a `temporary` flag, Node's network error codes). */
  shouldRetry?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log "dial 2/10 failed: retrying". */
  onRetry?: (info: RetryInfo) => void;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

const JITTER = 0.2;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The wait before retry number `n` (from 1): nominal back-off, jittered ±20%. */
export function backoffMs(
  p: Pick<RetryPolicy, "minMs" | "maxMs" | "factor">,
  n: number,
  random = Math.random,
): number {
  const nominal = Math.min(p.maxMs, p.minMs * (p.factor ?? 2) ** (n - 1));
  return Math.round(nominal * (1 - JITTER + 2 * JITTER * random()));
}

/** Runs `fn` (given the attempt number, from 1) until it succeeds or the policy gives up; rejects with the last failure. */
export function retry<T>(fn: (attempt: number) => Promise<T>, p: RetryPolicy): Promise<T> {
  const now = p.now ?? Date.now;
  const sleep = p.sleep ?? defaultSleep;
  const deadline = p.maxTotalMs === undefined ? Infinity : now() + p.maxTotalMs;
  const may = p.shouldRetry ?? isTransient;
  return pRetryModule.default(fn, {
    retries: p.retries,
    // The wait happens in shouldRetry: the jitter is symmetric (p-retry's only lengthens, up to
    // 2×) and tests can inject the clock.
    minTimeout: 0,
    maxTimeout: 0,
    shouldRetry: async ({ error, attemptNumber }) => {
      if (!may(error)) return false;
      const left = deadline - now();
      if (left <= 0) return false;
      const waitMs = Math.min(backoffMs(p, attemptNumber, p.random), left);
      p.onRetry?.({ error, attempt: attemptNumber, attempts: p.retries + 1, waitMs });
      await sleep(waitMs);
      return true;
    },
  });
}

class NotReady extends Error {}

/** poll's wait ran out (callers word it for their user; other failures pass through as they are). */
export class PollTimeout extends Error {
  override readonly name: string = "PollTimeout";
}

/**
 * Calls `probe` until it returns a value, waiting by the policy between calls; past
 * `maxTotalMs` it fails with "timed out after Ns waiting for <what>". Errors `probe` throws end
 * the wait unless the policy's `shouldRetry` accepts them.
 */
export function poll<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  p: Omit<RetryPolicy, "retries" | "maxTotalMs"> & { maxTotalMs: number },
): Promise<T> {
  const may = p.shouldRetry;
  return retry(
    async () => {
      const v = await probe();
      if (v === undefined) throw new NotReady(what);
      return v;
    },
    { ...p, retries: Infinity, shouldRetry: (err) => err instanceof NotReady || (may?.(err) ?? false) },
  ).catch((err: unknown) => {
    if (err instanceof NotReady)
      throw new PollTimeout(`timed out after ${p.maxTotalMs / 1000}s waiting for ${what}`);
    throw err;
  });
}

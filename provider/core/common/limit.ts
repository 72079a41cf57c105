import type { LimitFunction } from "p-limit";

// p-limit 7 is ESM; Node 22 loads it through require().
const pLimit = (require("p-limit") as typeof import("p-limit")).default;

/** A limiter running at most `n` functions at once (at least one). */
export function limiter(n: number): LimitFunction {
  return pLimit(Math.max(1, Math.floor(n) || 1));
}

/**
 * Runs `fn` over `items`, at most `n` at once; the results in item order. The first failure
 * wins: nothing new starts after it, what runs is awaited, then it is thrown.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const limit = limiter(n);
  let failure: { err: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        if (failure) return undefined as R;
        try {
          return await fn(item);
        } catch (err) {
          failure ??= { err };
          throw err;
        }
      }),
    ),
  );
  if (failure) throw failure.err;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}

/** Runs `fn` over every item, at most `n` at once, and reports each outcome in item order (never rejects). */
export function settleLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const limit = limiter(n);
  return Promise.allSettled(items.map((item) => limit(() => fn(item))));
}

/**
 * A token bucket: `ratePerMinute` tokens are added per minute, up to `burst`. `take()` resolves
 * when a token is available, so callers are spaced out instead of failing. Alibaba throttles per
 * account, region and API in one-minute windows; staying under the configured rate keeps a large
 * create from tripping Throttling.User in the first place.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly ratePerMinute: number,
    // Half a second of calls: a rolling one-second window never sees much more than the rate.
    readonly burst: number = Math.max(1, Math.min(20, Math.ceil(ratePerMinute / 120))),
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    if (!(ratePerMinute > 0)) throw new RangeError(`rateLimitPerMinute must be > 0, got ${ratePerMinute}`);
    this.tokens = this.burst;
    this.last = now();
    this.perMs = ratePerMinute / 60_000;
  }

  /** Waits for one token. Takes are served in call order. */
  take(): Promise<void> {
    const next = this.queue.then(() => this.takeNow());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Removes every token (used after a Throttling answer so the next calls wait). */
  drain(): void {
    this.refill();
    this.tokens = Math.min(this.tokens, 0);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.perMs);
    this.last = t;
  }

  private async takeNow(): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.sleep(Math.ceil((1 - this.tokens) / this.perMs));
    }
  }
}

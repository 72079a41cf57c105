/**
 * The one retry policy (provider/core/common/retry.ts) and the limiter helpers
 * (provider/core/common/limit.ts), with the clock and sleep injected so no test waits.
 */
import * as assert from "node:assert/strict";
import { TransientError, UserError } from "../../provider/core/errors";
import { AbortError, backoffMs, poll, retry, type RetryInfo } from "../../provider/core/common/retry";
import { mapLimit, settleLimit } from "../../provider/core/common/limit";

function fakeTime() {
  let t = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
    },
  };
}

describe("retry policy", () => {
  it("retries transient failures with exponential waits inside ±20%, capped at maxMs", async () => {
    const time = fakeTime();
    const seen: RetryInfo[] = [];
    let calls = 0;
    const out = await retry(
      async (n) => {
        calls++;
        if (n < 6) throw new TransientError(`reset ${n}`);
        return "ok";
      },
      { retries: 9, minMs: 100, maxMs: 1000, ...time, onRetry: (i) => seen.push(i) },
    );
    assert.equal(out, "ok");
    assert.equal(calls, 6);
    assert.deepEqual(
      seen.map((i) => [i.attempt, i.attempts, i.error.message]),
      [1, 2, 3, 4, 5].map((n) => [n, 10, `reset ${n}`]),
    );
    const nominal = [100, 200, 400, 800, 1000];
    time.waits.forEach((w, i) => {
      assert.ok(w >= nominal[i]! * 0.8 && w <= nominal[i]! * 1.2, `wait ${i + 1}: ${w}`);
    });
    assert.deepEqual(
      seen.map((i) => i.waitMs),
      time.waits,
    );
  });

  it("jitter spans both sides of the nominal wait", () => {
    const p = { minMs: 1000, maxMs: 1000 };
    assert.equal(
      backoffMs(p, 1, () => 0),
      800,
    );
    assert.equal(
      backoffMs(p, 1, () => 0.5),
      1000,
    );
    assert.equal(
      backoffMs(p, 1, () => 0.999999),
      1200,
    );
  });

  /** An attempt that always throws `make()`, counting its calls. */
  const failing = (make: () => Error) => {
    const c = {
      calls: 0,
      fn: async (): Promise<never> => {
        c.calls++;
        throw make();
      },
    };
    return c;
  };

  it("does not retry a user error or an AbortError, and gives up after `retries`", async () => {
    const time = fakeTime();
    const user = failing(() => new UserError("bad input"));
    await assert.rejects(retry(user.fn, { retries: 5, minMs: 10, maxMs: 10, ...time }), /bad input/);
    assert.equal(user.calls, 1);
    const aborted = failing(() => new AbortError("stop now"));
    await assert.rejects(
      retry(aborted.fn, { retries: 5, minMs: 10, maxMs: 10, shouldRetry: () => true, ...time }),
      /stop now/,
    );
    assert.equal(aborted.calls, 1);
    const reset = failing(() => Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    await assert.rejects(retry(reset.fn, { retries: 3, minMs: 10, maxMs: 10, ...time }), /ECONNRESET/);
    assert.equal(reset.calls, 4);
  });

  it("starts no retry past maxTotalMs and never waits beyond it", async () => {
    const time = fakeTime();
    const down = failing(() => new TransientError("down"));
    await assert.rejects(
      retry(down.fn, { retries: Infinity, minMs: 400, maxMs: 400, maxTotalMs: 1000, ...time }),
      /down/,
    );
    assert.equal(
      time.waits.reduce((a, b) => a + b, 0),
      1000,
    );
    assert.equal(down.calls, time.waits.length + 1);
  });

  it("poll returns the first value and names what it waited for when time runs out", async () => {
    const time = fakeTime();
    let n = 0;
    assert.equal(
      await poll(async () => (++n === 3 ? "up" : undefined), "x", {
        minMs: 5,
        maxMs: 5,
        maxTotalMs: 100,
        ...time,
      }),
      "up",
    );
    await assert.rejects(
      poll(async () => undefined, "VPC vpc-1 to become Available", {
        minMs: 50,
        maxMs: 50,
        maxTotalMs: 200,
        ...fakeTime(),
      }),
      { message: "timed out after 0.2s waiting for VPC vpc-1 to become Available" },
    );
    await assert.rejects(
      poll(failing(() => new UserError("refused")).fn, "y", {
        minMs: 5,
        maxMs: 5,
        maxTotalMs: 100,
        ...fakeTime(),
      }),
      /refused/,
    );
  });
});

describe("limiter helpers", () => {
  const gate = () => {
    let active = 0;
    let most = 0;
    return {
      get most() {
        return most;
      },
      run: async <T>(v: T): Promise<T> => {
        active++;
        most = Math.max(most, active);
        await new Promise((r) => setImmediate(r));
        active--;
        return v;
      },
    };
  };

  it("mapLimit keeps item order and never runs more than n at once", async () => {
    const g = gate();
    const items = Array.from({ length: 20 }, (_, i) => i);
    assert.deepEqual(
      await mapLimit(items, 3, (i) => g.run(i * 2)),
      items.map((i) => i * 2),
    );
    assert.equal(g.most, 3);
  });

  it("mapLimit: the first failure wins and nothing new starts after it", async () => {
    const started: number[] = [];
    await assert.rejects(
      mapLimit([0, 1, 2, 3, 4, 5], 2, async (i) => {
        started.push(i);
        await new Promise((r) => setImmediate(r));
        if (i === 1) throw new Error("item 1 failed");
        return i;
      }),
      /item 1 failed/,
    );
    assert.ok(!started.includes(5), `started ${started.join(",")}`);
  });

  it("settleLimit runs every item and reports each outcome in item order", async () => {
    const g = gate();
    const out = await settleLimit([1, 2, 3, 4], 2, async (i) => {
      await g.run(i);
      if (i % 2 === 0) throw new Error(`even ${i}`);
      return i;
    });
    assert.deepEqual(
      out.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)),
      [1, "even 2", 3, "even 4"],
    );
    assert.equal(g.most, 2);
  });
});

/**
 * Shared pieces of the benchmarks (not a benchmark itself: bench/run.ts lists the ones it runs):
 * wall-clock timing and random-data layers streamed into a store.
 */
import * as crypto from "node:crypto";
import type { Readable, Writable } from "node:stream";
import * as tarStream from "tar-stream";
import type { OciLayout } from "../provider/core/image/layout";

/** Runs `fn` once; its value and how long it took in milliseconds. */
export async function time<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

/** Milliseconds as seconds with two decimals: "1.23s". */
export const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)}s`;

/** A tar layer holding one file of random bytes, streamed into the store (never whole in memory). */
export async function randomLayer(store: OciLayout, name: string, bytes: number): Promise<string> {
  const pack = tarStream.pack();
  const entry = pack.entry({ name, size: bytes, mode: 0o644, mtime: new Date(0) }, (err) => {
    if (err) pack.destroy(err);
    else pack.finalize();
  }) as unknown as Writable;
  const feed = (async () => {
    const chunk = Buffer.alloc(1 << 20);
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, chunk.length);
      crypto.randomFillSync(chunk, 0, n);
      if (!entry.write(Buffer.from(chunk.subarray(0, n))))
        await new Promise<void>((r) => entry.once("drain", () => r()));
      left -= n;
    }
    entry.end();
  })();
  const stored = await store.putBlobStream(pack as unknown as Readable);
  await feed;
  return stored.digest;
}

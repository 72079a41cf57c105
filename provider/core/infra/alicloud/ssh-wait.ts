import * as net from "node:net";
import { retry } from "../../common/retry";
import type { Logger } from "../../log";

/**
 * Waits until a TCP connection to host:port succeeds (sshd answering), retrying with exponential
 * back-off and jitter; each attempt has its own timeout so a black-holed address cannot hang us.
 */
export async function waitForTcp(
  host: string,
  port: number,
  opts: {
    timeoutMs?: number;
    attemptTimeoutMs?: number;
    minBackoffMs?: number;
    maxBackoffMs?: number;
    log?: Logger;
  } = {},
): Promise<number> {
  let attempts = 0;
  await retry(
    async () => {
      attempts++;
      await connectOnce(host, port, opts.attemptTimeoutMs ?? 3000);
    },
    {
      retries: Infinity,
      factor: 1.5,
      minMs: opts.minBackoffMs ?? 500,
      maxMs: opts.maxBackoffMs ?? 10_000,
      maxTotalMs: opts.timeoutMs ?? 5 * 60_000,
      // Every failure means "not up yet" (refused, reset, timed out): the deadline bounds the wait.
      shouldRetry: () => true,
      onRetry: ({ error, attempt }) => {
        if (attempt % 5 === 0)
          opts.log?.info(`ssh ${host}:${port} not answering yet (${error.message}); attempt ${attempt}`);
      },
    },
  ).catch((err: unknown) => {
    throw new Error(
      `${host}:${port} did not accept connections within ${opts.timeoutMs ?? 300_000} ms (${(err as Error).message})`,
      { cause: err },
    );
  });
  return attempts;
}

function connectOnce(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect timeout after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      s.end();
      s.destroy();
      resolve();
    });
    s.once("error", (err) => {
      clearTimeout(t);
      s.destroy();
      reject(err);
    });
  });
}

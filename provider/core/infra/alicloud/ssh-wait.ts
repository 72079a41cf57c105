import * as net from "node:net";
import type { Logger } from "../../log";

const pRetry = require("p-retry").default as typeof import("p-retry").default;

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
  await pRetry(
    async () => {
      attempts++;
      await connectOnce(host, port, opts.attemptTimeoutMs ?? 3000);
    },
    {
      retries: 100_000,
      factor: 1.5,
      minTimeout: opts.minBackoffMs ?? 500,
      maxTimeout: opts.maxBackoffMs ?? 10_000,
      randomize: true,
      maxRetryTime: opts.timeoutMs ?? 5 * 60_000,
      onFailedAttempt: ({ error, attemptNumber }) => {
        if (attemptNumber % 5 === 0)
          opts.log?.info(
            `ssh ${host}:${port} not answering yet (${error.message}); attempt ${attemptNumber}`,
          );
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

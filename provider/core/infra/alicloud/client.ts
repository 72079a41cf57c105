import * as crypto from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import { retry } from "../../common/retry";
import { UserError } from "../../errors";
import { sha256Hex } from "../../fsutil";
import { log as rootLog, type Logger } from "../../log";
import type { AccessKey } from "./credentials";
import { AlicloudApiError } from "./errors";
import { acsDate, authorizationV3, percentEncode, signatureV1 } from "./signer";
import { TokenBucket } from "./token-bucket";

export type Product = "ecs" | "vpc";
export const API_VERSIONS: Record<Product, string> = { ecs: "2014-05-26", vpc: "2016-04-28" };

/** Flat RPC parameters (`Tag.1.Key`, `DataDisk.2.Size`, ...). Undefined and empty values are not sent. */
export type Params = Record<string, string | number | boolean | undefined>;

export interface ClientOptions {
  region: string;
  credentials: AccessKey;
  /** Per product: a base URL (`https://ecs.cn-hangzhou.aliyuncs.com`, `http://127.0.0.1:PORT`) or a host name. */
  endpoint?: Partial<Record<Product, string>>;
  /** Calls per minute across all actions (token bucket). Default 600. */
  rateLimitPerMinute?: number;
  burst?: number;
  /** Retries of one call on transient failures. Default 8. */
  retries?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Per-attempt timeout; a timed-out attempt is retried. Default 30 s. */
  requestTimeoutMs?: number;
  signatureVersion?: "v3" | "v1";
  log?: Logger;
  /** Overridable for tests. */
  now?: () => Date;
}

interface Endpoint {
  url: URL;
  mod: typeof http | typeof https;
}

/** Every call has an empty body (parameters travel in the query). */
const EMPTY_BODY_SHA256 = sha256Hex("");

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/;

/**
 * Resolves a product endpoint. Plain HTTP is accepted for loopback addresses only (the test fake);
 * anything else must be HTTPS so the AccessKey signature and instance passwords never travel in clear.
 */
export function resolveEndpoint(product: Product, region: string, override: string | undefined): URL {
  const raw = override ?? `${product}.${region}.aliyuncs.com`;
  const url = new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `https://${raw}`);
  if (url.protocol === "http:" && !LOOPBACK.test(url.hostname))
    throw new UserError(
      `endpoint ${raw}: plain HTTP is only allowed for loopback addresses (127.0.0.0/8, ::1, localhost); use https://`,
    );
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UserError(`endpoint ${raw}: unsupported protocol ${url.protocol}`);
  return url;
}

/**
 * One client for the ECS and VPC RPC APIs. Every call goes through the token bucket, is signed
 * afresh per attempt (new date and nonce: the server refuses a reused nonce), and is retried with
 * exponential back-off and jitter only when the error is transient. Talking to the fake differs
 * only in the endpoint URL.
 */
export class AlicloudClient {
  /** Attempts per action, failed ones included (tests and bench read this). */
  readonly attempts: Record<string, number> = {};
  private readonly bucket: TokenBucket;
  private readonly endpoints = new Map<Product, Endpoint>();
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  };
  private readonly log: Logger;

  constructor(private readonly opts: ClientOptions) {
    this.bucket = new TokenBucket(opts.rateLimitPerMinute ?? 600, opts.burst);
    this.log = opts.log ?? rootLog;
    for (const p of ["ecs", "vpc"] as const) {
      const url = resolveEndpoint(p, opts.region, opts.endpoint?.[p]);
      this.endpoints.set(p, { url, mod: url.protocol === "http:" ? http : https });
    }
  }

  get region(): string {
    return this.opts.region;
  }

  totalAttempts(): number {
    return Object.values(this.attempts).reduce((a, b) => a + b, 0);
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  async call<T = Record<string, unknown>>(product: Product, action: string, params: Params): Promise<T> {
    return retry(
      async () => {
        try {
          return await this.attempt<T>(product, action, params);
        } catch (err) {
          if (err instanceof AlicloudApiError && err.code.startsWith("Throttling")) this.bucket.drain();
          throw err;
        }
      },
      {
        retries: this.opts.retries ?? 8,
        minMs: this.opts.minBackoffMs ?? 500,
        maxMs: this.opts.maxBackoffMs ?? 20_000,
        shouldRetry: isRetryable,
        onRetry: ({ error, attempt }) =>
          this.log.debug(`${action} attempt ${attempt} failed (${error.message}); retrying`),
      },
    );
  }

  private async attempt<T>(product: Product, action: string, params: Params): Promise<T> {
    await this.bucket.take();
    this.attempts[action] = (this.attempts[action] ?? 0) + 1;
    const ep = this.endpoints.get(product);
    if (!ep) throw new Error(`no endpoint for ${product}`);
    const query: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") query.push([k, String(v)]);
    const now = (this.opts.now ?? (() => new Date()))();
    const nonce = crypto.randomBytes(16).toString("hex");
    const host = ep.url.host;
    const headers: Record<string, string> = { host, accept: "application/json" };
    const cred = this.opts.credentials;
    let pathAndQuery: string;
    if ((this.opts.signatureVersion ?? "v3") === "v3") {
      Object.assign(headers, {
        "x-acs-action": action,
        "x-acs-version": API_VERSIONS[product],
        "x-acs-date": acsDate(now),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
      });
      if (cred.securityToken) headers["x-acs-security-token"] = cred.securityToken;
      headers.authorization = authorizationV3(
        { method: "POST", path: "/", query, headers, payloadHash: EMPTY_BODY_SHA256 },
        cred.accessKeyId,
        cred.accessKeySecret,
      );
      pathAndQuery = "/?" + query.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join("&");
    } else {
      const all: Record<string, string> = Object.fromEntries(query);
      Object.assign(all, {
        Action: action,
        Version: API_VERSIONS[product],
        Format: "JSON",
        AccessKeyId: cred.accessKeyId,
        SignatureMethod: "HMAC-SHA1",
        SignatureVersion: "1.0",
        SignatureNonce: nonce,
        Timestamp: acsDate(now),
      });
      if (cred.securityToken) all.SecurityToken = cred.securityToken;
      all.Signature = signatureV1(all, "POST", cred.accessKeySecret);
      pathAndQuery =
        "/?" +
        Object.entries(all)
          .map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`)
          .join("&");
    }
    const { status, body } = await this.send(ep, pathAndQuery, headers, action);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body) as Record<string, unknown>;
    } catch {
      // A proxy or load balancer answered: judge by the status alone.
      throw new AlicloudApiError({
        action,
        code: status >= 500 ? "ServiceUnavailable" : "InvalidResponse",
        message: `HTTP ${status}: ${body.slice(0, 200)}`,
        httpStatus: status,
      });
    }
    if (status >= 400 || typeof parsed.Code === "string") {
      throw new AlicloudApiError({
        action,
        code: String(parsed.Code ?? `HTTP${status}`),
        message: String(parsed.Message ?? body.slice(0, 200)),
        requestId: typeof parsed.RequestId === "string" ? parsed.RequestId : undefined,
        httpStatus: status,
      });
    }
    return parsed as T;
  }

  private send(
    ep: Endpoint,
    pathAndQuery: string,
    headers: Record<string, string>,
    action: string,
  ): Promise<{ status: number; body: string }> {
    const timeoutMs = this.opts.requestTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const req = ep.mod.request(
        {
          protocol: ep.url.protocol,
          hostname: ep.url.hostname.replace(/^\[|\]$/g, ""),
          port: ep.url.port || undefined,
          method: "POST",
          path: (ep.url.pathname.replace(/\/$/, "") || "") + pathAndQuery,
          headers: { ...headers, "content-length": "0" },
          agent: ep.url.protocol === "http:" ? this.agents.http : this.agents.https,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", (err) => reject(networkError(action, err)));
        },
      );
      req.setTimeout(timeoutMs, () =>
        req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })),
      );
      req.on("error", (err) => reject(networkError(action, err)));
      req.end();
    });
  }
}

/** Network failures (reset, dropped connection, timeout) are transient; the request may or may not have been done. */
function networkError(action: string, err: Error): AlicloudApiError {
  const code = (err as NodeJS.ErrnoException).code ?? "NetworkError";
  return new AlicloudApiError({
    action,
    code: `Network.${code}`,
    message: err.message,
    retryable: true,
    cause: err,
  });
}

function isRetryable(err: unknown): boolean {
  return err instanceof AlicloudApiError && err.retryable;
}

/**
 * An OCI distribution (Docker Registry HTTP API v2) client.
 *
 * One client per registry host. It decides the transport once (`ping`): HTTPS with the system
 * CAs plus the registry's own CA; plain HTTP only for loopback registries or a registry marked
 * insecure (never silently for anything else). Auth is learned from the `/v2/` challenge and
 * then sent up front, so a large upload is not sent twice: Basic with stored credentials, or
 * Bearer tokens fetched from the challenge's realm and cached per scope set.
 *
 * Every request is retried with exponential back-off and jitter, but only for transient
 * failures (connection reset/refused, timeouts, 429, 5xx); everything else fails at once with a
 * message that says what to do.
 */
import * as http from "node:http";
import * as https from "node:https";
import { Readable } from "node:stream";
import { isUntrustedCertificate, TransientError, UserError } from "../errors";
import { retry } from "../common/retry";
import { log, registerSecret } from "../log";
import { sealerHome } from "../paths";
import { mergeScopes, parseChallenge, repositoryScope } from "./auth";
import { RegistryError, RegistryTarget, targetOfUrl, toRegistryError } from "./registry-error";
import {
  Credentials,
  RegistrySettings,
  isLoopbackHost,
  loadCredentials,
  loadSettings,
  normalizeRegistryHost,
} from "./credentials";

export interface ClientOptions {
  home?: string;
  /** Overrides the stored settings (CA, insecure). */
  settings?: RegistrySettings;
  /** Overrides the stored credentials; `null` forces anonymous access. */
  credentials?: Credentials | null;
  /** Retries per request for transient failures (default 5). */
  retries?: number;
  /** First back-off delay in ms (default 300); doubles each time, with jitter. */
  minRetryMs?: number;
  /** Idle socket timeout in ms (default 60 s). */
  timeoutMs?: number;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A factory, so the body can be re-sent on a retry or after an auth challenge. */
  body?: () => Buffer | Readable;
  /** Token scopes this request needs, e.g. `repository:team/app:pull`. */
  scopes?: string[];
  /** Statuses treated as success (others become errors). */
  expect: number[];
  /** "host/repo" for messages. */
  what: string;
  /** Do not retry (the caller retries a larger unit). */
  noRetry?: boolean;
}

/** The registry went quiet: worth another try, with Node's code for a timeout. */
function timeoutError(message: string): TransientError {
  return Object.assign(new TransientError(message), { code: "ETIMEDOUT" });
}

const TLS_PROTOCOL_CODES = new Set([
  "EPROTO",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "ERR_SSL_PACKET_LENGTH_TOO_LONG",
]);

/** Parsed registry error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`. */
export function registryErrorText(body: string): string {
  try {
    const j = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    if (j.errors?.length)
      return j.errors.map((e) => `${e.code ?? "ERROR"}: ${e.message ?? ""}`.trim()).join("; ");
  } catch {
    /* not JSON */
  }
  return body.trim().slice(0, 300);
}

export async function readBody(res: http.IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.destroy();
      throw new UserError(`the response is larger than the ${limit} bytes this client accepts`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export class RegistryClient {
  readonly host: string;
  private base: string | undefined;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private auth:
    | { scheme: "none" }
    | { scheme: "basic" }
    | { scheme: "bearer"; realm: string; service?: string }
    | undefined;
  /** Bearer tokens per scope set, with when they stop being usable. */
  private readonly tokens = new Map<string, { token: Promise<string>; expiresAt: number }>();
  private pinging: Promise<void> | undefined;

  private constructor(
    host: string,
    private readonly settings: RegistrySettings,
    private readonly credentials: Credentials | undefined,
    private readonly opts: ClientOptions,
  ) {
    this.host = host;
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
      https: new https.Agent({
        keepAlive: true,
        maxSockets: 16,
        ...(settings.ca ? { ca: [...require("node:tls").rootCertificates, settings.ca] } : {}),
        ...(settings.insecure ? { rejectUnauthorized: false } : {}),
      }),
    };
  }

  static async open(registry: string, opts: ClientOptions = {}): Promise<RegistryClient> {
    const host = normalizeRegistryHost(registry);
    const home = opts.home ?? sealerHome();
    const settings = opts.settings ?? (await loadSettings(host, home));
    const creds =
      opts.credentials === null ? undefined : (opts.credentials ?? (await loadCredentials(host, home)));
    if (creds) registerSecret(creds.password);
    return new RegistryClient(host, settings, creds, opts);
  }

  /** The API host: docker.io's API lives at registry-1.docker.io. */
  private apiHost(): string {
    return this.host === "docker.io" ? "registry-1.docker.io" : this.host;
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /**
   * `GET /v2/`: picks the transport and learns the auth scheme. With credentials, a 401 that
   * persists after authenticating is reported as bad credentials (used by `login`).
   */
  async ping(): Promise<void> {
    this.pinging ??= this.doPing().catch((err) => {
      this.pinging = undefined;
      throw err;
    });
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    const plainAllowed = this.settings.insecure === true || isLoopbackHost(this.host);
    const tryBase = async (base: string) => {
      const res = await this.retry(() => this.raw("GET", `${base}/v2/`, {}), `${this.host}`);
      await readBody(res).catch(() => Buffer.alloc(0));
      return res;
    };
    let res: http.IncomingMessage;
    try {
      this.base = `https://${this.apiHost()}`;
      res = await tryBase(this.base);
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (plainAllowed && TLS_PROTOCOL_CODES.has(code)) {
        log.debug(
          `${this.host}: no TLS, using plain HTTP (${this.settings.insecure ? "marked insecure" : "loopback"})`,
        );
        this.base = `http://${this.apiHost()}`;
        res = await tryBase(this.base);
      } else {
        this.base = undefined;
        throw this.networkError(err, this.host);
      }
    }
    if (res.statusCode === 401) {
      const ch = parseChallenge(headerString(res.headers["www-authenticate"]));
      if (!ch)
        throw new UserError(
          `${this.host} asks for an authentication scheme this client does not speak: ${headerString(res.headers["www-authenticate"]) ?? "(none)"}`,
        );
      this.auth =
        ch.scheme === "basic"
          ? { scheme: "basic" }
          : { scheme: "bearer", realm: ch.realm, ...(ch.service ? { service: ch.service } : {}) };
    } else if (res.statusCode === 200) {
      this.auth = { scheme: "none" };
    } else if (res.statusCode === 404) {
      throw new UserError(`${this.host} does not speak the registry API v2 (GET /v2/ returned 404)`);
    } else {
      throw new UserError(`${this.host}: GET /v2/ returned HTTP ${res.statusCode}`);
    }
  }

  /**
   * Checks that the client's credentials are accepted (for `login`): Basic against `/v2/`, Bearer
   * by fetching a token for the registry with no scope, as `docker login` does.
   */
  async verifyLogin(): Promise<void> {
    await this.ping();
    const a = this.auth!;
    if (a.scheme === "none") return;
    if (!this.credentials)
      throw new UserError(
        `${this.host} requires credentials: pass -u USER and -p PASSWORD (or --password-stdin)`,
      );
    if (a.scheme === "basic") {
      const res = await this.raw("GET", `${this.base}/v2/`, { Authorization: this.basicHeader() });
      await readBody(res);
      if (res.statusCode !== 200)
        throw new UserError(
          `login to ${this.host} failed: the registry rejected the credentials for "${this.credentials.username}" (HTTP ${res.statusCode})`,
        );
      return;
    }
    const { token } = await this.fetchToken([], true);
    const res = await this.raw("GET", `${this.base}/v2/`, { Authorization: `Bearer ${token}` });
    await readBody(res);
    if (res.statusCode !== 200)
      throw new UserError(
        `login to ${this.host} failed: the registry rejected the token (HTTP ${res.statusCode})`,
      );
  }

  private basicHeader(): string {
    const c = this.credentials!;
    const encoded = Buffer.from(`${c.username}:${c.password}`).toString("base64");
    // A server may echo the header back in an error body, which becomes our message.
    registerSecret(encoded);
    return "Basic " + encoded;
  }

  private async token(scopes: string[]): Promise<string> {
    const key = mergeScopes(scopes).join(" ");
    const hit = this.tokens.get(key);
    // Checked synchronously so concurrent requests share one renewal instead of racing.
    if (hit && hit.expiresAt > Date.now()) return hit.token;
    const entry: { token: Promise<string>; expiresAt: number } = {
      token: Promise.resolve(""),
      expiresAt: Infinity,
    };
    entry.token = this.fetchToken(scopes, false).then((r) => {
      entry.expiresAt = r.expiresAt;
      return r.token;
    });
    entry.token.catch(() => {
      if (this.tokens.get(key) === entry) this.tokens.delete(key);
    });
    this.tokens.set(key, entry);
    return entry.token;
  }

  private async fetchToken(
    scopes: string[],
    loginCheck: boolean,
  ): Promise<{ token: string; expiresAt: number }> {
    const a = this.auth;
    if (a?.scheme !== "bearer") throw new Error("internal: token requested without a bearer challenge");
    const url = new URL(a.realm);
    if (a.service) url.searchParams.set("service", a.service);
    for (const sc of mergeScopes(scopes)) url.searchParams.append("scope", sc);
    if (loginCheck && this.credentials) url.searchParams.set("account", this.credentials.username);
    const headers: Record<string, string> = this.credentials ? { Authorization: this.basicHeader() } : {};
    const res = await this.retry(() => this.raw("GET", url.toString(), headers), `token service ${url.host}`);
    const body = await readBody(res);
    if (res.statusCode === 401 || res.statusCode === 403) {
      if (this.credentials)
        throw new UserError(
          `authentication failed for ${this.host}: the token service ${url.host} rejected the credentials for "${this.credentials.username}" — run sealer login ${this.host}`,
        );
      throw new UserError(`authentication required for ${this.host} — run sealer login ${this.host}`);
    }
    if (res.statusCode !== 200)
      throw new UserError(
        `token service ${url.host} for ${this.host} returned HTTP ${res.statusCode}: ${registryErrorText(body.toString())}`,
      );
    let j: { token?: string; access_token?: string; expires_in?: number };
    try {
      j = JSON.parse(body.toString("utf8")) as typeof j;
    } catch {
      throw new UserError(
        `token service ${url.host} for ${this.host} answered with something that is not JSON`,
      );
    }
    const token = j?.token ?? j?.access_token;
    if (typeof token !== "string" || !token)
      throw new UserError(`token service ${url.host} for ${this.host} returned no token`);
    registerSecret(token);
    // The spec's default lifetime is 60 s; renew 10 s early so a request never carries a stale one.
    const lifetime = typeof j?.expires_in === "number" && j.expires_in > 0 ? j.expires_in : 60;
    return { token, expiresAt: Date.now() + (lifetime > 20 ? lifetime - 10 : lifetime / 2) * 1000 };
  }

  private async authHeader(scopes: string[]): Promise<Record<string, string>> {
    const a = this.auth;
    if (!a || a.scheme === "none") return {};
    if (a.scheme === "basic") return this.credentials ? { Authorization: this.basicHeader() } : {};
    return { Authorization: `Bearer ${await this.token(scopes)}` };
  }

  /**
   * One API request. `pathOrUrl` is `/v2/...` or an absolute URL (upload locations). Non-expected
   * statuses become errors: 401/403 name the login command, 404 is returned to the caller when
   * listed in `expect`, 429/5xx are transient.
   */
  async request(method: string, pathOrUrl: string, o: RequestOptions): Promise<Response> {
    try {
      await this.ping();
    } catch (err) {
      throw toRegistryError(err, targetOfUrl(this.host, pathOrUrl));
    }
    const url = this.resolveUrl(pathOrUrl);
    const attempt = async (): Promise<Response> => {
      let res = await this.raw(
        method,
        url,
        { ...(o.headers ?? {}), ...(await this.authHeader(o.scopes ?? [])) },
        o.body?.(),
      );
      if (res.statusCode === 401) {
        const ch = parseChallenge(headerString(res.headers["www-authenticate"]));
        await readBody(res).catch(() => undefined);
        if (ch?.scheme === "bearer" && this.auth?.scheme !== "none") {
          // The token may have expired, or the challenge asks for more scope than we had.
          this.auth = { scheme: "bearer", realm: ch.realm, ...(ch.service ? { service: ch.service } : {}) };
          const scopes = mergeScopes([...(o.scopes ?? []), ...(ch.scope ? [ch.scope] : [])]);
          this.tokens.delete(scopes.join(" "));
          this.tokens.delete(mergeScopes(o.scopes ?? []).join(" "));
          res = await this.raw(
            method,
            url,
            { ...(o.headers ?? {}), ...(await this.authHeader(scopes)) },
            o.body?.(),
          );
        } else if (ch?.scheme === "basic" && this.auth?.scheme !== "basic" && this.credentials) {
          this.auth = { scheme: "basic" };
          res = await this.raw(
            method,
            url,
            { ...(o.headers ?? {}), Authorization: this.basicHeader() },
            o.body?.(),
          );
        }
      }
      if (o.expect.includes(res.statusCode ?? 0))
        return { status: res.statusCode ?? 0, headers: res.headers, body: res };
      const text = registryErrorText((await readBody(res).catch(() => Buffer.alloc(0))).toString("utf8"));
      throw this.statusError(res.statusCode ?? 0, method, o.what, text, url);
    };
    const target = targetOfUrl(this.host, url);
    try {
      return await (o.noRetry ? attempt() : this.retry(attempt, "", target));
    } catch (err) {
      throw toRegistryError(err, target);
    }
  }

  /** A status the caller did not expect, as a RegistryError naming what the URL addresses. */
  private statusError(status: number, method: string, what: string, text: string, url: string): Error {
    const target = targetOfUrl(this.host, url);
    const final = (message: string) =>
      new RegistryError(target, message, { temporary: false, status, message });
    if (status === 401) {
      if (this.credentials)
        return final(
          `authentication failed for ${what}: the registry rejected the credentials for "${this.credentials.username}" — run sealer login ${this.host}`,
        );
      return final(`authentication required for ${what} — run sealer login ${this.host}`);
    }
    if (status === 403)
      return final(
        `access denied to ${what}${this.credentials ? ` for "${this.credentials.username}"` : ""} (${text || "HTTP 403"}) — check the account's permissions or run sealer login ${this.host}`,
      );
    // The target names registry and repository already; `what` is for URLs outside the API.
    const detail = `${method}${target.repository ? "" : ` ${what}`} returned HTTP ${status}${text ? ` (${text})` : ""}`;
    return new RegistryError(target, detail, { temporary: status === 429 || status >= 500, status });
  }

  /**
   * What another HTTP client (curl on a node) needs to read blobs of `repo` the way this client
   * would: the base URL it settled on and the Authorization header for a pull (a secret, already
   * registered with the log redactor).
   */
  async pullAccess(repo: string): Promise<{ base: string; authorization?: string }> {
    await this.ping();
    const h = await this.authHeader([repositoryScope(repo, ["pull"])]);
    if (h.Authorization) registerSecret(h.Authorization);
    return {
      base: this.resolveUrl("/").slice(0, -1),
      ...(h.Authorization ? { authorization: h.Authorization } : {}),
    };
  }

  resolveUrl(pathOrUrl: string): string {
    if (/^https?:\/\//.test(pathOrUrl)) return pathOrUrl;
    return `${this.base}${pathOrUrl.startsWith("/") ? "" : "/"}${pathOrUrl}`;
  }

  /**
   * Runs `fn` with back-off + jitter while it fails transiently. With `target` (what `fn`
   * works on), the final failure is a RegistryError naming it.
   */
  async retry<T>(fn: () => Promise<T>, what: string, target?: Omit<RegistryTarget, "registry">): Promise<T> {
    const named = (err: unknown) => toRegistryError(err, { registry: this.host, ...(target ?? {}) });
    try {
      return await retry(() => fn(), {
        retries: this.opts.retries ?? 5,
        minMs: this.opts.minRetryMs ?? 300,
        maxMs: 10_000,
        onRetry: ({ error, attempt }) => {
          const text = named(error).message;
          const prefix = what && !target && !text.startsWith(what) ? `${what}: ` : "";
          log.warn(`${prefix}${text} — retrying (attempt ${attempt + 1})`);
        },
      });
    } catch (err) {
      throw target ? named(err) : err;
    }
  }

  /** One HTTP exchange; follows redirects (blob downloads are often redirected to storage). */
  raw(
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: Buffer | Readable,
    redirects = 0,
  ): Promise<http.IncomingMessage> {
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const u = new URL(url);
      const isHttps = u.protocol === "https:";
      const mod = isHttps ? https : http;
      const hdrs: Record<string, string | number> = { "User-Agent": "pulumi-sealer", ...headers };
      if (Buffer.isBuffer(body)) hdrs["Content-Length"] = body.length;
      else if (!body && ["PUT", "POST", "PATCH"].includes(method) && hdrs["Content-Length"] === undefined)
        hdrs["Content-Length"] = 0;
      const req = mod.request(
        u,
        { method, headers: hdrs, agent: isHttps ? this.agents.https : this.agents.http },
        (res) => {
          const loc = headerString(res.headers.location);
          if (
            [301, 302, 303, 307, 308].includes(res.statusCode ?? 0) &&
            loc &&
            (method === "GET" || method === "HEAD") &&
            redirects < 5
          ) {
            res.resume();
            const next = new URL(loc, url);
            // Credentials are for the registry, not for the storage a blob is redirected to.
            const h = { ...headers };
            if (next.host !== u.host) delete h.Authorization;
            this.raw(method, next.toString(), h, undefined, redirects + 1).then(resolve, reject);
            return;
          }
          res.setTimeout(this.opts.timeoutMs ?? 60_000, () =>
            res.destroy(
              timeoutError(`no data from ${u.host} for ${(this.opts.timeoutMs ?? 60_000) / 1000}s`),
            ),
          );
          resolve(res);
        },
      );
      req.setTimeout(this.opts.timeoutMs ?? 60_000, () =>
        req.destroy(timeoutError(`no answer from ${u.host} for ${(this.opts.timeoutMs ?? 60_000) / 1000}s`)),
      );
      req.on("error", (err) => reject(this.networkError(err, u.host)));
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on("error", (err) => req.destroy(err));
        body.pipe(req);
      }
    });
  }

  /** Maps socket/TLS errors to messages; transient ones keep their code so they are retried. */
  networkError(err: unknown, host: string): Error {
    if (err instanceof UserError || err instanceof TransientError) return err;
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? "";
    if (isUntrustedCertificate(err))
      return new UserError(
        `TLS: certificate signed by unknown authority for ${host} (use sealer login --ca-file FILE ${this.host}, or --insecure to skip verification for this registry only)`,
        { cause: err },
      );
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
      return new UserError(`TLS: the certificate of ${host} is not valid for that name (${e.message})`, {
        cause: err,
      });
    if (code === "CERT_HAS_EXPIRED")
      return new UserError(`TLS: the certificate of ${host} has expired`, { cause: err });
    if (code === "ENOTFOUND")
      return new UserError(`registry ${host} not found (DNS lookup failed)`, { cause: err });
    if (code === "EPROTO" || code.startsWith("ERR_SSL"))
      return Object.assign(
        new UserError(
          `TLS handshake with ${host} failed (${e.message.split("\n")[0]}); if it speaks plain HTTP, use sealer login --insecure ${this.host}`,
          { cause: err },
        ),
        { code },
      );
    return err instanceof Error ? err : new Error(String(err));
  }
}

export function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

import * as crypto from "node:crypto";
import { sha256Hex } from "../../fsutil";

/**
 * Alibaba Cloud OpenAPI request signing, pure (no clock, no randomness: the caller passes the
 * date and nonce). Two documented methods:
 *  - V3 "ACS3-HMAC-SHA256": a canonical request (method, URI, sorted query, lower-cased signed
 *    headers, payload hash) hashed into a string-to-sign, HMAC-SHA256 with the AccessKey secret,
 *    sent in the Authorization header. This is what the client uses.
 *  - V1 RPC "HMAC-SHA1" (SignatureVersion 1.0): the sorted, percent-encoded parameters signed as
 *    `METHOD&%2F&encode(query)` with key `secret&`, sent as the `Signature` parameter. Kept for
 *    endpoints or proxies that only speak V1.
 * Both are checked against vectors produced by Alibaba's official SDK packages
 * (tests/unit/alicloud-signer.test.ts names the versions).
 */

export const ACS3_ALGORITHM = "ACS3-HMAC-SHA256";

/** RFC 3986 percent-encoding as Alibaba specifies it: space is %20, `~` stays, `!'()*` are encoded. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/**
 * Canonical query: keys sorted by their encoded form, each pair written `key=value` encoded; an
 * empty value still gets its `=` (`Key=`), as the V3 documentation and the current official
 * SDK (@alicloud/openapi-util 0.3.x getAuthorization) write it. Older SDK releases wrote the bare
 * key; the gateway verifies with the documented form.
 */
export function canonicalQueryString(query: Array<[string, string]>): string {
  return query
    .map(([k, v]) => [percentEncode(k), percentEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** Which headers take part in the V3 signature: host, content-type and every x-acs-* header. */
export function isSignedHeader(lowerName: string): boolean {
  return lowerName === "host" || lowerName === "content-type" || lowerName.startsWith("x-acs-");
}

/**
 * Canonical headers and the SignedHeaders list. Names are lower-cased; a name given twice (in any
 * case) has its trimmed values sorted and joined with commas.
 */
export function canonicalHeaders(headers: Record<string, string>): { canonical: string; signed: string } {
  const byName = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!isSignedHeader(lower)) continue;
    const list = byName.get(lower) ?? [];
    list.push(value.trim());
    byName.set(lower, list);
  }
  const names = [...byName.keys()].sort();
  const canonical = names.map((n) => `${n}:${(byName.get(n) ?? []).sort().join(",")}\n`).join("");
  return { canonical, signed: names.join(";") };
}

export interface V3Input {
  method: string;
  /** Already-encoded path; "/" for RPC-style APIs. */
  path: string;
  query: Array<[string, string]>;
  headers: Record<string, string>;
  /** Hex SHA-256 of the body (equal to the x-acs-content-sha256 header). */
  payloadHash: string;
}

export function canonicalRequestV3(input: V3Input): { canonicalRequest: string; signedHeaders: string } {
  const { canonical, signed } = canonicalHeaders(input.headers);
  const canonicalRequest = [
    input.method.toUpperCase(),
    input.path,
    canonicalQueryString(input.query),
    canonical,
    signed,
    input.payloadHash,
  ].join("\n");
  return { canonicalRequest, signedHeaders: signed };
}

/** The Authorization header value for a V3-signed request. */
export function authorizationV3(input: V3Input, accessKeyId: string, accessKeySecret: string): string {
  const { canonicalRequest, signedHeaders } = canonicalRequestV3(input);
  const stringToSign = `${ACS3_ALGORITHM}\n${sha256Hex(canonicalRequest)}`;
  const signature = crypto.createHmac("sha256", accessKeySecret).update(stringToSign).digest("hex");
  return `${ACS3_ALGORITHM} Credential=${accessKeyId},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

/** V1 RPC signature (base64 HMAC-SHA1) over every parameter except `Signature` itself. */
export function signatureV1(params: Record<string, string>, method: string, accessKeySecret: string): string {
  const canonical = canonicalQueryV1(params);
  const stringToSign = `${method.toUpperCase()}&${percentEncode("/")}&${percentEncode(canonical)}`;
  return crypto
    .createHmac("sha1", accessKeySecret + "&")
    .update(stringToSign)
    .digest("base64");
}

/** V1 canonicalisation: every pair written as `key=value` (empty values included), sorted by encoded key. */
function canonicalQueryV1(params: Record<string, string>): string {
  return Object.keys(params)
    .filter((k) => k !== "Signature")
    .map((k) => [percentEncode(k), percentEncode(params[k] ?? "")] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** ISO 8601 UTC without milliseconds, as x-acs-date and the V1 Timestamp want it. */
export function acsDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

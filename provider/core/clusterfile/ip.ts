import * as net from "node:net";

/**
 * IP address helpers: validation, canonical text (so "fd00::0:2" and "fd00::2" are one host),
 * numeric order (so worker order in a normalised spec is stable), and `a-b` ranges (flags only).
 */
export type Family = 4 | 6;

export function ipFamily(text: string): Family | undefined {
  const f = net.isIP(text);
  return f === 4 ? 4 : f === 6 ? 6 : undefined;
}

/** Canonical form: IPv4 as is (no leading zeros accepted by net.isIP), IPv6 RFC 5952 (lowercase, longest zero run compressed). */
export function canonicalIp(text: string): string {
  const fam = ipFamily(text);
  if (fam === 4) return text;
  if (fam === 6) return formatV6(parseV6(text));
  throw new Error(`not an IP address: ${text}`);
}

/** Numeric value (BigInt) for ordering and ranges. */
export function ipToBigInt(text: string): bigint {
  const fam = ipFamily(text);
  if (fam === 4) return text.split(".").reduce((acc, p) => (acc << 8n) + BigInt(Number(p)), 0n);
  if (fam === 6) return parseV6(text).reduce((acc, g) => (acc << 16n) + BigInt(g), 0n);
  throw new Error(`not an IP address: ${text}`);
}

export function bigIntToIp(n: bigint, fam: Family): string {
  if (fam === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  return formatV6(groups);
}

/** Orders IPs numerically, IPv4 before IPv6. */
export function compareIps(a: string, b: string): number {
  const fa = ipFamily(a) ?? 9;
  const fb = ipFamily(b) ?? 9;
  if (fa !== fb) return fa - fb;
  if (fa === 9) return a < b ? -1 : a > b ? 1 : 0;
  const na = ipToBigInt(a);
  const nb = ipToBigInt(b);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

export const MAX_RANGE = 4096;

/**
 * Expands "10.0.0.2-10.0.0.5" (also "10.0.0.2-5" shorthand for the last IPv4 octet) into the
 * IPs it covers. Returns an error message instead when the text is not a valid range.
 */
export function expandRange(text: string): string[] | string {
  const dash = text.indexOf("-");
  if (dash < 0) return ipFamily(text) ? [canonicalIp(text)] : `"${text}" is not an IP address`;
  const from = text.slice(0, dash).trim();
  let to = text.slice(dash + 1).trim();
  const fam = ipFamily(from);
  if (!fam) return `"${text}": "${from}" is not an IP address`;
  if (fam === 4 && /^\d{1,3}$/.test(to)) to = from.split(".").slice(0, 3).join(".") + "." + to;
  if (ipFamily(to) !== fam) return `"${text}": "${to}" is not an IP address of the same family as "${from}"`;
  const a = ipToBigInt(from);
  const b = ipToBigInt(to);
  if (b < a) return `"${text}": the range ends before it starts`;
  if (b - a + 1n > BigInt(MAX_RANGE)) return `"${text}": the range covers more than ${MAX_RANGE} addresses`;
  const out: string[] = [];
  for (let n = a; n <= b; n++) out.push(bigIntToIp(n, fam));
  return out;
}

function parseV6(text: string): number[] {
  let s = text.toLowerCase();
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct);
  // Embedded IPv4 tail (::ffff:1.2.3.4).
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  let tailGroups: number[] = [];
  if (tail.includes(".")) {
    const parts = tail.split(".").map(Number);
    tailGroups = [((parts[0] ?? 0) << 8) | (parts[1] ?? 0), ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)];
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const [head, rest] = s.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":").map((g) => parseInt(g, 16));
  const r = rest === undefined ? [] : rest === "" ? [] : rest.split(":").map((g) => parseInt(g, 16));
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const groups = [...h, ...new Array<number>(fill).fill(0), ...r];
  if (tailGroups.length === 2) {
    groups[6] = tailGroups[0] ?? 0;
    groups[7] = tailGroups[1] ?? 0;
  }
  return groups;
}

function formatV6(groups: number[]): string {
  // Longest run of ≥2 zero groups is compressed (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return hex.slice(0, best).join(":") + "::" + hex.slice(best + bestLen).join(":");
}

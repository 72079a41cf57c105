/** Pure address planning for local nodes. */
import * as crypto from "node:crypto";

export interface Subnet24 {
  a: number;
  b: number;
  c: number;
}

/** Accepts "A.B.C.0/24" only (one bridge, up to 250 nodes). */
export function parseSubnet(s: string): Subnet24 | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(s);
  if (!m) return undefined;
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if ([a, b, c].some((x) => x > 255)) return undefined;
  return { a, b, c };
}

export function subnetHost(s: Subnet24, host: number): string {
  return `${s.a}.${s.b}.${s.c}.${host}`;
}

/** Prefix rules: netns, bridge and veth names are derived from it. */
export function validatePrefix(prefix: string): string[] {
  if (!/^[a-z][a-z0-9-]{0,11}$/.test(prefix))
    return [
      `node name prefix must be 1-12 lowercase letters, digits or dashes, starting with a letter (got ${JSON.stringify(prefix)})`,
    ];
  return [];
}

function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, x) => acc * 256 + Number(x), 0);
}

/** Does a.b.c.0/24 overlap any CIDR in `used`? */
export function overlaps(s: Subnet24, used: string[]): boolean {
  const lo = ipToInt(subnetHost(s, 0));
  const hi = lo + 255;
  for (const cidr of used) {
    const [ip, bitsS] = cidr.split("/");
    if (!ip) continue;
    const bits = Number(bitsS ?? 32);
    const size = 2 ** (32 - bits);
    const start = Math.floor(ipToInt(ip) / size) * size;
    const end = start + size - 1;
    if (start <= hi && lo <= end) return true;
  }
  return false;
}

/**
 * A free 10.x.y.0/24 derived from the prefix (so runs with different prefixes rarely probe the
 * same one), skipping every subnet in use. x is kept in 10.100-10.199 to stay clear of the usual
 * 10.0/10.1 home and container ranges.
 */
export function pickSubnet(prefix: string, used: string[]): string {
  const h = crypto.createHash("sha256").update(prefix).digest();
  const start = h.readUInt16BE(0) % (100 * 256);
  for (let i = 0; i < 100 * 256; i++) {
    const k = (start + i) % (100 * 256);
    const s = { a: 10, b: 100 + Math.floor(k / 256), c: k % 256 };
    if (!overlaps(s, used)) return `${s.a}.${s.b}.${s.c}.0/24`;
  }
  throw new Error("no free 10.100.0.0/16-10.199.0.0/16 subnet for local nodes; pass --subnet");
}

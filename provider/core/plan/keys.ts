/**
 * Step keys: a step's key is the hash of its named input parts. The key format is what every
 * running cluster has recorded: changing how a part or a key is hashed re-runs steps everywhere.
 */
import { Secret } from "../clusterfile/secret";
import { sha256Hex, stableStringify } from "../common/hash";

/** One named input of a step: its hash, and what to say when it changed. */
export interface Part {
  name: string;
  hash: string;
  desc: string;
  /**
   * The hash this input had before its hashing was refined (layer parts before per-path layer
   * digests). A step recorded with the older key is not re-run for the refinement alone.
   */
  legacy?: string;
}

/**
 * Memo of hash(): many steps share inputs (roles, platforms, labels), and hashing dominates
 * planning time at 1000 hosts. The memo never changes a result, so planning stays pure; the
 * planner resets it per plan so it does not grow across plans.
 */
let hashMemo = new Map<string, string>();

export function resetHashMemo(): void {
  hashMemo = new Map();
}

/** Hash of a value (secrets as fingerprints, so a changed password changes a key without revealing it). */
export function hash(v: unknown): string {
  const text = stableStringify(plain(v));
  let h = hashMemo.get(text);
  if (h === undefined) {
    h = sha256Hex(text).slice(0, 32);
    hashMemo.set(text, h);
  }
  return h;
}

function plain(v: unknown): unknown {
  if (v instanceof Secret) return v.fingerprint();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

/** A layer digest as reasons show it: "sha256:" and 12 hex digits. */
export function short(d: string): string {
  return d.startsWith("sha256:") ? `sha256:${d.slice(7, 19)}…` : d.slice(0, 19);
}

export function keyOf(parts: Part[]): string {
  return "k1:" + sha256Hex(stableStringify(partsRecord(parts))).slice(0, 40);
}

/**
 * Whether `recorded` (a step record's or a host's key) stands for these inputs: it is their key,
 * or the key they had before a refined hashing (Part.legacy), as recorded by an older version.
 */
export function keyHolds(recorded: string | undefined, parts: Part[], key = keyOf(parts)): boolean {
  if (recorded === undefined) return false;
  if (recorded === key) return true;
  if (!parts.some((p) => p.legacy !== undefined)) return false;
  return recorded === keyOf(parts.map((p) => ({ ...p, hash: p.legacy ?? p.hash })));
}

export function partsRecord(parts: Part[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (const p of parts) o[p.name] = p.hash;
  return o;
}

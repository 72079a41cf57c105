/**
 * What the three dynamic providers share: Pulumi's wire sentinels (unknowns, secrets), the
 * partial-state error the dynamic provider host turns into ErrorResourceInitFailed, and the
 * provider-code version.
 *
 * Facts about the host (node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js, 3.270):
 * - Check gets (old inputs, new inputs); Diff/Update get (old OUTPUTS, new inputs); Delete gets old
 *   outputs. So every output set echoes the inputs it was made from.
 * - Diff honours only changes/replaces/deleteBeforeReplace (no detailedDiff, no stables), so the
 *   preview can only show what changed in the inputs: the planned steps are therefore an input
 *   property (`plan`) that check computes.
 * - The host answers Configure with acceptSecrets=false: secrets arrive as plain values. Outputs
 *   we wrap in the secret envelope are unmarshalled by the engine as secrets.
 * - An error with `id` (+ `properties`, `reasons`) from create/update is sent as
 *   ErrorResourceInitFailed: the engine keeps that id and those properties in state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { stableStringify } from "../core/fsutil";
import { packageVersion } from "../core/package-info";

/** Pulumi's wire value for "not known until apply" (sdk/nodejs/runtime/rpc.ts unknownValue). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** Pulumi's special-signature key and the value that marks a secret envelope. */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isUnknown(v: unknown): boolean {
  return v === UNKNOWN;
}

/** True when v or anything inside it is unknown. */
export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v !== null && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

export interface SecretEnvelope<T = unknown> {
  [SIG_KEY]: typeof SECRET_SIG;
  value: T;
}

export function isSecretEnvelope(v: unknown): v is SecretEnvelope {
  return v !== null && typeof v === "object" && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Marks an output value secret on the wire. undefined stays undefined (absent). */
export function secret<T>(v: T): SecretEnvelope<T> | undefined {
  if (v === undefined) return undefined;
  if (isSecretEnvelope(v)) return v as unknown as SecretEnvelope<T>;
  return { [SIG_KEY]: SECRET_SIG, value: v };
}

/** Removes secret envelopes anywhere in v (mocks and some engines pass them through). */
export function reveal<T>(v: T): T {
  if (isSecretEnvelope(v)) return reveal(v.value) as T;
  if (Array.isArray(v)) return v.map(reveal) as T;
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = reveal(x);
    return out as T;
  }
  return v;
}

/** Drops undefined members so outputs compare and serialise stably. */
export function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/**
 * The error the dynamic provider host reports as "created/updated but failed to finish": the
 * engine records `id` and `properties` as the resource's state, so the next `pulumi up` sees what
 * exists (and resumes), and `pulumi destroy` can remove it.
 */
export class PartialStateError extends Error {
  override readonly name = "PartialStateError";
  constructor(
    readonly id: string,
    readonly properties: Record<string, unknown>,
    readonly reasons: string[],
    opts: { cause?: unknown } = {},
  ) {
    super(redacted(reasons.join("; ")), opts.cause === undefined ? undefined : { cause: opts.cause });
  }
}

/** An error's text as the engine may show it: secrets registered with the logger masked, as in log lines. */
export function errorMessage(err: unknown): string {
  return redacted(err instanceof Error ? err.message : String(err));
}

/** `text` with every registered secret masked (required lazily: this module is serialized with the provider). */
export function redacted(text: string): string {
  const { redact } = require("../core/log") as typeof import("../core/log");
  return redact(text);
}

let cachedVersion: string | undefined;

/**
 * "<package version>+<12 hex of the provider code>": an input of every resource, so a changed
 * provider implementation shows up as a change and reaches resources created by older code.
 * Hashes the compiled provider (or the TypeScript sources when run through tsx) minus the CLI.
 */
export function providerCodeVersion(): string {
  if (cachedVersion) return cachedVersion;
  const ext = path.extname(__filename); // ".js" from dist, ".ts" under tsx
  const providerDir = path.resolve(__dirname, ".."); // <dist or repo>/provider
  const files: string[] = [];
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "cli") walk(p);
      } else if (e.name.endsWith(ext) && !e.name.endsWith(".d.ts")) files.push(p);
    }
  };
  walk(providerDir);
  files.sort();
  const h = createHash("sha256");
  for (const f of files) {
    h.update(path.relative(providerDir, f));
    h.update("\0");
    h.update(fs.readFileSync(f));
    h.update("\0");
  }
  cachedVersion = `${packageVersion()}+${h.digest("hex").slice(0, 12)}`;
  return cachedVersion;
}

/** Equal as stable JSON (sorted keys, undefined dropped). */
export function sameValue(a: unknown, b: unknown): boolean {
  return stableStringify(a) === stableStringify(b);
}

/** Names of the given properties whose values differ between old and new. */
export function changedKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  keys: readonly string[],
): string[] {
  return keys.filter((k) => !sameValue(reveal(olds[k]), reveal(news[k])));
}

export interface CheckFailure {
  property: string;
  reason: string;
}

import { registerSecret } from "../log";

/**
 * A secret value from a Clusterfile (password, private key, registry credential).
 *
 * Wrapping it (instead of a plain string) means a spec can be logged, JSON-serialised or
 * printed in a plan without leaking it: `toJSON`, `toString` and `util.inspect` all redact.
 * The one way to read the value is `reveal()`, which makes every use visible in review.
 * Construction registers the value with the log redactor, so it is also masked if it ever
 * reaches a log line through a command's output.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    registerSecret(value);
  }
  reveal(): string {
    return this.#value;
  }
  /** A stable fingerprint for change detection (plan keys) that does not reveal the value. */
  fingerprint(): string {
    // Imported lazily to keep this module free of node:crypto at type level.
    const { createHash } = require("node:crypto") as typeof import("node:crypto");
    return (
      "sha256:" +
      createHash("sha256")
        .update("secret\0" + this.#value)
        .digest("hex")
    );
  }
  equals(other: Secret | undefined): boolean {
    return other instanceof Secret && other.#value === this.#value;
  }
  toJSON(): string {
    return "[secret]";
  }
  toString(): string {
    return "[secret]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "Secret([secret])";
  }
}

export function isSecret(v: unknown): v is Secret {
  return v instanceof Secret;
}

/** Wraps a string (undefined and "" stay absent: an empty password means "none" in sealer). */
export function secretOf(value: string | undefined | null): Secret | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  return new Secret(value);
}

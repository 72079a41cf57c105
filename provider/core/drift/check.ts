/** One drift check's result, and the helpers the per-kind comparisons (exec/steps/<kind>.ts) build them with. */

export type CheckStatus = "ok" | "drifted" | "unreachable" | "unknown";

export type CheckResult =
  | { check: string; status: "ok" }
  | {
      check: string;
      status: "drifted";
      expected: string;
      found: string;
      /** Recorded step ids whose effect is gone: forgetting them makes the next apply redo them. */
      steps: string[];
      /** Set when no step can repair it (what to do instead). */
      manual?: string;
      /** What the next plan says (after "drift: "); default "<host> <check>: <found>". */
      note?: string;
    }
  /** The host (or, for node checks, every master) could not be reached over SSH. */
  | { check: string; status: "unreachable"; detail: string }
  /** Reached, but the check could not be made (e.g. the API server did not answer). */
  | { check: string; status: "unknown"; detail: string };

/** A short form of a digest for messages. */
export const shortDigest = (d: string) => (d.startsWith("sha256:") ? d.slice(7, 19) : d.slice(0, 12));
/** A list for messages. */
export const list = (xs: string[]) => (xs.length ? xs.join(", ") : "(none)");

/** A drifted check: what was expected, what was found, the recorded steps that redo it. */
export function drift(
  check: string,
  expected: string,
  found: string,
  steps: string[],
  manual?: string,
  note?: string,
): CheckResult {
  return {
    check,
    status: "drifted",
    expected,
    found,
    steps,
    ...(manual ? { manual } : {}),
    ...(note ? { note } : {}),
  };
}

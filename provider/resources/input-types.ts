/**
 * The type check of the three resources' inputs, before anything reads them. The engine shows
 * Check failures as the program's errors; a wrongly typed value would otherwise surface as
 * JavaScript error text from whatever reads it first. Pulumi's unknowns (a preview) pass at any
 * depth, and an input set to null counts as not set.
 */
import { errorMessage, isUnknown, type CheckFailure } from "./common";

export type InputType = "string" | "number" | "boolean" | "stringMap" | "stringList" | "mapping";

/**
 * Property -> [type, an example or purpose for the failure text]. A dotted key names a field of a
 * mapping input (`ssh.port`): checked when that input is a mapping, reported on the input.
 */
export type InputTypes = Readonly<Record<string, readonly [InputType, string]>>;

/** The Ssh object type, as Infra and Cluster take it. */
export const SSH_INPUT_TYPES: InputTypes = {
  ssh: ["mapping", "{ user, privateKey }"],
  "ssh.user": ["string", "the login user"],
  "ssh.password": ["string", "the login password"],
  "ssh.privateKey": ["string", "the private key's text"],
  "ssh.passphrase": ["string", "the private key's passphrase"],
  "ssh.port": ["number", "e.g. 22"],
};

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export function short(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** What a value is, in words ("the number 5", "a list of 2"); its value only when `showValue`. */
export function given(v: unknown, showValue: boolean): string {
  if (v === null) return "null";
  if (v === undefined) return "no value";
  if (Array.isArray(v)) return v.length === 0 ? "an empty list" : `a list of ${v.length}`;
  switch (typeof v) {
    case "string":
      return showValue ? `the string ${JSON.stringify(short(v))}` : "a string";
    case "number":
      return showValue && Number.isFinite(v) ? `the number ${v}` : "a number";
    case "boolean":
      return showValue ? `the boolean ${v}` : "a boolean";
    case "object":
      return "an object";
    default:
      return `a ${typeof v}`;
  }
}

export function expectedText(type: InputType, hint: string): string {
  const eg = (lead: string) => (hint ? `${lead}, e.g. ${hint}` : lead);
  switch (type) {
    case "string":
      return hint ? `a string (${hint})` : "a string";
    case "number":
      return hint ? `a number (${hint})` : "a number";
    case "boolean":
      return "a boolean (true or false)";
    case "stringMap":
      return eg("a map of strings");
    case "stringList":
      return eg("a list of strings");
    case "mapping":
      return eg("an object");
  }
}

/** What is wrong with the type of `v`, named `name` (empty when nothing). */
function typeProblems(
  name: string,
  type: InputType,
  v: unknown,
  showValue: boolean,
  expect: string,
): string[] {
  const wrong = (): string[] => [`${name} must be ${expect}, not ${given(v, showValue)}`];
  switch (type) {
    case "string":
    case "number":
    case "boolean":
      return typeof v === type ? [] : wrong();
    case "mapping":
      return isPlainObject(v) ? [] : wrong();
    case "stringMap":
      if (!isPlainObject(v)) return wrong();
      return Object.entries(v)
        .filter(([, x]) => typeof x !== "string" && !isUnknown(x))
        .map(([k, x]) => `${name}[${JSON.stringify(k)}] must be a string, not ${given(x, false)}`);
    case "stringList":
      if (!Array.isArray(v)) {
        const also = typeof v === "string" ? ` (write [${JSON.stringify(short(v))}])` : "";
        return [`${name} must be ${expect}, not ${given(v, showValue)}${also}`];
      }
      return v.flatMap((x, i) =>
        typeof x === "string" || isUnknown(x)
          ? []
          : [`${name}[${i}] must be a string, not ${given(x, showValue)}`],
      );
  }
}

/**
 * One failure per wrongly typed input (its fields' problems joined), naming the input, the type it
 * takes and what was given. Values of `secret` inputs (and of map members) are never repeated.
 */
export function inputTypeFailures(
  news: Record<string, unknown>,
  types: InputTypes,
  secret: ReadonlySet<string> = new Set(),
): CheckFailure[] {
  const problems = new Map<string, string[]>();
  for (const [path, [type, hint]] of Object.entries(types)) {
    const [head, field] = path.split(".") as [string, string | undefined];
    const parent = news[head];
    if (field !== undefined && (!isPlainObject(parent) || problems.has(head))) continue;
    const v = field === undefined ? parent : (parent as Record<string, unknown>)[field];
    if (v === undefined || v === null || isUnknown(v)) continue;
    const expect = expectedText(type, hint);
    for (const reason of typeProblems(path, type, v, !secret.has(head), expect))
      problems.set(head, [...(problems.get(head) ?? []), reason]);
  }
  return [...problems].map(([property, reasons]) => ({ property, reason: reasons.join("; ") }));
}

/** A JavaScript error (a bug, or a value nothing checked): its text is not for users. */
export function isJsError(err: unknown): err is Error {
  return (
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError
  );
}

const ERRNO_WORDS: Record<string, string> = {
  ENOENT: "does not exist",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory, not a file",
  ENOTDIR: "a part of the path is not a directory",
  ENAMETOOLONG: "the path is too long",
  ELOOP: "too many symbolic links",
};

/**
 * An error's text for a user: a user error's message as it is; a file system error in words; a
 * JavaScript error (a bug, or a value of a type nothing checked) without its words or stack.
 */
export function problemText(err: unknown, who: string): string {
  if (isJsError(err)) return `an internal error of the ${who} provider (${err.name}); please report it`;
  const e = err as NodeJS.ErrnoException | null;
  if (typeof e?.code === "string" && typeof e.path === "string" && e.code in ERRNO_WORDS)
    return `${e.path}: ${ERRNO_WORDS[e.code]}`;
  return errorMessage(err);
}

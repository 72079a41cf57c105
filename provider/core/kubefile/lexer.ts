/**
 * Kubefile lexing: physical lines -> logical lines (comments and blank lines dropped, `\`
 * continuations joined), and the two kinds of argument processing the instructions use:
 * - `splitWords`: docker-style words with quotes, escapes and `$VAR` expansion (COPY, ENV, LABEL, ...);
 * - `expandShell`: substitutes known variables in shell text and leaves everything else to the
 *   shell (RUN, CMD, CMDS, APPCMDS).
 * Pure: no I/O. Offsets are into the logical line's text so problems can name the physical line.
 */
import { MAX_EXPANDED_CHARS } from "../limits";

export interface Segment {
  /** 1-based physical line. */
  line: number;
  /** Offset in the logical text where this physical line's content starts. */
  start: number;
}

export interface LogicalLine {
  /** First physical line. */
  line: number;
  text: string;
  segments: Segment[];
}

const CONTINUATION = /\\[ \t]*$/;

/**
 * Joins continued lines. Comment lines (first non-blank character `#`, which includes parser
 * directives such as `# syntax=...`) and blank lines are skipped, also inside a continuation,
 * as docker does. A continuation still open at the end of the file ends the instruction.
 */
export function splitLogicalLines(text: string): LogicalLine[] {
  const physical = text.split(/\r?\n/);
  const out: LogicalLine[] = [];
  let cur: LogicalLine | undefined;
  physical.forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const continues = CONTINUATION.test(raw);
    const content = continues ? raw.replace(CONTINUATION, "") : raw;
    if (!cur) cur = { line, text: "", segments: [] };
    cur.segments.push({ line, start: cur.text.length });
    cur.text += content;
    if (!continues) {
      out.push(cur);
      cur = undefined;
    }
  });
  if (cur) out.push(cur);
  return out;
}

/** The physical line holding `offset` of a logical line. */
export function lineAt(ll: LogicalLine, offset: number): number {
  let line = ll.line;
  for (const s of ll.segments) if (s.start <= offset) line = s.line;
  return line;
}

/**
 * Thrown when substituting variables makes an instruction larger than MAX_EXPANDED_CHARS: ARGs
 * that each repeat the previous one twice double at every line, and would otherwise grow past
 * what memory holds.
 */
export class ExpansionTooLong extends Error {
  override readonly name = "ExpansionTooLong";
  constructor(readonly offset: number) {
    super(`expands to more than ${MAX_EXPANDED_CHARS} characters`);
  }
}

/** A user's text shortened for a message (a 1 MiB path is named by its start). */
export function clip(s: string, max = 120): string {
  const printable = s.replace(
    /[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return printable.length <= max ? printable : `${printable.slice(0, max)}… (${s.length} characters)`;
}

export interface LexProblem {
  offset: number;
  message: string;
  /** What to do about it. */
  fix: string;
}

const FIX_VAR = "declare it with ARG (or ENV) before this line, or write \\$ for a literal $";
const FIX_QUOTE = "close the quote on the same instruction (continue lines with \\)";

/**
 * How a variable reference resolves: a string replaces it; `undefined` means "not defined".
 * `keep` leaves the reference as written (used for `${ARCH}`, which the builder substitutes).
 */
export type Lookup = (name: string) => string | undefined | { keep: string };

export interface Word {
  value: string;
  /** Offset of the word's first character in the processed text (add the base yourself). */
  start: number;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

interface VarRef {
  name: string;
  /** Index just past the reference. */
  end: number;
  op?: ":-" | ":+" | "-" | "+";
  word?: string;
  /** Text exactly as written. */
  raw: string;
}

/** Parses `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME:+word}` at `s[i] === "$"`; undefined when not a reference. */
function readVarRef(s: string, i: number): VarRef | { error: string } | undefined {
  const next = s[i + 1];
  if (next === "{") {
    const close = s.indexOf("}", i + 2);
    if (close < 0) return { error: "unterminated ${ (missing })" };
    const body = s.slice(i + 2, close);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\+|-|\+)(.*))?$/s.exec(body);
    if (!m) return { error: `bad variable reference "\${${body}}"` };
    return {
      name: m[1] as string,
      end: close + 1,
      ...(m[2] ? { op: m[2] as VarRef["op"], word: m[3] ?? "" } : {}),
      raw: s.slice(i, close + 1),
    };
  }
  if (next !== undefined && NAME_START.test(next)) {
    let j = i + 2;
    while (j < s.length && NAME_CHAR.test(s[j] as string)) j++;
    return { name: s.slice(i + 1, j), end: j, raw: s.slice(i, j) };
  }
  return undefined;
}

function resolveRef(ref: VarRef, lookup: Lookup): string | undefined | { keep: string } {
  const v = lookup(ref.name);
  if (v !== undefined && typeof v === "object") return ref.op ? { keep: ref.raw } : v;
  switch (ref.op) {
    case undefined:
      return v;
    case ":-":
      return v === undefined || v === "" ? (ref.word ?? "") : v;
    case "-":
      return v === undefined ? (ref.word ?? "") : v;
    case ":+":
      return v !== undefined && v !== "" ? (ref.word ?? "") : "";
    case "+":
      return v !== undefined ? (ref.word ?? "") : "";
  }
}

/**
 * Docker-style word processing: whitespace separates words (unless `single`), `'...'` is
 * literal, `"..."` expands variables and honours `\"`, `\\`, `\$`; outside quotes `\x` is `x`.
 * An undefined variable is a problem (a typo in a COPY path should not silently become "").
 */
export function splitWords(
  s: string,
  lookup: Lookup,
  opts: { single?: boolean } = {},
): { words: Word[]; problems: LexProblem[] } {
  const words: Word[] = [];
  const problems: LexProblem[] = [];
  let cur: Word | undefined;
  let total = 0;
  const add = (text: string, at: number) => {
    total += text.length;
    if (total > MAX_EXPANDED_CHARS) throw new ExpansionTooLong(at);
    if (!cur) cur = { value: "", start: at };
    cur.value += text;
  };
  const expandAt = (i: number): number => {
    const ref = readVarRef(s, i);
    if (ref === undefined) {
      add("$", i);
      return i + 1;
    }
    if ("error" in ref) {
      problems.push({
        offset: i,
        message: ref.error,
        fix: "write ${NAME}, ${NAME:-default} or ${NAME:+alternative}",
      });
      add(s.slice(i), i);
      return s.length;
    }
    const v = resolveRef(ref, lookup);
    if (v === undefined) {
      problems.push({ offset: i, message: `variable ${ref.name} is not defined`, fix: FIX_VAR });
      add("", i);
    } else add(typeof v === "object" ? v.keep : v, i);
    return ref.end;
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (!opts.single && (c === " " || c === "\t")) {
      if (cur) words.push(cur);
      cur = undefined;
      i++;
    } else if (c === "\\") {
      if (i + 1 < s.length) {
        add(s[i + 1] as string, i);
        i += 2;
      } else {
        add("\\", i);
        i++;
      }
    } else if (c === "'") {
      const close = s.indexOf("'", i + 1);
      if (close < 0) {
        problems.push({ offset: i, message: "unterminated single quote", fix: FIX_QUOTE });
        add(s.slice(i + 1), i);
        i = s.length;
      } else {
        add(s.slice(i + 1, close), i);
        i = close + 1;
      }
    } else if (c === '"') {
      add("", i);
      let j = i + 1;
      let closed = false;
      while (j < s.length) {
        const d = s[j] as string;
        if (d === '"') {
          closed = true;
          j++;
          break;
        }
        if (d === "\\" && j + 1 < s.length && ['"', "\\", "$"].includes(s[j + 1] as string)) {
          add(s[j + 1] as string, j);
          j += 2;
        } else if (d === "$") {
          j = expandAt(j);
        } else {
          add(d, j);
          j++;
        }
      }
      if (!closed) problems.push({ offset: i, message: "unterminated double quote", fix: FIX_QUOTE });
      i = j;
    } else if (c === "$") {
      i = expandAt(i);
    } else {
      add(c, i);
      i++;
    }
  }
  if (cur) words.push(cur);
  if (opts.single && words.length === 1) (words[0] as Word).value = (words[0] as Word).value.trim();
  return { words, problems };
}

/**
 * Substitutes variables that `lookup` knows in shell text and leaves the rest untouched, so the
 * shell still sees its own `$HOME`, `$(cmd)`, `$1`, single-quoted text and `\$` escapes.
 */
export function expandShell(s: string, lookup: Lookup): string {
  let out = "";
  let i = 0;
  let inDouble = false;
  while (i < s.length) {
    if (out.length > MAX_EXPANDED_CHARS) throw new ExpansionTooLong(i);
    const c = s[i] as string;
    if (c === "\\" && i + 1 < s.length) {
      out += s.slice(i, i + 2);
      i += 2;
    } else if (c === "'" && !inDouble) {
      const close = s.indexOf("'", i + 1);
      const end = close < 0 ? s.length : close + 1;
      out += s.slice(i, end);
      i = end;
    } else if (c === '"') {
      inDouble = !inDouble;
      out += c;
      i++;
    } else if (c === "$") {
      const ref = readVarRef(s, i);
      if (ref === undefined || "error" in ref) {
        out += c;
        i++;
        continue;
      }
      const v = lookup(ref.name) === undefined ? undefined : resolveRef(ref, lookup);
      out += v === undefined ? ref.raw : typeof v === "object" ? v.keep : v;
      i = ref.end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** POSIX-shell quoting of one argument ('...' when it holds anything special). */
export function shellQuote(arg: string): string {
  if (arg !== "" && /^[A-Za-z0-9_\-+=.,/:@%^]+$/.test(arg)) return arg;
  return "'" + arg.replace(/'/g, `'\\''`) + "'";
}

/**
 * A JSON array of strings, or a problem. Single-quoted arrays are the usual mistake, so the
 * message says so.
 */
export function parseJsonArray(s: string): { values: string[] } | { problem: LexProblem } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch {
    // Node's own JSON messages differ between versions; say what is usually wrong instead.
    const t = s.trim();
    const hint = t.includes("'")
      ? " (JSON strings use double quotes, not ')"
      : !t.endsWith("]")
        ? " (it must end with ])"
        : "";
    return { problem: { offset: 0, message: `malformed JSON array${hint}`, fix: "" } };
  }
  if (!Array.isArray(parsed) || parsed.some((v) => typeof v !== "string"))
    return { problem: { offset: 0, message: "malformed JSON array: expected an array of strings", fix: "" } };
  return { values: parsed as string[] };
}

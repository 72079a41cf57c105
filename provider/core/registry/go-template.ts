/**
 * A renderer for the subset of Go text/template + sprig that Helm charts use in practice. Real
 * Helm is not available to a build, and the only purpose here is finding container images in a
 * chart rendered with its default values, so: the common actions (if/else if/else, with, range
 * over lists and maps with `$i, $v :=`, define/include/template/block, variables, pipelines,
 * parenthesised calls, whitespace trimming, comments) and the functions charts use for values and
 * strings. Anything else raises a TemplateError naming the construct; the caller reports that
 * file as not rendered and carries on with the rest of the chart.
 */
import * as yaml from "js-yaml";

export class TemplateError extends Error {
  override readonly name = "TemplateError";
}

// ---------------------------------------------------------------- lexing

type Tok =
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "nil" }
  | { t: "field"; path: string[] } // .a.b  ('.' alone => [])
  | { t: "var"; name: string; path: string[] } // $x.a
  | { t: "ident"; v: string }
  | { t: "("; path?: never }
  | { t: ")" }
  | { t: "|" }
  | { t: ":=" }
  | { t: "=" }
  | { t: "," }
  | { t: "chain"; path: string[] }; // .a.b right after ')'

interface Segment {
  kind: "text" | "action";
  text: string;
  line: number;
}

function segments(src: string): Segment[] {
  const out: Segment[] = [];
  let i = 0;
  let line = 1;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, "");
    trimNext = false;
    if (open < 0) {
      out.push({ kind: "text", text, line });
      break;
    }
    let start = open + 2;
    if (src[start] === "-" && /\s/.test(src[start + 1] ?? "")) {
      text = text.replace(/\s+$/, "");
      start += 1;
    }
    out.push({ kind: "text", text, line });
    line += (src.slice(i, open).match(/\n/g) ?? []).length;
    // Find the closing braces outside of string literals.
    let j = start;
    let q: string | undefined;
    // Comments may hold anything (apostrophes included) up to `*/`.
    const commentAt = /^\s*\/\*/.exec(src.slice(start, start + 8));
    if (commentAt) {
      const end = src.indexOf("*/", start);
      if (end < 0) throw new TemplateError(`line ${line}: unclosed comment`);
      j = end + 2;
    }
    for (; j < src.length; j++) {
      const c = src[j];
      if (q) {
        if (c === "\\" && q === '"') j++;
        else if (c === q) q = undefined;
      } else if (c === '"' || c === "`" || c === "'") q = c;
      else if (c === "}" && src[j + 1] === "}") break;
    }
    if (j >= src.length) throw new TemplateError(`line ${line}: unclosed action`);
    let body = src.slice(start, j);
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimNext = true;
    }
    out.push({ kind: "action", text: body.trim(), line });
    line += (src.slice(open, j + 2).match(/\n/g) ?? []).length;
    i = j + 2;
  }
  return out;
}

function lex(s: string, line: number): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const bad = (why: string) => new TemplateError(`line ${line}: ${why} in {{ ${s} }}`);
  const readPath = (): string[] => {
    const path: string[] = [];
    while (s[i] === "." && /[A-Za-z_]/.test(s[i + 1] ?? "")) {
      i++;
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i))!;
      path.push(m[0]);
      i += m[0].length;
    }
    return path;
  };
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let v = "";
      while (j < s.length && s[j] !== '"') {
        if (s[j] === "\\") {
          const n = s[j + 1];
          v += n === "n" ? "\n" : n === "t" ? "\t" : n === "r" ? "\r" : (n ?? "");
          j += 2;
        } else v += s[j++];
      }
      if (j >= s.length) throw bad("unterminated string");
      toks.push({ t: "str", v });
      i = j + 1;
      continue;
    }
    if (c === "`") {
      const j = s.indexOf("`", i + 1);
      if (j < 0) throw bad("unterminated raw string");
      toks.push({ t: "str", v: s.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      toks.push({ t: "num", v: (s[i + 1] ?? "").charCodeAt(0) });
      i = j + 1;
      continue;
    }
    if (c === "(" || c === ")" || c === "|" || c === ",") {
      toks.push({ t: c } as Tok);
      i++;
      if (c === ")" && s[i] === ".") toks.push({ t: "chain", path: readPath() });
      continue;
    }
    if (c === ":" && s[i + 1] === "=") {
      toks.push({ t: ":=" });
      i += 2;
      continue;
    }
    if (c === "=") {
      toks.push({ t: "=" });
      i++;
      continue;
    }
    if (c === ".") {
      if (/[A-Za-z_]/.test(s[i + 1] ?? "")) toks.push({ t: "field", path: readPath() });
      else {
        toks.push({ t: "field", path: [] });
        i++;
      }
      continue;
    }
    if (c === "$") {
      const m = /^\$[A-Za-z0-9_]*/.exec(s.slice(i))!;
      i += m[0].length;
      toks.push({ t: "var", name: m[0], path: readPath() });
      continue;
    }
    const num = /^[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/.exec(s.slice(i));
    if (num && (/[\d]/.test(c) || ((c === "-" || c === "+") && /\d/.test(s[i + 1] ?? "")))) {
      toks.push({ t: "num", v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i));
    if (id) {
      i += id[0].length;
      if (id[0] === "true" || id[0] === "false") toks.push({ t: "bool", v: id[0] === "true" });
      else if (id[0] === "nil") toks.push({ t: "nil" });
      else toks.push({ t: "ident", v: id[0] });
      continue;
    }
    throw bad(`unexpected "${c}"`);
  }
  return toks;
}

// ---------------------------------------------------------------- parsing

type Arg =
  | { k: "lit"; v: unknown }
  | { k: "field"; path: string[] }
  | { k: "var"; name: string; path: string[] }
  | { k: "ident"; name: string }
  | { k: "sub"; pipe: Pipe; path: string[] };
interface Cmd {
  args: Arg[];
}
interface Pipe {
  decl?: { vars: string[]; assign: boolean };
  cmds: Cmd[];
}
type Node =
  | { n: "text"; v: string }
  | { n: "action"; pipe: Pipe; line: number }
  | { n: "if"; pipe: Pipe; body: Node[]; els: Node[] }
  | { n: "with"; pipe: Pipe; body: Node[]; els: Node[] }
  | { n: "range"; pipe: Pipe; body: Node[]; els: Node[] }
  | { n: "template"; name: string; pipe?: Pipe; line: number };

function parsePipe(toks: Tok[], line: number): Pipe {
  let pos = 0;
  const pipe: Pipe = { cmds: [] };
  // Declarations: `$x :=`, `$i, $v :=`, `$x =`.
  const declEnd = toks.findIndex((t) => t.t === ":=" || t.t === "=");
  if (declEnd > 0 && toks.slice(0, declEnd).every((t) => t.t === "var" || t.t === ",")) {
    pipe.decl = {
      vars: toks.slice(0, declEnd).flatMap((t) => (t.t === "var" ? [t.name] : [])),
      assign: toks[declEnd]!.t === "=",
    };
    pos = declEnd + 1;
  }
  const parseCmds = (stopAtParen: boolean): Cmd[] => {
    const cmds: Cmd[] = [];
    let cur: Arg[] = [];
    while (pos < toks.length) {
      const t = toks[pos]!;
      if (t.t === ")") {
        if (!stopAtParen) throw new TemplateError(`line ${line}: unexpected ")"`);
        break;
      }
      pos++;
      switch (t.t) {
        case "|":
          if (!cur.length) throw new TemplateError(`line ${line}: empty command before "|"`);
          cmds.push({ args: cur });
          cur = [];
          break;
        case "(": {
          const inner = parseCmds(true);
          if (toks[pos]?.t !== ")") throw new TemplateError(`line ${line}: unclosed "("`);
          pos++;
          let path: string[] = [];
          if (toks[pos]?.t === "chain") path = (toks[pos++] as { path: string[] }).path;
          cur.push({ k: "sub", pipe: { cmds: inner }, path });
          break;
        }
        case "str":
        case "num":
        case "bool":
          cur.push({ k: "lit", v: t.v });
          break;
        case "nil":
          cur.push({ k: "lit", v: null });
          break;
        case "field":
          cur.push({ k: "field", path: t.path });
          break;
        case "var":
          cur.push({ k: "var", name: t.name, path: t.path });
          break;
        case "ident":
          cur.push({ k: "ident", name: t.v });
          break;
        default:
          throw new TemplateError(`line ${line}: unexpected "${t.t}"`);
      }
    }
    if (cur.length) cmds.push({ args: cur });
    return cmds;
  };
  pipe.cmds = parseCmds(false);
  if (pos < toks.length) throw new TemplateError(`line ${line}: unexpected ")"`);
  return pipe;
}

export interface Parsed {
  nodes: Node[];
  defines: Map<string, Node[]>;
}

export function parseTemplate(src: string): Parsed {
  const segs = segments(src);
  const defines = new Map<string, Node[]>();
  let pos = 0;
  // Parses until one of `stops` (a keyword action); returns the nodes and the stop keyword.
  const parseList = (stops: string[]): { nodes: Node[]; stop?: string; rest?: string; line?: number } => {
    const nodes: Node[] = [];
    while (pos < segs.length) {
      const seg = segs[pos++]!;
      if (seg.kind === "text") {
        if (seg.text) nodes.push({ n: "text", v: seg.text });
        continue;
      }
      const a = seg.text;
      if (a.startsWith("/*") || a === "") continue;
      const kw = /^([a-z]+)\b\s*(.*)$/s.exec(a);
      const word = kw?.[1] ?? "";
      const rest = kw?.[2] ?? "";
      if (stops.includes(word)) return { nodes, stop: word, rest, line: seg.line };
      switch (word) {
        case "if":
        case "with":
        case "range": {
          nodes.push(parseBlock(word, rest, seg.line));
          break;
        }
        case "define":
        case "block": {
          const m = /^"([^"]*)"\s*(.*)$/s.exec(rest);
          if (!m) throw new TemplateError(`line ${seg.line}: ${word} needs a quoted name`);
          const r = parseList(["end"]);
          if (r.stop !== "end") throw new TemplateError(`line ${seg.line}: ${word} "${m[1]}" has no end`);
          defines.set(m[1]!, r.nodes);
          if (word === "block")
            nodes.push({
              n: "template",
              name: m[1]!,
              pipe: parsePipe(lex(m[2] ?? ".", seg.line), seg.line),
              line: seg.line,
            });
          break;
        }
        case "template": {
          const m = /^"([^"]*)"\s*(.*)$/s.exec(rest);
          if (!m) throw new TemplateError(`line ${seg.line}: template needs a quoted name`);
          nodes.push({
            n: "template",
            name: m[1]!,
            ...(m[2] ? { pipe: parsePipe(lex(m[2], seg.line), seg.line) } : {}),
            line: seg.line,
          });
          break;
        }
        case "end":
        case "else":
          throw new TemplateError(`line ${seg.line}: unexpected {{ ${word} }}`);
        case "break":
        case "continue":
          throw new TemplateError(`line ${seg.line}: {{ ${word} }} is not supported`);
        default:
          nodes.push({ n: "action", pipe: parsePipe(lex(a, seg.line), seg.line), line: seg.line });
      }
    }
    return { nodes };
  };
  const parseBlock = (word: "if" | "with" | "range", rest: string, line: number): Node => {
    const pipe = parsePipe(lex(rest, line), line);
    const body = parseList(["else", "end"]);
    let els: Node[] = [];
    if (body.stop === "else") {
      const elseIf = /^(if|with)\b\s*(.*)$/s.exec(body.rest ?? "");
      if (elseIf) {
        // `else if X` is an if nested in the else branch that shares this block's end.
        els = [parseBlock(elseIf[1] as "if" | "with", elseIf[2] ?? "", body.line ?? line)];
      } else {
        const e = parseList(["end"]);
        if (e.stop !== "end") throw new TemplateError(`line ${line}: {{ ${word} }} has no end`);
        els = e.nodes;
      }
    } else if (body.stop !== "end") throw new TemplateError(`line ${line}: {{ ${word} }} has no end`);
    return { n: word, pipe, body: body.nodes, els };
  };
  const top = parseList([]);
  return { nodes: top.nodes, defines };
}

// ---------------------------------------------------------------- evaluation

type Fn = (...args: unknown[]) => unknown;

interface Scope {
  dot: unknown;
  vars: Map<string, unknown>;
}

export interface RenderContext {
  defines: Map<string, Node[]>;
  /** Extra functions (e.g. chart-file access). */
  funcs?: Record<string, Fn>;
}

export function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v as object).length > 0;
  return true;
}

export function toText(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(toText).join(" ")}]`;
  if (typeof v === "object")
    return `map[${Object.keys(v as object)
      .sort()
      .map((k) => `${k}:${toText((v as Record<string, unknown>)[k])}`)
      .join(" ")}]`;
  return String(v);
}

function field(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || cur === undefined) return undefined;
    if (typeof cur !== "object") throw new TemplateError(`can't evaluate field ${p} in type ${typeof cur}`);
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

function goFormat(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(
    /%([-+# 0]*)(\d*)(?:\.(\d+))?([sdvqtfxX%])/g,
    (_m, _flags: string, width: string, prec: string | undefined, verb: string) => {
      if (verb === "%") return "%";
      const a = args[i++];
      let s: string;
      switch (verb) {
        case "d":
          s = String(Math.trunc(Number(a)));
          break;
        case "f":
          s = Number(a).toFixed(prec ? Number(prec) : 6);
          break;
        case "q":
          s = JSON.stringify(toText(a));
          break;
        case "x":
        case "X":
          s = typeof a === "number" ? a.toString(16) : Buffer.from(toText(a)).toString("hex");
          if (verb === "X") s = s.toUpperCase();
          break;
        default:
          s = toText(a);
      }
      return width ? s.padStart(Number(width)) : s;
    },
  );
}

function toYaml(v: unknown): string {
  if (v === null || v === undefined) return "null";
  return yaml.dump(v, { lineWidth: -1, noRefs: true, sortKeys: true }).replace(/\n$/, "");
}

function indent(n: unknown, s: unknown): string {
  const pad = " ".repeat(Number(n));
  return toText(s)
    .split("\n")
    .map((l) => pad + l)
    .join("\n");
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return toText(a) < toText(b) ? -1 : toText(a) > toText(b) ? 1 : 0;
}

function semverCompare(constraint: unknown, version: unknown): boolean {
  const parse = (s: string) =>
    (/(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(s) ?? []).slice(1, 4).map((x) => Number(x ?? 0));
  const v = parse(toText(version));
  return toText(constraint)
    .split(/\s*,\s*|\s+(?=[<>=!~^])/)
    .filter(Boolean)
    .every((c) => {
      const m = /^(>=|<=|!=|>|<|=|~|\^)?\s*v?(.*)$/.exec(c.trim())!;
      const want = parse(m[2] ?? "");
      const d = v[0]! - want[0]! || v[1]! - want[1]! || v[2]! - want[2]!;
      switch (m[1] ?? "=") {
        case ">=":
          return d >= 0;
        case "<=":
          return d <= 0;
        case ">":
          return d > 0;
        case "<":
          return d < 0;
        case "!=":
          return d !== 0;
        case "~":
          return v[0] === want[0] && v[1] === want[1] && d >= 0;
        case "^":
          return v[0] === want[0] && d >= 0;
        default:
          return d === 0;
      }
    });
}

function deepMerge(dst: Record<string, unknown>, src: unknown, overwrite: boolean): Record<string, unknown> {
  if (!src || typeof src !== "object") return dst;
  for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
    const cur = dst[k];
    if (
      cur &&
      typeof cur === "object" &&
      !Array.isArray(cur) &&
      v &&
      typeof v === "object" &&
      !Array.isArray(v)
    )
      deepMerge(cur as Record<string, unknown>, v, overwrite);
    else if (overwrite || !(k in dst) || dst[k] === undefined || dst[k] === null) dst[k] = v;
  }
  return dst;
}

const baseFuncs: Record<string, Fn> = {
  default: (d, v) => (truthy(v) ? v : d),
  quote: (...a) => a.map((x) => JSON.stringify(toText(x))).join(" "),
  squote: (...a) => a.map((x) => `'${toText(x)}'`).join(" "),
  printf: (f, ...a) => goFormat(toText(f), a),
  print: (...a) => a.map(toText).join(""),
  println: (...a) => a.map(toText).join(" ") + "\n",
  toYaml: (v) => toYaml(v),
  toJson: (v) => JSON.stringify(v ?? null),
  toPrettyJson: (v) => JSON.stringify(v ?? null, null, 2),
  fromYaml: (s) => yaml.load(toText(s)) ?? {},
  indent: (n, s) => indent(n, s),
  nindent: (n, s) => "\n" + indent(n, s),
  trim: (s) => toText(s).trim(),
  trimSuffix: (suf, s) =>
    toText(s).endsWith(toText(suf)) ? toText(s).slice(0, -toText(suf).length || undefined) : toText(s),
  trimPrefix: (pre, s) =>
    toText(s).startsWith(toText(pre)) ? toText(s).slice(toText(pre).length) : toText(s),
  trimAll: (c, s) =>
    toText(s).replace(new RegExp(`^[${escapeRe(toText(c))}]+|[${escapeRe(toText(c))}]+$`, "g"), ""),
  upper: (s) => toText(s).toUpperCase(),
  lower: (s) => toText(s).toLowerCase(),
  title: (s) => toText(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  replace: (a, b, s) => toText(s).split(toText(a)).join(toText(b)),
  contains: (sub, s) => toText(s).includes(toText(sub)),
  hasPrefix: (p, s) => toText(s).startsWith(toText(p)),
  hasSuffix: (p, s) => toText(s).endsWith(toText(p)),
  trunc: (n, s) => (Number(n) >= 0 ? toText(s).slice(0, Number(n)) : toText(s).slice(Number(n))),
  eq: (a, ...bs) =>
    bs.some(
      (b) =>
        a === b ||
        (a == null && b == null) ||
        (typeof a !== "object" && toText(a) === toText(b) && typeof a === typeof b),
    ),
  ne: (a, b) => !(a === b || (a == null && b == null)),
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
  not: (a) => !truthy(a),
  empty: (a) => !truthy(a),
  coalesce: (...a) => a.find(truthy),
  ternary: (a, b, c) => (truthy(c) ? a : b),
  required: (msg, v) => {
    if (v === undefined || v === null || v === "")
      throw new TemplateError(`required value missing: ${toText(msg)}`);
    return v;
  },
  fail: (msg) => {
    throw new TemplateError(`template called fail: ${toText(msg)}`);
  },
  len: (v) =>
    typeof v === "string" || Array.isArray(v)
      ? v.length
      : v && typeof v === "object"
        ? Object.keys(v).length
        : 0,
  list: (...a) => a,
  tuple: (...a) => a,
  dict: (...a) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < a.length; i += 2) o[toText(a[i])] = a[i + 1];
    return o;
  },
  get: (d, k) => (d as Record<string, unknown> | undefined)?.[toText(k)] ?? "",
  set: (d, k, v) => {
    (d as Record<string, unknown>)[toText(k)] = v;
    return d;
  },
  unset: (d, k) => {
    delete (d as Record<string, unknown>)[toText(k)];
    return d;
  },
  hasKey: (d, k) => !!d && typeof d === "object" && toText(k) in (d as object),
  keys: (...ds) => ds.flatMap((d) => Object.keys((d as object) ?? {})).sort(),
  values: (d) => Object.values((d as object) ?? {}),
  pick: (d, ...ks) =>
    Object.fromEntries(Object.entries((d as object) ?? {}).filter(([k]) => ks.map(toText).includes(k))),
  omit: (d, ...ks) =>
    Object.fromEntries(Object.entries((d as object) ?? {}).filter(([k]) => !ks.map(toText).includes(k))),
  merge: (dst, ...srcs) =>
    srcs.reduce(
      (acc: Record<string, unknown>, s) => deepMerge(acc, s, false),
      dst as Record<string, unknown>,
    ),
  mergeOverwrite: (dst, ...srcs) =>
    srcs.reduce((acc: Record<string, unknown>, s) => deepMerge(acc, s, true), dst as Record<string, unknown>),
  deepCopy: (v) => JSON.parse(JSON.stringify(v ?? null)),
  index: (v, ...ks) =>
    ks.reduce((cur, k) => (cur == null ? undefined : (cur as Record<string, unknown>)[toText(k)]), v),
  first: (l) => (Array.isArray(l) ? l[0] : undefined),
  last: (l) => (Array.isArray(l) ? l[l.length - 1] : undefined),
  rest: (l) => (Array.isArray(l) ? l.slice(1) : []),
  initial: (l) => (Array.isArray(l) ? l.slice(0, -1) : []),
  append: (l, v) => [...((l as unknown[]) ?? []), v],
  prepend: (l, v) => [v, ...((l as unknown[]) ?? [])],
  concat: (...ls) => ls.flatMap((l) => (l as unknown[]) ?? []),
  uniq: (l) => [...new Set((l as unknown[]) ?? [])],
  has: (v, l) => ((l as unknown[]) ?? []).includes(v),
  without: (l, ...vs) => ((l as unknown[]) ?? []).filter((x) => !vs.includes(x)),
  compact: (l) => ((l as unknown[]) ?? []).filter(truthy),
  sortAlpha: (l) => [...((l as unknown[]) ?? [])].map(toText).sort(),
  join: (sep, l) => ((l as unknown[]) ?? []).map(toText).join(toText(sep)),
  split: (sep, s) =>
    Object.fromEntries(
      toText(s)
        .split(toText(sep))
        .map((p, i) => [`_${i}`, p]),
    ),
  splitList: (sep, s) => toText(s).split(toText(sep)),
  toString: (v: unknown) => toText(v),
  toStrings: (l) => ((l as unknown[]) ?? []).map(toText),
  int: (v) => Math.trunc(Number(v) || 0),
  int64: (v) => Math.trunc(Number(v) || 0),
  float64: (v) => Number(v) || 0,
  atoi: (v) => Math.trunc(Number(v) || 0),
  add: (...a) => a.reduce((x: number, y) => x + Number(y), 0),
  add1: (a) => Number(a) + 1,
  sub: (a, b) => Number(a) - Number(b),
  mul: (...a) => a.reduce((x: number, y) => x * Number(y), 1),
  div: (a, b) => Math.trunc(Number(a) / Number(b)),
  mod: (a, b) => Number(a) % Number(b),
  max: (...a) => Math.max(...a.map(Number)),
  min: (...a) => Math.min(...a.map(Number)),
  until: (n) => Array.from({ length: Number(n) }, (_, i) => i),
  untilStep: (s, e, st) => {
    const out: number[] = [];
    for (let i = Number(s); Number(st) > 0 ? i < Number(e) : i > Number(e); i += Number(st)) out.push(i);
    return out;
  },
  b64enc: (s) => Buffer.from(toText(s)).toString("base64"),
  b64dec: (s) => Buffer.from(toText(s), "base64").toString("utf8"),
  sha256sum: (s) => require("node:crypto").createHash("sha256").update(toText(s)).digest("hex"),
  semverCompare: (c, v) => semverCompare(c, v),
  regexMatch: (re, s) => new RegExp(toText(re)).test(toText(s)),
  regexReplaceAll: (re, s, r) =>
    toText(s).replace(new RegExp(toText(re), "g"), toText(r).replace(/\$\{?(\d+)\}?/g, "$$$1")),
  kindIs: (k, v) => kindOf(v) === toText(k),
  kindOf: (v) => kindOf(v),
  typeOf: (v) => kindOf(v),
  typeIs: (k, v) => kindOf(v) === toText(k),
  lookup: () => ({}),
  cat: (...a) =>
    a
      .filter((x) => x !== null && x !== undefined)
      .map(toText)
      .join(" "),
  nospace: (s) => toText(s).replace(/\s+/g, ""),
  snakecase: (s) =>
    toText(s)
      .replace(/([a-z])([A-Z])/g, "$1_$2")
      .toLowerCase(),
  kebabcase: (s) =>
    toText(s)
      .replace(/([a-z])([A-Z])/g, "$1-$2")
      .toLowerCase(),
  camelcase: (s) =>
    toText(s)
      .replace(/[-_](\w)/g, (_m, c: string) => c.toUpperCase())
      .replace(/^\w/, (c) => c.toUpperCase()),
  repeat: (n, s) => toText(s).repeat(Number(n)),
  substr: (a, b, s) => toText(s).slice(Number(a), Number(b)),
  html: (s) => toText(s),
  urlquery: (s) => encodeURIComponent(toText(s)),
};

function escapeRe(s: string): string {
  return s.replace(/[\\\]^-]/g, "\\$&");
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "invalid";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  if (Array.isArray(v)) return "slice";
  return "map";
}

/** Renders parsed template nodes with `dot` as `.` and `$`. */
export function render(parsed: Parsed, dot: unknown, ctx: RenderContext): string {
  const funcs: Record<string, Fn> = { ...baseFuncs, ...(ctx.funcs ?? {}) };
  let depth = 0;
  const runNamed = (name: string, d: unknown): string => {
    const body = ctx.defines.get(name);
    if (!body) throw new TemplateError(`no template "${name}" is defined`);
    if (++depth > 100) throw new TemplateError(`template "${name}" recurses too deeply`);
    try {
      return exec(body, { dot: d, vars: new Map([["$", d]]) });
    } finally {
      depth--;
    }
  };
  funcs.include = (name, d) => runNamed(toText(name), d);
  funcs.tpl = (src, d) => {
    const p = parseTemplate(toText(src));
    for (const [k, v] of p.defines) ctx.defines.set(k, v);
    return exec(p.nodes, { dot: d, vars: new Map([["$", d]]) });
  };

  const evalArg = (a: Arg, sc: Scope): unknown => {
    switch (a.k) {
      case "lit":
        return a.v;
      case "field":
        return field(sc.dot, a.path);
      case "var": {
        if (!sc.vars.has(a.name)) throw new TemplateError(`undefined variable ${a.name}`);
        return field(sc.vars.get(a.name), a.path);
      }
      case "ident": {
        const f = Object.hasOwn(funcs, a.name) ? funcs[a.name] : undefined;
        if (!f) throw new TemplateError(`function "${a.name}" is not supported by this renderer`);
        return f();
      }
      case "sub":
        return field(evalPipe(a.pipe, sc), a.path);
    }
  };
  const evalCmd = (c: Cmd, sc: Scope, piped: unknown[]): unknown => {
    const [head, ...rest] = c.args;
    if (!head) throw new TemplateError("empty command");
    if (head.k === "ident") {
      const f = Object.hasOwn(funcs, head.name) ? funcs[head.name] : undefined;
      if (!f) throw new TemplateError(`function "${head.name}" is not supported by this renderer`);
      if (head.name === "and" || head.name === "or") {
        // Go 1.18+: short-circuit.
        const all = [...rest.map((a) => () => evalArg(a, sc)), ...piped.map((p) => () => p)];
        let v: unknown;
        for (const get of all) {
          v = get();
          if (head.name === "and" ? !truthy(v) : truthy(v)) return v;
        }
        return v;
      }
      return f(...rest.map((a) => evalArg(a, sc)), ...piped);
    }
    const v = evalArg(head, sc);
    if (typeof v === "function") return (v as Fn)(...rest.map((a) => evalArg(a, sc)), ...piped);
    if (rest.length || piped.length) throw new TemplateError(`can't give arguments to a non-function value`);
    return v;
  };
  const evalPipe = (p: Pipe, sc: Scope): unknown => {
    let v: unknown;
    p.cmds.forEach((c, i) => {
      v = evalCmd(c, sc, i === 0 ? [] : [v]);
    });
    if (p.decl) for (const name of p.decl.vars) sc.vars.set(name, v);
    return v;
  };
  const exec = (nodes: Node[], sc: Scope): string => {
    let out = "";
    for (const node of nodes) {
      switch (node.n) {
        case "text":
          out += node.v;
          break;
        case "action": {
          const v = evalPipe(node.pipe, sc);
          if (!node.pipe.decl) out += toText(v);
          break;
        }
        case "if": {
          const inner: Scope = { dot: sc.dot, vars: new Map(sc.vars) };
          out += truthy(evalPipe(node.pipe, inner)) ? exec(node.body, inner) : exec(node.els, inner);
          copyBack(sc, inner);
          break;
        }
        case "with": {
          const inner: Scope = { dot: sc.dot, vars: new Map(sc.vars) };
          const v = evalPipe(node.pipe, inner);
          out += truthy(v) ? exec(node.body, { dot: v, vars: inner.vars }) : exec(node.els, inner);
          copyBack(sc, inner);
          break;
        }
        case "range": {
          const vars = node.pipe.decl?.vars ?? [];
          const inner: Scope = { dot: sc.dot, vars: new Map(sc.vars) };
          const v = evalPipe({ cmds: node.pipe.cmds }, inner);
          const entries: Array<[unknown, unknown]> = Array.isArray(v)
            ? v.map((x, i) => [i, x])
            : typeof v === "number"
              ? Array.from({ length: v }, (_, i) => [i, i])
              : v && typeof v === "object"
                ? Object.keys(v)
                    .sort()
                    .map((k) => [k, (v as Record<string, unknown>)[k]])
                : [];
          if (!entries.length) out += exec(node.els, inner);
          for (const [k, x] of entries) {
            if (vars.length === 1) inner.vars.set(vars[0]!, x);
            if (vars.length === 2) {
              inner.vars.set(vars[0]!, k);
              inner.vars.set(vars[1]!, x);
            }
            out += exec(node.body, { dot: x, vars: inner.vars });
          }
          copyBack(sc, inner);
          break;
        }
        case "template":
          out += runNamed(node.name, node.pipe ? evalPipe(node.pipe, sc) : undefined);
          break;
      }
    }
    return out;
  };
  // Assignments (`$x = v`) inside a block change the outer variable, declarations do not leak.
  const copyBack = (outer: Scope, inner: Scope) => {
    for (const k of outer.vars.keys()) outer.vars.set(k, inner.vars.get(k));
  };
  return exec(parsed.nodes, { dot, vars: new Map([["$", dot]]) });
}

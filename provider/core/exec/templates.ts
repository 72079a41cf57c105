/**
 * `.tmpl` rendering and Config documents. Pure: text in, text out; the executor does the I/O.
 *
 * Templates use the Go text/template subset that cluster images actually ship (sealer renders
 * with Go's text/template over the env map, plus b64enc/b64dec). This is the only template
 * engine in the project (Helm charts are rendered by Helm itself):
 *   {{ .Key }}                         value of Key ("" when unset)
 *   {{ index . "my-key" }}             a key that is not an identifier
 *   {{ or .A .B "literal" }}           first non-empty argument
 *   {{ default "x" .Key }}             sprig's default: .Key unless empty, else "x"
 *   {{ .Key | default "x" | quote }}   pipelines; Go's and/or/not/eq/ne/lt/le/gt/ge/len/index/
 *                                      print/printf (%s %v %d %q %t %%), and default quote
 *                                      squote upper lower trim b64enc b64dec toJson
 *   {{ if .Key }}…{{ else if .B }}…{{ else }}…{{ end }}, also {{ if eq .Key "v" }} / ne / not
 *   {{- and -}} trim the whitespace on that side; {{/* comments *\/}}
 * Anything else is an error naming file:line, rather than a silently wrong file on a node.
 */
import * as yaml from "js-yaml";
import { UserError } from "../errors";
import { clip } from "../kubefile/lexer";

export type Env = Record<string, string>;

type Token = { kind: "text"; text: string } | { kind: "action"; src: string; line: number };

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  while (i < text.length) {
    const open = text.indexOf("{{", i);
    if (open < 0) {
      out.push({ kind: "text", text: text.slice(i) });
      break;
    }
    let before = text.slice(i, open);
    let start = open + 2;
    if (text[start] === "-" && /\s/.test(text[start + 1] ?? "")) {
      before = before.replace(/\s+$/, "");
      start += 1;
    }
    out.push({ kind: "text", text: before });
    line += countLines(text.slice(i, open));
    const close = text.indexOf("}}", start);
    if (close < 0) throw new UserError(`${file}:${line}: unclosed "{{" in template; add the matching "}}"`);
    let end = close;
    let trimAfter = false;
    if (text[close - 1] === "-" && /\s/.test(text[close - 2] ?? "")) {
      end = close - 1;
      trimAfter = true;
    }
    out.push({ kind: "action", src: text.slice(start, end).trim(), line });
    line += countLines(text.slice(open, close + 2));
    i = close + 2;
    if (trimAfter) {
      const m = /^\s*/.exec(text.slice(i));
      const ws = m?.[0] ?? "";
      line += countLines(ws);
      i += ws.length;
    }
  }
  return out;
}

function countLines(s: string): number {
  let n = 0;
  for (const c of s) if (c === "\n") n++;
  return n;
}

/** Arguments inside an action: .Key, "string", `raw`, numbers, true/false, bare function names, |, (, ). */
function lexAction(src: string, where: string): string[] {
  const toks: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||\(|\)|[^\s|()]+)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < src.length && (m = re.exec(src)) !== null) {
    toks.push(m[1]!);
    pos = re.lastIndex;
  }
  if (src.slice(pos).trim() !== "") throw new UserError(`${where}: cannot read "${src}"`);
  return toks;
}

type Node =
  | { kind: "text"; text: string }
  | { kind: "expr"; src: string; line: number }
  | { kind: "if"; branches: Array<{ cond: string; line: number; body: Node[] }>; otherwise: Node[] };

function parse(tokens: Token[], file: string): Node[] {
  let i = 0;
  // Returns the nodes up to a terminator ({{else…}} / {{end}}), and which terminator.
  const block = (inIf: boolean): { nodes: Node[]; term?: { src: string; line: number } } => {
    const nodes: Node[] = [];
    while (i < tokens.length) {
      const t = tokens[i++]!;
      if (t.kind === "text") {
        if (t.text) nodes.push({ kind: "text", text: t.text });
        continue;
      }
      const src = t.src;
      if (src.startsWith("/*")) {
        if (!src.endsWith("*/")) throw new UserError(`${file}:${t.line}: unclosed comment in template`);
        continue;
      }
      const head = src.split(/\s+/)[0] ?? "";
      if (head === "end" || head === "else") {
        if (!inIf) throw new UserError(`${file}:${t.line}: "{{${src}}}" without a matching "{{if}}"`);
        return { nodes, term: { src, line: t.line } };
      }
      if (head === "if") {
        const branches: Array<{ cond: string; line: number; body: Node[] }> = [];
        let otherwise: Node[] = [];
        let cond = src.slice(2).trim();
        let line = t.line;
        for (;;) {
          const r = block(true);
          if (!r.term) throw new UserError(`${file}:${line}: "{{if}}" without "{{end}}"`);
          branches.push({ cond, line, body: r.nodes });
          if (r.term.src === "end") break;
          const rest = r.term.src.slice(4).trim();
          if (rest.startsWith("if ")) {
            cond = rest.slice(3).trim();
            line = r.term.line;
            continue;
          }
          if (rest !== "") throw new UserError(`${file}:${r.term.line}: cannot read "{{${r.term.src}}}"`);
          const e = block(true);
          if (!e.term || e.term.src !== "end")
            throw new UserError(`${file}:${r.term.line}: "{{else}}" without "{{end}}"`);
          otherwise = e.nodes;
          break;
        }
        nodes.push({ kind: "if", branches, otherwise });
        continue;
      }
      if (["range", "with", "define", "template", "block"].includes(head)) {
        throw new UserError(
          `${file}:${t.line}: "{{${head}}}" is not supported in .tmpl files (supported: .Key, or, default, if/else, pipelines)`,
        );
      }
      nodes.push({ kind: "expr", src, line: t.line });
    }
    return { nodes };
  };
  const r = block(false);
  return r.nodes;
}

type Value = string | boolean | number | undefined | Env;

function evalPipeline(src: string, env: Env, where: string): Value {
  const toks = lexAction(src, where);
  // Split on top-level "|".
  const stages: string[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (t === "(") depth++;
    if (t === ")") depth--;
    if (t === "|" && depth === 0) stages.push([]);
    else stages[stages.length - 1]!.push(t);
  }
  let acc: Value | typeof NONE = NONE;
  for (const stage of stages) {
    if (stage.length === 0) throw new UserError(`${where}: empty pipeline stage in "${src}"`);
    acc = evalCommand(stage, acc, env, where, src);
  }
  return acc === NONE ? undefined : acc;
}

const NONE = Symbol("none");

function evalCommand(
  words: string[],
  piped: Value | typeof NONE,
  env: Env,
  where: string,
  src: string,
): Value {
  const args: Value[] = [];
  const [head, ...rest] = words;
  const evalArg = (w: string): Value => {
    if (w.startsWith(".")) return w === "." ? env : env[w.slice(1)];
    if (w.startsWith('"')) return stringLiteral(w, `${where}: in "${src}"`);
    if (w.startsWith("`")) return w.slice(1, -1);
    if (w === "true") return true;
    if (w === "false") return false;
    if (/^-?\d+(\.\d+)?$/.test(w)) return Number(w);
    throw new UserError(`${where}: unknown value "${w}" in "${src}" (use .Key, "string" or a number)`);
  };
  // Parenthesised sub-expressions are flattened to one argument each.
  const flat: string[][] = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "(") {
      let depth = 1;
      const inner: string[] = [];
      i++;
      for (; i < rest.length; i++) {
        if (rest[i] === "(") depth++;
        if (rest[i] === ")" && --depth === 0) break;
        inner.push(rest[i]!);
      }
      flat.push(inner);
    } else flat.push([rest[i]!]);
  }
  const argOf = (ws: string[]): Value =>
    ws.length === 1 ? evalArg(ws[0]!) : evalCommand(ws, NONE, env, where, src);
  if (head === undefined) return undefined;
  if (!FUNCS[head]) {
    if (rest.length > 0 || piped !== NONE)
      throw new UserError(`${where}: unknown function "${head}" in "${src}"`);
    return evalArg(head);
  }
  for (const ws of flat) args.push(argOf(ws));
  if (piped !== NONE) args.push(piped);
  return FUNCS[head]!(args, where, src);
}

const str = (v: Value): string => {
  if (v === undefined) return "";
  if (typeof v !== "object") return String(v);
  // Go prints a map as map[k1:v1 k2:v2], keys sorted.
  const keys = Object.keys(v).sort();
  return `map[${keys.map((k) => `${k}:${v[k]}`).join(" ")}]`;
};
const truthy = (v: Value): boolean =>
  typeof v === "object" ? Object.keys(v).length > 0 : v !== undefined && v !== "" && v !== false && v !== 0;

/** Go's ordered comparison: numbers numerically, anything else as strings. */
function compare(a: Value, b: Value): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return str(a) < str(b) ? -1 : str(a) > str(b) ? 1 : 0;
}

/** Go's fmt verbs that env values (strings, numbers, booleans) need. */
function printf(args: Value[], where: string, src: string): string {
  const [format, ...rest] = args;
  let i = 0;
  return str(format).replace(/%([%svdqt])|%./g, (m, verb: string | undefined) => {
    if (verb === "%") return "%";
    if (!verb)
      throw new UserError(`${where}: printf verb "${m}" is not supported in "${src}" (use %s %v %d %q %t)`);
    const v = rest[i++];
    if (verb === "q") return JSON.stringify(str(v));
    if (verb === "d") return String(Math.trunc(Number(str(v))));
    return str(v);
  });
}

const FUNCS: Record<string, (args: Value[], where: string, src: string) => Value> = {
  or: (a) => a.find(truthy) ?? a[a.length - 1],
  and: (a) => a.find((v) => !truthy(v)) ?? a[a.length - 1],
  not: (a) => !truthy(a[0]),
  eq: (a) => a.slice(1).some((v) => str(v) === str(a[0])),
  ne: (a) => str(a[0]) !== str(a[1]),
  lt: (a) => compare(a[0], a[1]) < 0,
  le: (a) => compare(a[0], a[1]) <= 0,
  gt: (a) => compare(a[0], a[1]) > 0,
  ge: (a) => compare(a[0], a[1]) >= 0,
  len: (a) => (typeof a[0] === "object" ? Object.keys(a[0]).length : Buffer.byteLength(str(a[0]))),
  index: (a, where, src) => {
    const [m, key] = a;
    if (typeof m !== "object" || a.length !== 2)
      throw new UserError(`${where}: index takes . and a key, e.g. {{ index . "my-key" }}, in "${src}"`);
    return m[str(key)];
  },
  print: (a) => a.map(str).join(""),
  printf: (a, where, src) => printf(a, where, src),
  default: (a, where, src) => {
    if (a.length !== 2) throw new UserError(`${where}: default takes a default and a value, in "${src}"`);
    return truthy(a[1]) ? a[1] : a[0];
  },
  quote: (a) => JSON.stringify(str(a[0])),
  squote: (a) => `'${str(a[0])}'`,
  upper: (a) => str(a[0]).toUpperCase(),
  lower: (a) => str(a[0]).toLowerCase(),
  trim: (a) => str(a[0]).trim(),
  b64enc: (a) => Buffer.from(str(a[0])).toString("base64"),
  b64dec: (a) => Buffer.from(str(a[0]), "base64").toString("utf8"),
  toJson: (a) => JSON.stringify(a[0] ?? null),
};

/** Renders one template. `file` is for error messages ("etc/kubeadm.yml.tmpl"). */
export function renderTemplate(text: string, env: Env, file = "template"): string {
  const nodes = parse(tokenize(text, file), file);
  const out: string[] = [];
  const walk = (ns: Node[]) => {
    for (const n of ns) {
      switch (n.kind) {
        case "text":
          out.push(n.text);
          break;
        case "expr":
          out.push(str(evalPipeline(n.src, env, `${file}:${n.line}`)));
          break;
        case "if": {
          const hit = n.branches.find((b) => truthy(evalPipeline(b.cond, env, `${file}:${b.line}`)));
          walk(hit ? hit.body : n.otherwise);
          break;
        }
      }
    }
  };
  walk(nodes);
  return out.join("");
}

/** The env keys a template reads (so a changed env value re-renders only what uses it); `file` names it in errors. */
export function templateKeys(text: string, file: string): string[] {
  const keys = new Set<string>();
  for (const m of text.matchAll(/\{\{([\s\S]*?)\}\}/g)) {
    for (const k of (m[1] ?? "").matchAll(/(?:^|[\s(|])\.([A-Za-z_][A-Za-z0-9_]*)/g)) keys.add(k[1]!);
    for (const k of (m[1] ?? "").matchAll(/\bindex\s+\.\s+"((?:[^"\\]|\\.)*)"/g)) {
      const line = text.slice(0, (m.index ?? 0) + (k.index ?? 0)).split("\n").length;
      keys.add(stringLiteral(`"${k[1]}"`, `${file}:${line}: in "{{${m[1]}}}"`));
    }
  }
  return [...keys].sort();
}

/**
 * A double-quoted string of a template action. The escapes JSON and Go share (\\ \" \n \t \r
 * \b \f \uXXXX) are read; anything else is refused, as Go's template parser refuses it.
 */
function stringLiteral(word: string, where: string): string {
  try {
    return JSON.parse(word) as string;
  } catch {
    throw new UserError(
      `${where}: ${clip(word, 60)} is not a valid string: use only the escapes \\\\, \\", \\n, \\t, \\r and \\uXXXX`,
    );
  }
}

/** The rendered file's path: "etc/kubeadm.yml.tmpl" -> "etc/kubeadm.yml". */
export function renderedPath(tmplPath: string): string {
  return tmplPath.replace(/\.tmpl$/, "");
}

/** Env from "K=V" lines; later entries win (Clusterfile env allows repeated keys). */
export function envFromList(list: string[] | undefined): Env {
  const env: Env = {};
  for (const e of list ?? []) {
    const i = e.indexOf("=");
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// Config documents

export interface ConfigDoc {
  name?: string;
  /** Relative to the rootfs, or to application/apps/<appName>/ when appName is set. */
  path: string;
  data: string;
  strategy?: "overwrite" | "merge";
  /** Pipeline, e.g. "value|toJson|toBase64|toSecret" or ["value", "toJson"]. */
  process?: string | string[];
  appName?: string;
}

/** Where a Config document lands, relative to the cluster rootfs. */
export function configTarget(doc: ConfigDoc): string {
  const rel = doc.path.replace(/^\/+/, "");
  if (rel.split("/").includes(".."))
    throw new UserError(
      `Config ${doc.name ?? doc.path}: path "${doc.path}" must stay inside the image (no "..")`,
    );
  const target = doc.appName ? `application/apps/${doc.appName}/${rel}` : rel;
  // Defence in depth (the Clusterfile loader checks appName): the result is written as root.
  const inside: string[] = [];
  for (const seg of target.split("/")) {
    if (seg === "..") {
      if (inside.pop() === undefined) {
        inside.push("..");
        break;
      }
    } else if (seg !== "" && seg !== ".") inside.push(seg);
  }
  if (inside.length === 0 || inside[0] === "..")
    throw new UserError(
      `Config ${doc.name ?? doc.path}: appName ${JSON.stringify(doc.appName ?? "")} with path "${doc.path}" lands at "${target}", which is not inside the cluster rootfs; use an app name without "/" or ".."`,
    );
  return target;
}

const PROCESSORS = ["value", "toJson", "toBase64", "toSecret"] as const;
type Processor = (typeof PROCESSORS)[number];

/**
 * The new content of a Config's target file, given its current content (undefined when the file
 * does not exist yet). Strategy overwrite replaces the file; merge deep-merges YAML/JSON maps
 * (documents matched by position; lists replaced). Process (sealer's semantics):
 *   value     data is a map; each key's value is processed separately
 *   toJson    the value becomes its JSON text
 *   toBase64  the value (JSON text for maps) becomes base64
 *   toSecret  the results go into `data.<key>` of the Kubernetes Secret in the target file
 * Without toSecret, the processed values are written one after the other.
 */
export function applyConfig(doc: ConfigDoc, current: string | undefined): string {
  const where = `Config ${doc.name ?? doc.path}`;
  const steps = (Array.isArray(doc.process) ? doc.process : (doc.process ?? "").split("|"))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of steps)
    if (!PROCESSORS.includes(s as Processor))
      throw new UserError(
        `${where}: unknown process "${s}" (use value, toJson, toBase64, toSecret joined by "|")`,
      );
  let content: string;
  if (steps.length > 0) {
    let data: unknown;
    try {
      data = yaml.load(doc.data);
    } catch (err) {
      throw new UserError(`${where}: data is not YAML: ${(err as Error).message}`);
    }
    if (!data || typeof data !== "object" || Array.isArray(data))
      throw new UserError(`${where}: process "${steps.join("|")}" needs data to be a map of key: value`);
    const processed: Record<string, string> = {};
    for (const [k, v0] of Object.entries(data as Record<string, unknown>)) {
      let v: unknown = v0;
      for (const s of steps as Processor[]) {
        switch (s) {
          case "value":
            break;
          case "toJson":
            v = typeof v === "string" ? v : JSON.stringify(v);
            break;
          case "toBase64":
            v = Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64");
            break;
          case "toSecret":
            break;
        }
      }
      processed[k] = typeof v === "string" ? v : yaml.dump(v).trimEnd();
    }
    if (steps.includes("toSecret")) {
      if (current === undefined)
        throw new UserError(`${where}: toSecret needs an existing Secret manifest at ${configTarget(doc)}`);
      const docs = yaml.loadAll(current) as unknown[];
      const secret = docs.find((d) => (d as { kind?: string } | null)?.kind === "Secret") as
        { data?: Record<string, string> } | undefined;
      if (!secret) throw new UserError(`${where}: ${configTarget(doc)} has no document of kind Secret`);
      secret.data = { ...(secret.data ?? {}) };
      for (const [k, v] of Object.entries(processed))
        secret.data[k] = steps.includes("toBase64") ? v : Buffer.from(v).toString("base64");
      return docs.map((d) => yaml.dump(d, { lineWidth: -1 })).join("---\n");
    }
    content = Object.values(processed).join("\n") + "\n";
  } else content = doc.data;
  if ((doc.strategy ?? "overwrite") === "overwrite" || current === undefined) return content;
  return mergeDocuments(current, content, where);
}

/** Deep merge of multi-document YAML (JSON is YAML); documents by position; maps merged, everything else replaced. */
export function mergeDocuments(base: string, over: string, where = "merge"): string {
  let a: unknown[];
  let b: unknown[];
  try {
    a = yaml.loadAll(base);
    b = yaml.loadAll(over);
  } catch (err) {
    throw new UserError(`${where}: cannot merge, not YAML/JSON: ${(err as Error).message}`);
  }
  const n = Math.max(a.length, b.length);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(i < b.length ? deepMerge(a[i], b[i]) : a[i]);
  const isJson = base.trimStart().startsWith("{");
  if (isJson && out.length === 1) return JSON.stringify(out[0], null, 2) + "\n";
  return out.map((d) => yaml.dump(d, { lineWidth: -1 })).join("---\n");
}

export function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (isMap(base) && isMap(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
    return out;
  }
  return over;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

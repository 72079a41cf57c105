import * as yaml from "js-yaml";
import { UserError } from "../errors";

/**
 * Multi-document YAML with line numbers for every node path.
 *
 * js-yaml gives no AST, but its `listener` option reports every node it opens and closes with
 * the reader position. From those events we rebuild the node tree, pair mapping children into
 * key/value, and record the 1-based line of each path ("spec.hosts[1].ips[0]"). Mapping values
 * take the line of their key (where a reader looks); sequence items the line their text starts on.
 */
export type YamlPath = Array<string | number>;

export interface YamlDocument {
  /** Index of the document in the file (0-based). */
  index: number;
  value: unknown;
  /** Line of the document's first content (1-based). */
  line: number;
  /** 1-based line of `path`, or of its nearest ancestor with a known line. */
  lineOf(path: YamlPath): number;
}

interface Frame {
  start: number;
  end: number;
  result: unknown;
  children: Frame[];
}

export function pathKey(path: YamlPath): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? p : `.${p}`;
  return s;
}

/** Parses every document; a YAML syntax error throws a js-yaml YAMLException (with its mark). */
export function loadDocuments(text: string, filename?: string): YamlDocument[] {
  const lineStarts: number[] = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const lineAt = (pos: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] ?? 0) <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  // Skip whitespace, comments and sequence dashes to find where a node's text starts.
  const contentStart = (pos: number): number => {
    let p = pos;
    for (;;) {
      const c = text[p];
      if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "-" || c === ",") p++;
      else if (c === "#") {
        while (p < text.length && text[p] !== "\n") p++;
      } else return p;
    }
  };

  const roots: Frame[] = [];
  const stack: Frame[] = [];
  const values: unknown[] = [];
  yaml.loadAll(
    text,
    (doc) => {
      values.push(doc);
    },
    {
      filename,
      listener(event, state) {
        const s = state as unknown as { position: number; result: unknown };
        if (event === "open")
          stack.push({ start: s.position, end: s.position, result: undefined, children: [] });
        else {
          const f = stack.pop();
          if (!f) return;
          f.end = s.position;
          f.result = s.result;
          const parent = stack[stack.length - 1];
          if (parent) parent.children.push(f);
          else roots.push(f);
        }
      },
    },
  );

  return values.map((value, index) => {
    const lines = new Map<string, number>();
    const root = roots[index];
    let docLine = 1;
    if (root) {
      docLine = lineAt(contentStart(root.start));
      index_(root, [], docLine);
    }
    return {
      index,
      value,
      line: docLine,
      lineOf(path: YamlPath): number {
        for (let n = path.length; n >= 0; n--) {
          const l = lines.get(pathKey(path.slice(0, n)));
          if (l !== undefined) return l;
        }
        return docLine;
      },
    };

    function index_(frame: Frame, path: YamlPath, line: number): void {
      const f = collapse(frame);
      lines.set(pathKey(path), line);
      const r = f.result;
      if (Array.isArray(r)) {
        f.children.forEach((c, i) => index_(c, [...path, i], lineAt(contentStart(c.start))));
      } else if (r !== null && typeof r === "object") {
        for (let i = 0; i + 1 < f.children.length; i += 2) {
          const k = collapse(f.children[i] as Frame);
          const v = f.children[i + 1] as Frame;
          if (typeof k.result !== "string" && typeof k.result !== "number") continue;
          index_(v, [...path, String(k.result)], lineAt(contentStart(k.start)));
        }
      }
    }
  });
}

/** js-yaml opens two nested nodes for a block sequence entry; keep the innermost equivalent one. */
function collapse(f: Frame): Frame {
  let cur = f;
  while (cur.children.length === 1 && cur.children[0]?.result === cur.result) cur = cur.children[0] as Frame;
  return cur;
}

/** "Clusterfile:12" for a js-yaml syntax error. */
export function yamlErrorLine(err: unknown): number | undefined {
  const mark = (err as { mark?: { line?: number } } | null)?.mark;
  return typeof mark?.line === "number" ? mark.line + 1 : undefined;
}

/** loadDocuments for a user's file: a syntax error becomes a UserError "FILE:LINE: YAML syntax error: ...". */
export function loadUserDocuments(text: string, file: string): YamlDocument[] {
  try {
    return loadDocuments(text, file);
  } catch (err) {
    const line = yamlErrorLine(err);
    const reason = (err as { reason?: string }).reason ?? (err as Error).message;
    throw new UserError(`${file}${line ? `:${line}` : ""}: YAML syntax error: ${reason}`, { cause: err });
  }
}

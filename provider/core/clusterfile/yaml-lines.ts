import { LineCounter, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Node } from "yaml";
import { UserError } from "../errors";
import { MAX_YAML_ALIAS_COUNT, MAX_YAML_DEPTH } from "../limits";

/**
 * Multi-document YAML with line numbers for every node path, from the `yaml` package's own
 * node positions (a LineCounter maps offsets to lines). Mapping values take the line of their
 * key (where a reader looks); sequence items the line their text starts on.
 *
 * Aliases are expanded with a cap (MAX_YAML_ALIAS_COUNT, the `yaml` package's own measure of
 * alias fan-out), so a "billion laughs" document is refused instead of exhausting memory.
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

export function pathKey(path: YamlPath): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? p : `.${p}`;
  return s;
}

/** A YAML problem with the 1-based line it is on (when known). */
export class YamlSyntaxError extends Error {
  override readonly name = "YamlSyntaxError";
  constructor(
    message: string,
    readonly line: number | undefined,
  ) {
    super(message);
  }
}

/** Parses every document; a syntax error or an alias expansion over the cap throws a YamlSyntaxError. */
export function loadDocuments(text: string): YamlDocument[] {
  try {
    return loadDocumentsUnguarded(text);
  } catch (err) {
    // The parser and the conversion recurse per nesting level; absurd nesting overflows the stack.
    if (err instanceof RangeError) throw new YamlSyntaxError(TOO_DEEP, undefined);
    throw err;
  }
}

function loadDocumentsUnguarded(text: string): YamlDocument[] {
  const lineCounter = new LineCounter();
  // logLevel "error": the package would otherwise print its warnings on the process's stderr.
  const parsed = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: false,
    keepSourceTokens: false,
    logLevel: "error",
  });
  const docs = Array.isArray(parsed) ? parsed : [];
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  for (const d of docs) {
    const e = d.errors[0];
    if (e)
      throw new YamlSyntaxError(
        // The package reports a nesting that overflowed the stack with this code.
        e.code === "RESOURCE_EXHAUSTION" ? TOO_DEEP : firstLine(e.message),
        e.linePos?.[0]?.line ?? lineAt(e.pos[0]),
      );
  }
  return docs.map((d, index) => {
    const lines = new Map<string, number>();
    let deepest = 0;
    let complexKey = 0;
    const contents = d.contents as Node | null;
    const docLine = contents?.range ? lineAt(contents.range[0]) : 1;
    if (contents) indexNode(contents, [], docLine);
    if (deepest) throw new YamlSyntaxError(TOO_DEEP, deepest);
    if (complexKey)
      throw new YamlSyntaxError(
        "a mapping key is itself a mapping or a list (is a ':' or an indentation misplaced?); keys are plain values",
        complexKey,
      );
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
    } catch (err) {
      const msg = (err as Error).message;
      // toJS throws plain ReferenceErrors with no code: their text is all that tells the two
      // cases apart. The package's wording for this one names a "resource exhaustion attack"; say what to do.
      if (/excessive alias/i.test(msg))
        throw new YamlSyntaxError(
          `aliases (*name) expand to too many nodes (more than ${MAX_YAML_ALIAS_COUNT} alias uses per anchor); write the values out or use fewer aliases`,
          docLine,
        );
      const unresolved = /unresolved alias.*?: (.*)$/i.exec(msg);
      if (unresolved) {
        const name = unresolved[1] as string;
        const at = text.indexOf(`*${name}`, d.range[0]);
        throw new YamlSyntaxError(
          `*${name} refers to an anchor &${name} that is not defined before it; a value that starts with * must be quoted ("*${name}")`,
          at >= 0 ? lineAt(at) : docLine,
        );
      }
      throw new YamlSyntaxError(firstLine(msg), docLine);
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

    function indexNode(node: unknown, path: YamlPath, line: number): void {
      if (path.length > MAX_YAML_DEPTH) {
        deepest ||= line;
        return;
      }
      lines.set(pathKey(path), line);
      if (isSeq(node))
        node.items.forEach((item, i) => {
          const r = (item as Node | null)?.range;
          indexNode(item, [...path, i], r ? lineAt(r[0]) : line);
        });
      else if (isMap(node))
        for (const pair of node.items) {
          if (!isPair(pair)) continue;
          const key = pair.key;
          const r = (key as Node | null)?.range;
          const keyLine = r ? lineAt(r[0]) : line;
          if (isMap(key) || isSeq(key)) {
            complexKey ||= keyLine;
            continue;
          }
          const k = isScalar(key) ? key.value : key;
          if (typeof k !== "string" && typeof k !== "number") continue;
          indexNode(pair.value, [...path, String(k)], keyLine);
        }
    }
  });
}

const TOO_DEEP = `values are nested more than ${MAX_YAML_DEPTH} levels deep; flatten the structure`;

function firstLine(s: string): string {
  return s.split("\n")[0]?.trim() ?? s;
}

/** loadDocuments for a user's file: a syntax error becomes a UserError "FILE:LINE: YAML syntax error: ...". */
export function loadUserDocuments(text: string, file: string): YamlDocument[] {
  try {
    return loadDocuments(text);
  } catch (err) {
    if (!(err instanceof YamlSyntaxError)) throw err;
    throw new UserError(`${file}${err.line ? `:${err.line}` : ""}: YAML syntax error: ${err.message}`, {
      cause: err,
    });
  }
}

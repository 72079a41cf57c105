import * as fs from "node:fs";
import * as path from "node:path";
import { throwIfProblems } from "../errors";
import { ARCH_PLACEHOLDER } from "./types";
import type { Kubefile } from "./types";

/** Sources that name a remote file rather than the build context. */
export function isUrlSource(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source);
}

const GLOB_CHARS = /[*?[]/;

/** One element of a segment glob: a literal character, `?`, `*`, or a `[...]` class. */
type GlobToken =
  | { t: "char"; c: string }
  | { t: "any" }
  | { t: "star" }
  | { t: "class"; negate: boolean; test: (c: string) => boolean };

/** Tokenises one path segment's glob (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`); other characters are literal. */
function globTokens(seg: string): GlobToken[] {
  const out: GlobToken[] = [];
  const chars = [...seg];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === "*") {
      // Consecutive stars mean the same as one; collapsing them keeps matching linear.
      if (out[out.length - 1]?.t !== "star") out.push({ t: "star" });
    } else if (c === "?") out.push({ t: "any" });
    else if (c === "[") {
      const close = chars.indexOf("]", i + 2);
      if (close < 0) {
        out.push({ t: "char", c });
        continue;
      }
      let body = chars.slice(i + 1, close);
      const negate = body[0] === "!" || body[0] === "^";
      if (negate) body = body.slice(1);
      const ranges: Array<[string, string]> = [];
      for (let j = 0; j < body.length; j++) {
        const lo = body[j] as string;
        if (body[j + 1] === "-" && j + 2 < body.length) {
          ranges.push([lo, body[j + 2] as string]);
          j += 2;
        } else ranges.push([lo, lo]);
      }
      out.push({ t: "class", negate, test: (x) => ranges.some(([lo, hi]) => lo <= x && x <= hi) });
      i = close;
    } else out.push({ t: "char", c });
  }
  return out;
}

function tokenMatches(tok: GlobToken, c: string): boolean {
  switch (tok.t) {
    case "char":
      return tok.c === c;
    case "any":
      return true;
    case "class":
      return tok.test(c) !== tok.negate;
    case "star":
      return false;
  }
}

/**
 * Whether `name` matches the glob of one path segment. Greedy matching that remembers only the
 * last `*` (a later star makes earlier choices irrelevant), so it runs in O(pattern × name) at
 * worst and never backtracks exponentially, whatever the pattern (a regular expression built
 * from "*****...a" would).
 */
export function globMatch(pattern: string, name: string): boolean {
  return globMatcher(pattern)(name);
}

/** globMatch with the pattern tokenised once, for matching it against every entry of a directory. */
function globMatcher(pattern: string): (name: string) => boolean {
  const p = globTokens(pattern);
  return (name) => matchTokens(p, [...name]);
}

function matchTokens(p: GlobToken[], s: string[]): boolean {
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const tok = p[pi];
    if (tok && tok.t !== "star" && tokenMatches(tok, s[si] as string)) {
      pi++;
      si++;
    } else if (tok?.t === "star") {
      starP = pi++;
      starS = si;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else return false;
  }
  while (p[pi]?.t === "star") pi++;
  return pi === p.length;
}

/**
 * Context-relative paths (posix, sorted) that a COPY/ADD/APP source names: the path itself when it
 * exists, or the matches of its glob segments. The caller has already refused absolute paths and
 * `..` escapes; symlinks are not followed here (see checkContext for where they lead).
 */
export async function matchContextPaths(contextDir: string, source: string): Promise<string[]> {
  const norm = path.posix.normalize(source.replace(/\\/g, "/"));
  if (norm === "." || norm === "./") return ["."];
  const segs = norm.split("/").filter((s) => s !== "" && s !== ".");
  let found: string[] = [""];
  for (const seg of segs) {
    const next: string[] = [];
    const matches = globMatcher(seg);
    for (const base of found) {
      const dir = path.join(contextDir, base);
      if (!GLOB_CHARS.test(seg)) {
        const rel = base ? `${base}/${seg}` : seg;
        if (await lexists(path.join(contextDir, rel))) next.push(rel);
        continue;
      }
      let entries: string[];
      try {
        entries = await fs.promises.readdir(dir);
      } catch {
        continue;
      }
      for (const e of entries.sort()) if (matches(e)) next.push(base ? `${base}/${e}` : e);
    }
    found = next;
    if (found.length === 0) break;
  }
  return found.sort();
}

async function lexists(p: string): Promise<boolean> {
  try {
    await fs.promises.lstat(p);
    return true;
  } catch {
    return false;
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * Checks every COPY/ADD/APP/CNI/CSI source against the build context: it must be a relative
 * path that stays inside the context after normalisation, must exist (a glob must match), and
 * must not be (or pass through) a symlink that leads outside the context. A source with
 * `${ARCH}` must exist for each of `opts.arches`, or, without arches, for at least one
 * directory. Throws one UserError listing every problem.
 */
export async function checkContext(
  kf: Kubefile,
  contextDir: string,
  opts: { arches?: string[] } = {},
): Promise<void> {
  const problems: string[] = [];
  let ctx: string;
  try {
    ctx = await fs.promises.realpath(contextDir);
    if (!(await fs.promises.stat(ctx)).isDirectory()) throw new Error("not a directory");
  } catch {
    throwIfProblems(`${kf.file}: bad build context`, [
      `build context ${contextDir} is not a directory; pass the directory that holds the files the Kubefile copies`,
    ]);
    return;
  }
  for (const ins of kf.instructions) {
    let sources: string[];
    switch (ins.kind) {
      case "COPY":
      case "ADD":
      case "APP":
      case "CNI":
      case "CSI":
        sources = ins.sources;
        break;
      default:
        continue;
    }
    const where = `${kf.file}:${ins.loc.line}`;
    const what =
      ins.kind === "APP" || ins.kind === "CNI" || ins.kind === "CSI"
        ? `${ins.kind} ${ins.name} source`
        : `${ins.kind} source`;
    for (const src of sources) {
      if (isUrlSource(src)) continue;
      if (path.isAbsolute(src) || /^[A-Za-z]:[\\/]/.test(src)) {
        problems.push(
          `${where}: ${what} "${src}" is an absolute host path; copy the file into the build context and give its path relative to the context`,
        );
        continue;
      }
      const norm = path.posix.normalize(src.replace(/\\/g, "/"));
      if (norm === ".." || norm.startsWith("../")) {
        problems.push(
          `${where}: ${what} "${src}" leaves the build context (${ctx}); move the file into the context and use a path inside it`,
        );
        continue;
      }
      const variants = !src.includes(ARCH_PLACEHOLDER)
        ? [{ arch: undefined as string | undefined, pattern: src }]
        : opts.arches
          ? opts.arches.map((a) => ({
              arch: a as string | undefined,
              pattern: src.split(ARCH_PLACEHOLDER).join(a),
            }))
          : [{ arch: "*", pattern: src.split(ARCH_PLACEHOLDER).join("*") }];
      for (const v of variants) {
        const matches = await matchContextPaths(ctx, v.pattern);
        if (matches.length === 0) {
          if (v.arch === "*")
            problems.push(
              `${where}: ${what} "${src}" matches no platform directory in the build context (${ctx}); create it for each platform, e.g. ${src.split(ARCH_PLACEHOLDER).join("amd64")}`,
            );
          else if (v.arch)
            problems.push(
              `${where}: ${what} "${src}" does not exist for platform ${v.arch} (${v.pattern}) in the build context (${ctx}); add it or build without that platform`,
            );
          else
            problems.push(
              `${where}: ${what} "${src}" does not exist in the build context (${ctx}); check the path (it is relative to the context directory)`,
            );
          continue;
        }
        for (const m of matches) {
          const abs = path.join(ctx, m);
          let real: string;
          try {
            real = await fs.promises.realpath(abs);
          } catch {
            problems.push(`${where}: ${what} "${m}" is a symlink to a missing file; fix or remove the link`);
            continue;
          }
          if (!inside(ctx, real))
            problems.push(
              `${where}: ${what} "${m}" is a symlink that resolves outside the build context (to ${real}); copy the target into the context instead of linking to it`,
            );
        }
      }
    }
  }
  throwIfProblems(
    `${kf.file}: the build context ${contextDir} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`,
    problems,
  );
}

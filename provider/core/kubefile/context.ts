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

/** Converts one path segment's glob (`*`, `?`, `[...]`) to a RegExp; other characters are literal. */
function segmentRegExp(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const close = seg.indexOf("]", i + 1);
      if (close < 0) re += "\\[";
      else {
        const body = seg.slice(i + 1, close).replace(/\\/g, "\\\\");
        re += "[" + (body.startsWith("!") ? "^" + body.slice(1) : body) + "]";
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp("^" + re + "$");
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
      const re = segmentRegExp(seg);
      for (const e of entries.sort()) if (re.test(e)) next.push(base ? `${base}/${e}` : e);
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

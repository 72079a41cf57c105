import * as path from "node:path";
import { throwIfProblems } from "../errors";
import { parseReference } from "../common/reference";
import {
  MAX_EXPANDED_TOTAL_CHARS,
  MAX_INSTRUCTION_CHARS,
  MAX_KUBEFILE_BYTES,
  MAX_PATH_CHARS,
  MAX_PATH_SEGMENT_CHARS,
} from "../limits";
import { checkEnvValue } from "../clusterfile/syntax";
import { APP_NAME_FIX, appNameProblem } from "./app-name";
import { formatBytes } from "../log";
import {
  ExpansionTooLong,
  LexProblem,
  Lookup,
  clip,
  expandShell,
  lineAt,
  parseJsonArray,
  shellQuote,
  splitLogicalLines,
  splitWords,
} from "./lexer";
import {
  ARCH_PLACEHOLDER,
  ARCH_VAR,
  INSTRUCTION_KINDS,
  Instruction,
  InstructionKind,
  Kubefile,
  Loc,
} from "./types";

/**
 * Parses a Kubefile into typed instructions. Pure: no I/O.
 *
 * Variables: ARG values (a `--build-arg` overrides the default) and ENV values are expanded in
 * FROM, COPY/ADD, APP/CNI/CSI sources, APPENV/ENV/LABEL values, KUBEVERSION and RUN. Launch
 * commands (CMD, CMDS, APPCMDS) run at cluster time where the Clusterfile may override ENV, so
 * only ARGs are substituted there and `$ENVNAME` is left for the shell. ARGs declared before FROM
 * are visible in the whole file (docker scopes them to FROM only, which surprises people).
 * `${ARCH}` is never expanded here: the builder substitutes it per platform.
 *
 * Every problem is collected and reported at once as "FILE:LINE: problem; what to do".
 * With `FROM scratch` nothing can be inherited, so app names are checked here too; otherwise the
 * builder calls `checkAppNames` with the base image's apps.
 */
export function parseKubefile(
  text: string,
  opts: { file: string; buildArgs?: Record<string, string> },
): Kubefile {
  const file = opts.file;
  const buildArgs = opts.buildArgs ?? {};
  if (Buffer.byteLength(text, "utf8") > MAX_KUBEFILE_BYTES)
    throwIfProblems(`${file} is too large`, [
      `${file}: is ${formatBytes(Buffer.byteLength(text, "utf8"))}; a Kubefile may be at most ${formatBytes(MAX_KUBEFILE_BYTES)} (keep large content in files that COPY or APP take from the build context)`,
    ]);
  const problems: string[] = [];
  const instructions: Instruction[] = [];
  const args: Record<string, string> = {};
  const env: Record<string, string> = {};
  /** Every recognised instruction line, parsed or not, so ordering checks do not cascade from one bad line. */
  const seen: Array<{ kind: InstructionKind; line: number }> = [];

  // Own properties only: "$constructor" or "$toString" must not find Object.prototype's members.
  const own = (r: Record<string, string>, name: string) => (Object.hasOwn(r, name) ? r[name] : undefined);
  const argLookup: Lookup = (name) => (name === ARCH_VAR ? { keep: ARCH_PLACEHOLDER } : own(args, name));
  const fullLookup: Lookup = (name) =>
    name === ARCH_VAR ? { keep: ARCH_PLACEHOLDER } : Object.hasOwn(env, name) ? env[name] : own(args, name);

  let expanded = 0;
  for (const ll of splitLogicalLines(text)) {
    const nul = ll.text.indexOf("\0");
    if (nul >= 0) {
      problems.push(
        `${file}:${lineAt(ll, nul)}: contains a NUL byte; a Kubefile is text: remove it (is this a binary file?)`,
      );
      continue;
    }
    if (ll.text.length > MAX_INSTRUCTION_CHARS) {
      problems.push(
        `${file}:${ll.line}: the instruction is ${ll.text.length} characters long; at most ${MAX_INSTRUCTION_CHARS} are allowed (keep long content in a file in the build context)`,
      );
      continue;
    }
    const m = /^\s*(\S+)/.exec(ll.text);
    if (!m) continue;
    const keyword = m[1] as string;
    const restStart = skipBlanks(ll.text, m[0].length);
    const rest = ll.text.slice(restStart).trimEnd();
    const kind = keyword.toUpperCase() as InstructionKind;
    const loc: Loc = { file, line: ll.line };
    const p = (offset: number | undefined, problem: string, fix: string) =>
      problems.push(
        `${file}:${offset === undefined ? ll.line : lineAt(ll, restStart + offset)}: ${problem}; ${fix}`,
      );
    const lexProblems = (ps: LexProblem[]) => ps.forEach((x) => p(x.offset, `${kind}: ${x.message}`, x.fix));

    if (!INSTRUCTION_KINDS.includes(kind)) {
      const [problem, fix] = unknownInstruction(keyword);
      p(undefined, problem, fix);
      continue;
    }
    seen.push({ kind, line: ll.line });
    if (rest === "") {
      p(undefined, `${kind} needs ${USAGE[kind].what}`, `write ${USAGE[kind].usage}`);
      continue;
    }
    const before = problems.length;
    const parsedBefore = instructions.length;

    try {
      switch (kind) {
        case "FROM": {
          const { words, problems: lp } = splitWords(rest, fullLookup);
          lexProblems(lp);
          const image = words[0]?.value ?? "";
          if (image.startsWith("--"))
            p(
              words[0]?.start,
              `FROM flags such as ${image.split("=")[0]} are not supported`,
              "select platforms with sealer build --platform",
            );
          else if (words.length > 1 && words[1]?.value.toUpperCase() === "AS")
            p(
              words[1]?.start,
              "multi-stage builds (FROM ... AS name) are not supported",
              'remove "AS ...": a Kubefile has one FROM',
            );
          else if (words.length > 1)
            p(
              words[1]?.start,
              `FROM takes one image, got ${words.length} words`,
              `write FROM <image> or FROM scratch`,
            );
          else if (image.toLowerCase() === "scratch") {
            if (problems.length === before) instructions.push({ kind, loc, image: "scratch" });
          } else {
            try {
              parseReference(image);
              if (problems.length === before) instructions.push({ kind, loc, image });
            } catch (err) {
              p(words[0]?.start, (err as Error).message, "write FROM <image>[:tag] or FROM scratch");
            }
          }
          break;
        }
        case "COPY":
        case "ADD": {
          let values: Array<{ value: string; start: number }>;
          if (rest.startsWith("[")) {
            const r = parseJsonArray(rest);
            if ("problem" in r) {
              p(
                r.problem.offset,
                `${kind}: ${r.problem.message}`,
                `write ${kind} ["<src>", "<dest>"] or ${kind} <src> <dest>`,
              );
              break;
            }
            values = [];
            for (const v of r.values) {
              const w = splitWords(v, fullLookup, { single: true });
              lexProblems(w.problems.map((x) => ({ ...x, offset: 0 })));
              values.push({ value: w.words[0]?.value ?? "", start: 0 });
            }
          } else {
            const w = splitWords(rest, fullLookup);
            lexProblems(w.problems);
            values = w.words;
            // sealer's own docs end COPY lines with a comment (`COPY chart . # copy files`): its
            // parser keeps the first two words. An unquoted word starting with # after a source
            // and a destination starts a comment here too; a file named #x must be quoted.
            const hash = values.findIndex((v, i) => i >= 2 && rest[v.start] === "#");
            if (hash >= 0) values = values.slice(0, hash);
          }
          const flag = values.find((v) => v.value.startsWith("--"));
          if (flag) {
            p(
              flag.start,
              `${kind} flags such as ${flag.value.split("=")[0]} are not supported`,
              "remove the flag: files in a cluster image are owned by root (0:0) with normalised modes",
            );
            break;
          }
          if (problems.length !== before) break;
          if (values.length < 2) {
            p(undefined, `${kind} needs at least one source and a destination`, `write ${USAGE[kind].usage}`);
            break;
          }
          const sources = values.slice(0, -1);
          const dest = values[values.length - 1] as { value: string; start: number };
          for (const s of sources) {
            const long = pathTooLong(s.value);
            if (s.value === "")
              p(s.start, `${kind} has an empty source`, "check the variables used in the source path");
            else if (long) p(s.start, `${kind} source ${long}`, PATH_FIX);
            else if (kind === "COPY" && /^[a-z][a-z0-9+.-]*:\/\//i.test(s.value))
              p(
                s.start,
                `COPY source "${clip(s.value)}" is a URL; COPY copies from the build context`,
                "download it into the context first, or use ADD for an https:// URL",
              );
            else if (kind === "ADD" && /^http:\/\//i.test(s.value))
              p(s.start, `ADD source "${clip(s.value)}" uses plain http`, "use an https:// URL");
          }
          const longDest = pathTooLong(dest.value);
          if (dest.value === "")
            p(
              dest.start,
              `${kind} has an empty destination`,
              "write a path inside the image, e.g. . or etc/",
            );
          else if (longDest) p(dest.start, `${kind} destination ${longDest}`, PATH_FIX);
          else if (escapesRoot(dest.value))
            p(
              dest.start,
              `${kind} destination "${clip(dest.value)}" leaves the image root`,
              "use a path inside the image (no leading ..)",
            );
          if (problems.length === before)
            instructions.push({ kind, loc, sources: sources.map((s) => s.value), dest: dest.value });
          break;
        }
        case "RUN":
        case "CMD": {
          // Build-time RUN sees ARG and ENV; a CMD runs on the cluster, where ENV may be overridden.
          const lookup = kind === "RUN" ? fullLookup : argLookup;
          const exec = rest.startsWith("[") ? parseJsonArray(rest) : undefined;
          // Like docker, text that starts with "[" but is not a JSON string array is shell form (`RUN [ -f x ] && ...`).
          const command =
            exec && "values" in exec
              ? exec.values.map((v) => shellQuote(expandShell(v, lookup))).join(" ")
              : expandShell(rest, lookup);
          if (exec && "values" in exec && exec.values.length === 0)
            p(undefined, `${kind} has an empty command array`, `write ${USAGE[kind].usage}`);
          else instructions.push({ kind, loc, command });
          break;
        }
        case "CMDS": {
          const cmds = commandList(rest, argLookup, (offset, message) =>
            p(offset, `CMDS: ${message}`, `write ${USAGE.CMDS.usage}`),
          );
          if (cmds) instructions.push({ kind, loc, cmds });
          break;
        }
        case "APP":
        case "CNI":
        case "CSI": {
          const { words, problems: lp } = splitWords(rest, fullLookup);
          lexProblems(lp);
          const [nameWord, ...srcWords] = words;
          if (!nameWord) break;
          const name = nameWord.value;
          checkAppName(name, (problem, fix) => p(nameWord.start, `${kind}: ${problem}`, fix));
          if (srcWords.length === 0) {
            p(undefined, `${kind} ${name} needs at least one source`, `write ${USAGE[kind].usage}`);
            break;
          }
          const sources: string[] = [];
          for (const w of srcWords) {
            const long = pathTooLong(w.value);
            if (long) p(w.start, `${kind} ${name} source ${long}`, PATH_FIX);
            else if (/^local:\/\//i.test(w.value)) {
              const rel = w.value.slice("local://".length);
              if (rel === "")
                p(
                  w.start,
                  `${kind} source "${w.value}" names no path`,
                  "write local://<path in the build context>",
                );
              else sources.push(rel);
            } else if (/^https:\/\/\S+/i.test(w.value)) sources.push(w.value);
            else
              p(
                w.start,
                `${kind} source "${clip(w.value)}" must start with local:// (a path in the build context) or https://`,
                /^[a-z][a-z0-9+.-]*:\/\//i.test(w.value)
                  ? "serve it over https:// or put it in the build context"
                  : `write local://${clip(w.value)}`,
              );
          }
          if (problems.length === before) instructions.push({ kind, loc, name, sources });
          break;
        }
        case "APPCMDS": {
          const nm = /^(\S+)\s*/.exec(rest) as RegExpExecArray;
          const name = nm[1] as string;
          checkAppName(name, (problem, fix) => p(0, `APPCMDS: ${problem}`, fix));
          const cmdText = rest.slice(nm[0].length);
          if (cmdText === "") {
            p(undefined, `APPCMDS ${name} needs commands`, `write ${USAGE.APPCMDS.usage}`);
            break;
          }
          const cmds = commandList(cmdText, argLookup, (offset, message) =>
            p(nm[0].length + offset, `APPCMDS: ${message}`, `write ${USAGE.APPCMDS.usage}`),
          );
          if (cmds && problems.length === before) instructions.push({ kind, loc, name, cmds });
          break;
        }
        case "APPENV": {
          const { words, problems: lp } = splitWords(rest, fullLookup);
          lexProblems(lp);
          const [nameWord, ...pairs] = words;
          if (!nameWord) break;
          checkAppName(nameWord.value, (problem, fix) => p(nameWord.start, `APPENV: ${problem}`, fix));
          if (pairs.length === 0) {
            p(
              undefined,
              `APPENV ${nameWord.value} needs at least one key=value`,
              `write ${USAGE.APPENV.usage}`,
            );
            break;
          }
          const appEnv = keyValues(pairs, ENV_KEY, "APPENV", (offset, problem, fix) =>
            p(offset, problem, fix),
          );
          if (problems.length === before) instructions.push({ kind, loc, name: nameWord.value, env: appEnv });
          break;
        }
        case "LAUNCH": {
          let names: Array<{ value: string; start: number | undefined }>;
          if (rest.startsWith("[")) {
            const r = parseJsonArray(rest);
            if ("problem" in r) {
              p(r.problem.offset, `LAUNCH: ${r.problem.message}`, `write ${USAGE.LAUNCH.usage}`);
              break;
            }
            names = r.values.map((v) => ({ value: v, start: undefined }));
          } else {
            const w = splitWords(rest, argLookup);
            lexProblems(w.problems);
            names = w.words;
          }
          if (names.length === 0) {
            p(undefined, "LAUNCH needs at least one app name", `write ${USAGE.LAUNCH.usage}`);
            break;
          }
          const uniq = new Set<string>();
          for (const n of names) {
            checkAppName(n.value, (problem, fix) => p(n.start, `LAUNCH: ${problem}`, fix));
            if (uniq.has(n.value)) p(n.start, `LAUNCH lists app ${n.value} twice`, "list each app once");
            uniq.add(n.value);
          }
          if (problems.length === before) instructions.push({ kind, loc, apps: names.map((n) => n.value) });
          break;
        }
        case "KUBEVERSION": {
          const { words, problems: lp } = splitWords(rest, fullLookup, { single: true });
          lexProblems(lp);
          const range = words[0]?.value ?? "";
          if (!/[0-9*]/.test(range))
            p(0, `KUBEVERSION "${range}" is not a version range`, "write e.g. KUBEVERSION >=v1.22.0 <1.26.0");
          else if (problems.length === before) instructions.push({ kind, loc, range });
          break;
        }
        case "ARG": {
          const { words, problems: lp } = splitWords(rest, fullLookup);
          lexProblems(lp);
          for (const w of words) {
            const eq = w.value.indexOf("=");
            const name = eq < 0 ? w.value : w.value.slice(0, eq);
            const value = eq < 0 ? undefined : w.value.slice(eq + 1);
            if (!ENV_KEY.test(name)) {
              p(
                w.start,
                `ARG name "${name}" is not valid`,
                "use letters, digits and _ (not starting with a digit)",
              );
              continue;
            }
            if (name === ARCH_VAR) {
              p(
                w.start,
                "ARG ARCH is reserved: the builder sets ${ARCH} per platform",
                "remove this ARG and choose platforms with sealer build --platform",
              );
              continue;
            }
            args[name] = buildArgs[name] ?? value ?? args[name] ?? "";
            instructions.push({ kind, loc, name, ...(value !== undefined ? { value } : {}) });
          }
          break;
        }
        case "ENV":
        case "LABEL": {
          const keyRe = kind === "ENV" ? ENV_KEY : LABEL_KEY;
          const first = splitWords(rest, fullLookup);
          let kv: Record<string, string>;
          const firstWord = first.words[0];
          if (firstWord && !firstWord.value.includes("=")) {
            // Legacy form "ENV key value with spaces": the rest of the line is the value.
            const keyEnd = /^\S+/.exec(rest)?.[0].length ?? 0;
            const valueText = rest.slice(keyEnd);
            const key = firstWord.value;
            if (!keyRe.test(key)) p(firstWord.start, `${kind} key "${key}" is not valid`, KEY_FIX[kind]);
            if (valueText.trim() === "") {
              p(undefined, `${kind} ${key} has no value`, `write ${kind} ${key}=<value>`);
              break;
            }
            const v = splitWords(valueText, fullLookup, { single: true });
            lexProblems(v.problems.map((x) => ({ ...x, offset: x.offset + keyEnd })));
            kv = { [key]: v.words[0]?.value ?? "" };
          } else {
            lexProblems(first.problems);
            kv = keyValues(first.words, keyRe, kind, (offset, problem, fix) => p(offset, problem, fix));
          }
          if (kind === "ENV")
            for (const [k, v] of Object.entries(kv)) {
              const bad = checkEnvValue(k, [v]);
              if (bad)
                p(
                  undefined,
                  `ENV ${k}=${JSON.stringify(v)}: ${bad}`,
                  "fix the value, or leave it to the Clusterfile's spec.env",
                );
            }
          if (problems.length !== before) break;
          if (kind === "ENV") {
            Object.assign(env, kv);
            instructions.push({ kind, loc, env: kv });
          } else instructions.push({ kind, loc, labels: kv });
          break;
        }
        case "MAINTAINER":
          instructions.push({ kind, loc, value: rest });
          break;
        default: {
          const never: never = kind;
          throw new Error(`unhandled instruction ${String(never)}`);
        }
      }
    } catch (err) {
      if (!(err instanceof ExpansionTooLong)) throw err;
      problems.length = before;
      p(
        err.offset,
        `${kind}: substituting ARG/ENV values ${err.message}`,
        "check for ARGs that repeat each other; keep large content in files in the build context",
      );
    }
    // Each instruction is capped, but many instructions at the cap would still fill memory.
    for (const ins of instructions.slice(parsedBefore)) expanded += textSize(ins);
    if (expanded > MAX_EXPANDED_TOTAL_CHARS) {
      p(
        undefined,
        `the Kubefile grows past ${MAX_EXPANDED_TOTAL_CHARS} characters once ARG/ENV values are substituted (stopped here)`,
        "check for ARGs that repeat each other; keep large content in files in the build context",
      );
      break;
    }
  }

  problems.push(...orderProblems(file, seen));
  const declaredArgs = new Set(instructions.flatMap((i) => (i.kind === "ARG" ? [i.name] : [])));
  for (const k of Object.keys(buildArgs).sort())
    if (!declaredArgs.has(k))
      problems.push(
        `${file}: --build-arg ${k} is not declared by an ARG instruction; add "ARG ${k}" to the Kubefile or drop the --build-arg`,
      );

  const kf: Kubefile = { file, instructions, args, env };
  const from = instructions.find((i) => i.kind === "FROM");
  if (problems.length === 0 && from?.kind === "FROM" && from.image === "scratch")
    problems.push(...appNameProblems(kf, []));
  sortByLine(problems);
  throwIfProblems(`${file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`, problems);
  return kf;
}

/**
 * Checks that APPCMDS, APPENV and LAUNCH name apps declared earlier in this Kubefile (APP, CNI,
 * CSI) or inherited from the base image. The builder calls this with the base image's app names.
 */
export function checkAppNames(kf: Kubefile, inheritedApps: string[]): void {
  const problems = appNameProblems(kf, inheritedApps);
  throwIfProblems(`${kf.file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`, problems);
}

/** Orders problems by line (stable; problems without a line go last), so the list reads like the file. */
function sortByLine(problems: string[]): void {
  const lineOf = (s: string) => Number(/^.*?:(\d+): /.exec(s)?.[1] ?? Infinity);
  const keyed = problems.map((s, i) => ({ s, i, l: lineOf(s) }));
  keyed.sort((a, b) => a.l - b.l || a.i - b.i);
  keyed.forEach((k, i) => (problems[i] = k.s));
}

function appNameProblems(kf: Kubefile, inheritedApps: string[]): string[] {
  const problems: string[] = [];
  const declared = new Map<string, number>();
  for (const i of kf.instructions)
    if ((i.kind === "APP" || i.kind === "CNI" || i.kind === "CSI") && !declared.has(i.name))
      declared.set(i.name, i.loc.line);
  const inherited = new Set(inheritedApps);
  const known = [...new Set([...inheritedApps, ...declared.keys()])].sort();
  for (const i of kf.instructions) {
    const names = i.kind === "APPCMDS" || i.kind === "APPENV" ? [i.name] : i.kind === "LAUNCH" ? i.apps : [];
    for (const name of names) {
      if (inherited.has(name)) continue;
      const at = declared.get(name);
      if (at !== undefined && at < i.loc.line) continue;
      if (at !== undefined)
        problems.push(
          `${kf.file}:${i.loc.line}: ${i.kind} names app ${name}, which is declared later (line ${at}); move the ${i.kind} after its APP`,
        );
      else {
        const near = nearest(name, known);
        const hint = near
          ? `did you mean ${near}?`
          : known.length
            ? `known apps: ${known.join(", ")}`
            : "declare it with APP <name> local://<path> first";
        problems.push(
          `${kf.file}:${i.loc.line}: ${i.kind} names app ${name}, which no APP, CNI or CSI declares${inheritedApps.length ? " and the base image does not have" : ""}; ${hint}`,
        );
      }
    }
  }
  return problems;
}

const USAGE: Record<InstructionKind, { what: string; usage: string }> = {
  FROM: { what: "an image", usage: "FROM <image> or FROM scratch" },
  COPY: { what: "a source and a destination", usage: "COPY <src>... <dest>" },
  ADD: { what: "a source and a destination", usage: "ADD <src>... <dest>" },
  RUN: { what: "a command", usage: 'RUN <command> or RUN ["executable", "arg"]' },
  CMD: { what: "a command", usage: "CMD <command>" },
  CMDS: { what: "commands", usage: 'CMDS ["<command>", ...]' },
  APP: { what: "a name and sources", usage: "APP <name> local://<path>... or https://<url>" },
  APPCMDS: { what: "an app name and commands", usage: 'APPCMDS <app> ["<command>", ...]' },
  APPENV: { what: "an app name and key=value pairs", usage: "APPENV <app> key=value..." },
  LAUNCH: { what: "app names", usage: 'LAUNCH ["<app>", ...]' },
  CNI: { what: "a name and sources", usage: "CNI <name> local://<path>..." },
  CSI: { what: "a name and sources", usage: "CSI <name> local://<path>..." },
  KUBEVERSION: { what: "a version range", usage: "KUBEVERSION >=v1.22.0 <1.26.0" },
  ARG: { what: "a name", usage: "ARG <name>[=<default>]" },
  ENV: { what: "key=value pairs", usage: "ENV key=value..." },
  LABEL: { what: "key=value pairs", usage: "LABEL key=value..." },
  MAINTAINER: { what: "a value", usage: "MAINTAINER <name> <email>" },
};

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
const KEY_FIX = {
  ENV: "use letters, digits and _ (not starting with a digit)",
  LABEL: "use letters, digits, '.', '_', '-' and '/'",
} as const;
function checkAppName(name: string, report: (problem: string, fix: string) => void): void {
  const problem = appNameProblem(name);
  if (problem) report(problem, APP_NAME_FIX);
}

const PATH_FIX = "shorten the path (each name at most 255 characters, the whole path at most 4096)";

/** Why a path cannot exist on Linux (longer than PATH_MAX, or a name longer than NAME_MAX), if so. */
function pathTooLong(p: string): string | undefined {
  if (p.length > MAX_PATH_CHARS)
    return `"${clip(p, 40)}" is ${p.length} characters long; a path may have at most ${MAX_PATH_CHARS}`;
  const seg = p.split("/").find((x) => x.length > MAX_PATH_SEGMENT_CHARS);
  if (seg)
    return `"${clip(p, 40)}" has a name of ${seg.length} characters; a name in a path may have at most ${MAX_PATH_SEGMENT_CHARS}`;
  return undefined;
}

function keyValues(
  words: Array<{ value: string; start: number }>,
  keyRe: RegExp,
  kind: "ENV" | "LABEL" | "APPENV",
  report: (offset: number, problem: string, fix: string) => void,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.value.indexOf("=");
    if (eq < 0) {
      report(
        w.start,
        `${kind} expects key=value, got "${w.value}"`,
        `write ${kind === "APPENV" ? "APPENV <app> " : kind + " "}${w.value}=<value> (quote values with spaces)`,
      );
      continue;
    }
    const key = w.value.slice(0, eq);
    if (!keyRe.test(key))
      report(w.start, `${kind} key "${key}" is not valid`, kind === "LABEL" ? KEY_FIX.LABEL : KEY_FIX.ENV);
    else out[key] = w.value.slice(eq + 1);
  }
  return out;
}

/** CMDS / APPCMDS: a JSON array of commands, or one command in shell form. */
function commandList(
  text: string,
  lookup: Lookup,
  report: (offset: number, message: string) => void,
): string[] | undefined {
  if (!text.startsWith("[")) return [expandShell(text, lookup)];
  const r = parseJsonArray(text);
  if ("problem" in r) {
    report(r.problem.offset, r.problem.message);
    return undefined;
  }
  if (r.values.length === 0 || r.values.some((v) => v.trim() === "")) {
    report(0, "the command array holds no command or an empty one");
    return undefined;
  }
  return r.values.map((v) => expandShell(v, lookup));
}

function orderProblems(file: string, seen: Array<{ kind: InstructionKind; line: number }>): string[] {
  const problems: string[] = [];
  const at = (line: number, s: string) => problems.push(`${file}:${line}: ${s}`);
  const firstReal = seen.find((s) => s.kind !== "ARG");
  if (!firstReal) {
    at(
      seen[0]?.line ?? 1,
      `the Kubefile ${seen.length ? "has no FROM" : "has no instructions"}; start it with FROM <base image> or FROM scratch`,
    );
    return problems;
  }
  if (firstReal.kind !== "FROM")
    at(
      firstReal.line,
      `the first instruction must be FROM (only ARG may come before it), found ${firstReal.kind}; start the Kubefile with FROM <base image> or FROM scratch`,
    );
  const froms = seen.filter((s) => s.kind === "FROM");
  for (const f of froms.slice(1))
    at(
      f.line,
      `a second FROM (the first is at line ${(froms[0] as { line: number }).line}); a Kubefile has one FROM, remove this one`,
    );

  const cmdLines = seen.filter((s) => s.kind === "CMD").map((s) => s.line);
  for (const kind of ["LAUNCH", "CMDS"] as const) {
    const occ = seen.filter((s) => s.kind === kind);
    for (const o of occ.slice(1))
      at(
        o.line,
        `${kind} appears again (first at line ${(occ[0] as { line: number }).line}); keep a single ${kind}`,
      );
    for (const o of occ) {
      const after = seen.find((s) => s.line > o.line && s.kind !== "LAUNCH" && s.kind !== "CMDS");
      if (after)
        at(
          o.line,
          `${kind} must be the last instruction, but ${after.kind} follows at line ${after.line}; move ${kind} to the end of the Kubefile`,
        );
    }
  }
  const launch = seen.find((s) => s.kind === "LAUNCH");
  const cmds = seen.find((s) => s.kind === "CMDS");
  if (launch && cmds)
    at(
      Math.max(launch.line, cmds.line),
      `LAUNCH (line ${launch.line}) and CMDS (line ${cmds.line}) cannot both be used; keep LAUNCH to start apps, or CMDS for raw commands`,
    );
  if (launch && cmdLines.length)
    at(
      launch.line,
      `LAUNCH cannot be combined with CMD (line ${cmdLines.join(", ")}); replace the CMD lines with APPs, or drop LAUNCH`,
    );
  if (cmds && cmdLines.length)
    at(
      cmds.line,
      `CMDS cannot be combined with CMD (line ${cmdLines.join(", ")}); move those commands into CMDS`,
    );
  return problems;
}

const DOCKERFILE_ONLY: Record<string, string> = {
  ENTRYPOINT: "use CMDS for raw launch commands or LAUNCH for apps",
  WORKDIR: "RUN already runs in the image root; use paths relative to it",
  USER: "remove it: build steps run as the build user and files are owned by root",
  EXPOSE: "remove it: ports belong to the apps' manifests",
  VOLUME: "remove it: storage belongs to the apps' manifests",
  ONBUILD: "remove it",
  STOPSIGNAL: "remove it",
  HEALTHCHECK: "remove it: health checks belong to the apps' manifests",
  SHELL: "remove it: RUN uses /bin/sh",
};

function unknownInstruction(keyword: string): [string, string] {
  const up = keyword.toUpperCase();
  const docker = DOCKERFILE_ONLY[up];
  if (docker) return [`${up} is a Dockerfile instruction that Kubefiles do not have`, docker];
  const near = keyword.length <= 20 ? nearest(up, INSTRUCTION_KINDS as string[]) : undefined;
  return [
    `unknown instruction "${clip(keyword, 40)}"`,
    near ? `did you mean ${near}?` : `Kubefile instructions are ${INSTRUCTION_KINDS.join(", ")}`,
  ];
}

/** The closest candidate within edit distance 2 (or a third of the length), if any. */
function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toUpperCase(), c.toUpperCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length] as number;
}

function skipBlanks(s: string, i: number): number {
  while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  return i;
}

/** Characters held by an instruction's strings. */
function textSize(v: unknown): number {
  if (typeof v === "string") return v.length;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + textSize(x), 0);
  if (v && typeof v === "object") return Object.values(v).reduce((n: number, x) => n + textSize(x), 0);
  return 0;
}

/** True when a destination path climbs above the image root ("../x", "a/../../x"). */
function escapesRoot(dest: string): boolean {
  const n = path.posix.normalize(dest);
  return n === ".." || n.startsWith("../");
}

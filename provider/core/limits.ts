import { isUtf8 } from "node:buffer";
import * as fs from "node:fs";
import { UserError } from "./errors";
import { formatBytes } from "./log";

/**
 * Size limits on the text files users hand us (Kubefiles, Clusterfiles, plugin files). They sit
 * far above any real file (sealer's own largest are a few KiB; a Clusterfile that inlines
 * Config data stays well under a MiB) and far below what would exhaust memory or time, so a
 * hostile or broken input is refused with a message instead of hanging the tool.
 */
export const MAX_KUBEFILE_BYTES = 1024 * 1024;
export const MAX_CLUSTERFILE_BYTES = 4 * 1024 * 1024;
/** One Kubefile instruction after joining `\` continuations. */
export const MAX_INSTRUCTION_CHARS = 256 * 1024;
/** What one instruction may grow to once ARG/ENV values are substituted. */
export const MAX_EXPANDED_CHARS = 1024 * 1024;
/** What the whole Kubefile may grow to once ARG/ENV values are substituted. */
export const MAX_EXPANDED_TOTAL_CHARS = 16 * 1024 * 1024;
/** Linux PATH_MAX and NAME_MAX: a longer path cannot exist on the nodes. */
export const MAX_PATH_CHARS = 4096;
export const MAX_PATH_SEGMENT_CHARS = 255;
/** YAML nesting: kubeadm configurations, the deepest real documents, stay under 10 levels. */
export const MAX_YAML_DEPTH = 100;
/** YAML alias fan-out (the `yaml` package's maxAliasCount; its default). */
export const MAX_YAML_ALIAS_COUNT = 100;

/**
 * Reads a user's text file (`what`: "Kubefile", "Clusterfile"), refusing one larger than
 * `maxBytes` before reading it and naming the file in every message.
 */
export function readUserFile(file: string, what: string, maxBytes: number, hint: string): string {
  let size: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new UserError(`${what} ${file} is not a regular file; ${hint}`);
    size = st.size;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read ${what} ${file} (${describeFsError(err)}); ${hint}`);
  }
  if (size > maxBytes)
    throw new UserError(
      `${what} ${file} is ${formatBytes(size)}; a ${what} may be at most ${formatBytes(maxBytes)} (move large data into files the ${what} refers to)`,
    );
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new UserError(`cannot read ${what} ${file} (${describeFsError(err)}); ${hint}`);
  }
  // Not decoded leniently: a stray byte would become U+FFFD inside a label, a path or a command.
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const before = bytes.subarray(0, bad);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = bad - (before.lastIndexOf(0x0a) + 1) + 1;
    throw new UserError(
      `${file}:${line}: byte 0x${bytes[bad]!.toString(16).padStart(2, "0")} at column ${column} is not UTF-8 text; save the ${what} as UTF-8`,
    );
  }
  return bytes.toString("utf8");
}

/** Offset of the first byte that does not start a valid UTF-8 sequence, or -1. */
function firstInvalidUtf8(b: Buffer): number {
  if (isUtf8(b)) return -1;
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    const n =
      c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n === 0 || (n > 1 && !isUtf8(b.subarray(i, i + n)))) return i;
    i += n;
  }
  return -1;
}

/** Plain words for the file-system errors a user can act on, instead of Node's "ENOENT: ..." text. */
export function describeFsError(err: unknown): string {
  switch ((err as { code?: unknown } | null)?.code) {
    case "ENOENT":
      return "it does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    case "ENOTDIR":
      return "a part of the path is not a directory";
    case "ELOOP":
      return "too many symbolic links";
    case "ENAMETOOLONG":
      return "the path is too long";
    default:
      return "it cannot be read";
  }
}

/**
 * Plain words for a failed write into `dir`, with what to do, instead of Node's "ENOSPC: ..."
 * text: the cases a user can act on (space, quota, permissions, a read-only mount).
 */
export function describeFsWriteError(err: unknown, dir: string, elsewhere?: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  // What else to do than fix `dir`: move the data directory, or (`elsewhere`) write another place.
  const other = elsewhere ?? "set SEALER_HOME to";
  switch (code) {
    case "ENOSPC":
      return `the disk holding ${dir} is full; free space there${elsewhere ? "" : " (sealer prune removes unused blobs)"} or ${other} a larger disk, then try again`;
    case "EDQUOT":
      return `the disk quota for ${dir} is used up; free space or ${other} another disk, then try again`;
    case "EACCES":
    case "EPERM":
      return `permission denied: this user cannot write in ${dir}; make it writable or ${other} a directory it owns`;
    case "EROFS":
      return `${dir} is on a read-only file system; ${other} a writable directory`;
    case "EFBIG":
      return `the file is larger than this user may write (ulimit -f) or than the file system holding ${dir} allows; raise the limit or ${other} another disk`;
    case "EMFILE":
    case "ENFILE":
      return "too many files are open; raise the limit (ulimit -n) and try again";
    default:
      return `it could not be written (${typeof code === "string" ? code : "unknown error"}); check ${dir} and try again`;
  }
}

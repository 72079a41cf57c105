/**
 * A deterministic tar encoder (POSIX ustar, PAX extended headers when a field does not fit).
 *
 * Everything that could differ between machines or runs is fixed: mtime 0, uid/gid 0, empty
 * uname/gname, modes normalised (see `normalizeMode`). The caller gives entries in the order it
 * wants them written; layer builders sort them first (see layer.ts), so the bytes depend only
 * on paths, types, normalised modes, link targets and file contents.
 */
import { UserError } from "../errors";
import { MAX_PATH_CHARS } from "../limits";

export type TarEntryType = "file" | "dir" | "symlink";

export interface TarHeader {
  /** Path inside the archive, no leading "/" or "./"; directories end with "/". */
  path: string;
  type: TarEntryType;
  /** Permission bits (already normalised). */
  mode: number;
  /** Content size for files, 0 otherwise. */
  size: number;
  linkTarget?: string;
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Largest size an 11-digit octal field can hold; bigger files get a PAX `size` record. */
const MAX_OCTAL_SIZE = 0o77777777777;

/** Directories and anything executable by someone -> 0755; everything else 0644; links 0777. */
export function normalizeMode(type: TarEntryType, mode: number): number {
  if (type === "symlink") return 0o777;
  if (type === "dir") return 0o755;
  return mode & 0o111 ? 0o755 : 0o644;
}

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function writeString(buf: Buffer, offset: number, width: number, value: string): void {
  buf.write(value, offset, Math.min(width, Buffer.byteLength(value)), "utf8");
}

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

/** Splits a long path into ustar prefix/name, or undefined when it cannot be split. */
function splitUstar(p: string): { prefix: string; name: string } | undefined {
  if (!isAscii(p)) return undefined;
  if (p.length <= 100) return { prefix: "", name: p };
  // The slash at which we split is dropped; a trailing "/" of a dir must stay in `name`.
  for (let i = p.length - 1; i > 0; i--) {
    if (p[i] !== "/" || i === p.length - 1) continue;
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
    if (prefix.length <= 155) break;
  }
  return undefined;
}

function typeFlag(type: TarEntryType | "pax"): string {
  switch (type) {
    case "file":
      return "0";
    case "dir":
      return "5";
    case "symlink":
      return "2";
    case "pax":
      return "x";
  }
}

function rawHeader(
  name: string,
  prefix: string,
  type: TarEntryType | "pax",
  mode: number,
  size: number,
  linkName: string,
): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, name);
  writeString(h, 100, 8, octal(mode, 8));
  writeString(h, 108, 8, octal(0, 8));
  writeString(h, 116, 8, octal(0, 8));
  writeString(h, 124, 12, octal(size, 12));
  writeString(h, 136, 12, octal(0, 12));
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(h, 156, 1, typeFlag(type));
  writeString(h, 157, 100, linkName);
  writeString(h, 257, 6, "ustar\0");
  writeString(h, 263, 2, "00");
  writeString(h, 329, 8, octal(0, 8));
  writeString(h, 337, 8, octal(0, 8));
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i] as number;
  writeString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** One PAX record "<len> key=value\n", where len counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (len !== bodyLen + String(len).length) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

/** Zero padding after `size` content bytes. */
export function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : ZERO_BLOCK.subarray(0, BLOCK - rem);
}

/** The header block(s) for an entry: a PAX header first when path, link or size do not fit. */
export function encodeHeader(entry: TarHeader): Buffer {
  // Longer paths cannot exist on a node, and readers cap PAX headers (tar-stream refuses them
  // as "Header exceeds max size"): refuse here rather than write a layer nobody can read.
  for (const [what, p] of [
    ["path", entry.path],
    ["link target", entry.linkTarget ?? ""],
  ] as const)
    if (p.length > MAX_PATH_CHARS)
      throw new UserError(
        `${what} "${p.slice(0, 40)}…" is ${p.length} characters long; a path in an image may have at most ${MAX_PATH_CHARS} (Linux PATH_MAX)`,
      );
  const records: string[] = [];
  let name = entry.path;
  let prefix = "";
  const split = splitUstar(entry.path);
  if (split) {
    name = split.name;
    prefix = split.prefix;
  } else {
    records.push(paxRecord("path", entry.path));
    name = truncateUtf8(entry.path.replace(/[^\x20-\x7e]/g, "_"), 100);
  }
  let link = entry.linkTarget ?? "";
  if (link && (!isAscii(link) || link.length > 100)) {
    records.push(paxRecord("linkpath", link));
    link = truncateUtf8(link.replace(/[^\x20-\x7e]/g, "_"), 100);
  }
  let size = entry.size;
  if (size > MAX_OCTAL_SIZE) {
    records.push(paxRecord("size", String(size)));
    size = 0;
  }
  const main = rawHeader(name, prefix, entry.type, entry.mode, size, link);
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(""), "utf8");
  const base = entry.path.replace(/\/$/, "").split("/").pop() ?? "entry";
  const paxName = truncateUtf8(`PaxHeaders/${base.replace(/[^\x20-\x7e]/g, "_")}`, 100);
  return Buffer.concat([
    rawHeader(paxName, "", "pax", 0o644, pax.length, ""),
    pax,
    padding(pax.length),
    main,
  ]);
}

function truncateUtf8(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

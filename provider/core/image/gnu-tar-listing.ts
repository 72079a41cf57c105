/**
 * What GNU tar itself reads from a layer: its verbose listing, parsed exactly (names and link
 * targets as bytes). The layer check simulates the tree with its own tar reader, but nodes
 * unpack with GNU tar, and two readers can disagree on a crafted archive: bytes after the
 * end-of-archive blocks (a second gzip member), a malformed PAX record, a NUL in a PAX path, a
 * typeflag one of them does not know, a size field one of them parses loosely, names that are not
 * UTF-8. Comparing both readings entry by entry, and refusing any difference, makes the check's
 * proof hold for what GNU tar will actually write.
 */
import { spawn } from "node:child_process";

export interface GnuEntry {
  /** The first character of GNU tar's mode column: - d l h c b p (C for contiguous). */
  type: string;
  name: Buffer;
  /** Symlink target (`->`) or hard-link target (`link to`). */
  link?: Buffer;
}

/** Lists `file` with the build machine's GNU tar; throws with tar's own words when it refuses the archive. */
export function gnuTarListing(file: string): Promise<GnuEntry[]> {
  return new Promise((resolve, reject) => {
    // C locale: every non-ASCII byte is printed as an octal escape, so names compare as bytes.
    const child = spawn(
      "tar",
      ["--list", "--verbose", "--numeric-owner", "--quoting-style=c", "--no-recursion", "-f", file],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C", LANG: "C" } },
    );
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString("latin1")).slice(-4000)));
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(
        new GnuTarUnavailable(e.code === "ENOENT" ? "tar is not installed" : (e.code ?? "it cannot run")),
      ),
    );
    child.on("close", (code) => {
      // Any complaint (an unknown type "extracted as normal file", a lone zero block, a header
      // it skipped) means GNU tar and a careful reader may not agree: refused like a failure.
      const complaint = err.split("\n").find((l) => l.trim() !== "" && !BENIGN.some((re) => re.test(l)));
      if (code !== 0 || complaint)
        return reject(new GnuTarRefused(complaint?.replace(/^tar: /, "") ?? `tar exited ${code}`));
      try {
        resolve(parseListing(Buffer.concat(out).toString("latin1")));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

/** Notes that change no name: GNU tar strips a leading "/" itself, and skips xattr PAX keywords. */
const BENIGN = [
  /^tar: Removing leading [`']\/+' from (member names|hard link targets)$/,
  /^tar: Ignoring unknown extended header keyword /,
];

export class GnuTarUnavailable extends Error {}
export class GnuTarRefused extends Error {}

/** Parses `tar -tv --quoting-style=c --numeric-owner` lines (read as latin1: one char per byte). */
export function parseListing(text: string): GnuEntry[] {
  const entries: GnuEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    // The columns before the name hold no quote: the name is the first C-quoted string.
    const q = line.indexOf('"');
    if (q < 0) throw new Error(`unexpected tar listing line: ${JSON.stringify(line.slice(0, 200))}`);
    const name = readQuoted(line, q);
    const entry: GnuEntry = { type: line[0]!, name: name.value };
    // "?": a typeflag GNU tar does not know, which it unpacks as a plain file.
    if (!"-dlhcbpC".includes(entry.type))
      throw new GnuTarRefused(`it reads an entry of unknown type "${entry.type}" as a plain file`);
    const rest = line.slice(name.end);
    const arrow = / (->|link to) "/.exec(rest);
    if (arrow && arrow.index === 0) entry.link = readQuoted(rest, arrow[0].length - 1).value;
    else if (rest !== "")
      throw new Error(`unexpected tar listing line: ${JSON.stringify(line.slice(0, 200))}`);
    entries.push(entry);
  }
  return entries;
}

const ESCAPES: Record<string, number> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  "\\": 92,
  '"': 34,
  "?": 63,
};

/** The bytes of the C-quoted string starting at `at` (a `"`), and the index just past its closing quote. */
function readQuoted(s: string, at: number): { value: Buffer; end: number } {
  const bytes: number[] = [];
  let i = at + 1;
  while (i < s.length && s[i] !== '"') {
    if (s[i] !== "\\") {
      bytes.push(s.charCodeAt(i++));
      continue;
    }
    const c = s[i + 1] ?? "";
    const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1, i + 4));
    if (oct) {
      bytes.push(parseInt(oct[0], 8));
      i += 1 + oct[0].length;
    } else if (c in ESCAPES) {
      bytes.push(ESCAPES[c]!);
      i += 2;
    } else throw new Error(`unexpected escape \\${c} in a tar listing`);
  }
  if (s[i] !== '"') throw new Error("unterminated name in a tar listing");
  return { value: Buffer.from(bytes), end: i + 1 };
}

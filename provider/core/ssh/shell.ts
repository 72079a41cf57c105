/**
 * Pure helpers that build the shell text we send to nodes. Nodes are plain Debian hosts: only
 * POSIX sh, coreutils, tar, gzip and sha256sum are assumed.
 */

import { shellQuote } from "../common/shell-quote";

export { shellQuote };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export A='1'; export B='2'; ` (names are validated: a bad name is a programming error). */
export function envPrefix(env: Record<string, string> | undefined): string {
  if (!env) return "";
  return Object.keys(env)
    .sort()
    .map((k) => {
      if (!ENV_NAME.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
      return `export ${k}=${shellQuote(env[k] ?? "")}; `;
    })
    .join("");
}

export type SudoMode = "none" | "nopasswd" | "password";

/**
 * Wraps a command so it runs as root for a sudo user.
 * - nopasswd: `sudo -n sh -c '<cmd>'`
 * - password: `sudo -k -S -p '' sh -c '<cmd>'`; the caller writes the password and a newline
 *   as the first line of stdin. `-k` makes sudo always read it (a cached timestamp would
 *   otherwise leave the password line in the command's stdin), and sudo reads the password
 *   one byte at a time, so the rest of stdin reaches the command untouched. The password is
 *   never on a command line.
 */
export function wrapCommand(command: string, sudo: SudoMode, env?: Record<string, string>): string {
  const inner = envPrefix(env) + command;
  switch (sudo) {
    case "none":
      return env ? inner : command;
    case "nopasswd":
      return `sudo -n sh -c ${shellQuote(inner)}`;
    case "password":
      return `sudo -k -S -p '' sh -c ${shellQuote(inner)}`;
  }
}

/** The last `n` lines of a text, for error messages. */
export function tailLines(text: string, n = 20): string {
  const lines = text.replace(/\n+$/, "").split("\n");
  return lines.slice(Math.max(0, lines.length - n)).join("\n");
}

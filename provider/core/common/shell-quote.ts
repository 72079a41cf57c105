/**
 * Quotes one word for POSIX sh: `it's` -> `'it'\''s'`; a word of only safe characters stays as
 * it is, so ordinary commands read the same. Here (not in ssh/) so the pure planner can quote the
 * commands it plans.
 */
export function shellQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return "'" + word.replace(/'/g, `'\\''`) + "'";
}

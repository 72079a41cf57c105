/**
 * Text of JavaScript and Node errors that must never reach a user: a message holding one of these
 * is a crash dressed as a problem (a TypeError's words, a stack frame, a raw errno).
 */
export const JS_ERROR_TEXT: RegExp[] = [
  /Cannot read propert/,
  /Cannot set propert/,
  /is not a function/,
  /is not iterable/,
  /is not a constructor/,
  /Invalid string length/,
  /Invalid array length/,
  /Maximum call stack/,
  /out of memory/i,
  /\bundefined\b/,
  /\[object Object\]/,
  /\bNaN\b/,
  /\b(ENOENT|EACCES|EISDIR|ENOTDIR|ENAMETOOLONG)\b/,
  /must be a string without null bytes/,
  /Unexpected token/,
  /Header exceeds max size/,
  /\bat [^\n]*\.[jt]s:\d+/,
  /^\s+at /m,
  /\(node:\d+\) \w*Warning/,
];

/** The JavaScript error patterns `message` holds (none for a proper user message). */
export function jsErrorText(message: string): RegExp[] {
  return JS_ERROR_TEXT.filter((re) => re.test(message));
}

export * from "./types";
export { parseKubefile, checkAppNames } from "./parser";
export { checkContext, matchContextPaths, isUrlSource } from "./context";
export { splitLogicalLines, splitWords, expandShell, shellQuote } from "./lexer";

import { MAX_PATH_SEGMENT_CHARS } from "../limits";
import { clip } from "./lexer";

/**
 * sealer takes the first word as the app name, whatever it is, and uses it as a directory name;
 * we accept the names a directory can safely have (capitals included, as in sealer's own
 * `APP businessApp ...`) and refuse the rest (a "/" or ".." would leave application/apps/).
 * The same rule holds for app names from a Clusterfile's Config and from a loaded image's
 * metadata: the name becomes that directory and a word of launch commands.
 */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const APP_NAME_FIX = `use at most ${MAX_PATH_SEGMENT_CHARS} letters, digits, '.', '_' and '-', starting with a letter or digit (it becomes the directory application/apps/<name>/)`;

/** Why `name` cannot be an app name (without the fix), if so. */
export function appNameProblem(name: string): string | undefined {
  if (APP_NAME.test(name) && name.length <= MAX_PATH_SEGMENT_CHARS) return undefined;
  return `app name "${clip(name, 60)}" is not valid`;
}

/** appNameProblem with what to do, for callers that report one message (a Clusterfile, an image). */
export function appNameError(name: string): string | undefined {
  const problem = appNameProblem(name);
  return problem && `${problem}: ${APP_NAME_FIX}`;
}

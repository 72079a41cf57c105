/**
 * Which Helm binary renders charts at build time: `$SEALER_HELM`, else `helm` on PATH, else
 * `<package root>/.tools/bin/helm` (where the set-up script puts the one it extracts). Charts are
 * rendered by real Helm because only Helm renders every chart the way Helm installs it; a
 * home-made renderer silently misses images whenever a chart uses a function it lacks.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import * as semver from "semver";
import { UserError } from "../../errors";
import { packageRoot } from "../../package-info";

const run = promisify(execFile);

/** `helm template --include-crds` of a local chart directory works offline since 3.8. */
export const MIN_HELM_VERSION = "3.8.0";

export interface HelmBinary {
  path: string;
  version: string;
}

const HOW_TO_GET =
  "install Helm 3.8 or newer (https://helm.sh/docs/intro/install/) and put it on PATH, set $SEALER_HELM to its path, or run `bash .ci/run --deps-only` in the pulumi-sealer checkout to extract one to .tools/bin/helm";

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

/** The binary to use and where it came from (for messages), without running it. */
export function locateHelm(env: NodeJS.ProcessEnv = process.env): { path: string; from: string } {
  const explicit = env.SEALER_HELM?.trim();
  if (explicit) {
    if (!executable(explicit))
      throw new UserError(`$SEALER_HELM is "${explicit}", which is not an executable file; ${HOW_TO_GET}`);
    return { path: explicit, from: "$SEALER_HELM" };
  }
  const found = onPath("helm", env);
  if (found) return { path: found, from: "PATH" };
  const bundled = path.join(packageRoot(__dirname), ".tools", "bin", "helm");
  if (executable(bundled)) return { path: bundled, from: "the package's .tools/bin" };
  throw new UserError(`full build mode renders Helm charts with Helm, and none was found; ${HOW_TO_GET}`);
}

const checked = new Map<string, Promise<HelmBinary>>();

/** The located binary, once its version is known to be new enough (checked once per path). */
export function helmBinary(env: NodeJS.ProcessEnv = process.env): Promise<HelmBinary> {
  const where = locateHelm(env);
  let p = checked.get(where.path);
  if (!p) {
    p = checkVersion(where.path, where.from);
    p.catch(() => checked.delete(where.path));
    checked.set(where.path, p);
  }
  return p;
}

async function checkVersion(file: string, from: string): Promise<HelmBinary> {
  let out: string;
  try {
    out = (await run(file, ["version", "--template", "{{.Version}}"], { timeout: 30_000 })).stdout;
  } catch (err) {
    const detail = (err as { stderr?: string }).stderr?.trim() || (err as Error).message.split("\n")[0];
    throw new UserError(`${file} (Helm from ${from}) did not run \`helm version\`: ${detail}; ${HOW_TO_GET}`);
  }
  const version = semver.coerce(out.trim())?.version;
  if (!version)
    throw new UserError(`${file} (Helm from ${from}) printed no version ("${out.trim()}"); ${HOW_TO_GET}`);
  if (semver.lt(version, MIN_HELM_VERSION))
    throw new UserError(
      `${file} (Helm from ${from}) is version ${version}; full build mode needs ${MIN_HELM_VERSION} or newer: ${HOW_TO_GET}`,
    );
  return { path: file, version };
}

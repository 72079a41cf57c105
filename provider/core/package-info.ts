import * as fs from "node:fs";
import * as path from "node:path";

/**
 * The package root (the directory holding package.json) above `from`. Code runs from
 * provider/ (tsx), from dist/provider/ (compiled) and from node_modules/pulumi-sealer/dist/…
 * (installed), so the root is found by walking up rather than by a fixed relative path.
 */
export function packageRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
}

let version: string | undefined;

/** This package's version from package.json. */
export function packageVersion(): string {
  version ??=
    (JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version?: string })
      .version ?? "0.0.0";
  return version;
}

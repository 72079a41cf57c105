import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { packageRoot } from "../../resources/common";
import { schemaText } from "../../resources/schema";

/** `sealer pulumi schema`: the Pulumi package schema of the sealer resources (what schema.json holds). */
export function register(program: Command): void {
  const group = program
    .command("pulumi")
    .description("Pulumi helpers: the package schema of the ClusterImage, Infra and Cluster resources");
  group
    .command("schema")
    .description("print the Pulumi package schema (schema.json) generated from the resource descriptions")
    .action(() => {
      const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(__dirname), "package.json"), "utf8")) as {
        version: string;
      };
      process.stdout.write(schemaText(pkg.version));
    });
}

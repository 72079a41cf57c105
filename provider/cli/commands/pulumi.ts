import type { Command } from "commander";
import { packageVersion } from "../../core/package-info";
import { schemaText } from "../../shared/schema";

/** `sealer pulumi schema`: the Pulumi package schema of the sealer resources (what schema.json holds). */
export function register(program: Command): void {
  const group = program
    .command("pulumi")
    .description("Pulumi helpers: the package schema of the ClusterImage, Infra and Cluster resources");
  group
    .command("schema")
    .description("print the Pulumi package schema (schema.json) generated from the resource descriptions")
    .action(() => {
      process.stdout.write(schemaText(packageVersion()));
    });
}

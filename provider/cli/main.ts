import { Command, CommanderError } from "commander";
import { StepError, UserError } from "../core/errors";
import { redact } from "../core/log";
import { packageVersion } from "../core/package-info";
import { ensureSealerHome } from "../core/paths";
import * as images from "./commands/images";
import * as registry from "./commands/registry";
import * as plan from "./commands/plan";
import * as cluster from "./commands/cluster";
import * as lifecycle from "./commands/lifecycle";
import * as nodes from "./commands/nodes";
import * as infra from "./commands/infra";
import * as archive from "./commands/archive";
import * as pulumiCmd from "./commands/pulumi";
import * as check from "./commands/check";
import { reportInterruption } from "./interrupt";
import { attachProgress } from "./progress";

/** Builds the `sealer` program. Each command group lives in its own file under commands/. */
export function buildProgram(): Command {
  const program = new Command("sealer")
    .description("Build, share and run cluster images: a whole Kubernetes cluster and its apps as one image.")
    .version(packageVersion())
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    // commander prints its own usage errors (and help, version); it throws instead of exiting,
    // so main() decides the exit code (usageExitCode). Subcommands inherit this.
    .exitOverride()
    // Before any command writes into it, so the data directory is never created world-readable.
    .hook("preAction", () => void ensureSealerHome());
  for (const group of [images, archive, registry, plan, cluster, lifecycle, check, nodes, infra, pulumiCmd])
    group.register(program);
  return program;
}

/**
 * The exit code for a command line commander refused (it printed why): 2, as for any other bad
 * input (UserError), except under `plan --detailed-exitcode`, where 2 means "changes pending" and
 * an error must be 1. Help and version are not errors: 0.
 */
function usageExitCode(err: CommanderError, argv: string[]): number {
  if (err.exitCode === 0) return 0;
  return plan.asksDetailedExitcode(argv.slice(2)) ? 1 : 2;
}

export async function main(argv: string[]): Promise<void> {
  const detachProgress = attachProgress();
  let stopReporting: () => void = () => undefined;
  const program = buildProgram().hook("preAction", (_program, action) => {
    stopReporting = reportInterruption(action.name(), detachProgress);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    stopReporting();
    detachProgress();
    if (err instanceof CommanderError) process.exit(usageExitCode(err, argv));
    // A failed step is one message built from its fields (host, step, cause), not a stack; the
    // run stopped part-way, which is exit code 1 whatever the cause.
    // Error texts go through the same redactor as log lines: a failed command's output tail, or
    // a registry's answer, may echo a password.
    if (err instanceof StepError) {
      process.stderr.write(`sealer: ${redact(err.message)}\n`);
      process.exit(1);
    }
    if (err instanceof UserError) {
      process.stderr.write(`sealer: ${redact(err.message)}\n`);
      process.exit(err.exitCode);
    }
    throw err;
  }
  stopReporting();
  detachProgress();
}

import type { Command } from "commander";
import { clusterFromFlags, type ClusterSpec } from "../../core/clusterfile";
import { readClusterfile } from "../../core/lifecycle/cluster-ref";
import { UserError } from "../../core/errors";
import { OciLayout } from "../../core/image/layout";
import { dataPaths } from "../../core/paths";
import { assembleDesired, planInstall, planningImage } from "../../core/session";
import type { Plan } from "../../core/plan/types";
import { loadStateOrEmpty } from "../../core/state";
import { planDeleteAll } from "../../core/lifecycle/delete-all";
import { planRollbackOf } from "../../core/lifecycle/upgrade";
import { type HostFlagOpts } from "../host-flags";
import { collect, planJson, planMarkdown, planText, printJson } from "../output";

interface PlanOpts extends HostFlagOpts {
  file?: string;
  json?: boolean;
  platform?: string;
  format?: string;
  destroy?: boolean;
  rollback?: boolean;
  detailedExitcode?: boolean;
}

/**
 * `sealer plan -f Clusterfile` / `sealer plan IMAGE -m … -n …`: what an apply would run, against
 * the recorded state; `--destroy` / `--rollback`: what delete -a / rollback would run. Every
 * format carries the plan digest `sealer apply --plan-digest` checks.
 */
export function register(program: Command): void {
  program
    .command("plan [IMAGE]")
    .description(
      "Show the steps an apply would run against the recorded state of the cluster (a full install when there is none)",
    )
    .option("-f, --file <Clusterfile>", "Clusterfile to plan")
    .option("-m, --masters <ips>", "master IPs (comma list, ranges a-b)")
    .option("-n, --nodes <ips>", "worker IPs (comma list, ranges a-b)")
    .option("-u, --user <user>", "ssh user")
    .option("-p, --passwd <password>", "ssh password")
    .option("--pk <file>", "ssh private key file")
    .option("--pk-passwd <passphrase>", "passphrase of the private key")
    .option("--port <port>", "ssh port")
    .option("-e, --env <k=v>", "cluster env (repeatable)", collect, [])
    .option("--cluster-name <name>", "cluster name (flag form)")
    .option(
      "--platform <os/arch>",
      "platform to assume for hosts whose platform is not recorded yet (default: the image's default; apply probes them with uname -m)",
    )
    .option("--json", "print the plan as JSON (same as --format json)")
    .option("--format <format>", "text, json or markdown (a review table for a pull request comment)")
    .option("--destroy", "show what sealer delete -a (and pulumi destroy) would run on the cluster")
    .option("--rollback", "show what sealer rollback would run on the cluster")
    .option("--detailed-exitcode", "exit 0 when nothing would change, 2 when steps are pending, 1 on error")
    .action(async (image: string | undefined, opts: PlanOpts) => {
      try {
        const format = formatOf(opts);
        const p = await planFor(image, opts);
        if (format === "json") printJson(planJson(p));
        else if (format === "markdown")
          process.stdout.write(
            planMarkdown(p, opts.destroy || opts.rollback ? undefined : applyHint(image, opts)),
          );
        else process.stdout.write(planText(p));
        if (opts.detailedExitcode && (p.steps.length > 0 || p.replace)) process.exitCode = 2;
      } catch (err) {
        // 2 means "changes pending" here, so an error must not exit 2.
        if (opts.detailedExitcode && err instanceof UserError)
          throw new UserError(err.message, { cause: err, exitCode: 1 });
        throw err;
      }
    });
}

/**
 * Whether a command line (the words after `sealer`) asks for `plan --detailed-exitcode`, whose
 * exit codes give 2 its own meaning. Read from the words, for a line commander refused before it
 * parsed the options.
 */
export function asksDetailedExitcode(args: readonly string[]): boolean {
  return args[0] === "plan" && args.includes("--detailed-exitcode");
}

const FORMATS = ["text", "json", "markdown"] as const;

function formatOf(opts: PlanOpts): (typeof FORMATS)[number] {
  const f = opts.format ?? (opts.json ? "json" : "text");
  if (!(FORMATS as readonly string[]).includes(f))
    throw new UserError(`sealer plan --format ${f}: use one of ${FORMATS.join(", ")}`);
  if (opts.json && f !== "json")
    throw new UserError(`sealer plan: --json and --format ${f} contradict each other`);
  return f as (typeof FORMATS)[number];
}

async function planFor(image: string | undefined, opts: PlanOpts): Promise<Plan> {
  if (opts.destroy && opts.rollback)
    throw new UserError("sealer plan: give --destroy or --rollback, not both");
  if (opts.destroy || opts.rollback) {
    if (image || opts.masters || opts.nodes)
      throw new UserError(
        `sealer plan --${opts.destroy ? "destroy" : "rollback"} acts on a recorded cluster: give -f Clusterfile or --cluster-name NAME, not IMAGE/-m/-n`,
      );
    const ref = {
      ...(opts.file ? { clusterfile: opts.file } : {}),
      ...(opts.clusterName ? { clusterName: opts.clusterName } : {}),
    };
    return opts.destroy ? planDeleteAll(ref) : planRollbackOf(ref);
  }
  return planCluster(readSpec(image, opts), { platform: opts.platform });
}

/** The apply command that runs what was planned (for the markdown's digest line). */
function applyHint(image: string | undefined, opts: PlanOpts): string {
  if (opts.file) return `sealer apply -f ${opts.file}`;
  return `sealer run ${image ?? "IMAGE"}${opts.masters ? ` -m ${opts.masters}` : ""}${opts.nodes ? ` -n ${opts.nodes}` : ""}`;
}

function readSpec(image: string | undefined, opts: PlanOpts): ClusterSpec {
  if (opts.file) {
    if (image || opts.masters || opts.nodes)
      throw new UserError("give either -f Clusterfile or IMAGE with -m/-n flags, not both");
    return readClusterfile(opts.file);
  }
  if (!image)
    throw new UserError("nothing to plan: give -f Clusterfile, or IMAGE with -m MASTERS [-n NODES]");
  return clusterFromFlags({
    image,
    masters: opts.masters,
    nodes: opts.nodes,
    user: opts.user,
    password: opts.passwd,
    pk: opts.pk,
    pkPasswd: opts.pkPasswd,
    port: opts.port,
    env: opts.env,
    clusterName: opts.clusterName,
  });
}

/**
 * Plans `spec` against its recorded state with facts of its image from the local store. Planning
 * never contacts a host: recorded platforms are used, unknown hosts get --platform (or the
 * image's default, and the distribute reason says the platform was not probed).
 */
export async function planCluster(
  spec: ClusterSpec,
  opts: { platform?: string; home?: string } = {},
): Promise<Plan> {
  const image = await planningImage(new OciLayout(dataPaths.store(opts.home)), spec.image, spec);
  const applied = await loadStateOrEmpty(spec.name, opts.home);
  const desired = await assembleDesired({
    spec,
    image,
    applied,
    ...(opts.platform ? { platform: opts.platform } : {}),
  });
  return planInstall(desired, applied);
}

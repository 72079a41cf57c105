import type { Command } from "commander";
import { clusterFromFlags, whereInClusterfile, type ClusterSpec } from "../../core/clusterfile";
import { readClusterfile } from "../../core/lifecycle/cluster-ref";
import { UserError, wrap } from "../../core/errors";
import { formatPlatform, parsePlatform } from "../../core/image/store";
import { OciLayout } from "../../core/image/layout";
import { planningFacts } from "../../core/apply";
import { dataPaths } from "../../core/paths";
import { plan } from "../../core/plan/planner";
import type { Plan } from "../../core/plan/types";
import { loadStateOrEmpty } from "../../core/state";
import { collect, printJson } from "../output";

interface PlanOpts {
  file?: string;
  json?: boolean;
  masters?: string;
  nodes?: string;
  user?: string;
  passwd?: string;
  pk?: string;
  pkPasswd?: string;
  port?: string;
  env?: string[];
  clusterName?: string;
  platform?: string;
}

/** `sealer plan -f Clusterfile [--json]` / `sealer plan IMAGE -m … -n …`: what an apply would run, against the recorded state. */
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
    .option("--json", "print the plan as JSON")
    .action(async (image: string | undefined, opts: PlanOpts) => {
      const spec = readSpec(image, opts);
      const p = await planCluster(spec, { platform: opts.platform });
      if (opts.json) printJson(planJson(p));
      else process.stdout.write(planText(p));
    });
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

/** Plans `spec` against its recorded state with facts of its image from the local store. */
export async function planCluster(
  spec: ClusterSpec,
  opts: { platform?: string; home?: string } = {},
): Promise<Plan> {
  const layout = new OciLayout(dataPaths.store(opts.home));
  let facts;
  try {
    // Without a platform: the facts apply uses (every platform's layers; each host gets its own).
    facts = await planningFacts(layout, spec.image);
  } catch (err) {
    // A Clusterfile's image is named where it is written: "Clusterfile:5 spec.image: ...".
    const where = whereInClusterfile(spec, ["spec", "image"]) ?? `image ${spec.image}`;
    if (err instanceof UserError) throw wrap(where, err);
    throw new UserError(
      `${where}: image ${spec.image} cannot be read from the local store: run sealer pull ${spec.image} or sealer build first`,
      { cause: err },
    );
  }
  const applied = await loadStateOrEmpty(spec.name, opts.home);
  // Planning never contacts a host: recorded platforms are used, unknown hosts get --platform
  // (or the image's default, and the distribute reason says the platform was not probed).
  const hostPlatforms: Record<string, string> = {};
  if (opts.platform) {
    const want = formatPlatform(parsePlatform(opts.platform));
    for (const ip of spec.hosts.flatMap((h) => h.ips))
      if (!applied.hosts[ip]?.platform) hostPlatforms[ip] = want;
  }
  return plan({ cluster: spec, image: facts, hostPlatforms }, applied);
}

export function planJson(p: Plan): unknown {
  return {
    cluster: p.cluster,
    ...(p.replace ? { replace: p.replace } : {}),
    warnings: p.warnings,
    steps: p.steps.map((s) => ({ id: s.id, kind: s.kind, hosts: s.hosts, reason: s.reason, after: s.after })),
  };
}

export function planText(p: Plan): string {
  const lines: string[] = [];
  if (p.replace) lines.push(`Cluster ${p.cluster} cannot be changed in place: ${p.replace}`);
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  if (!p.replace) {
    if (p.steps.length === 0) lines.push(`Cluster ${p.cluster}: nothing to do (0 steps).`);
    else {
      lines.push(`Cluster ${p.cluster}: ${p.steps.length} step${p.steps.length === 1 ? "" : "s"}`);
      const width = String(p.steps.length).length;
      p.steps.forEach((s, i) =>
        lines.push(
          `${String(i + 1).padStart(width)}. ${s.kind.padEnd(17)} ${s.hosts.join(",").padEnd(15)} ${s.reason}`,
        ),
      );
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * `sealer run IMAGE -m IPs -n IPs ...` and `sealer apply -f Clusterfile`: run a cluster image
 * onto hosts, re-applying only what changed. Both print what ran; `--json` prints
 * `{ "cluster": …, "steps": [ { "kind", "hosts", "reason" } ] }` on stdout (logs go to stderr).
 */
import { Option, type Command } from "commander";
import { intFlag } from "../int-flag";
import { applyCluster, type ApplyResult } from "../../core/apply";
import {
  clusterFromFlags,
  DISTRIBUTION_MODES,
  type ClusterSpec,
  type DistributionMode,
} from "../../core/clusterfile";
import { readClusterfile } from "../../core/lifecycle/cluster-ref";
import { UserError } from "../../core/errors";
import { checkDrift, forgetDrifted } from "../../core/drift";
import { log } from "../../core/log";
import { loadState, saveState } from "../../core/state";
import { type HostFlagOpts } from "../host-flags";
import { ranSteps } from "../../core/lifecycle/ran-steps";
import { collect, printJson, printSteps, printSummary } from "../output";

const PLAN_DIGEST_HELP =
  "apply only if the plan computed now has this digest (the one sealer plan printed); otherwise refuse and change nothing";

function checkDigest(d: string): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(d))
    throw new UserError(`--plan-digest ${d}: expected sha256:<64 hex digits>, as sealer plan prints it`);
  return d;
}

const RELAY_HELP =
  "send layer blobs once to HOST (default master0), which forwards them to the other hosts (for a slow uplink)";

function distributeOption(): Option {
  return new Option(
    "--distribute <mode>",
    "how layer blobs reach the hosts: ssh (from here), relay (via one host) or registry (pushed once, nodes fetch over HTTP(S)); default: spec.distribution, else registry when the nodes reach one",
  ).choices(DISTRIBUTION_MODES);
}

async function runAndPrint(
  spec: ClusterSpec,
  opts: {
    json?: boolean;
    concurrency?: number;
    relay?: string | boolean;
    planDigest?: string;
    distribute?: DistributionMode;
  },
): Promise<void> {
  const res: ApplyResult = await applyCluster({
    spec,
    ...(opts.planDigest ? { planDigest: checkDigest(opts.planDigest) } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(opts.relay ? { relay: typeof opts.relay === "string" ? { via: opts.relay } : {} } : {}),
    ...(opts.distribute ? { distribution: opts.distribute } : {}),
  });
  const steps = ranSteps(res);
  if (opts.json) {
    printJson({
      cluster: spec.name,
      steps,
      sent: { blobs: res.stats.sentBlobs, bytes: res.stats.sentBytes },
      summary: res.summary,
    });
    return;
  }
  if (res.ran.length === 0) {
    process.stdout.write(`cluster ${spec.name}: up to date, nothing ran\n`);
    return;
  }
  printSteps(steps);
  printSummary(spec.name, res.summary);
}

/** apply --refresh: probe the recorded cluster and forget the records of drifted steps (state file). */
async function refreshState(spec: ClusterSpec): Promise<void> {
  const applied = await loadState(spec.name);
  if (!applied) return; // nothing recorded: the apply is a full install anyway
  const report = await checkDrift({ spec, applied });
  if (report.steps.length) {
    log.info(`refresh: drift found; re-running ${report.steps.join(", ")}`);
    await saveState(forgetDrifted(applied, report));
  } else log.info(`refresh: no drift${report.drifted ? " that a step can repair (see sealer check)" : ""}`);
}

export function register(program: Command): void {
  program
    .command("run")
    .description("Run a cluster image onto hosts: masters (-m) and nodes (-n), over SSH")
    .argument("<image>", "cluster image in the local store (sealer build / sealer pull)")
    .option("-m, --masters <ips>", "master IPs: comma list, ranges a-b allowed; the first is master0")
    .option("-n, --nodes <ips>", "worker IPs: comma list, ranges a-b allowed")
    .option("-u, --user <user>", "SSH user (a non-root user needs sudo)", "root")
    .option("-p, --passwd <password>", "SSH password (also used for sudo)")
    .option("--pk <file>", "SSH private key file")
    .option("--pk-passwd <passphrase>", "passphrase of the private key")
    .option("--port <port>", "SSH port", "22")
    .option("--cluster-name <name>", "cluster name (state, data dir on the nodes)")
    .option("-e, --env <k=v>", "cluster env (repeatable)", collect, [])
    .option("--concurrency <n>", "hosts handled at once inside a step", intFlag("--concurrency", 1, 1024))
    .option("--relay [host]", RELAY_HELP)
    .option("--plan-digest <sha256>", PLAN_DIGEST_HELP)
    .addOption(distributeOption())
    .option("--json", "print what ran as JSON")
    .action(
      async (
        image: string,
        o: HostFlagOpts & {
          env: string[];
          json?: boolean;
          concurrency?: number;
          relay?: string | boolean;
          planDigest?: string;
          distribute?: DistributionMode;
        },
      ) => {
        if (!o.masters) throw new UserError("sealer run: at least one master is needed: -m IP[,IP...]");
        const spec = clusterFromFlags({
          image,
          masters: o.masters,
          ...(o.nodes ? { nodes: o.nodes } : {}),
          ...(o.user ? { user: o.user } : {}),
          ...(o.passwd ? { password: o.passwd } : {}),
          ...(o.pk ? { pk: o.pk } : {}),
          ...(o.pkPasswd ? { pkPasswd: o.pkPasswd } : {}),
          ...(o.port ? { port: o.port } : {}),
          ...(o.clusterName ? { clusterName: o.clusterName } : {}),
          env: o.env,
        });
        await runAndPrint(spec, o);
      },
    );

  program
    .command("apply")
    .description(
      "Make the cluster match the Clusterfile: runs only the steps a change affects (see sealer plan)",
    )
    .requiredOption("-f, --clusterfile <file>", "Clusterfile (multi-document YAML)")
    .option("--concurrency <n>", "hosts handled at once inside a step", intFlag("--concurrency", 1, 1024))
    .option("--relay [host]", RELAY_HELP)
    .option("--plan-digest <sha256>", PLAN_DIGEST_HELP)
    .addOption(distributeOption())
    .option("--json", "print what ran as JSON")
    .option("--refresh", "probe the hosts first (sealer check) and redo the steps whose effect is gone")
    .action(
      async (o: {
        clusterfile: string;
        json?: boolean;
        concurrency?: number;
        refresh?: boolean;
        relay?: string | boolean;
        planDigest?: string;
        distribute?: DistributionMode;
      }) => {
        if (o.refresh && o.planDigest)
          throw new UserError(
            "sealer apply: --refresh changes the plan after it was reviewed; run sealer check --repair, then sealer plan, and apply with that digest",
          );
        const spec = readClusterfile(o.clusterfile);
        if (o.refresh) await refreshState(spec);
        await runAndPrint(spec, o);
      },
    );
}

/**
 * Cluster lifecycle verbs: join, delete, upgrade, rollback, backup, restore,
 * cert, exec. Each finds the cluster by --cluster-name (recorded on this machine) or
 * -f/--clusterfile; --json prints what ran in the shape of `apply --json`:
 * { "cluster": …, "steps": [ { "kind", "hosts", "reason" } ] }. Bad input fails before any
 * host is contacted and changes nothing.
 */
import * as readline from "node:readline";
import type { Command } from "commander";
import { parseIpList } from "../../core/clusterfile";
import { throwIfProblems, UserError } from "../../core/errors";
import { backupEtcd, restoreEtcd, verifiedSnapshot } from "../../core/lifecycle/backup";
import { removeHosts } from "../../core/lifecycle/hosts-edit";
import { addCertSans, parseAltNames } from "../../core/lifecycle/cert";
import { resolveCluster, type ClusterRef } from "../../core/lifecycle/cluster-ref";
import { deleteAll } from "../../core/lifecycle/delete-all";
import { execOnCluster, prefixLines, type HostOutput } from "../../core/lifecycle/exec";
import { scaleCluster } from "../../core/lifecycle/scale";
import { rollbackCluster, upgradeCluster } from "../../core/lifecycle/upgrade";
import { ranSteps } from "../../core/lifecycle/ran-steps";
import { printJson, printRan } from "../output";

interface Common {
  clusterName?: string;
  clusterfile?: string;
  force?: boolean;
  json?: boolean;
}

function ref(o: Common): ClusterRef {
  return {
    ...(o.clusterName ? { clusterName: o.clusterName } : {}),
    ...(o.clusterfile ? { clusterfile: o.clusterfile } : {}),
  };
}

function common(cmd: Command, opts: { file?: boolean; force?: boolean } = {}): Command {
  cmd.option("--cluster-name <name>", "the cluster, as recorded on this machine by run/apply");
  if (opts.file !== false)
    cmd.option("-f, --clusterfile <file>", "Clusterfile naming the cluster (instead of --cluster-name)");
  else cmd.option("--clusterfile <file>", "Clusterfile naming the cluster (instead of --cluster-name)");
  if (opts.force) cmd.option("--force", "do not ask for confirmation");
  return cmd.option("--json", "print the steps that ran as JSON");
}

/** Asks on a TTY; refuses without --force when stdin is not one (scripts must say --force). */
async function confirm(question: string, force: boolean | undefined): Promise<void> {
  if (force) return;
  if (!process.stdin.isTTY)
    throw new UserError(
      `${question}: refusing without confirmation because stdin is not a terminal; add --force to go ahead`,
    );
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => rl.question(`${question} [y/N] `, resolve));
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim()))
    throw new UserError("cancelled: nothing was changed", { exitCode: 1 });
}

function ips(masters: string | undefined, nodes: string | undefined): { masters: string[]; nodes: string[] } {
  const problems: string[] = [];
  const m = parseIpList(masters, "-m", problems);
  const n = parseIpList(nodes, "-n", problems);
  throwIfProblems("bad host list", problems);
  return { masters: m, nodes: n };
}

/** What `sealer exec` prints for one host: every line of its output and error prefixed by the host. */
export function hostOutputText(h: HostOutput): { stdout: string; stderr: string } {
  // An error naming the host already ("[ip] step ...") is not prefixed twice.
  const own = `[${h.host}] `;
  const error = h.error?.startsWith(own) ? h.error.slice(own.length) : h.error;
  return {
    stdout: prefixLines(h.host, h.stdout),
    stderr: prefixLines(h.host, h.stderr + (error ? error + "\n" : "")),
  };
}

export function register(program: Command): void {
  common(program.command("join").description("Add masters (-m) and nodes (-n) to a running cluster"))
    .option("-m, --masters <ips>", "master IPs (comma list, ranges a-b)")
    .option("-n, --nodes <ips>", "node IPs (comma list, ranges a-b)")
    .action(async (o: Common & { masters?: string; nodes?: string }) => {
      const res = await scaleCluster({ ...ref(o), add: ips(o.masters, o.nodes) });
      printRan(res.plan.cluster, ranSteps(res), o);
    });

  common(
    program
      .command("delete")
      .description("Remove masters (-m) / nodes (-n) from a cluster, or delete the whole cluster (-a)"),
    { force: true },
  )
    .option("-m, --masters <ips>", "master IPs to remove")
    .option("-n, --nodes <ips>", "node IPs to remove")
    .option(
      "-a, --all",
      "delete the whole cluster: reset every node, stop the registry, uninstall the runtime, remove what sealer wrote",
    )
    .action(async (o: Common & { masters?: string; nodes?: string; all?: boolean }) => {
      if (o.all && (o.masters || o.nodes))
        throw new UserError("sealer delete: give either -a or -m/-n, not both");
      if (!o.all && !o.masters && !o.nodes)
        throw new UserError(
          "sealer delete: give -m IPs and/or -n IPs to remove hosts, or -a to delete the whole cluster",
        );
      const r = await resolveCluster(ref(o));
      if (o.all) {
        await confirm(
          `delete cluster ${r.spec.name} and everything sealer put on its ${new Set([...r.spec.hosts.flatMap((h) => h.ips), ...Object.keys(r.applied.hosts)]).size} host(s)?`,
          o.force,
        );
        const res = await deleteAll(ref(o));
        const text =
          `cluster ${res.cluster}: ${res.cleaned.length} host(s) cleaned` +
          (res.skipped.length
            ? `; ${res.skipped.length} unreachable host(s) skipped (run sealer delete -a again when they are back):\n${res.skipped.map((s) => `  ${s.host}: ${s.error.split("\n")[0]}`).join("\n")}\n`
            : "\n");
        printRan(res.cluster, res.steps, o, { cleaned: res.cleaned, skipped: res.skipped }, text);
        if (res.skipped.length) process.exitCode = 1;
        return;
      }
      const edit = ips(o.masters, o.nodes);
      // Validate before asking: bad input must fail without a prompt.
      removeHosts(r.spec, edit);
      await confirm(
        `remove ${[...edit.masters, ...edit.nodes].join(", ")} from cluster ${r.spec.name} (kubeadm reset, files removed, node deleted)?`,
        o.force,
      );
      const res = await scaleCluster({ ...ref(o), remove: edit });
      printRan(res.plan.cluster, ranSteps(res), o);
    });

  common(
    program
      .command("upgrade")
      .description(
        "Upgrade the cluster to IMAGE (a newer Kubernetes version): kubeadm upgrade on master0, the other masters one at a time, then workers in batches",
      ),
  )
    .argument("<image>", "cluster image in the local store")
    .action(async (image: string, o: Common) => {
      const res = await upgradeCluster({ ...ref(o), image });
      printRan(res.plan.cluster, ranSteps(res), o);
    });

  common(
    program
      .command("rollback")
      .description("Return the cluster to the image it ran before the last upgrade (the same kubeadm flow)"),
    { force: true },
  ).action(async (o: Common) => {
    const res = await rollbackCluster(ref(o));
    printRan(res.plan.cluster, [...ranSteps(res), ...res.hooks], o);
  });

  common(
    program
      .command("backup")
      .description(
        "Take an etcd snapshot on a master and keep it locally (clusters/<name>/backups/, with a sha256 file)",
      ),
  )
    .option("--master <ip>", "master to take the snapshot on (default master0)")
    .action(async (o: Common & { master?: string }) => {
      const started = Date.now();
      const res = await backupEtcd({ ...ref(o), ...(o.master ? { master: o.master } : {}) });
      const durationMs = Date.now() - started;
      const r = await resolveCluster(ref(o));
      printRan(
        r.spec.name,
        [{ kind: "backup", hosts: [res.host], reason: `etcd snapshot ${res.file}`, durationMs }],
        o,
        { file: res.file, sha256: res.sha256, size: res.size },
        `${res.file}\nsha256 ${res.sha256} (${res.size} bytes)\n`,
      );
    });

  common(
    program
      .command("restore")
      .description(
        "Put an etcd snapshot taken by sealer backup back on every master (checksum verified first)",
      ),
    { file: false, force: true },
  )
    .requiredOption("-f, --snapshot <file>", "snapshot file, or its name in the cluster's backups dir")
    .action(async (o: Common & { snapshot: string }) => {
      const r = await resolveCluster(ref(o));
      await verifiedSnapshot(r.stateDir, o.snapshot);
      await confirm(
        `restore etcd of cluster ${r.spec.name} from ${o.snapshot}? the current etcd data is replaced (kept beside it)`,
        o.force,
      );
      const started = Date.now();
      const res = await restoreEtcd({ ...ref(o), snapshot: o.snapshot });
      printRan(
        r.spec.name,
        [
          {
            kind: "restore",
            hosts: res.hosts,
            reason: `etcd restored from ${res.file} (sha256 ${res.sha256})`,
            durationMs: Date.now() - started,
          },
        ],
        o,
      );
    });

  common(program.command("cert").description("Add names/IPs to the API server certificate on every master"))
    .requiredOption("--alt-names <list>", "comma list of DNS names and IPs")
    .action(async (o: Common & { altNames: string }) => {
      const altNames = parseAltNames(o.altNames);
      const res = await addCertSans({ ...ref(o), altNames });
      printRan(res.apply.plan.cluster, res.steps, o, { certSANs: res.sans });
    });

  common(
    program
      .command("exec")
      .description(
        "Run a command on the cluster's hosts (all, or those with a role); output prefixed by host",
      ),
  )
    .argument("<command...>", "shell command")
    .option("-r, --role <role>", "only hosts with this role (master, node, or a custom role)")
    .action(async (words: string[], o: Common & { role?: string }) => {
      const command = words.join(" ");
      const started = Date.now();
      const results = await execOnCluster({
        ...ref(o),
        command,
        ...(o.role ? { role: o.role } : {}),
        onHost: o.json
          ? undefined
          : (h) => {
              const text = hostOutputText(h);
              process.stdout.write(text.stdout);
              process.stderr.write(text.stderr);
            },
      });
      const failed = results.filter((h) => h.code !== 0);
      if (o.json) {
        const r = await resolveCluster(ref(o));
        printJson({
          cluster: r.spec.name,
          steps: [
            {
              kind: "exec",
              hosts: results.map((h) => h.host),
              reason: command,
              durationMs: Date.now() - started,
            },
          ],
          results,
        });
      }
      if (failed.length) {
        process.stderr.write(
          `failed on ${failed.map((h) => `${h.host} (${h.code === -1 ? "unreachable" : `exit ${h.code}`})`).join(", ")}\n`,
        );
        process.exitCode = 1;
      }
    });
}

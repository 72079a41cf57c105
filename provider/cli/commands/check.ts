/**
 * `sealer check --cluster-name N | -f Clusterfile [--json] [--repair]`: probe the hosts of a
 * recorded cluster and report what differs from the recorded state (drift). Exit 0: every host
 * checked, no drift; 3: drift found; 4: no drift found, but a host could not be checked
 * (unreachable, or its host key refused); 2: bad input.
 * `--repair` forgets the drifted steps in the recorded state and prints the plan the next
 * `sealer apply` runs; it applies nothing.
 */
import type { Command } from "commander";
import type { ClusterSpec } from "../../core/clusterfile";
import { UserError } from "../../core/errors";
import { checkDrift, forgetDrifted, type CheckResult, type DriftReport } from "../../core/drift";
import type { AppliedState } from "../../core/plan/types";
import { loadSavedClusterfile, loadState, saveState } from "../../core/state";
import { readClusterfile } from "../../core/lifecycle/cluster-ref";
import { planJson, planText, printJson } from "../output";
import { planCluster } from "./plan";

export const DRIFT_EXIT = 3;
export const UNREACHABLE_EXIT = 4;

/** The hosts whose SSH check failed: not reached, or their host key refused. */
function unreachableHosts(r: DriftReport): string[] {
  return r.hosts
    .filter((h) => h.checks.some((c) => c.check === "ssh" && c.status === "unreachable"))
    .map((h) => h.host);
}

/**
 * Drift wins (it is what `--repair` acts on); otherwise a host that could not be checked is not
 * "no drift": scripts must be able to tell the two apart.
 */
export function checkExitCode(r: DriftReport): number {
  if (r.drifted) return DRIFT_EXIT;
  return unreachableHosts(r).length > 0 ? UNREACHABLE_EXIT : 0;
}

interface CheckOpts {
  clusterName?: string;
  clusterfile?: string;
  json?: boolean;
  repair?: boolean;
}

/** The spec and the recorded state of the cluster the options name. */
export async function recordedCluster(o: {
  clusterName?: string;
  clusterfile?: string;
}): Promise<{ spec: ClusterSpec; applied: AppliedState }> {
  if (!!o.clusterName === !!o.clusterfile)
    throw new UserError("give the cluster: --cluster-name NAME or -f Clusterfile (one of them)");
  let spec: ClusterSpec | undefined;
  if (o.clusterfile) spec = readClusterfile(o.clusterfile);
  else {
    spec = await loadSavedClusterfile(o.clusterName!);
    if (!spec)
      throw new UserError(
        `cluster ${o.clusterName} is not recorded on this machine (no Clusterfile in its state dir); give -f Clusterfile`,
      );
  }
  const applied = await loadState(spec.name);
  if (!applied)
    throw new UserError(
      `cluster ${spec.name} has no recorded state on this machine: nothing to check (run sealer apply first)`,
    );
  return { spec, applied };
}

function cell(c: CheckResult): [string, string] {
  switch (c.status) {
    case "ok":
      return ["ok", ""];
    case "drifted":
      return [
        "DRIFTED",
        `expected ${c.expected}; found ${c.found}; ${c.steps.length ? `re-run: ${c.steps.join(", ")}` : `manual: ${c.manual ?? "no step repairs this"}`}`,
      ];
    case "unreachable":
      return ["unreachable", c.detail];
    case "unknown":
      return ["unknown", c.detail];
    default: {
      const never: never = c;
      return [String((never as CheckResult).status), ""];
    }
  }
}

export function reportText(r: DriftReport): string {
  const rows = r.hosts.flatMap((h) => h.checks.map((c) => [h.host, c.check, ...cell(c)]));
  const lines: string[] = [];
  const widths = [4, 5, 6].map((w, i) => Math.max(w, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((x, i) => (i < 3 ? x.padEnd(widths[i]!) : x))
      .join("  ")
      .trimEnd();
  lines.push(line(["HOST", "CHECK", "STATUS", "DETAIL"]), ...rows.map(line));
  for (const n of r.notes) lines.push(`note: ${n}`);
  const unreachable = unreachableHosts(r);
  lines.push(
    r.drifted
      ? `cluster ${r.cluster}: drift found; steps to re-run: ${r.steps.join(", ") || "(none: repair by hand, see above)"}`
      : `cluster ${r.cluster}: no drift${unreachable.length ? ` on the hosts reached (${unreachable.length} unreachable)` : ""}`,
  );
  return lines.join("\n") + "\n";
}

export function register(program: Command): void {
  program
    .command("check")
    .description(
      "Probe the hosts of a recorded cluster and report what differs from the recorded state (exit 3 on drift, 4 when a host could not be checked); --repair makes the next apply redo exactly the drifted steps",
    )
    .option("--cluster-name <name>", "a cluster recorded on this machine")
    .option("-f, --clusterfile <file>", "Clusterfile of the cluster")
    .option("--json", "print the report as JSON")
    .option(
      "--repair",
      "forget the drifted steps in the recorded state and print the plan `sealer apply` will run",
    )
    .action(async (o: CheckOpts) => {
      const { spec, applied } = await recordedCluster(o);
      const report = await checkDrift({ spec, applied });
      let plan: ReturnType<typeof planJson> | undefined;
      let planOut = "";
      if (o.repair && report.steps.length) {
        await saveState(forgetDrifted(applied, report));
        try {
          const p = await planCluster(spec);
          plan = planJson(p);
          planOut = planText(p);
        } catch (err) {
          planOut = `(plan not shown: ${(err as Error).message})\n`;
        }
      }
      if (o.json)
        printJson({ ...report, ...(o.repair ? { repaired: report.steps, plan: plan ?? null } : {}) });
      else {
        process.stdout.write(reportText(report));
        if (o.repair)
          process.stdout.write(
            report.steps.length
              ? `forgot ${report.steps.length} step record(s); \`sealer apply\` will run:\n${planOut}`
              : "nothing to repair\n",
          );
      }
      const code = checkExitCode(report);
      if (code !== 0) process.exitCode = code;
    });
}

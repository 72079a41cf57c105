/** CLI output helpers: data goes to stdout (JSON with --json), logs go to stderr. */
import type { RanStep } from "../core/lifecycle/ran-steps";
import { formatBytes } from "../core/log";
import { planDigest } from "../core/plan/digest";
import type { Plan, Step } from "../core/plan/types";
import { formatDuration, type RunSummary } from "../core/progress";

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  process.stdout.write([line(headers), ...rows.map(line)].join("\n") + "\n");
}

/** Collects repeatable options: `-e a=1 -e b=2`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

// ---- plan formats (text, JSON, markdown), each carrying the plan digest ----

export function planJson(p: Plan): unknown {
  return {
    cluster: p.cluster,
    ...(p.replace ? { replace: p.replace } : {}),
    digest: planDigest(p),
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
  lines.push(`Plan digest: ${planDigest(p)}`);
  return lines.join("\n") + "\n";
}

/** What a step does, in a few words: its kind and the app/plugin/phase it is about. */
function stepLabel(s: Step): string {
  if (s.kind === "launch-app") return `launch-app ${s.app}`;
  if (s.kind === "hook") return `hook ${s.plugin} (${s.phase})`;
  return s.kind;
}

const md = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** Rows past this are summarised: a PR comment must stay readable (and under the forge's size limit). */
const MARKDOWN_ROWS = 60;

/**
 * A review table for a pull request comment: steps grouped by reason and, within a reason, by the
 * hosts that run the same steps for it; then the changed layers and inputs the reasons name, and
 * the digest to apply exactly this plan with.
 */
export function planMarkdown(p: Plan, applyHint?: string): string {
  const out: string[] = [];
  const n = p.steps.length;
  if (p.replace) out.push(`### Cluster \`${p.cluster}\`: replacement needed`, "", md(p.replace), "");
  else if (n === 0) out.push(`### Cluster \`${p.cluster}\`: no changes`, "");
  else {
    out.push(`### Cluster \`${p.cluster}\`: ${n} step${n === 1 ? "" : "s"}`, "");
    // reason -> host -> step labels (plan order kept)
    const byReason = new Map<string, Map<string, string[]>>();
    for (const s of p.steps) {
      const hosts = byReason.get(s.reason) ?? new Map<string, string[]>();
      byReason.set(s.reason, hosts);
      for (const h of s.hosts) hosts.set(h, [...(hosts.get(h) ?? []), stepLabel(s)]);
    }
    const rows: string[][] = [];
    for (const [reason, hosts] of byReason) {
      const bySteps = new Map<string, string[]>();
      for (const [h, labels] of hosts) {
        const k = labels.join(", ");
        bySteps.set(k, [...(bySteps.get(k) ?? []), h]);
      }
      for (const [steps, hs] of bySteps) rows.push([hs.join(", "), steps, reason]);
    }
    out.push("| hosts | steps | why |", "|---|---|---|");
    for (const r of rows.slice(0, MARKDOWN_ROWS)) out.push(`| ${r.map(md).join(" | ")} |`);
    if (rows.length > MARKDOWN_ROWS)
      out.push(`| … | ${rows.length - MARKDOWN_ROWS} more rows | \`sealer plan --json\` lists every step |`);
    out.push("");
    const reasons = p.steps.flatMap((s) => s.reason.split("; "));
    const layers = [
      ...new Set(
        reasons.flatMap((r) => /^layer (sha256:\S+) changed (.+)$/.exec(r)?.slice(1, 3).join(" → ") ?? []),
      ),
    ];
    const inputs = [...new Set(reasons.filter((r) => / changed\b/.test(r) && !/^layers? /.test(r)))];
    if (layers.length) out.push(`**Changed layers:** ${layers.map((l) => md(l)).join("; ")}`, "");
    if (inputs.length) out.push(`**Changed inputs:** ${inputs.map((l) => md(l)).join("; ")}`, "");
  }
  for (const w of p.warnings) out.push(`> warning: ${md(w)}`, "");
  const d = planDigest(p);
  out.push(
    `Plan digest: \`${d}\`` +
      (applyHint ? ` — apply exactly this plan with \`${applyHint} --plan-digest ${d}\`` : ""),
  );
  return out.join("\n") + "\n";
}

/**
 * What a command ran: --json prints `{ cluster, steps, ...extra }`, else the step table (with
 * TIME, as run/apply print it) and `text` (default: how many steps ran).
 */
export function printRan(
  cluster: string,
  steps: RanStep[],
  o: { json?: boolean },
  extra: Record<string, unknown> = {},
  text?: string,
): void {
  if (o.json) {
    printJson({ cluster, steps, ...extra });
    return;
  }
  if (steps.length) printSteps(steps);
  process.stdout.write(text ?? `cluster ${cluster}: ${steps.length} step(s) ran\n`);
}

export function printSteps(steps: RanStep[]): void {
  printTable(
    ["STEP", "HOSTS", "TIME", "REASON"],
    steps.map((s) => [s.kind, s.hosts.join(","), formatDuration(s.durationMs), s.reason]),
  );
}

/** The end-of-run summary: steps, time per phase (step kind), bytes sent per host. */
export function printSummary(cluster: string, s: RunSummary): void {
  process.stdout.write(
    `\ncluster ${cluster}: ${s.steps} step(s) in ${formatDuration(s.wallMs)}; sent ${s.sent.sentBlobs} blob(s), ${formatBytes(s.sent.sentBytes)} to the hosts${s.pushedBytes ? `, ${formatBytes(s.pushedBytes)} to the registry they fetched from` : ""}\n\n`,
  );
  printTable(
    ["PHASE", "STEPS", "TIME"],
    s.phases.map((p) => [p.kind, String(p.steps), formatDuration(p.ms)]),
  );
  process.stdout.write("\n");
  printTable(
    ["HOST", "STEPS", "TIME", "SENT"],
    s.hosts.map((h) => [
      h.host,
      String(h.steps),
      formatDuration(h.ms),
      `${formatBytes(h.sentBytes)} (${h.sentBlobs} blob(s))`,
    ]),
  );
}

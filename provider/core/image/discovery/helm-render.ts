/**
 * Renders a Helm chart (a directory or a packaged `.tgz`) with real Helm (`helm template`) so
 * every image the chart deploys is found: its default values, vendored subcharts and `.tgz`
 * dependencies under `charts/`, library charts, CRDs (`--include-crds`), hooks and test hooks
 * (`helm template` keeps both unless told otherwise). Rendering a local chart needs no repository or
 * cluster access. Helm runs with its own empty cache/config/data directories, so the user's
 * repositories, plugins and registry logins are neither used nor modified.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import * as semver from "semver";
import { helmBinary } from "./helm-binary";

const run = promisify(execFile);

export interface RenderedTemplate {
  /** The template's path relative to the rootfs, e.g. "charts/web/templates/deploy.yaml". */
  file: string;
  content: string;
}

export type ChartRender =
  | { ok: true; templates: RenderedTemplate[] }
  /** Helm's own explanation (it names the template and line when a template failed). */
  | { ok: false; reason: string };

/**
 * The release name every chart is rendered with, as sealer renders them ("dryrun"): a name taken
 * from a directory or app would be refused by Helm when it has capitals, "_" or over 53
 * characters, and charts use the name for object names, not to choose their images.
 */
const RELEASE_NAME = "dryrun";

/** `helm template` refuses these; they only lend templates to the charts that use them. */
const LIBRARY_CHART = /^library charts are not installable$/;

export interface RenderChartOptions {
  /** Extra values files, applied after the chart's values.yaml in this order. */
  valuesFiles?: string[];
  /**
   * The cluster's Kubernetes version when the image declares it: charts pick images and
   * refuse versions by `.Capabilities.KubeVersion`, and Helm's default depends on the Helm build.
   */
  kubeVersion?: string;
}

/** Helm names each document's template "<chart name>/templates/x.yaml"; ours is rootfs-relative. */
function sourcePath(chartRel: string, helmSource: string): string {
  const rest = helmSource.split("/").slice(1).join("/");
  return rest ? path.posix.join(chartRel, rest) : chartRel;
}

/**
 * Splits `helm template` output into per-template texts. Helm starts every document with a
 * "---" line and then "# Source: <template>"; only that pair is a marker, because a template's
 * own text may begin with "# Source:" comments (manifests that are themselves Helm output).
 */
function splitHelmOutput(chartRel: string, out: string): RenderedTemplate[] {
  const byFile = new Map<string, string[]>();
  let current: string[] | undefined;
  let afterSeparator = true;
  for (const line of out.split("\n")) {
    const m = afterSeparator ? /^# Source: (.+)$/.exec(line) : null;
    afterSeparator = line === "---";
    if (m) {
      const file = sourcePath(chartRel, m[1]!.trim());
      current = byFile.get(file) ?? [];
      if (current.length) current.push("---");
      byFile.set(file, current);
      continue;
    }
    current?.push(line);
  }
  return [...byFile].map(([file, lines]) => ({ file, content: lines.join("\n") }));
}

/** Helm's message without its "Error: " prefix and without blank lines. */
function helmReason(err: unknown): string {
  const stderr = (err as { stderr?: string }).stderr ?? "";
  const all = stderr
    .split("\n")
    .map((l) => l.trim())
    // Helm's own hints (--debug) do not apply to how sealer runs it.
    .filter((l) => l && !/^(WARNING|walk\.go|Use --debug)/.test(l));
  // Helm 4 logs a failure (`level=ERROR msg=...`) and then prints it again as "Error: ...".
  const unlogged = all.filter((l) => !/^level=[A-Z]+ /.test(l));
  const lines = (unlogged.length ? unlogged : all).map((l) =>
    l.replace(/^Error: /, "").replace(/;? ?Use --debug flag to render out invalid YAML$/, ""),
  );
  if (lines.length)
    return lines.reduce((acc, l) => (acc ? `${acc}${acc.endsWith(":") ? " " : "; "}${l}` : l), "");
  return (err as { killed?: boolean }).killed
    ? "helm template did not finish within 5 minutes"
    : `helm template failed (${(err as Error).message.split("\n")[0]})`;
}

/**
 * Renders `root/chartRel`; a chart Helm cannot render is reported, not thrown. A library chart
 * renders to nothing: it deploys nothing, so it has no images.
 */
export async function renderChart(
  root: string,
  chartRel: string,
  opts: RenderChartOptions,
): Promise<ChartRender> {
  const helm = await helmBinary();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-helm-"));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: scratch,
    HELM_CACHE_HOME: path.join(scratch, "cache"),
    HELM_CONFIG_HOME: path.join(scratch, "config"),
    HELM_DATA_HOME: path.join(scratch, "data"),
    // No cluster: `helm template` must not read the user's kubeconfig.
    KUBECONFIG: path.join(scratch, "no-kubeconfig"),
  };
  const args = [
    "template",
    RELEASE_NAME,
    path.join(root, chartRel),
    "--include-crds",
    "--namespace",
    "default",
  ];
  for (const f of opts.valuesFiles ?? []) args.push("--values", f);
  const kube = semver.coerce(opts.kubeVersion ?? "")?.version;
  if (kube) args.push("--kube-version", `v${kube}`);
  try {
    const { stdout } = await run(helm.path, args, {
      env,
      cwd: scratch,
      maxBuffer: 256 * 1024 * 1024,
      timeout: 300_000,
    });
    return { ok: true, templates: splitHelmOutput(chartRel, stdout) };
  } catch (err) {
    // Helm names files by the path it was given; the rootfs is an internal scratch directory.
    const reason = helmReason(err)
      .split(root + path.sep)
      .join("");
    return LIBRARY_CHART.test(reason) ? { ok: true, templates: [] } : { ok: false, reason };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

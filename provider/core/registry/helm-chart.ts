/**
 * Renders a Helm chart directory with its default values (and unpacked subcharts under
 * `charts/`), using the Go-template subset in go-template.ts. Used only to discover the container
 * images a chart deploys, so it is forgiving: a template it cannot render is reported (file and
 * reason) and skipped; the others still render.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { Parsed, TemplateError, parseTemplate, render } from "./go-template";

export interface RenderedFile {
  /** Path relative to the rootfs (for messages). */
  file: string;
  content: string;
}

export interface ChartRender {
  files: RenderedFile[];
  /** "charts/x/templates/a.yaml: function "lookup" is not supported ..." */
  problems: string[];
}

function readYaml(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) return {};
  const v = yaml.load(fs.readFileSync(file, "utf8"));
  return v && typeof v === "object" ? (v as Record<string, unknown>) : {};
}

function walkFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walkFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function mergeValues(base: Record<string, unknown>, over: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  if (!over || typeof over !== "object" || Array.isArray(over)) return out;
  for (const [k, v] of Object.entries(over as Record<string, unknown>)) {
    const b = out[k];
    out[k] =
      b && typeof b === "object" && !Array.isArray(b) && v && typeof v === "object" && !Array.isArray(v)
        ? mergeValues(b as Record<string, unknown>, v)
        : v;
  }
  return out;
}

function chartObject(meta: Record<string, unknown>): Record<string, unknown> {
  // Helm exposes Chart.yaml fields capitalised: .Chart.Name, .Chart.AppVersion.
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(meta)) o[k.charAt(0).toUpperCase() + k.slice(1)] = v;
  return o;
}

interface ChartUnit {
  dir: string;
  meta: Record<string, unknown>;
  values: Record<string, unknown>;
  templates: Array<{ file: string; parsed: Parsed }>;
}

/** Renders `chartDir` (rel = its path relative to the rootfs, for messages). */
export function renderChart(root: string, chartRel: string, releaseName?: string): ChartRender {
  const problems: string[] = [];
  const defines = new Map<string, Parsed["nodes"]>();
  const units: ChartUnit[] = [];

  const load = (dir: string, rel: string, values: Record<string, unknown>) => {
    const meta = readYaml(path.join(dir, "Chart.yaml"));
    const unit: ChartUnit = { dir, meta, values, templates: [] };
    units.push(unit);
    for (const f of walkFiles(path.join(dir, "templates"))) {
      const frel = path.join(rel, path.relative(dir, f));
      try {
        const parsed = parseTemplate(fs.readFileSync(f, "utf8"));
        for (const [k, v] of parsed.defines) defines.set(k, v);
        const base = path.basename(f);
        if (!base.startsWith("_") && base !== "NOTES.txt" && /\.(ya?ml|tpl|json)$/.test(base))
          unit.templates.push({ file: frel, parsed });
      } catch (err) {
        problems.push(`${frel}: ${(err as Error).message}`);
      }
    }
    const deps =
      (meta.dependencies as Array<{ name?: string; alias?: string; condition?: string }> | undefined) ?? [];
    const subDir = path.join(dir, "charts");
    if (!fs.existsSync(subDir)) return;
    for (const e of fs
      .readdirSync(subDir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const srel = path.join(rel, "charts", e.name);
      if (e.isFile() && /\.tgz$/.test(e.name)) {
        problems.push(
          `${srel}: packaged subcharts are not rendered (unpack it into ${path.join(rel, "charts")}/ or list its images in manifests/imageList)`,
        );
        continue;
      }
      if (!e.isDirectory() || !fs.existsSync(path.join(subDir, e.name, "Chart.yaml"))) continue;
      const subMeta = readYaml(path.join(subDir, e.name, "Chart.yaml"));
      const name = String(subMeta.name ?? e.name);
      const dep = deps.find((d) => d.name === name);
      const key = dep?.alias ?? name;
      if (dep?.condition) {
        const enabled = dep.condition.split(",").map((c) =>
          c
            .trim()
            .split(".")
            .reduce<unknown>(
              (v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined),
              values,
            ),
        );
        if (enabled.some((x) => x === false)) continue;
      }
      const subValues = mergeValues(readYaml(path.join(subDir, e.name, "values.yaml")), values[key]);
      if (values.global !== undefined)
        subValues.global = mergeValues((subValues.global as Record<string, unknown>) ?? {}, values.global);
      load(path.join(subDir, e.name), srel, subValues);
    }
  };

  let rootValues: Record<string, unknown>;
  try {
    rootValues = readYaml(path.join(root, chartRel, "values.yaml"));
  } catch (err) {
    return {
      files: [],
      problems: [`${path.join(chartRel, "values.yaml")}: not valid YAML (${(err as Error).message})`],
    };
  }
  try {
    load(path.join(root, chartRel), chartRel, rootValues);
  } catch (err) {
    problems.push(`${chartRel}: ${(err as Error).message}`);
  }
  const files: RenderedFile[] = [];
  const release = String(releaseName ?? units[0]?.meta.name ?? path.basename(chartRel));
  for (const u of units) {
    const chartDir = u.dir;
    const dotBase = {
      Values: u.values,
      Chart: chartObject(u.meta),
      Release: {
        Name: release,
        Namespace: "default",
        Service: "Helm",
        IsInstall: true,
        IsUpgrade: false,
        Revision: 1,
      },
      Capabilities: {
        KubeVersion: { Version: "v1.25.0", Major: "1", Minor: "25", GitVersion: "v1.25.0" },
        APIVersions: { Has: () => true },
        HelmVersion: { Version: "v3.12.0" },
      },
      Files: {
        Get: (name: unknown) => {
          const p = path.resolve(chartDir, String(name));
          return p.startsWith(chartDir + path.sep) && fs.existsSync(p) ? fs.readFileSync(p, "utf8") : "";
        },
      },
    };
    for (const t of u.templates) {
      try {
        const content = render(
          t.parsed,
          {
            ...dotBase,
            Template: { Name: t.file, BasePath: path.join(path.basename(chartDir), "templates") },
          },
          { defines },
        );
        files.push({ file: t.file, content });
      } catch (err) {
        problems.push(
          `${t.file}: ${err instanceof TemplateError ? err.message : `could not render (${(err as Error).message})`}`,
        );
      }
    }
  }
  return { files, problems };
}

/**
 * Renders a Helm chart directory with its default values (and unpacked subcharts under
 * `charts/`), using the Go-template subset in go-template.ts. Used only to discover the container
 * images a chart deploys, so it is forgiving: a template it cannot render is reported (file and
 * reason) and skipped; the others still render.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
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
  const scratchDirs: string[] = [];
  const scratch = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-chart-"));
    scratchDirs.push(d);
    return d;
  };
  try {
    return renderUnits();
  } finally {
    for (const d of scratchDirs) fs.rmSync(d, { recursive: true, force: true });
  }

  function renderUnits(): ChartRender {
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
        let chartDir = path.join(subDir, e.name);
        if (e.isFile() && /\.tgz$/.test(e.name)) {
          // A packaged dependency (what `helm dependency build` leaves): unpacked to a temp dir.
          try {
            chartDir = unpackChart(path.join(subDir, e.name), scratch());
          } catch (err) {
            problems.push(`${srel}: ${(err as Error).message}`);
            continue;
          }
        } else if (!e.isDirectory()) continue;
        if (!fs.existsSync(path.join(chartDir, "Chart.yaml"))) continue;
        const subMeta = readYaml(path.join(chartDir, "Chart.yaml"));
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
        const subValues = mergeValues(readYaml(path.join(chartDir, "values.yaml")), values[key]);
        if (values.global !== undefined)
          subValues.global = mergeValues((subValues.global as Record<string, unknown>) ?? {}, values.global);
        load(chartDir, srel, subValues);
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
}

/**
 * Unpacks a chart archive (.tgz) into `into` and returns the chart's directory. Only regular
 * files are written, and only under `into` (no absolute paths, no `..`): the archive is data.
 */
export function unpackChart(tgz: string, into: string): string {
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(fs.readFileSync(tgz));
  } catch (err) {
    throw new Error(`not a gzip archive (${(err as Error).message})`);
  }
  let off = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  const roots = new Set<string>();
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, b: number) => h.subarray(a, b).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(str(124, 136).trim() || "0", 8);
    const type = String.fromCharCode(h[156] ?? 0);
    const prefix = str(345, 500);
    let name = longName ?? paxPath ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") {
      longName = body.toString("utf8").replace(/\0.*$/s, "");
      continue;
    }
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      paxPath = m?.[1];
      continue;
    }
    longName = undefined;
    paxPath = undefined;
    if (type !== "0" && type !== "\0") continue;
    name = path.posix.normalize(name);
    if (name.startsWith("/") || name === ".." || name.startsWith("../"))
      throw new Error(`archive entry "${name}" escapes the chart`);
    const dest = path.join(into, name);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, body);
    roots.add(name.split("/")[0] ?? "");
  }
  const dir = [...roots]
    .map((r) => path.join(into, r))
    .find((d) => fs.existsSync(path.join(d, "Chart.yaml")));
  if (!dir) throw new Error("archive holds no <chart>/Chart.yaml");
  return dir;
}

/**
 * Finds the container images a cluster image needs, from its rootfs:
 * - `manifests/**` YAML and kube-type app YAML under `application/apps/<app>/`;
 * - Helm charts (`charts/<chart>/`, helm-type apps) rendered with their default values;
 * - `manifests/imageList` and `--image-list` files (one reference per line, `#` comments);
 * minus `--ignored-image-list` entries.
 *
 * Only real container images count: the `image` field of an entry in a `containers`,
 * `initContainers` or `ephemeralContainers` list, wherever that list sits (Pod, Deployment,
 * CronJob, operator CRDs that embed pod specs). Keys that merely end in "image" and Helm-values
 * `image: {repository, tag}` objects are not images until a template renders them into a pod
 * spec — the false positives of sealer#1913 cannot happen.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { UserError } from "../errors";
import { normalizeReference } from "../common/reference";
import { renderChart } from "./helm-chart";

export interface FoundImage {
  /** As written (familiar form allowed). */
  image: string;
  /** Normalised full reference (dedup key). */
  ref: string;
  /** "manifests/app.yaml:12", "charts/web/templates/deploy.yaml (rendered)". */
  source: string;
  appName?: string;
}

export interface Discovery {
  images: FoundImage[];
  /** Files that could not be parsed or rendered (reported, not fatal). */
  problems: string[];
}

const CONTAINER_LISTS = new Set(["containers", "initContainers", "ephemeralContainers"]);

/** Container images in one YAML text (multi-document), with their line numbers when found. */
export function imagesInYaml(text: string): Array<{ image: string; line?: number }> {
  const docs = yaml.loadAll(text);
  const found: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (!v || typeof v !== "object") return;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      if (CONTAINER_LISTS.has(k) && Array.isArray(child)) {
        for (const c of child) {
          const img = (c as { image?: unknown } | null)?.image;
          if (typeof img === "string" && img.trim()) found.push(img.trim());
        }
      }
      walk(child);
    }
  };
  for (const d of docs) walk(d);
  // Line numbers: the n-th occurrence of an image gets the n-th `image:` line holding it.
  const lines = text.split("\n");
  const used = new Set<number>();
  return found.map((image) => {
    const esc = image.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const block = new RegExp(`^\\s*(?:-\\s*)?image\\s*:\\s*["']?${esc}["']?\\s*(?:#.*)?$`);
    // Flow style (`- {name: a, image: "x"}`) as a fallback.
    const flow = new RegExp(`\\bimage\\s*:\\s*["']?${esc}["']?\\s*(?:[,}#]|$)`);
    let idx = lines.findIndex((l, i) => !used.has(i) && block.test(l));
    if (idx < 0) idx = lines.findIndex((l, i) => !used.has(i) && flow.test(l));
    if (idx >= 0) used.add(idx);
    return idx >= 0 ? { image, line: idx + 1 } : { image };
  });
}

/** Entries of an image list file: one reference per line; `#` starts a comment. */
export function parseImageList(
  text: string,
  file: string,
): { images: Array<{ image: string; line: number }>; problems: string[] } {
  const images: Array<{ image: string; line: number }> = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const l = raw.replace(/#.*$/, "").trim();
    if (!l) return;
    try {
      normalizeReference(l);
      images.push({ image: l, line: i + 1 });
    } catch (err) {
      problems.push(`${file}:${i + 1}: ${(err as Error).message}`);
    }
  });
  return { images, problems };
}

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const isYaml = (f: string) => /\.ya?ml$/.test(f);

export interface DiscoverOptions {
  imageListFiles?: string[];
  ignoredImageListFiles?: string[];
}

export function discoverImages(rootfs: string, opts: DiscoverOptions = {}): Discovery {
  const images: FoundImage[] = [];
  const problems: string[] = [];
  const rel = (p: string) => path.relative(rootfs, p);
  const add = (image: string, source: string, appName?: string) => {
    let ref: string;
    try {
      ref = normalizeReference(image);
    } catch (err) {
      problems.push(`${source}: ${(err as Error).message}`);
      return;
    }
    images.push({ image, ref, source, ...(appName ? { appName } : {}) });
  };
  const scanYamlFile = (file: string, appName?: string) => {
    let found: Array<{ image: string; line?: number }>;
    try {
      found = imagesInYaml(fs.readFileSync(file, "utf8"));
    } catch (err) {
      problems.push(
        `${rel(file)}: not valid YAML, not scanned for images (${(err as Error).message.split("\n")[0]})`,
      );
      return;
    }
    for (const f of found) add(f.image, f.line ? `${rel(file)}:${f.line}` : rel(file), appName);
  };
  const scanChart = (chartDir: string, appName?: string) => {
    const r = renderChart(rootfs, rel(chartDir), appName);
    problems.push(
      ...r.problems.map(
        (p) => `${p} (template not rendered; list its images in manifests/imageList if it has any)`,
      ),
    );
    for (const f of r.files) {
      let found: Array<{ image: string; line?: number }>;
      try {
        found = imagesInYaml(f.content);
      } catch (err) {
        problems.push(
          `${f.file}: rendered output is not valid YAML (${(err as Error).message.split("\n")[0]})`,
        );
        continue;
      }
      for (const x of found) add(x.image, `${f.file} (rendered with default values)`, appName);
    }
  };

  for (const f of walk(path.join(rootfs, "manifests")).filter(isYaml)) scanYamlFile(f);
  const chartsDir = path.join(rootfs, "charts");
  if (fs.existsSync(chartsDir))
    for (const e of fs
      .readdirSync(chartsDir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name)))
      if (e.isDirectory() && fs.existsSync(path.join(chartsDir, e.name, "Chart.yaml")))
        scanChart(path.join(chartsDir, e.name));
  const appsDir = path.join(rootfs, "application", "apps");
  if (fs.existsSync(appsDir))
    for (const e of fs
      .readdirSync(appsDir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      if (!e.isDirectory()) continue;
      const dir = path.join(appsDir, e.name);
      if (fs.existsSync(path.join(dir, "Chart.yaml"))) scanChart(dir, e.name);
      else {
        // A kube app; charts nested inside it render as charts, their raw templates are skipped.
        const chartRoots = walk(dir)
          .filter((f) => path.basename(f) === "Chart.yaml")
          .map((f) => path.dirname(f));
        for (const c of chartRoots) scanChart(c, e.name);
        for (const f of walk(dir).filter(isYaml))
          if (!chartRoots.some((c) => f.startsWith(c + path.sep))) scanYamlFile(f, e.name);
      }
    }
  const lists = [path.join(rootfs, "manifests", "imageList"), ...(opts.imageListFiles ?? [])];
  for (const file of lists) {
    if (!fs.existsSync(file)) {
      if (file !== lists[0]) throw new UserError(`--image-list ${file}: no such file`);
      continue;
    }
    const shown = file.startsWith(rootfs + path.sep) ? rel(file) : file;
    const r = parseImageList(fs.readFileSync(file, "utf8"), shown);
    problems.push(...r.problems);
    for (const x of r.images) add(x.image, `${shown}:${x.line}`);
  }
  const ignored = new Set<string>();
  for (const file of opts.ignoredImageListFiles ?? []) {
    if (!fs.existsSync(file)) throw new UserError(`--ignored-image-list ${file}: no such file`);
    const r = parseImageList(fs.readFileSync(file, "utf8"), file);
    if (r.problems.length)
      throw new UserError(`invalid --ignored-image-list:\n${r.problems.map((p) => ` - ${p}`).join("\n")}`);
    for (const x of r.images) ignored.add(normalizeReference(x.image));
  }
  // First mention wins (it is the one a "missing image" error points at).
  const seen = new Set<string>();
  const unique = images.filter((i) => !ignored.has(i.ref) && !seen.has(i.ref) && (seen.add(i.ref), true));
  return { images: unique, problems };
}

/**
 * Finds the container images a cluster image needs, from its rootfs:
 * - `manifests/**` YAML and kube-type app YAML under `application/apps/<app>/`;
 * - Helm charts, as directories or packaged `.tgz` (under `charts/`, helm-type apps, charts
 *   inside other apps), rendered by Helm;
 * - `manifests/imageList` (or a file `manifests`, see below) and `--image-list` files (one
 *   reference per line, `#` comments);
 * minus `--ignored-image-list` entries.
 *
 * Whatever could not be read (a chart Helm cannot render, YAML that does not parse, an invalid
 * reference) is returned as a problem naming the file (and line): the caller decides whether
 * that fails the build, so no image goes missing without anyone being told.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../../errors";
import { mapLimit } from "../../common/limit";
import { normalizeReference } from "../../common/reference";
import { renderChart } from "./helm-render";
import { MAX_CLUSTERFILE_BYTES, readUserFile } from "../../limits";
import { parseImageList } from "./image-list";
import { YamlSyntaxError, imagesInYaml } from "./manifest-images";

export interface FoundImage {
  /** As written (familiar form allowed). */
  image: string;
  /** Normalised full reference (dedup key). */
  ref: string;
  /** "manifests/app.yaml:12", "charts/web/templates/deploy.yaml (rendered by helm template)". */
  source: string;
  appName?: string;
}

export interface Discovery {
  images: FoundImage[];
  /** What could not be read, each naming the file (and line) and why. */
  problems: string[];
}

export interface DiscoverOptions {
  imageListFiles?: string[];
  ignoredImageListFiles?: string[];
  /** Kubernetes version charts are rendered for (the image's cluster-runtime-version label). */
  kubeVersion?: string;
}

/** A directory, a regular file, or neither (absent, or a symlink: never followed out of the rootfs). */
function kindOf(p: string): "dir" | "file" | undefined {
  try {
    const st = fs.lstatSync(p);
    return st.isDirectory() ? "dir" : st.isFile() ? "file" : undefined;
  } catch {
    return undefined;
  }
}

function walk(dir: string): string[] {
  if (kindOf(dir) !== "dir") return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function subdirs(dir: string): string[] {
  if (kindOf(dir) !== "dir") return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort((a, b) => a.localeCompare(b));
}

const isYaml = (f: string) => /\.ya?ml$/.test(f);

/** `helm package` names its archives `<chart>-<version>.tgz`; Helm renders one as it is. */
const isPackagedChart = (f: string) => f.endsWith(".tgz");

/**
 * Charts among `files`: every chart directory, and the charts Helm is run on (outermost chart
 * directories and packaged charts outside them; anything inside a chart renders with it).
 */
function chartsIn(files: string[]): { dirs: string[]; outer: string[] } {
  const dirs = files.filter((f) => path.basename(f) === "Chart.yaml").map((f) => path.dirname(f));
  const inside = (f: string) => dirs.some((c) => f !== c && f.startsWith(c + path.sep));
  const outer = [...dirs, ...files.filter(isPackagedChart)].filter((c) => !inside(c));
  return { dirs, outer: outer.sort((a, b) => a.localeCompare(b)) };
}
const isChart = (dir: string) => fs.existsSync(path.join(dir, "Chart.yaml"));

/** Ignored references from `--ignored-image-list` files; any problem there is fatal. */
function ignoredRefs(files: string[]): Set<string> {
  const ignored = new Set<string>();
  for (const file of files) {
    if (!fs.existsSync(file)) throw new UserError(`--ignored-image-list ${file}: no such file`);
    const r = parseImageList(
      readUserFile(file, "--ignored-image-list file", MAX_CLUSTERFILE_BYTES, "give an image list file"),
      file,
    );
    if (r.problems.length)
      throw new UserError(
        `invalid --ignored-image-list (fix these lines):\n${r.problems.map((p) => ` - ${p}`).join("\n")}`,
      );
    for (const x of r.images) ignored.add(normalizeReference(x.image));
  }
  return ignored;
}

export async function discoverImages(rootfs: string, opts: DiscoverOptions = {}): Promise<Discovery> {
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
  const scanText = (text: string, where: string, lineSources: boolean, appName?: string) => {
    try {
      for (const f of imagesInYaml(text)) add(f.image, lineSources ? `${where}:${f.line}` : where, appName);
    } catch (err) {
      if (!(err instanceof YamlSyntaxError)) throw err;
      const at = lineSources ? `${where}:${err.line}` : where;
      problems.push(`${at}: not valid YAML, so its images cannot be read (${err.message})`);
    }
  };
  // What to read, in the order images are attributed (first mention wins).
  type Unit = { yaml: string; appName?: string } | { chart: string; appName?: string };
  const manifests = path.join(rootfs, "manifests");
  const units: Unit[] = walk(manifests)
    .filter(isYaml)
    .map((f) => ({ yaml: f }));
  // Charts may sit at any depth under charts/ (as in sealer); subcharts render with their parent.
  // A `charts` file is what `COPY x.tgz charts` makes when charts/ does not exist yet.
  const chartsDir = path.join(rootfs, "charts");
  if (kindOf(chartsDir) === "file") units.push({ chart: chartsDir });
  for (const c of chartsIn(walk(chartsDir)).outer) units.push({ chart: c });
  const appsDir = path.join(rootfs, "application", "apps");
  for (const app of subdirs(appsDir)) {
    const dir = path.join(appsDir, app);
    if (isChart(dir)) {
      units.push({ chart: dir, appName: app });
      continue;
    }
    // Any other app: charts inside it (directories or packaged) render as charts, their raw
    // templates are not YAML.
    const files = walk(dir);
    const charts = chartsIn(files);
    for (const c of charts.outer) units.push({ chart: c, appName: app });
    for (const f of files.filter(isYaml))
      if (!charts.dirs.some((c) => f.startsWith(c + path.sep))) units.push({ yaml: f, appName: app });
  }
  // Helm runs are independent processes: a few at a time.
  const charts = units.filter((u) => "chart" in u);
  const results = await mapLimit(charts, 3, (u) =>
    renderChart(rootfs, rel(u.chart), opts.kubeVersion ? { kubeVersion: opts.kubeVersion } : {}),
  );
  const rendered = new Map(charts.map((u, i) => [u, results[i]!] as const));
  for (const u of units) {
    if ("yaml" in u) {
      scanText(fs.readFileSync(u.yaml, "utf8"), rel(u.yaml), true, u.appName);
      continue;
    }
    const r = rendered.get(u)!;
    if (!r.ok) {
      const hint =
        u.chart === chartsDir
          ? `; charts is a file, not a directory: to copy a packaged chart into charts/, end the destination with "/" (\`COPY x.tgz charts/\`)`
          : "";
      problems.push(`Helm chart ${rel(u.chart)}: helm template failed: ${r.reason}${hint}`);
      continue;
    }
    for (const t of r.templates)
      scanText(t.content, `${t.file} (rendered by helm template)`, false, u.appName);
  }
  // sealer's Kubefiles `COPY imageList manifests` onto base images that have a manifests/
  // directory, so the list lands at manifests/imageList. Where manifests/ did not exist yet
  // (FROM scratch) the same line makes the file `manifests` itself: it is that list.
  const manifestsIsList = kindOf(manifests) === "file";
  const lists = [
    manifestsIsList ? manifests : path.join(manifests, "imageList"),
    ...(opts.imageListFiles ?? []),
  ];
  for (const file of lists) {
    if (!fs.existsSync(file)) {
      if (file !== lists[0]) throw new UserError(`--image-list ${file}: no such file`);
      continue;
    }
    const shown = file.startsWith(rootfs + path.sep) ? rel(file) : file;
    const what = file === lists[0] ? "image list" : "--image-list file";
    const r = parseImageList(
      readUserFile(file, what, MAX_CLUSTERFILE_BYTES, "give an image list file"),
      shown,
    );
    if (file === manifests && r.problems.length)
      // Likely not a list at all (say, one manifest copied without the trailing "/"): one problem, not one per line.
      problems.push(
        `manifests is a file, not a directory, so it was read as the image list (as sealer's \`COPY imageList manifests\` means), ` +
          `but ${r.problems.length} of its lines are not image references (first: ${r.problems[0]}); ` +
          `to copy a file into manifests/, end the destination with "/" (\`COPY app.yaml manifests/\`)`,
      );
    else problems.push(...r.problems);
    for (const x of r.images) add(x.image, `${shown}:${x.line}`);
  }
  const ignored = ignoredRefs(opts.ignoredImageListFiles ?? []);
  // First mention wins (it is the one a "missing image" error points at).
  const seen = new Set<string>();
  const unique = images.filter((i) => !ignored.has(i.ref) && !seen.has(i.ref) && (seen.add(i.ref), true));
  return { images: unique, problems };
}

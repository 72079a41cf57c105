import type { z } from "zod";
import { UserError, throwIfProblems } from "../errors";
import { MAX_CLUSTERFILE_BYTES } from "../limits";
import { formatBytes } from "../log";
import {
  buildApplication,
  buildClusterV2,
  buildConfig,
  buildPlugin,
  convertV1,
  distinctName,
  pathText,
  type Report,
} from "./build";
import { normalizeCluster, type ClusterInput } from "./normalize";
import {
  applicationSpecSchema,
  clusterV1SpecSchema,
  clusterV2SpecSchema,
  configSpecSchema,
  docSchema,
  pluginSpecSchema,
  type RawApplicationSpec,
  type RawClusterV1Spec,
  type RawClusterV2Spec,
} from "./schema";
import type { ApplicationDoc, ClusterSpec, ConfigDoc, KubeadmDocs, PluginDoc } from "./types";
import { loadUserDocuments, type YamlPath } from "./yaml-lines";

export const CLUSTER_V2_VERSIONS = ["sealer.io/v2", "sealer.cloud/v2"];
export const CLUSTER_V1_VERSIONS = [
  "sealer.aliyun.com/v1alpha1",
  "sealer.io/v1",
  "zlink.aliyun.com/v1alpha1",
];

/** kubeadm kinds and the key they take in ClusterSpec.kubeadm. */
const KUBEADM_KINDS: Record<string, keyof KubeadmDocs> = {
  InitConfiguration: "init",
  ClusterConfiguration: "cluster",
  JoinConfiguration: "join",
  KubeletConfiguration: "kubelet",
  KubeProxyConfiguration: "kubeProxy",
};

const located = new WeakMap<ClusterSpec, (path: YamlPath) => string>();

/** "Clusterfile:LINE spec.image" for a spec loadClusterfile made, so later problems can point into the file. */
export function whereInClusterfile(spec: ClusterSpec, path: YamlPath): string | undefined {
  return located.get(spec)?.(path);
}

/**
 * Parses a Clusterfile (multi-document YAML, dispatched on `kind`) into the normalised model.
 * Throws one UserError listing every problem as "Clusterfile:LINE path: message"; returns
 * non-fatal findings (unknown kinds, unknown fields, v1 conversion notes) as warnings.
 */
export function loadClusterfile(
  text: string,
  opts: { file?: string } = {},
): {
  spec: ClusterSpec;
  warnings: string[];
  /** "Clusterfile:LINE spec.image" for a path of the Cluster document, for later problems. */
  where: (path: YamlPath) => string;
} {
  const file = opts.file ?? "Clusterfile";
  const size = Buffer.byteLength(text, "utf8");
  if (size > MAX_CLUSTERFILE_BYTES)
    throw new UserError(
      `${file} is ${formatBytes(size)}; a Clusterfile may be at most ${formatBytes(MAX_CLUSTERFILE_BYTES)} (keep large data in the image or in files a Config points at)`,
    );
  const docs = loadUserDocuments(text, file);

  const problems: string[] = [];
  const warnings: string[] = [];
  let cluster: ClusterInput | undefined;
  let clusterDocLine = 0;
  let clusterAt: (path: YamlPath) => string = (path) => `${file}${path.length ? " " + pathText(path) : ""}`;
  const configs: ConfigDoc[] = [];
  const plugins: PluginDoc[] = [];
  let application: ApplicationDoc | undefined;
  const kubeadm: KubeadmDocs = {};
  const kubeadmLines: Partial<Record<keyof KubeadmDocs, number>> = {};
  const configLines = new Map<string, number>();
  const pluginNames = new Map<string, number>();

  for (const doc of docs) {
    if (doc.value === null || doc.value === undefined) continue; // empty document ("---" at the end)
    const at = (path: YamlPath) => `${file}:${doc.lineOf(path)}${path.length ? " " + pathText(path) : ""}`;
    const report: Report = (path, msg) => problems.push(`${at(path)}: ${msg}`);
    const warn = (path: YamlPath, msg: string) => warnings.push(`${at(path)}: ${msg}`);
    if (typeof doc.value !== "object" || Array.isArray(doc.value)) {
      problems.push(
        `${file}:${doc.line}: document ${doc.index + 1} must be a mapping with apiVersion and kind`,
      );
      continue;
    }
    const v = doc.value as Record<string, unknown>;
    const kind = v.kind;
    const apiVersion = v.apiVersion;
    if (typeof kind !== "string" || kind === "") {
      report(
        ["kind"],
        `document ${doc.index + 1} has no kind (expected Cluster, Config, Plugin, Application or a kubeadm configuration)`,
      );
      continue;
    }
    // sealer decodes every document by its kind alone; apiVersion only picks the v1 or v2 Cluster.
    if (apiVersion !== undefined && apiVersion !== null && typeof apiVersion !== "string") {
      report(
        ["apiVersion"],
        `expected a string such as ${expectedVersion(kind)}, got ${describeValue(apiVersion)}`,
      );
      continue;
    }
    const version = apiVersion ?? "";
    const parse = <T extends z.ZodType>(
      schema: T,
      specRequired = true,
    ): z.infer<ReturnType<typeof docSchema<T>>> | undefined => {
      const r = docSchema(schema, specRequired).safeParse(
        { ...v, apiVersion: version },
        { reportInput: true },
      );
      if (r.success) return r.data;
      let fatal = false;
      for (const issue of r.error.issues) {
        const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
        if (issue.code === "unrecognized_keys") {
          for (const k of issue.keys) warn([...path, k], `unknown field (ignored)`);
          continue;
        }
        fatal = true;
        report(path, describeIssue(issue));
      }
      // Unknown fields alone do not fail a document: re-parse leniently to use the rest.
      if (fatal) return undefined;
      return docSchema(schema, specRequired).safeParse(
        stripUnknown({ ...v, apiVersion: version }, r.error.issues),
      ).data;
    };
    const name = (v.metadata as { name?: unknown } | undefined)?.name;
    const nameStr = typeof name === "string" ? name : undefined;

    if (kind === "Cluster") {
      if (cluster) {
        report(
          ["kind"],
          `a second Cluster document (the first is at line ${clusterDocLine}): a Clusterfile describes one cluster`,
        );
        continue;
      }
      clusterDocLine = doc.line;
      clusterAt = at;
      const shape = clusterShape(version, v.spec);
      if (shape === "v2") {
        if (!CLUSTER_V2_VERSIONS.includes(version))
          warn(
            ["apiVersion"],
            version
              ? `"${version}" is not a Cluster version this tool knows; read as sealer.io/v2 (as sealer does)`
              : "no apiVersion; read as sealer.io/v2 (as sealer does)",
          );
        const d = parse(clusterV2SpecSchema);
        if (d) cluster = buildClusterV2({ name: nameStr, spec: d.spec as RawClusterV2Spec }, report);
      } else {
        const d = parse(clusterV1SpecSchema);
        if (d) {
          warn([], `converted from ${version || "v1 (masters/nodes)"} to sealer.io/v2`);
          cluster = convertV1({ name: nameStr, spec: d.spec as RawClusterV1Spec }, report, warn);
        }
      }
      if (!cluster) cluster = { name: "", image: "" }; // keep going: report the other documents' problems too
    } else if (kind === "Config" || kind === "Plugin") {
      const d = parse(kind === "Config" ? configSpecSchema : pluginSpecSchema, kind === "Config");
      if (!d) continue;
      if (kind === "Config") {
        const prev = nameStr === undefined ? undefined : configLines.get(nameStr);
        if (prev !== undefined)
          report(["metadata", "name"], `Config "${nameStr}" is already defined at line ${prev}`);
        if (nameStr) configLines.set(nameStr, doc.line);
        configs.push(buildConfig(nameStr, d.spec as z.infer<typeof configSpecSchema>, report));
      } else {
        const p = buildPlugin(nameStr, (d.spec ?? {}) as z.infer<typeof pluginSpecSchema>, report, warn);
        plugins.push({ ...p, name: distinctName(pluginNames, p.name) });
      }
    } else if (kind === "Application") {
      const d = parse(applicationSpecSchema);
      if (!d) continue;
      if (application) report(["kind"], "a second Application document: merge them into one");
      else application = buildApplication(nameStr, d.spec as RawApplicationSpec, report);
    } else if (kind in KUBEADM_KINDS) {
      const key = KUBEADM_KINDS[kind] as keyof KubeadmDocs;
      const expected = expectedVersion(kind);
      // Without apiVersion the kubeadm configuration's own version is filled in when it is rendered.
      if (version && !version.startsWith(expected.replace(/v\w+$/, "")))
        report(["apiVersion"], `"${version}" is not a ${kind} version (expected ${expected})`);
      if (kubeadm[key])
        report(
          ["kind"],
          `a second ${kind} document (the first is at line ${kubeadmLines[key]}): merge them into one`,
        );
      kubeadm[key] = v;
      kubeadmLines[key] = doc.line;
    } else {
      warnings.push(
        `${file}:${doc.lineOf(["kind"])}: unknown kind "${kind}"${version ? ` (apiVersion ${version})` : ""} in document ${doc.index + 1}: ignored`,
      );
    }
  }
  if (!cluster && problems.length === 0)
    problems.push(`${file}: no Cluster document (kind: Cluster, apiVersion: sealer.io/v2)`);
  // Report in file order (a stable sort keeps each document's own order for equal lines).
  const lineOf = (p: string) => Number(/^[^:]*:(\d+)/.exec(p.slice(file.length))?.[1] ?? 0);
  problems.sort((a, b) => lineOf(a) - lineOf(b));
  throwIfProblems(
    `${file} is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"})`,
    problems,
  );
  const input = cluster as ClusterInput;
  const spec = normalizeCluster({ ...input, configs, plugins, application, kubeadm });
  located.set(spec, clusterAt);
  return { spec, warnings, where: clusterAt };
}

/** An apiVersion for `kind`, for messages. */
function expectedVersion(kind: string): string {
  switch (KUBEADM_KINDS[kind]) {
    case "kubelet":
      return "kubelet.config.k8s.io/v1beta1";
    case "kubeProxy":
      return "kubeproxy.config.k8s.io/v1alpha1";
    case undefined:
      return kind === "Cluster" ? "sealer.io/v2" : "sealer.io/v1";
    default:
      return "kubeadm.k8s.io/v1beta3";
  }
}

/**
 * Which Cluster schema a document is read with. The v1 versions are v1; every other apiVersion
 * (sealer.io/v2, or one sealer never defined such as sealer.aliyun.com/v2alpha1, or none) is
 * read as v2 as sealer v0.8+ does, unless it is plainly written in the v1 shape
 * (masters/nodes and no hosts).
 */
function clusterShape(version: string, spec: unknown): "v1" | "v2" {
  if (CLUSTER_V1_VERSIONS.includes(version)) return "v1";
  if (CLUSTER_V2_VERSIONS.includes(version)) return "v2";
  const s = spec && typeof spec === "object" ? (spec as Record<string, unknown>) : {};
  return !("hosts" in s) && ("masters" in s || "nodes" in s) ? "v1" : "v2";
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type": {
      const input = (issue as { input?: unknown }).input;
      if (input === undefined) return `required (${article(issue.expected)})`;
      return `expected ${article(issue.expected)}, got ${describeValue(input)}`;
    }
    case "invalid_union": {
      const input = (issue as { input?: unknown }).input;
      return input === undefined ? "required" : `unexpected ${describeValue(input)}`;
    }
    default:
      return issue.message;
  }
}

function article(t: string): string {
  return t === "array" ? "a list" : t === "object" ? "a mapping" : t === "record" ? "a mapping" : `a ${t}`;
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Removes keys that zod reported as unrecognized, so the rest of the document can be used. */
function stripUnknown(value: Record<string, unknown>, issues: z.core.$ZodIssue[]): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") continue;
    let target: unknown = copy;
    for (const p of issue.path)
      target = (target as Record<string | number, unknown> | undefined)?.[p as string | number];
    if (target && typeof target === "object")
      for (const k of issue.keys) delete (target as Record<string, unknown>)[k];
  }
  return copy;
}

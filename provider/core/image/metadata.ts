/**
 * Pure helpers for the image metadata the builder writes: app type detection, instruction
 * text for history/cache keys, and the sealer extension assembled from the Kubefile.
 */
import type { Instruction } from "../kubefile/types";
import type { AppType, ImageExtension } from "./types";

/**
 * sealer's app type detection on the files of application/apps/<name>/:
 * helm: a chart (Chart.yaml + values.yaml + templates/) at the app root or in one top dir;
 * kube: every file is .yaml/.yml; shell: every file is .sh; anything else (or empty): other.
 */
export function detectAppType(files: string[]): AppType {
  if (files.length === 0) return "other";
  const isChart = (prefix: string) =>
    files.includes(`${prefix}Chart.yaml`) &&
    files.includes(`${prefix}values.yaml`) &&
    files.some((f) => f.startsWith(`${prefix}templates/`));
  if (isChart("")) return "helm";
  const tops = new Set(files.map((f) => (f.includes("/") ? f.slice(0, f.indexOf("/") + 1) : "")));
  if (tops.size === 1) {
    const only = [...tops][0] as string;
    if (only && isChart(only)) return "helm";
  }
  if (files.every((f) => /\.ya?ml$/i.test(f))) return "kube";
  if (files.every((f) => /\.sh$/i.test(f))) return "shell";
  return "other";
}

function q(s: string): string {
  return /[\s"'\\]/.test(s) || s === "" ? JSON.stringify(s) : s;
}

function kv(m: Record<string, string>): string {
  return Object.keys(m)
    .sort()
    .map((k) => `${k}=${q(m[k] as string)}`)
    .join(" ");
}

/** The instruction as history `created_by` and cache-key text (after ARG expansion). */
export function instructionText(ins: Instruction): string {
  switch (ins.kind) {
    case "FROM":
      return `FROM ${ins.image}`;
    case "COPY":
    case "ADD":
      return `${ins.kind} ${[...ins.sources, ins.dest].map(q).join(" ")}`;
    case "RUN":
    case "CMD":
      return `${ins.kind} ${ins.command}`;
    case "CMDS":
      return `CMDS ${JSON.stringify(ins.cmds)}`;
    case "APP":
    case "CNI":
    case "CSI":
      return `${ins.kind} ${ins.name} ${ins.sources.map((s) => (/^https?:\/\//.test(s) ? s : `local://${s}`)).join(" ")}`;
    case "APPCMDS":
      return `APPCMDS ${ins.name} ${JSON.stringify(ins.cmds)}`;
    case "APPENV":
      return `APPENV ${ins.name} ${kv(ins.env)}`;
    case "LAUNCH":
      return `LAUNCH ${JSON.stringify(ins.apps)}`;
    case "KUBEVERSION":
      return `KUBEVERSION ${ins.range}`;
    case "ARG":
      return `ARG ${ins.name}${ins.value !== undefined ? "=" + q(ins.value) : ""}`;
    case "ENV":
      return `ENV ${kv(ins.env)}`;
    case "LABEL":
      return `LABEL ${kv(ins.labels)}`;
    case "MAINTAINER":
      return `MAINTAINER ${ins.value}`;
  }
}

/** Instructions that produce a layer. */
export function makesLayer(ins: Instruction): boolean {
  switch (ins.kind) {
    case "COPY":
    case "ADD":
    case "RUN":
    case "APP":
    case "CNI":
    case "CSI":
      return true;
    default:
      return false;
  }
}

/** The extension of an image built FROM `parent` (undefined for scratch): apps and CMD lines inherited, launch not. */
export function inheritExtension(parent: ImageExtension | undefined): ImageExtension {
  return {
    type: parent?.type ?? "app-installer",
    applications: (parent?.applications ?? []).map((a) => ({ ...a, files: [...a.files] })),
    env: { ...(parent?.env ?? {}) },
    launch: {},
    ...(parent?.legacyCmds?.length ? { legacyCmds: [...parent.legacyCmds] } : {}),
  };
}

/** Canonical form: apps sorted by name, empty optional fields dropped (stable annotation bytes). */
export function finalizeExtension(ext: ImageExtension, sealerVersion: string): ImageExtension {
  const launch: ImageExtension["launch"] = {};
  if (ext.launch.cmds?.length) launch.cmds = ext.launch.cmds;
  if (ext.launch.app_names?.length) launch.app_names = ext.launch.app_names;
  return {
    buildClient: { sealerVersion: `pulumi-sealer-${sealerVersion}` },
    type: ext.type,
    applications: [...ext.applications]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((a) => ({
        name: a.name,
        type: a.type,
        files: [...a.files].sort(),
        ...(a.version ? { version: a.version } : {}),
        ...(a.cmds?.length ? { cmds: a.cmds } : {}),
        ...(a.env && Object.keys(a.env).length ? { env: a.env } : {}),
      })),
    ...(ext.env && Object.keys(ext.env).length ? { env: ext.env } : {}),
    launch,
    ...(ext.legacyCmds?.length ? { legacyCmds: ext.legacyCmds } : {}),
  };
}

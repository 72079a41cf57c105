/**
 * Plugin documents shipped in a cluster image's `plugins/` directory (sealer runs them like the
 * Clusterfile's Plugin documents; a Clusterfile Plugin of the same name replaces the image's).
 * Parsed with the Clusterfile's Plugin schema and builder, so both sources mean the same thing.
 */
import { throwIfProblems } from "../errors";
import { buildPlugin, distinctName, pathText, type Report } from "./build";
import { pluginSpecSchema } from "./schema";
import type { PluginDoc } from "./types";
import { loadUserDocuments } from "./yaml-lines";

const SPEC_KEYS = ["type", "action", "scope", "on", "data"] as const;

/**
 * The Plugin documents of one file (`file` names it in messages, e.g. "image x:1 plugins/a.yaml").
 * Other kinds are skipped (a plugins/ file may hold anything sealer ignores); unknown spec fields
 * are ignored as in a Clusterfile. Throws one UserError listing every problem.
 */
export function loadPluginFile(text: string, file: string): PluginDoc[] {
  const docs = loadUserDocuments(text, file);
  const problems: string[] = [];
  const out: PluginDoc[] = [];
  const names = new Map<string, number>();
  for (const doc of docs) {
    const v = doc.value as Record<string, unknown> | null | undefined;
    if (!v || typeof v !== "object" || Array.isArray(v) || v.kind !== "Plugin") continue;
    const report: Report = (path, msg) =>
      problems.push(`${file}:${doc.lineOf(path)}${path.length ? " " + pathText(path) : ""}: ${msg}`);
    const raw = (v.spec ?? {}) as Record<string, unknown>;
    const spec = Object.fromEntries(SPEC_KEYS.filter((k) => k in raw).map((k) => [k, raw[k]]));
    const r = pluginSpecSchema.safeParse(spec);
    if (!r.success) {
      for (const issue of r.error.issues)
        report(
          ["spec", ...issue.path.filter((p): p is string | number => typeof p !== "symbol")],
          issue.message,
        );
      continue;
    }
    const name = (v.metadata as { name?: unknown } | undefined)?.name;
    const p = buildPlugin(typeof name === "string" ? name : undefined, r.data, report);
    out.push({ ...p, name: distinctName(names, p.name) });
  }
  throwIfProblems(
    `${file} is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"})`,
    problems,
  );
  return out;
}

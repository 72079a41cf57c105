/**
 * Which env keys each file of an image reads: `.tmpl` files (the keys of their actions) and the
 * apps' shell scripts (`$KEY` / `${KEY}`). The planner uses it (ImageFacts.templateEnvKeys) so
 * a changed env value re-runs only the steps that read it. Read from the layer tars in the
 * local store (only layers that touch directories holding templates or apps), cached per layer.
 */
import type { OciLayout } from "../image/layout";
import { cleanTarPath, forEachLayerEntry } from "../image/materialize";
import type { ImageFacts } from "../plan/types";
import { templateKeys } from "./templates";

const SCANNED = /^(etc|charts|manifests|application|scripts|statics|plugins)\//;
const cache = new Map<string, Promise<Record<string, string[] | null>>>();

function shellKeys(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) out.add(m[1]!);
  return [...out].sort();
}

/** path -> keys for one layer; null marks a deletion (whiteout). */
function layerKeys(layout: OciLayout, digest: string): Promise<Record<string, string[] | null>> {
  let p = cache.get(digest);
  if (!p) {
    p = (async () => {
      const out: Record<string, string[] | null> = {};
      await forEachLayerEntry(layout, digest, async (h, content) => {
        const rel = cleanTarPath(h.name);
        const base = rel.split("/").pop() ?? "";
        if (base.startsWith(".wh.")) {
          out[rel.replace(/\.wh\.([^/]*)$/, "$1")] = null;
          return;
        }
        if (h.type !== "file" || !SCANNED.test(rel)) return;
        const isTmpl = rel.endsWith(".tmpl");
        const isAppScript = rel.startsWith("application/") && rel.endsWith(".sh");
        if (!isTmpl && !isAppScript) return;
        const chunks: Buffer[] = [];
        for await (const c of content) chunks.push(c);
        const text = Buffer.concat(chunks).toString("utf8");
        out[rel] = isTmpl ? templateKeys(text, rel) : shellKeys(text);
      });
      return out;
    })();
    p.catch(() => cache.delete(digest));
    cache.set(digest, p);
  }
  return p;
}

export async function templateEnvKeysOf(
  layout: OciLayout,
  image: ImageFacts,
): Promise<Record<string, string[]>> {
  const merged: Record<string, string[]> = {};
  for (const l of image.layers) {
    if (!l.paths.some((p) => SCANNED.test(p) || p === "etc" || p === "application")) continue;
    for (const [p, keys] of Object.entries(await layerKeys(layout, l.digest))) {
      if (keys === null) {
        for (const k of Object.keys(merged)) if (k === p || k.startsWith(p + "/")) delete merged[k];
      } else merged[p] = keys;
    }
  }
  return merged;
}

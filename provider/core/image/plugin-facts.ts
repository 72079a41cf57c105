/**
 * The image's `plugins/` directory as planner facts: the Plugin documents of plugins/*.yaml|yml
 * (parsed with the Clusterfile's Plugin schema) and a digest of every other file under plugins/
 * (scripts a hook may call). Only layers that touch plugins/ are read, each once per process
 * (a layer's content never changes for its digest); whiteouts apply as in the rootfs.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import { throwIfProblems, UserError } from "../errors";
import { loadPluginFile } from "../clusterfile/plugin-file";
import { sha256Hex, stableStringify } from "../fsutil";
import type { ImagePlugins, LayerFacts } from "../plan/types";
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from "./layer";
import type { OciLayout } from "./layout";
import { cleanTarPath, forEachLayerEntry } from "./materialize";

/** Plugin yaml files are small; a bigger one is a mistake in the image, not a plugin. */
const MAX_PLUGIN_FILE = 1 << 20;

interface LayerPlugins {
  /** Paths this layer deletes from the layers below (a path removes everything under it). */
  removed: string[];
  /** Files under plugins/: sha256, and the text of plugin yaml files. */
  files: Map<string, { sha: string; text?: string }>;
}

const layerCache = new Map<string, LayerPlugins>();

function isPluginYaml(rel: string): boolean {
  return path.posix.dirname(rel) === "plugins" && /\.ya?ml$/.test(rel);
}

export function touchesPlugins(l: LayerFacts): boolean {
  return (
    l.paths.length === 0 ||
    l.paths.some((p) => p === "plugins" || p.startsWith("plugins/") || p === `${WHITEOUT_PREFIX}plugins`)
  );
}

async function readLayer(layout: OciLayout, digest: string): Promise<LayerPlugins> {
  const hit = layerCache.get(digest);
  if (hit) return hit;
  const out: LayerPlugins = { removed: [], files: new Map() };
  await forEachLayerEntry(layout, digest, async (h, content) => {
    const rel = cleanTarPath(h.name);
    if (rel === `${WHITEOUT_PREFIX}plugins`) {
      out.removed.push("plugins");
      return;
    }
    if (!rel.startsWith("plugins/")) return;
    const base = path.posix.basename(rel);
    const dir = path.posix.dirname(rel);
    if (base === OPAQUE_WHITEOUT) {
      out.removed.push(dir);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      out.removed.push(`${dir}/${base.slice(WHITEOUT_PREFIX.length)}`);
      return;
    }
    // Links and directories carry no plugin content of their own.
    if (h.type !== "file" && h.type !== "contiguous-file") return;
    const yaml = isPluginYaml(rel);
    if (yaml && (h.size ?? 0) > MAX_PLUGIN_FILE)
      throw new UserError(
        `${rel} in layer ${digest} is ${h.size} bytes: a plugin file over ${MAX_PLUGIN_FILE} bytes is not a Plugin document; rebuild the image without it`,
      );
    const hash = createHash("sha256");
    const chunks: Buffer[] = [];
    for await (const c of content) {
      hash.update(c);
      if (yaml) chunks.push(c);
    }
    out.files.set(rel, {
      sha: hash.digest("hex"),
      ...(yaml ? { text: Buffer.concat(chunks).toString("utf8") } : {}),
    });
  });
  layerCache.set(digest, out);
  return out;
}

/**
 * The plugins of an image whose layers are `layers` (oldest first). `image` names it in messages.
 * Throws a UserError for a plugin file that does not parse, or a name defined twice.
 */
export async function imagePluginFacts(
  layout: OciLayout,
  layers: LayerFacts[],
  image: string,
): Promise<ImagePlugins> {
  const files = new Map<string, { sha: string; text?: string }>();
  for (const l of layers) {
    if (!touchesPlugins(l)) continue;
    const lp = await readLayer(layout, l.digest);
    for (const r of lp.removed)
      for (const k of [...files.keys()]) if (k === r || k.startsWith(`${r}/`)) files.delete(k);
    for (const [k, v] of lp.files) files.set(k, v);
  }
  const docs: ImagePlugins["docs"] = [];
  const others: Array<[string, string]> = [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const rel of [...files.keys()].sort()) {
    const f = files.get(rel)!;
    if (f.text === undefined) {
      others.push([rel, f.sha]);
      continue;
    }
    let found;
    try {
      found = loadPluginFile(f.text, `image ${image} ${rel}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(...(err.problems?.length ? err.problems : [err.message]));
      continue;
    }
    for (const d of found) {
      const prev = seen.get(d.name);
      if (prev) problems.push(`image ${image}: Plugin "${d.name}" is defined in both ${prev} and ${rel}`);
      else {
        seen.set(d.name, rel);
        docs.push({ ...d, file: rel });
      }
    }
  }
  throwIfProblems(
    `image ${image}: plugins/ is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"}); fix the files and rebuild the image`,
    problems,
  );
  docs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { docs, filesHash: others.length ? sha256Hex(stableStringify(others)) : "" };
}

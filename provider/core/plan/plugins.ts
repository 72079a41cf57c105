/**
 * The plugins a cluster runs: the image's (plugins/*.yaml) and the Clusterfile's Plugin
 * documents; a Clusterfile Plugin replaces the image's of the same name (as in sealer). One rule
 * for the planner (which hook steps exist, and their keys) and the executor (what a hook runs).
 */
import type { PluginDoc } from "../clusterfile/types";
import type { ImagePlugins } from "./types";

export type EffectivePlugin = PluginDoc & {
  /** The image file the plugin came from; absent for a Clusterfile Plugin. */
  file?: string;
};

/** Every plugin in name order (spec.plugins is already sorted by name). */
export function effectivePlugins(
  clusterfile: PluginDoc[],
  image: ImagePlugins | undefined,
): EffectivePlugin[] {
  const byName = new Map<string, EffectivePlugin>();
  for (const p of image?.docs ?? []) byName.set(p.name, p);
  for (const p of clusterfile) byName.set(p.name, p);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

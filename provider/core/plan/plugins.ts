/**
 * The plugins a cluster runs: the image's (plugins/*.yaml) and the Clusterfile's Plugin
 * documents; a Clusterfile Plugin replaces the image's of the same name (as in sealer). One rule
 * for the planner (which hook steps exist, and their keys) and the executor (what a hook runs).
 */
import { canonicalIp, ipFamily } from "../clusterfile/ip";
import { LABEL_ON_PHASES, matchesLabels, nodeLabels, parseOn } from "../clusterfile/plugin-on";
import type { HookPhase, PluginDoc } from "../clusterfile/types";
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

/** What host selection needs to know about a host. */
export interface PluginHostFacts {
  role: "master" | "node";
  /** Every role the Clusterfile gives it ("master", "db", ...). */
  roles: string[];
  labels: Record<string, string>;
}

/** Types whose data lines start with the IP they act on ("IP hostname", "IP k=v", "IP k=v:Effect"). */
const LISTS_HOSTS: readonly PluginDoc["type"][] = ["HOSTNAME", "LABEL", "TAINT"];

/** Types that act on the cluster from master0 alone, whatever `on` or the scope say. */
const ON_MASTER0: readonly PluginDoc["type"][] = ["CLUSTERCHECK", "ETCD"];

/**
 * Whether the plugin picks its hosts (scope, on, the IPs a HOSTNAME plugin lists, or a legacy
 * plugin's "every host") rather than running a cluster phase on master0 alone.
 */
export function selectsHosts(p: PluginDoc): boolean {
  return p.scope.length > 0 || p.on !== undefined || LISTS_HOSTS.includes(p.type) || p.legacy === true;
}

/**
 * The hosts among `candidates` a plugin runs on at `phase`: HOSTNAME/LABEL/TAINT on the IPs their
 * data lists; `on` (legacy) by role, master0, IPs or node labels (label selectors only at the phases
 * sealer resolves them, else on no host); `scope` by role; both when both are given; every
 * candidate when neither is.
 */
export function pluginHosts(
  p: PluginDoc,
  phase: HookPhase,
  candidates: string[],
  facts: (ip: string) => PluginHostFacts,
  master0: string,
): string[] {
  // sealer ran these against the cluster from master0; ETCD's `on` is a file path, not hosts.
  if (ON_MASTER0.includes(p.type)) return candidates.includes(master0) ? [master0] : [];
  let hosts = candidates;
  if (LISTS_HOSTS.includes(p.type)) {
    const listed = new Set(dataEntries(p.data).map((e) => e.ip));
    hosts = hosts.filter((ip) => listed.has(ip));
  }
  if (p.on !== undefined) {
    const sel = parseOn(p.on);
    if (typeof sel === "string") return [];
    switch (sel.kind) {
      case "role":
        hosts = hosts.filter((ip) => facts(ip).role === sel.role);
        break;
      case "master0":
        hosts = hosts.filter((ip) => ip === master0);
        break;
      case "ips": {
        const set = new Set(sel.ips.map((ip) => (ipFamily(ip) ? canonicalIp(ip) : ip)));
        hosts = hosts.filter((ip) => set.has(ip));
        break;
      }
      case "labels":
        hosts = LABEL_ON_PHASES.includes(phase)
          ? hosts.filter((ip) => {
              const f = facts(ip);
              return matchesLabels(sel.requirements, nodeLabels(f.role, f.labels));
            })
          : [];
        break;
    }
  }
  if (p.scope.length) hosts = hosts.filter((ip) => p.scope.some((s) => facts(ip).roles.includes(s)));
  return hosts;
}

/** HOSTNAME/LABEL/TAINT data: lines "IP value" (other lines are skipped, as sealer does). */
function dataEntries(data: string): Array<{ ip: string; value: string }> {
  const out: Array<{ ip: string; value: string }> = [];
  for (const line of data.split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2 || !ipFamily(parts[0] as string)) continue;
    out.push({ ip: canonicalIp(parts[0] as string), value: parts[1] as string });
  }
  return out;
}

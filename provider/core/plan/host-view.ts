/**
 * One resolved view per host: everything the planner keys from and the executor renders from,
 * resolved once from the Clusterfile, the image and what was applied — the host's role, its SSH
 * settings, its env (merged once, by mergedEnv's rule), its platform and that platform's layers,
 * its labels and taints. Pure.
 */
import { masters as mastersOf, mergedEnv, sshOf } from "../clusterfile";
import type { ClusterSpec, Env, HostSpec, SshSettings } from "../clusterfile/types";
import type { PluginHostFacts } from "./plugins";
import type { AppliedHost, AppliedState, ImageFacts, LayerFacts, Role } from "./types";

export interface HostView {
  ip: string;
  /** "master" or "node": the Kubernetes role. */
  role: Role;
  /** Every role the Clusterfile gives (other roles, e.g. "db", pick plugin scopes). */
  roles: string[];
  /** SSH settings (secrets stay Secret objects: they print as fingerprints). */
  ssh: SshSettings;
  /** Image ENV < spec.env < the host group's env. */
  env: Env;
  /** Probed, else recorded, else the image's default platform (`platformKnown` false: a guess). */
  platform: string;
  platformKnown: boolean;
  /** The image's layers for `platform`, oldest first. */
  layers: LayerFacts[];
  labels: Record<string, string>;
  taints: string[];
}

export interface HostViewInput {
  spec: ClusterSpec;
  image: ImageFacts;
  applied: AppliedState;
  /** Probed platforms by IP (`uname -m`), when known. */
  hostPlatforms?: Record<string, string>;
}

/** The image's default platform: the one `image.layers` belong to. */
function defaultPlatform(image: ImageFacts): string {
  return image.platform ?? image.platforms[0] ?? "";
}

/** A host's platform: probed, else recorded, else the image's default (`known` false). */
export function platformOf(i: HostViewInput, ip: string): { platform: string; known: boolean } {
  const p = i.hostPlatforms?.[ip] ?? i.applied.hosts[ip]?.platform;
  return p ? { platform: p, known: true } : { platform: defaultPlatform(i.image), known: false };
}

/** The image's layers for a platform (the default platform's when it has no variant for it). */
export function layersFor(image: ImageFacts, platform: string): LayerFacts[] {
  return image.variants?.[platform]?.layers ?? image.layers;
}

/** The part of a host's view the Clusterfile alone decides (no image, no applied state). */
export type HostIdentity = Pick<HostView, "ip" | "role" | "roles" | "ssh" | "labels" | "taints">;

/** The identity of every host of the Clusterfile, by IP, in Clusterfile order. */
export function hostIdentities(
  spec: ClusterSpec,
  masters: readonly string[] = mastersOf(spec),
): Map<string, HostIdentity & { host: HostSpec }> {
  const masterSet = new Set(masters);
  const out = new Map<string, HostIdentity & { host: HostSpec }>();
  for (const host of spec.hosts)
    for (const ip of host.ips)
      out.set(ip, {
        ip,
        role: masterSet.has(ip) ? "master" : "node",
        roles: host.roles,
        ssh: sshOf(spec, host),
        labels: host.labels,
        taints: host.taints,
        host,
      });
  return out;
}

/** Views of every host of the Clusterfile, by IP, in Clusterfile order. */
export function hostViews(i: HostViewInput, masters: readonly string[]): Map<string, HostView> {
  const out = new Map<string, HostView>();
  for (const [ip, { host, ...id }] of hostIdentities(i.spec, masters)) {
    const { platform, known } = platformOf(i, ip);
    out.set(ip, {
      ...id,
      env: mergedEnv(i.spec, host, i.image.env),
      platform,
      platformKnown: known,
      layers: layersFor(i.image, platform),
    });
  }
  return out;
}

/**
 * What a plugin's host selection reads of a host: its view's role, roles and labels, else the
 * recorded ones (a host only the state still knows, or a host picked by what it was).
 */
export function pluginFacts(
  view: Pick<HostIdentity, "role" | "roles" | "labels"> | undefined,
  recorded: AppliedHost | undefined,
): PluginHostFacts {
  if (view) return { role: view.role, roles: view.roles, labels: view.labels };
  const roles: string[] = recorded?.roles ?? [];
  return { role: roles.includes("master") ? "master" : "node", roles, labels: recorded?.labels ?? {} };
}

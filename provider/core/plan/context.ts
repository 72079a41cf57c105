/**
 * The planning context every phase reads: the desired cluster resolved once (host views, roles,
 * which hosts are joined, removed or change role) and the shared part builders (layers of a
 * class, env keys a step reads). Read-only for the phases; its memo caches never change a result.
 */
import { masters as mastersOf, mergedEnv, workers as workersOf } from "../clusterfile";
import { checkEnvValue } from "../clusterfile/syntax";
import type { ClusterSpec, Env } from "../clusterfile/types";
import { UserError } from "../errors";
import { hostViews, layersFor, platformOf, type HostView, type HostViewInput } from "./host-view";
import { classifyPath, ENV_CONSUMERS, envRefs, type LayerClass } from "./impact";
import { hash, short, type Part } from "./keys";
import type { AppliedState, ImageFacts, LayerFacts, Role } from "./types";

export interface Desired {
  cluster: ClusterSpec;
  image: ImageFacts;
  /**
   * "linux/amd64" per host IP, as probed (`uname -m`). A host missing here takes the platform
   * recorded in the applied state, else the image's default platform (image.platform): a new
   * host not probed yet (a preview) is planned with the default, and its distribute reason says
   * so. Each host gets the layers of its platform (image.variants); the distribute key hashes
   * exactly those layers, so a change to one platform's variant re-distributes to its hosts only.
   */
  hostPlatforms?: Record<string, string>;
}

export interface PlanOptions {
  /** Workers upgraded at once (default: 10% of the workers, at least 1). */
  workerUpgradeBatch?: number;
}

interface LayerInfo {
  layers: LayerFacts[];
  classes: Array<Set<LayerClass>>;
  paths: string[][];
}

export class PlanContext {
  readonly spec: ClusterSpec;
  readonly image: ImageFacts;
  readonly applied: AppliedState;
  readonly opts: PlanOptions;
  readonly masters: string[];
  readonly workers: string[];
  readonly all: string[];
  readonly master0: string;
  /** The cluster runs (init-master was recorded). */
  readonly existing: boolean;
  /** One resolved view per desired host. */
  readonly hosts: ReadonlyMap<string, HostView>;
  /** Hosts that joined the running cluster (init-master's host and every recorded join). */
  readonly joined: ReadonlySet<string>;
  /** Joined hosts whose role changes: IP -> the roles they had. */
  readonly roleChanged: ReadonlyMap<string, string>;
  /** Recorded hosts no longer in the Clusterfile, sorted. */
  readonly removed: string[];
  /** Hosts new to the running cluster (none for a new cluster). */
  readonly addedToExisting: string[];
  /** The cluster-wide env (image ENV < spec.env): what cluster-wide values such as the worker VIP read. */
  readonly clusterEnv: Env;
  /** The master that drives joins and cluster-wide kubectl: master0, else the first master that stays. */
  readonly runner: string;
  /** "new cluster" or "not applied yet": the reason of a cluster-wide step that never ran. */
  readonly clusterNew: string;
  private readonly viewInput: HostViewInput;
  private readonly appliedLayers: Set<string>;
  private readonly layerInfoCache = new Map<string, LayerInfo>();
  private readonly partCache = new Map<string, Part>();
  private readonly envKeyCache = new Map<string, { keys: string[]; fallback: boolean }>();
  private readonly envValueCache = new Map<string, string>();

  constructor(d: Desired, applied: AppliedState, opts: PlanOptions = {}) {
    this.spec = d.cluster;
    this.image = d.image;
    this.applied = applied;
    this.opts = opts;
    this.masters = mastersOf(d.cluster);
    this.workers = workersOf(d.cluster);
    this.all = [...this.masters, ...this.workers];
    this.master0 = this.masters[0] ?? "";
    this.viewInput = { spec: d.cluster, image: d.image, applied, hostPlatforms: d.hostPlatforms ?? {} };
    this.hosts = hostViews(this.viewInput, this.masters);
    this.clusterEnv = mergedEnv(d.cluster, undefined, d.image.env);
    // A Clusterfile's env was checked when it was read; an image built elsewhere was not.
    const vip = this.clusterEnv.IPvsVIPv4;
    const badVip = vip && checkEnvValue("IPvsVIPv4", vip);
    if (badVip)
      throw new UserError(
        `image ${d.image.reference}: ENV IPvsVIPv4=${JSON.stringify(vip.join(";"))}: ${badVip}; set IPvsVIPv4 in the Clusterfile's spec.env (or -e IPvsVIPv4=<address>) to override it`,
      );
    this.existing = applied.steps["init-master"] !== undefined;
    const joined = new Set(applied.steps["init-master"]?.hosts ?? []);
    for (const id of Object.keys(applied.steps)) {
      const m = /^join-(master|worker):(.+)$/.exec(id);
      if (m?.[2]) joined.add(m[2]);
    }
    this.joined = joined;
    const desired = new Set(this.all);
    this.removed = Object.keys(applied.hosts)
      .filter((ip) => !desired.has(ip))
      .sort();
    const roleChanged = new Map<string, string>();
    for (const ip of this.all) {
      const was = applied.hosts[ip]?.roles;
      if (was && was.length > 0 && joined.has(ip) && !was.includes(this.role(ip)))
        roleChanged.set(ip, was.join(","));
    }
    this.roleChanged = roleChanged;
    this.appliedLayers = new Set(Object.values(applied.hosts).flatMap((h) => h.layers));
    this.addedToExisting = this.existing ? this.all.filter((ip) => !this.stable(ip)) : [];
    this.runner = this.existing ? (this.masters.find((m) => this.stable(m)) ?? this.master0) : this.master0;
    this.clusterNew = this.existing ? "not applied yet" : "new cluster";
  }

  role(ip: string): Role {
    return this.hosts.get(ip)?.role ?? "node";
  }

  /** A host that is part of the running cluster with its current role. */
  stable(ip: string): boolean {
    return this.existing && this.joined.has(ip) && !this.roleChanged.has(ip);
  }

  /** Why a host's steps run when they never ran: new cluster, added, or re-added with a new role. */
  hostNew(ip: string): string {
    const changed = this.roleChanged.get(ip);
    if (changed) return `host ${ip} changes role ${changed} -> ${this.role(ip)}: cleaned and joined again`;
    if (this.existing) return `host ${ip} added as ${this.role(ip)}`;
    return `new cluster: host ${ip} as ${ip === this.master0 ? "master0" : this.role(ip)}`;
  }

  /** A re-added host's steps run whatever they recorded. */
  force(ip: string): string | undefined {
    return this.roleChanged.has(ip) ? this.hostNew(ip) : undefined;
  }

  /** Memoised shared part (the same value for many steps is hashed once). */
  shared(name: string, value: () => unknown, desc: string): Part {
    let p = this.partCache.get(name);
    if (!p) {
      p = { name, hash: hash(value()), desc };
      this.partCache.set(name, p);
    }
    return p;
  }

  /** The platform a host runs (see hostView); hosts not in the Clusterfile get the image's default. */
  platformOf(ip: string): { platform: string; known: boolean } {
    const v = this.hosts.get(ip);
    return v ? { platform: v.platform, known: v.platformKnown } : platformOf(this.viewInput, ip);
  }

  /** The image's layers for a platform (with their classes and paths), computed once per platform. */
  layerInfo(platform: string): LayerInfo {
    let info = this.layerInfoCache.get(platform);
    if (!info) {
      const layers = layersFor(this.image, platform);
      info = {
        layers,
        classes: layers.map((l) => new Set(l.paths.flatMap(classifyPath))),
        paths: layers.map((l) => l.paths),
      };
      this.layerInfoCache.set(platform, info);
    }
    return info;
  }

  /**
   * A part over the layers of a class on `ip`'s platform (default master0's, for cluster-wide
   * steps), described by the layers not applied before.
   */
  layerPart(name: string, match: (c: LayerClass) => boolean, what: string, ip = this.master0): Part {
    const platform = this.platformOf(ip).platform;
    const cacheKey = `${name}@${platform}`;
    const cached = this.partCache.get(cacheKey);
    if (cached) return cached;
    const { layers, classes, paths } = this.layerInfo(platform);
    const idx: number[] = [];
    classes.forEach((set, i) => {
      for (const c of set) if (match(c)) return void idx.push(i);
    });
    const digests = idx.map((i) => layers[i]?.digest ?? "");
    const matching = (i: number) => (paths[i] ?? []).filter((p) => classifyPath(p).some(match));
    // A layer with per-path digests counts by the paths of this class only, so a change elsewhere
    // in the same layer leaves the part as it was; one without counts by its digest.
    const content = idx.map((i) => {
      const groups = layers[i]?.groups;
      return groups ? matching(i).map((p) => [p, groups[p] ?? ""]) : (layers[i]?.digest ?? "");
    });
    const fresh = idx.filter((i) => !this.appliedLayers.has(layers[i]?.digest ?? ""));
    const desc = fresh.length
      ? fresh
          .map((i) => `layer ${short(layers[i]?.digest ?? "")} changed ${matching(i).join(", ") || what}`)
          .join("; ")
      : `layers for ${what} changed`;
    const h = hash(content);
    const legacy = hash(digests);
    const p: Part = { name, hash: h, desc, ...(legacy !== h ? { legacy } : {}) };
    this.partCache.set(cacheKey, p);
    return p;
  }

  /**
   * Hosts whose platform the image has no manifest for: one UserError naming each host, its
   * platform and the image's platforms (a guessed platform is always the image's own).
   */
  checkPlatforms(): void {
    if (this.image.platforms.length === 0) return; // facts made up without the image (delete)
    const problems: string[] = [];
    for (const ip of this.all) {
      const { platform } = this.platformOf(ip);
      if (!this.image.platforms.includes(platform)) problems.push(`host ${ip} is ${platform}`);
    }
    if (problems.length)
      throw new UserError(
        `image ${this.image.reference} is built for ${this.image.platforms.join(", ")} only, but ${problems.join(", ")}: ` +
          `build it for every platform of the cluster (sealer build --platform ${[...new Set([...this.image.platforms, ...this.all.map((ip) => this.platformOf(ip).platform)])].join(",")} ...), or pull such a build`,
      );
  }

  /**
   * Env parts of a step on `ip`, one per key it reads ("env:PodCIDR"), so a change names its key.
   * The keys: those of the templates under the classes the step reads (templateEnvKeys), the
   * recognised keys it interprets (ENV_CONSUMERS), and `$KEY` in its own commands. Without a
   * template map, every key counts for template-consuming steps (and the reason says so).
   */
  envParts(
    ip: string,
    step: string,
    classes: (c: LayerClass) => boolean,
    templateConsumer: boolean,
    cmdText = "",
    classTag = step,
  ): Part[] {
    const env = this.hosts.get(ip)?.env ?? this.clusterEnv;
    const cacheKey = `${classTag}\0${templateConsumer}\0${cmdText}`;
    let spec = this.envKeyCache.get(cacheKey);
    if (!spec) {
      const map = this.image.templateEnvKeys;
      const set = new Set<string>();
      let fallback = false;
      if (templateConsumer && !map) fallback = true;
      else if (map && templateConsumer)
        for (const [p, ks] of Object.entries(map))
          if (classifyPath(p).some(classes)) for (const k of ks) set.add(k);
      for (const [k, steps] of Object.entries(ENV_CONSUMERS))
        if ((steps as string[]).includes(step)) set.add(k);
      for (const k of envRefs(cmdText)) set.add(k);
      spec = { keys: [...set].sort(), fallback };
      this.envKeyCache.set(cacheKey, spec);
    }
    const { keys: stepKeys, fallback } = spec;
    const keys = fallback ? [...new Set([...Object.keys(env), ...stepKeys])].sort() : stepKeys;
    return keys.map((k) => {
      const values = env[k] ?? null;
      const vk = `${k}\0${JSON.stringify(values)}`;
      let h = this.envValueCache.get(vk);
      if (!h) {
        h = hash(values);
        this.envValueCache.set(vk, h);
      }
      const desc = fallback
        ? `env ${k} changed (no template env map in the image facts: every template-consuming step is assumed to use every key)`
        : `env ${k} changed`;
      return { name: `env:${k}`, hash: h, desc };
    });
  }
}

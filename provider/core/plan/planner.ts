/**
 * The planner: plan(desired, applied) -> Plan. PURE (no I/O, no clock, no randomness).
 *
 * How it works (ARCHITECTURE.md "The heart"):
 * 1. Build the full step graph the desired cluster needs, in execution order, each step with
 *    named input parts (layer digests of the classes it reads, Clusterfile fields, env values…)
 *    chosen by the impact table (impact.ts). A step's key is the hash of its parts.
 * 2. A step is planned when it never ran or its key differs from the one recorded in the applied
 *    state. The reason names the parts that changed ("layer sha256:ab12… changed
 *    application/apps/web/"), or why it never ran ("host 10.0.0.7 added as node").
 * 3. Hosts in the applied state but not desired get removal steps; a changed Kubernetes version
 *    (or kube binaries / cluster-wide kubeadm config) on an existing cluster gets the upgrade
 *    sequence instead of init/join.
 * 4. `after` is the graph's order restricted to the planned steps (transitively), so the
 *    executor may run independent steps (workers) in parallel.
 *
 * recordStep(applied, step, desired) is what the executor calls after each successful step;
 * recording every step of a plan and planning again gives zero steps.
 */
import * as semver from "semver";
import type { ClusterSpec, Env, HookPhase, HostSpec, PluginDoc } from "../clusterfile/types";
import { effectivePlugins, pluginHosts, selectsHosts } from "./plugins";
import { masters as mastersOf, workers as workersOf } from "../clusterfile";
import { Secret } from "../clusterfile/secret";
import { UserError } from "../errors";
import { sha256Hex, stableStringify } from "../common/hash";
import {
  classifyPath,
  classTouchesApp,
  DEFAULT_VIP,
  ENV_CONSUMERS,
  envRefs,
  type LayerClass,
} from "./impact";
import type { AppliedState, ImageFacts, Plan, Role, Step, StepKind } from "./types";
import { emptyApplied } from "./types";

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

/** One named input of a step: its hash, and what to say when it changed. */
interface Part {
  name: string;
  hash: string;
  desc: string;
}

type StepExtra = Omit<Step, "id" | "kind" | "hosts" | "reason" | "key" | "after">;

interface GNode {
  id: string;
  kind: StepKind;
  hosts: string[];
  extra: Record<string, unknown>;
  parts: Part[];
  deps: string[];
  /** Reason when the step never ran. */
  newReason: string;
  /** Planned regardless of its record (hosts re-added after a role change). */
  force?: string;
  /** Appended to the reason when the step is planned (e.g. a platform that was guessed). */
  note?: string;
  /** Upgrade steps compare with the host's recorded kubeKey, not a step record. */
  kubeHost?: string;
  kubeDesc?: string;
}

/**
 * Hash of a value (secrets as fingerprints). Memoised on the value's stable text: many steps
 * share inputs (roles, platforms, labels), and hashing dominates planning time at 1000 hosts.
 * The memo never changes a result, so the planner stays pure; it is reset per plan.
 */
let hashMemo = new Map<string, string>();
const hash = (v: unknown): string => {
  const text = stableStringify(plain(v));
  let h = hashMemo.get(text);
  if (h === undefined) {
    h = sha256Hex(text).slice(0, 32);
    hashMemo.set(text, h);
  }
  return h;
};
const short = (d: string): string => (d.startsWith("sha256:") ? `sha256:${d.slice(7, 19)}…` : d.slice(0, 19));

/** Secrets become fingerprints so a changed password changes a key without the key revealing it. */
function plain(v: unknown): unknown {
  if (v instanceof Secret) return v.fingerprint();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

function keyOf(parts: Part[]): string {
  return "k1:" + sha256Hex(stableStringify(partsRecord(parts))).slice(0, 40);
}

function partsRecord(parts: Part[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (const p of parts) o[p.name] = p.hash;
  return o;
}

/** Everything the graph builder needs, computed once (the planner must stay fast at 1000 hosts). */
class Ctx {
  readonly spec: ClusterSpec;
  readonly image: ImageFacts;
  readonly applied: AppliedState;
  readonly platforms: Record<string, string>;
  readonly masters: string[];
  readonly workers: string[];
  readonly all: string[];
  readonly master0: string;
  readonly existing: boolean;
  /** The image's default platform: what `image.layers` are (probed hosts may differ). */
  readonly defaultPlatform: string;
  private readonly layerInfoCache = new Map<
    string,
    { layers: ImageFacts["layers"]; classes: Array<Set<LayerClass>>; paths: string[][] }
  >();
  readonly warnings: string[] = [];
  readonly joined = new Set<string>();
  readonly roleChanged = new Map<string, string>();
  readonly removed: string[];
  readonly appliedLayers: Set<string>;
  readonly hostByIp = new Map<string, HostSpec>();
  private readonly masterSet: Set<string>;
  private readonly partCache = new Map<string, Part>();

  constructor(d: Desired, applied: AppliedState) {
    this.spec = d.cluster;
    this.image = d.image;
    this.applied = applied;
    this.platforms = d.hostPlatforms ?? {};
    this.masters = mastersOf(d.cluster);
    this.workers = workersOf(d.cluster);
    this.all = [...this.masters, ...this.workers];
    this.masterSet = new Set(this.masters);
    for (const h of d.cluster.hosts) for (const ip of h.ips) this.hostByIp.set(ip, h);
    this.master0 = this.masters[0] ?? "";
    this.existing = applied.steps["init-master"] !== undefined;
    this.defaultPlatform = d.image.platform ?? d.image.platforms[0] ?? "";
    for (const ip of applied.steps["init-master"]?.hosts ?? []) this.joined.add(ip);
    for (const id of Object.keys(applied.steps)) {
      const m = /^join-(master|worker):(.+)$/.exec(id);
      if (m?.[2]) this.joined.add(m[2]);
    }
    const desired = new Set(this.all);
    this.removed = Object.keys(applied.hosts)
      .filter((ip) => !desired.has(ip))
      .sort();
    for (const ip of this.all) {
      const was = applied.hosts[ip]?.roles;
      const now = this.role(ip);
      if (was && was.length > 0 && this.joined.has(ip) && !was.includes(now))
        this.roleChanged.set(ip, was.join(","));
    }
    this.appliedLayers = new Set(Object.values(applied.hosts).flatMap((h) => h.layers));
  }

  role(ip: string): Role {
    return this.masterSet.has(ip) ? "master" : "node";
  }

  /** A host that is part of the running cluster with its current role. */
  stable(ip: string): boolean {
    return this.existing && this.joined.has(ip) && !this.roleChanged.has(ip);
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

  /**
   * The platform a host runs: probed, else recorded, else the image's default (`known` false:
   * a guess, said in the distribute reason).
   */
  platformOf(ip: string): { platform: string; known: boolean } {
    const p = this.platforms[ip] ?? this.applied.hosts[ip]?.platform;
    return p ? { platform: p, known: true } : { platform: this.defaultPlatform, known: false };
  }

  /** The image's layers for a platform (with their classes and paths), computed once per platform. */
  layerInfo(platform: string): {
    layers: ImageFacts["layers"];
    classes: Array<Set<LayerClass>>;
    paths: string[][];
  } {
    let info = this.layerInfoCache.get(platform);
    if (!info) {
      const layers = this.image.variants?.[platform]?.layers ?? this.image.layers;
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
    const fresh = idx.filter((i) => !this.appliedLayers.has(layers[i]?.digest ?? ""));
    const desc = fresh.length
      ? fresh
          .map((i) => {
            const ps = (paths[i] ?? []).filter((p) => classifyPath(p).some(match));
            return `layer ${short(layers[i]?.digest ?? "")} changed ${ps.join(", ") || what}`;
          })
          .join("; ")
      : `layers for ${what} changed`;
    const p = { name, hash: hash(digests), desc };
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

  /** Env of a host: image ENV, overridden by the Clusterfile (cluster, then host). */
  envOf(ip: string): Env {
    const out: Env = {};
    for (const [k, v] of Object.entries(this.image.env)) out[k] = [v];
    Object.assign(out, this.spec.env, (ip && this.hostByIp.get(ip)?.env) || {});
    return out;
  }

  private readonly envKeyCache = new Map<string, { keys: string[]; fallback: boolean }>();
  private readonly envValueCache = new Map<string, string>();
  private readonly hostEnvCache = new Map<string, Env>();

  /**
   * Env parts of a step, one per key it reads ("env:PodCIDR"), so a change names its key.
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
    let env = this.hostEnvCache.get(ip);
    if (!env) {
      env = this.envOf(ip);
      this.hostEnvCache.set(ip, env);
    }
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
    const keys = spec.fallback ? [...new Set([...Object.keys(env), ...spec.keys])].sort() : spec.keys;
    return keys.map((k) => {
      const values = env[k] ?? null;
      const vk = `${k}\0${JSON.stringify(values)}`;
      let h = this.envValueCache.get(vk);
      if (!h) {
        h = hash(values);
        this.envValueCache.set(vk, h);
      }
      const desc = spec.fallback
        ? `env ${k} changed (no template env map in the image facts: every template-consuming step is assumed to use every key)`
        : `env ${k} changed`;
      return { name: `env:${k}`, hash: h, desc };
    });
  }
}

/** Hook plugins for a phase, in name order: the image's plugins/ and the Clusterfile's (which wins). */
function hooks(ctx: Ctx, phase: HookPhase): PluginDoc[] {
  return effectivePlugins(ctx.spec.plugins, ctx.image.plugins).filter((p) => p.actions.includes(phase));
}

/** Hosts a plugin runs on at `phase` (scope, legacy `on`, HOSTNAME's IPs); none given = every candidate. */
function scopeHosts(ctx: Ctx, p: PluginDoc, phase: HookPhase, candidates: string[]): string[] {
  return pluginHosts(
    p,
    phase,
    candidates,
    (ip) => ({
      role: ctx.role(ip),
      roles: ctx.hostByIp.get(ip)?.roles ?? [ctx.role(ip)],
      labels: ctx.hostByIp.get(ip)?.labels ?? {},
    }),
    ctx.master0,
  );
}

function pluginPart(ctx: Ctx, p: PluginDoc): Part[] {
  return [
    {
      name: "plugin",
      hash: hash({ type: p.type, data: p.data, scope: p.scope, on: p.on, legacy: p.legacy }),
      desc: `plugin ${p.name} changed`,
    },
    // With the image's plugins/ in the facts a hook keys on its own plugin (above) and on the
    // other files under plugins/ (scripts any hook may call); a change to another plugin's yaml
    // leaves it alone. Facts without it: every layer touching plugins/.
    ctx.image.plugins
      ? {
          name: "plugins-files",
          hash: ctx.image.plugins.filesHash,
          desc: "files under the image's plugins/ changed",
        }
      : ctx.layerPart("layers:plugins", (c) => c === "plugins", "plugins/"),
  ];
}

/** Launch resolution (REFERENCE.md §2): Application cmds > Cluster cmd > apps (appNames > launchApps > LAUNCH) > CMDS > legacy CMD. */
interface Launch {
  cmds?: { cmds: string[]; source: string };
  apps: Array<{ name: string; cmds: string[]; env: Env }>;
}

export function resolveLaunch(spec: ClusterSpec, image: ImageFacts): Launch {
  const app = spec.application;
  if (app && app.cmds.length) return { cmds: { cmds: app.cmds, source: "Application cmds" }, apps: [] };
  if (spec.cmd.length) return { cmds: { cmds: spec.cmd, source: "Clusterfile cmd" }, apps: [] };
  const names = spec.appNames.length
    ? spec.appNames
    : app?.launchApps.length
      ? app.launchApps
      : (image.launch.appNames ?? []);
  if (names.length) {
    const problems: string[] = [];
    // Say which field named the app, so the user knows where to fix it.
    const field = spec.appNames.length
      ? "spec.appNames"
      : app?.launchApps.length
        ? "Application spec.launchApps"
        : "the image's LAUNCH";
    const apps = names.map((name) => {
      const facts = image.apps.find((a) => a.name === name);
      if (!facts)
        problems.push(
          `${field}: app "${name}" is not in image ${image.reference} (its apps: ${image.apps.map((a) => a.name).join(", ") || "none"})`,
        );
      const cfg = app?.configs.find((c) => c.name === name);
      const dir = `application/apps/${name}`;
      let cmds = cfg?.launchCmds ?? facts?.cmds ?? [];
      if (cmds.length === 0 && facts) {
        switch (facts.type) {
          case "kube":
            cmds = facts.files.filter((f) => /\.ya?ml$/.test(f)).map((f) => `kubectl apply -f ${dir}/${f}`);
            break;
          case "helm":
            // upgrade --install: re-launching a changed app must work on a cluster where it runs.
            cmds = [`helm upgrade --install ${name} ${dir}`];
            break;
          case "shell":
            cmds = facts.files.filter((f) => f.endsWith(".sh")).map((f) => `bash ${dir}/${f}`);
            break;
          case "other":
            break;
        }
      }
      const env: Env = {};
      for (const [k, v] of Object.entries(facts?.env ?? {})) env[k] = [v];
      Object.assign(env, cfg?.env ?? {});
      return { name, cmds, env };
    });
    if (problems.length)
      throw new UserError(`cannot plan the launch:\n${problems.map((p) => ` - ${p}`).join("\n")}`, {
        problems,
      });
    return { apps };
  }
  if (image.launch.cmds?.length) return { cmds: { cmds: image.launch.cmds, source: "image CMDS" }, apps: [] };
  if (image.launch.legacyCmds?.length)
    return { cmds: { cmds: image.launch.legacyCmds, source: "image CMD" }, apps: [] };
  return { apps: [] };
}

/** The container runtime the hosts use: Clusterfile, else the image label, else containerd. */
function runtimeOf(d: { cluster: ClusterSpec; image: ImageFacts }): "docker" | "containerd" {
  return d.cluster.containerRuntime?.type ?? d.image.containerRuntime ?? "containerd";
}

function registryHosts(ctx: Ctx): string[] {
  const r = ctx.spec.registry;
  if (r.externalRegistry) return [ctx.master0];
  return r.localRegistry?.ha === false ? [ctx.master0] : ctx.masters;
}

/** Fields fixed at creation; a change needs a new cluster. */
export function immutableOf(d: { cluster: ClusterSpec; image: ImageFacts }): Record<string, string> {
  const env = d.cluster.env;
  const net = (d.cluster.kubeadm.cluster?.networking ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {
    "cluster name": d.cluster.name,
    dataRoot: d.cluster.dataRoot,
    "container runtime": runtimeOf(d),
  };
  const pod = env.PodCIDR?.join(";") ?? (typeof net.podSubnet === "string" ? net.podSubnet : undefined);
  const svc =
    env.SvcCIDR?.join(";") ?? (typeof net.serviceSubnet === "string" ? net.serviceSubnet : undefined);
  if (pod) out["pod CIDR (PodCIDR / networking.podSubnet)"] = pod;
  if (svc) out["service CIDR (SvcCIDR / networking.serviceSubnet)"] = svc;
  if (typeof net.dnsDomain === "string") out["networking.dnsDomain"] = net.dnsDomain;
  return out;
}

/** Key of the Kubernetes inputs of a host (what an upgrade brings it to). */
function kubeParts(ctx: Ctx, role: Role): Part[] {
  const v = ctx.image.kubeVersion ?? "";
  const parts: Part[] = [
    ctx.shared("kube:version", () => v, `kube version changed to ${v || "(none)"}`),
    ctx.layerPart("layers:kube-bin", (c) => c === "kube-bin", "bin/kube*"),
    ctx.shared("kubeadm:kubelet", () => ctx.spec.kubeadm.kubelet ?? null, "KubeletConfiguration changed"),
  ];
  if (role === "master")
    parts.push(
      ctx.shared(
        "kubeadm:cluster",
        () => [ctx.spec.kubeadm.cluster ?? null, ctx.spec.kubeadm.kubeProxy ?? null],
        "kubeadm ClusterConfiguration/KubeProxyConfiguration changed (upgrade with config)",
      ),
      ctx.layerPart("layers:kubeadm", (c) => c === "kubeadm", "etc/kubeadm*"),
    );
  return parts;
}

export function kubeKey(d: Desired, applied: AppliedState, ip: string): string {
  const ctx = new Ctx(d, applied);
  return keyOf(kubeParts(ctx, ctx.role(ip)));
}

function buildGraph(d: Desired, applied: AppliedState, opts: PlanOptions): { nodes: GNode[]; ctx: Ctx } {
  hashMemo = new Map();
  const ctx = new Ctx(d, applied);
  ctx.checkPlatforms();
  const { spec, image } = ctx;
  const nodes: GNode[] = [];
  const add = (n: Omit<GNode, "extra" | "deps"> & { extra?: Record<string, unknown>; deps?: string[] }) => {
    const node: GNode = { ...n, extra: n.extra ?? {}, deps: (n.deps ?? []).filter(Boolean) };
    nodes.push(node);
    return node.id;
  };
  const roleWord = (ip: string) =>
    ip === ctx.master0 && !ctx.existing ? "master0" : ctx.role(ip) === "master" ? "master" : "node";
  const hostNew = (ip: string): string => {
    const changed = ctx.roleChanged.get(ip);
    if (changed) return `host ${ip} changes role ${changed} -> ${ctx.role(ip)}: cleaned and joined again`;
    return ctx.existing
      ? `host ${ip} added as ${ctx.role(ip)}`
      : `new cluster: host ${ip} as ${roleWord(ip)}`;
  };
  const force = (ip: string) => (ctx.roleChanged.has(ip) ? hostNew(ip) : undefined);
  const clusterNew = ctx.existing ? "not applied yet" : "new cluster";

  const added = ctx.all.filter((ip) => !ctx.stable(ip));
  const addedToExisting = ctx.existing ? added : [];

  // Hooks of cluster phases (pre/post-install, pre/post-scaleup, upgrade): hosts in scope among
  // `candidates`; an empty scope means the one host that acts for the cluster (`at`, master0),
  // since these hooks act on the cluster (kubectl) rather than on each machine.
  const clusterHook = (
    phase: HookPhase,
    candidates: string[],
    at: string,
    deps: string[],
    extraPart?: Part,
    /** What the phase is part of (an upgrade, hosts added): the reason, instead of "new cluster". */
    why?: string,
  ): string[] =>
    hooks(ctx, phase).map((p, i, arr) => {
      const hosts = selectsHosts(p) ? scopeHosts(ctx, p, phase, candidates) : [at];
      const reason = why ? `${why}: ${phase} hook ${p.name}` : `${phase} hook ${p.name} (${clusterNew})`;
      return add({
        id: `hook:${phase}:${p.name}`,
        kind: "hook",
        hosts,
        extra: { phase, plugin: p.name },
        // Keyed by the plugin (its scope included), not by the hosts it lands on: a cluster-phase
        // hook has run for the cluster; new hosts get the scale-up phases instead.
        parts: [
          ...pluginPart(ctx, p),
          ...(extraPart ? [{ ...extraPart, desc: extraPart.desc || reason }] : []),
        ],
        deps: i > 0 ? [`hook:${phase}:${arr[i - 1]?.name}`, ...deps] : deps,
        newReason: reason,
      });
    });
  /**
   * Per-host hooks of `phase`. `upgrade` (for upgrade-host): what the host's upgrade is and the
   * key of its new Kubernetes inputs, so the hook runs again on every upgrade of the host (not only
   * the first) and says so, instead of the new-host wording.
   */
  const hostHooks = (
    phase: HookPhase,
    ip: string,
    deps: string[],
    upgrade?: { what: string; key: string },
  ): string[] => {
    const ids: string[] = [];
    for (const p of hooks(ctx, phase)) {
      if (scopeHosts(ctx, p, phase, [ip]).length === 0) continue;
      const reason = upgrade
        ? `${upgrade.what}: ${phase} hook ${p.name} on ${ip}`
        : `${phase} hook ${p.name}: ${hostNew(ip)}`;
      ids.push(
        add({
          id: `hook:${phase}:${p.name}:${ip}`,
          kind: "hook",
          hosts: [ip],
          extra: { phase, plugin: p.name },
          parts: [
            ...pluginPart(ctx, p),
            ...(upgrade ? [{ name: "upgrade", hash: upgrade.key, desc: reason }] : []),
          ],
          deps: [...deps, ...ids.slice(-1)],
          newReason: reason,
          force: force(ip),
        }),
      );
    }
    return ids;
  };

  // ---- 1. cluster-level pre hooks
  const preInstall = ctx.existing ? [] : clusterHook("pre-install", ctx.all, ctx.master0, []);
  const preScaleup = addedToExisting.length
    ? clusterHook(
        "pre-scaleup",
        addedToExisting,
        ctx.masters.find((m) => ctx.stable(m)) ?? ctx.master0,
        [],
        {
          name: "added",
          hash: hash(addedToExisting),
          desc: "",
        },
        `hosts added (${addedToExisting.join(", ")})`,
      )
    : [];

  // ---- 2. removal of hosts that change role comes first (their re-add depends on it)
  // (handled with the other removals below; re-added steps depend on delete-node)

  // ---- 3. per host: distribute, init-host, container-runtime, host-aliases
  const configsPart = ctx.shared(
    "configs",
    () => [spec.configs, spec.application?.configs.map((c) => c.files) ?? []],
    "Config documents changed",
  );
  const runtime = runtimeOf(d);
  const aliasesPart = ctx.shared("hostAliases", () => spec.hostAliases, "hostAliases changed");
  const wantAliases = spec.hostAliases.length > 0;
  const removalGate = "delete-node"; // re-added (role-changed) hosts wait for their removal
  const lastOfHost = new Map<string, string>();
  for (const ip of ctx.all) {
    const gate = ctx.roleChanged.has(ip) ? [removalGate] : [];
    // The layers of this host's platform (K4): their digests are the distribute key's "layers".
    const plat = ctx.platformOf(ip);
    const hostLayers = ctx.layerInfo(plat.platform).layers;
    const layerDigests = hostLayers.map((l) => l.digest);
    const prev = applied.hosts[ip]?.layers ?? [];
    const prevPlatform = applied.hosts[ip]?.platform;
    let from = 0;
    while (from < layerDigests.length && from < prev.length && prev[from] === layerDigests[from]) from++;
    if (ctx.roleChanged.has(ip)) from = 0;
    const layerDesc = (() => {
      const changed = layerDigests
        .map((dg, i) => ({ dg, i }))
        .filter(({ dg, i }) => i >= from && !prev.includes(dg));
      const moved =
        plat.known && prevPlatform && prevPlatform !== plat.platform
          ? `platform of ${ip} changed ${prevPlatform} -> ${plat.platform}; `
          : "";
      if (changed.length === 0)
        return (
          moved +
          (layerDigests.length < prev.length ? "layers removed from the image" : "layer order changed")
        );
      const shown = changed
        .slice(0, 3)
        .map(
          ({ dg, i }) =>
            `layer ${short(dg)} changed ${(hostLayers[i]?.paths ?? []).join(", ") || "(no paths)"}`,
        );
      return moved + shown.join("; ") + (changed.length > 3 ? `; and ${changed.length - 3} more layers` : "");
    })();
    const distParts: Part[] = [{ name: "layers", hash: hash(layerDigests), desc: layerDesc }, configsPart];
    distParts.push(...ctx.envParts(ip, "distribute", () => true, true));
    const dist = add({
      id: `distribute:${ip}`,
      kind: "distribute",
      hosts: [ip],
      extra: { layers: layerDigests, fromLayer: from, ...(plat.platform ? { platform: plat.platform } : {}) },
      parts: distParts,
      deps: [...preInstall, ...preScaleup, ...gate],
      newReason: hostNew(ip),
      force: force(ip),
      // Only a multi-platform image can give a host other layers than the guess (a single-platform
      // one fits the host or apply refuses it), so only then is the guess worth saying.
      ...(plat.known || !plat.platform || Object.keys(image.variants ?? {}).length < 2
        ? {}
        : { note: `platform of ${ip} not probed yet: planned with the image's default ${plat.platform}` }),
    });
    const pre = hostHooks("pre-init-host", ip, [dist]);
    const initParts: Part[] = [
      ctx.layerPart("layers:host-init", (c) => c === "host-init", "scripts/, etc/, bin/", ip),
    ];
    initParts.push(...ctx.envParts(ip, "init-host", (c) => c === "host-init", true));
    const init = add({
      id: `init-host:${ip}`,
      kind: "init-host",
      hosts: [ip],
      parts: initParts,
      deps: [dist, ...pre],
      newReason: hostNew(ip),
      force: force(ip),
    });
    const rtParts: Part[] = [
      ctx.shared("runtime", () => runtime, `container runtime is ${runtime}`),
      ctx.layerPart("layers:runtime", (c) => c === "runtime", "cri/, scripts/<runtime>.sh", ip),
    ];
    rtParts.push(...ctx.envParts(ip, "container-runtime", (c) => c === "runtime", true));
    let last = add({
      id: `container-runtime:${ip}`,
      kind: "container-runtime",
      hosts: [ip],
      extra: { runtime },
      parts: rtParts,
      deps: [init],
      newReason: hostNew(ip),
      force: force(ip),
    });
    if (wantAliases || applied.steps[`host-aliases:${ip}`]) {
      last = add({
        id: `host-aliases:${ip}`,
        kind: "host-aliases",
        hosts: [ip],
        parts: [aliasesPart],
        deps: [last],
        newReason: hostNew(ip),
        force: force(ip),
      });
    }
    lastOfHost.set(ip, last);
  }

  // ---- 4. registry on the registry hosts, registry client everywhere
  const reg = spec.registry;
  const regHosts = registryHosts(ctx);
  const regSettings = ctx.shared("registry", () => reg, "registry settings changed");
  const regStepIds = regHosts.map((ip) =>
    add({
      id: `registry:${ip}`,
      kind: "registry",
      hosts: [ip],
      parts: [regSettings, ctx.layerPart("layers:registry", (c) => c === "registry", "registry/")],
      deps: [lastOfHost.get(ip) ?? ""],
      newReason: reg.externalRegistry
        ? `push the image's container images to ${reg.externalRegistry.domain} (${clusterNew})`
        : hostNew(ip),
      force: force(ip),
    }),
  );
  const regClientShared = ctx.shared(
    "registry-hosts",
    () => [...regHosts].sort(),
    `registry hosts changed (${regHosts.join(", ")})`,
  );
  for (const ip of ctx.all) {
    const parts: Part[] = [
      regSettings,
      regClientShared,
      { name: "role", hash: hash(ctx.role(ip)), desc: `role of ${ip} changed` },
    ];
    parts.push(...ctx.envParts(ip, "registry-client", () => false, false));
    lastOfHost.set(
      ip,
      add({
        id: `registry-client:${ip}`,
        kind: "registry-client",
        hosts: [ip],
        parts,
        deps: [lastOfHost.get(ip) ?? "", ...regStepIds],
        newReason: hostNew(ip),
        force: force(ip),
      }),
    );
  }

  // ---- 5. kubeadm config on the master that drives joins
  const runner = ctx.existing ? (ctx.masters.find((m) => ctx.stable(m)) ?? ctx.master0) : ctx.master0;
  if (ctx.existing && !ctx.masters.some((m) => ctx.stable(m))) {
    return {
      nodes,
      ctx: replaceCtx(
        ctx,
        `every master of the running cluster would be removed or change role (running masters: ${Object.keys(
          applied.hosts,
        )
          .filter((ip) => applied.hosts[ip]?.roles.includes("master"))
          .join(", ")}): keep at least one of them in the Clusterfile, or recreate the cluster`,
      ),
    };
  }
  const kcParts: Part[] = [
    ctx.shared("kubeadm:init", () => spec.kubeadm.init ?? null, "kubeadm InitConfiguration changed"),
    ctx.shared("kubeadm:join", () => spec.kubeadm.join ?? null, "kubeadm JoinConfiguration changed"),
    ctx.shared(
      "kubeadm:cluster-docs",
      () => [spec.kubeadm.cluster ?? null, spec.kubeadm.kubelet ?? null, spec.kubeadm.kubeProxy ?? null],
      "kubeadm Cluster/Kubelet/KubeProxy configuration changed",
    ),
    ctx.layerPart("layers:kubeadm", (c) => c === "kubeadm", "etc/kubeadm*"),
    ctx.shared("masters", () => ctx.masters, `masters changed (${ctx.masters.join(", ")})`),
    ctx.shared(
      "kube:version",
      () => image.kubeVersion ?? "",
      `kube version changed to ${image.kubeVersion ?? "(none)"}`,
    ),
    { name: "registry", hash: regSettings.hash, desc: regSettings.desc },
  ];
  kcParts.push(...ctx.envParts(runner, "kubeadm-config", (c) => c === "kubeadm", true));
  const kubeadmConfig = add({
    id: "kubeadm-config",
    kind: "kubeadm-config",
    hosts: [runner],
    parts: kcParts,
    deps: [lastOfHost.get(runner) ?? ""],
    newReason: clusterNew,
  });

  // ---- 6. masters: init (new cluster) or upgrade (existing), then joins one at a time
  let lastMaster = "";
  const joinStep = new Map<string, string>();
  if (!ctx.existing) {
    lastMaster = add({
      id: "init-master",
      kind: "init-master",
      hosts: [ctx.master0],
      parts: [{ name: "cluster", hash: hash(spec.name), desc: "cluster identity changed" }],
      deps: [kubeadmConfig, lastOfHost.get(ctx.master0) ?? ""],
      newReason: `new cluster: kubeadm init on master0 ${ctx.master0}`,
    });
    joinStep.set(ctx.master0, lastMaster);
  }
  // Upgrade: hosts already in the cluster whose Kubernetes inputs changed.
  const upgradeTargets = ctx.all.filter((ip) => {
    if (!ctx.stable(ip)) return false;
    const rec = applied.hosts[ip];
    return rec?.kubeKey !== undefined && rec.kubeKey !== keyOf(kubeParts(ctx, ctx.role(ip)));
  });
  const upgrading = upgradeTargets.length > 0;
  const version = image.kubeVersion ?? "";
  const upgradeReason = (ip: string): string => {
    const was = applied.hosts[ip]?.kubeVersion;
    if (was !== undefined && was !== version)
      return `kube version ${was || "(unknown)"} -> ${version}${compareVersions(version, was) < 0 ? " (older: a rollback)" : ""}`;
    return "kubernetes binaries or cluster-wide kubeadm configuration changed (upgrade with config)";
  };
  /** What an upgrade of `ip` is, for its hooks: "upgrade to v1.29.0", "rollback to v1.28.2". */
  const upgradeWhat = (ip: string): string => {
    const was = applied.hosts[ip]?.kubeVersion;
    if (was !== undefined && was !== version)
      return `${compareVersions(version, was) < 0 ? "rollback" : "upgrade"} to ${version}`;
    return "upgrade with changed kubernetes binaries or kubeadm configuration";
  };
  const upgradeHook = (ip: string) => ({
    what: upgradeWhat(ip),
    key: keyOf(kubeParts(ctx, ctx.role(ip))),
  });
  const upgradeHookIds: string[] = [];
  let firstUpgrade = true;
  for (const ip of ctx.masters) {
    if (!upgradeTargets.includes(ip)) continue;
    const pre = hostHooks("upgrade-host", ip, [lastOfHost.get(ip) ?? ""], upgradeHook(ip));
    upgradeHookIds.push(...pre);
    lastMaster = add({
      id: `upgrade-master:${ip}`,
      kind: "upgrade-master",
      hosts: [ip],
      extra: { version, first: firstUpgrade },
      parts: kubeParts(ctx, "master"),
      deps: [kubeadmConfig, lastMaster, ...pre, lastOfHost.get(ip) ?? ""],
      newReason: upgradeReason(ip),
      kubeHost: ip,
      kubeDesc: upgradeReason(ip),
    });
    firstUpgrade = false;
  }
  // Masters to join: new ones in the listed order, role-changed ones last (they wait for their removal).
  const toJoin = ctx.masters.filter((ip) => !ctx.stable(ip) && !(ip === ctx.master0 && !ctx.existing));
  toJoin.sort((a, b) => Number(ctx.roleChanged.has(a)) - Number(ctx.roleChanged.has(b)));
  // Removals wait for the masters that stay and the new ones (adds before removals keeps etcd quorum).
  let masterBeforeRemoval: string | undefined;
  for (const ip of toJoin) {
    if (ctx.roleChanged.has(ip) && masterBeforeRemoval === undefined) masterBeforeRemoval = lastMaster;
    lastMaster = add({
      id: `join-master:${ip}`,
      kind: "join-master",
      hosts: [ip],
      parts: [{ name: "role", hash: hash("master"), desc: "role changed" }],
      deps: [
        lastMaster,
        kubeadmConfig,
        lastOfHost.get(ip) ?? "",
        ...(ctx.roleChanged.has(ip) ? [removalGate] : []),
      ],
      newReason: hostNew(ip),
      force: force(ip),
    });
    joinStep.set(ip, lastMaster);
  }
  if (masterBeforeRemoval === undefined) masterBeforeRemoval = lastMaster;

  // ---- 7. removal: removed hosts and hosts changing role
  const toRemove = [...ctx.removed, ...[...ctx.roleChanged.keys()]];
  const removalIds: string[] = [];
  let deleteNode = "";
  if (toRemove.length) {
    // Removed hosts are gone from the Clusterfile: their roles and labels are the recorded ones.
    const removedHosts = (p: PluginDoc, phase: HookPhase, ips: string[]) =>
      pluginHosts(
        p,
        phase,
        ips,
        (ip) => {
          const roles: string[] = applied.hosts[ip]?.roles ?? [];
          return {
            role: roles.includes("master") ? "master" : "node",
            roles,
            labels: applied.hosts[ip]?.labels ?? {},
          };
        },
        ctx.master0,
      );
    const cleanIds: string[] = [];
    for (const ip of toRemove) {
      const was = applied.hosts[ip]?.roles.join(",") ?? "host";
      const why = ctx.roleChanged.has(ip)
        ? `host ${ip} changes role ${ctx.roleChanged.get(ip)} -> ${ctx.role(ip)}`
        : `host ${ip} (${was}) removed from the Clusterfile`;
      const pre: string[] = [];
      for (const p of hooks(ctx, "pre-clean-host")) {
        if (removedHosts(p, "pre-clean-host", [ip]).length === 0) continue;
        pre.push(
          add({
            id: `hook:pre-clean-host:${p.name}:${ip}`,
            kind: "hook",
            hosts: [ip],
            extra: { phase: "pre-clean-host", plugin: p.name },
            parts: [{ name: "removal", hash: hash(ip), desc: why }],
            deps: [masterBeforeRemoval, ...pre.slice(-1)],
            newReason: why,
          }),
        );
      }
      cleanIds.push(
        add({
          id: `clean-host:${ip}`,
          kind: "clean-host",
          hosts: [ip],
          parts: [{ name: "removal", hash: hash(ip), desc: why }],
          deps: [masterBeforeRemoval, ...pre],
          newReason: why,
        }),
      );
      removalIds.push(...pre);
    }
    removalIds.push(...cleanIds);
    const nodesToDelete = [...toRemove].sort();
    deleteNode = add({
      id: "delete-node",
      kind: "delete-node",
      hosts: [runner],
      extra: { nodes: nodesToDelete },
      parts: [{ name: "nodes", hash: hash(nodesToDelete), desc: `delete nodes ${nodesToDelete.join(", ")}` }],
      deps: [...cleanIds, masterBeforeRemoval],
      newReason: `kubectl delete node ${nodesToDelete.join(" ")} (hosts cleaned first)`,
    });
    removalIds.push(deleteNode);
    for (const p of hooks(ctx, "post-clean-host")) {
      const hostsIn = removedHosts(p, "post-clean-host", nodesToDelete);
      if (!hostsIn.length) continue;
      removalIds.push(
        add({
          id: `hook:post-clean-host:${p.name}`,
          kind: "hook",
          hosts: [runner],
          extra: { phase: "post-clean-host", plugin: p.name },
          parts: [{ name: "removal", hash: hash(hostsIn), desc: `hosts ${hostsIn.join(", ")} removed` }],
          deps: [deleteNode],
          newReason: `hosts ${hostsIn.join(", ")} removed`,
        }),
      );
    }
  }
  const gateIfRemoval = deleteNode ? [deleteNode] : [];
  // Re-added hosts referenced the gate by name; point it at the real delete-node step (or drop it).
  for (const n of nodes)
    n.deps = n.deps.flatMap((dep) => (dep === removalGate && n.id !== "delete-node" ? gateIfRemoval : [dep]));

  // ---- 8. workers: VIP to the masters, join (parallel), upgrade (batches)
  // The VIP balances over the set of masters: their order does not matter.
  const vipPart = ctx.shared(
    "vip",
    () => [[...ctx.masters].sort(), ctx.envOf("").IPvsVIPv4 ?? [DEFAULT_VIP], reg.localRegistry?.ha ?? false],
    `masters changed (${ctx.masters.join(", ")}): re-point the worker VIP`,
  );
  const upgradeWorkers = ctx.workers.filter((ip) => upgradeTargets.includes(ip));
  const batch = Math.max(1, opts.workerUpgradeBatch ?? Math.ceil(upgradeWorkers.length / 10));
  let prevBatch: string[] = [lastMaster];
  for (let i = 0; i < upgradeWorkers.length; i += batch) {
    const ids: string[] = [];
    for (const ip of upgradeWorkers.slice(i, i + batch)) {
      const pre = hostHooks("upgrade-host", ip, [lastOfHost.get(ip) ?? "", ...prevBatch], upgradeHook(ip));
      upgradeHookIds.push(...pre);
      ids.push(
        add({
          id: `upgrade-worker:${ip}`,
          kind: "upgrade-worker",
          hosts: [ip],
          extra: { version },
          parts: kubeParts(ctx, "node"),
          deps: [...prevBatch, ...pre, lastOfHost.get(ip) ?? ""],
          newReason: upgradeReason(ip),
          kubeHost: ip,
          kubeDesc: upgradeReason(ip),
        }),
      );
    }
    prevBatch = ids;
  }
  const upgradeDone = upgradeWorkers.length ? prevBatch : [];
  for (const ip of ctx.workers) {
    const vip = add({
      id: `worker-vip:${ip}`,
      kind: "worker-vip",
      hosts: [ip],
      extra: { masters: ctx.masters },
      parts: [vipPart],
      deps: [lastOfHost.get(ip) ?? "", lastMaster, ...gateIfRemoval],
      newReason: hostNew(ip),
      force: force(ip),
    });
    lastOfHost.set(ip, vip);
    if (!ctx.stable(ip)) {
      joinStep.set(
        ip,
        add({
          id: `join-worker:${ip}`,
          kind: "join-worker",
          hosts: [ip],
          parts: [{ name: "role", hash: hash("node"), desc: "role changed" }],
          deps: [vip, lastMaster],
          newReason: hostNew(ip),
          force: force(ip),
        }),
      );
    }
  }

  // ---- 9. labels and taints, post-init-host hooks
  const labelIds: string[] = [];
  for (const ip of ctx.all) {
    const h = ctx.hostByIp.get(ip);
    const deps = [joinStep.get(ip) ?? lastOfHost.get(ip) ?? "", lastMaster];
    const id = add({
      id: `node-labels:${ip}`,
      kind: "node-labels",
      hosts: [ip],
      parts: [
        {
          name: "labels",
          hash: hash([h?.roles, h?.labels, h?.taints]),
          desc: `labels/taints of ${ip} changed`,
        },
      ],
      deps,
      newReason: hostNew(ip),
      force: force(ip),
    });
    labelIds.push(id, ...hostHooks("post-init-host", ip, [id]));
  }
  const postScaleup = addedToExisting.length
    ? clusterHook(
        "post-scaleup",
        addedToExisting,
        runner,
        labelIds,
        {
          name: "added",
          hash: hash(addedToExisting),
          desc: "",
        },
        `hosts added (${addedToExisting.join(", ")})`,
      )
    : [];
  const upgradeHooks = upgrading
    ? clusterHook(
        "upgrade",
        ctx.all,
        runner,
        [...upgradeDone, lastMaster],
        {
          name: "version",
          hash: hash([version, upgradeTargets]),
          desc: "",
        },
        upgradeTargets[0] ? upgradeWhat(upgradeTargets[0]) : undefined,
      )
    : [];
  const postInstall = clusterHook("post-install", ctx.all, ctx.master0, [
    ...labelIds,
    ...postScaleup,
    ...upgradeHooks,
    ...upgradeDone,
    ...removalIds,
  ]);

  // ---- 10. launch on master0
  const launch = resolveLaunch(spec, image);
  const launchDeps = [...postInstall, ...labelIds, ...upgradeDone, ...removalIds, ...upgradeHooks];
  let prevLaunch = "";
  for (const app of launch.apps) {
    const text = app.cmds.join("\n");
    const usesDir = (dir: string) => text.includes(`${dir}/`);
    const match = (c: LayerClass) =>
      classTouchesApp(c, app.name) ||
      (c === "manifests" && usesDir("manifests")) ||
      (c === "charts" && usesDir("charts"));
    const parts: Part[] = [
      { name: "cmds", hash: hash([app.cmds, app.env]), desc: `launch of app ${app.name} changed` },
      ctx.layerPart(`layers:app:${app.name}`, match, `application/apps/${app.name}/`),
      {
        name: "configs",
        hash: hash(spec.configs.filter((c) => c.appName === app.name || classifyPath(c.path).some(match))),
        desc: `Config documents for app ${app.name} changed`,
      },
    ];
    parts.push(...ctx.envParts(ctx.master0, "launch", match, true, text, `launch-app:${app.name}`));
    prevLaunch = add({
      id: `launch-app:${app.name}`,
      kind: "launch-app",
      hosts: [ctx.master0],
      extra: { app: app.name, cmds: app.cmds },
      parts,
      deps: [...launchDeps, prevLaunch],
      newReason: `launch app ${app.name} (${clusterNew})`,
    });
  }
  if (launch.cmds) {
    const text = launch.cmds.cmds.join("\n");
    const match = (c: LayerClass) =>
      c === "manifests" ||
      c === "charts" ||
      (c.startsWith("app:") && (c === "app:*" || text.includes(`application/apps/${c.slice(4)}`)));
    const parts: Part[] = [
      { name: "cmds", hash: hash(launch.cmds.cmds), desc: `launch commands changed (${launch.cmds.source})` },
      ctx.layerPart("layers:launch-cmds", match, "manifests/, charts/"),
      {
        name: "configs",
        hash: hash(spec.configs.filter((c) => classifyPath(c.path).some(match))),
        desc: "Config documents for the launch changed",
      },
    ];
    parts.push(...ctx.envParts(ctx.master0, "launch", match, true, text, "launch-cmds"));
    prevLaunch = add({
      id: "launch-cmds",
      kind: "launch-cmds",
      hosts: [ctx.master0],
      extra: { cmds: launch.cmds.cmds },
      parts,
      deps: [...launchDeps, prevLaunch],
      newReason: `run ${launch.cmds.source} (${clusterNew})`,
    });
  }
  for (const [id, rec] of Object.entries(applied.steps))
    if (id.startsWith("launch-app:") && !launch.apps.some((a) => `launch-app:${a.name}` === id))
      ctx.warnings.push(
        `app ${id.slice(11)} is no longer launched: what it installed stays in the cluster (no uninstall step; remove it with kubectl/helm on ${rec.hosts[0] ?? "master0"})`,
      );

  // ---- 11. save the merged Clusterfile
  add({
    id: "save-clusterfile",
    kind: "save-clusterfile",
    hosts: [ctx.master0],
    parts: [
      // ssh credentials are not part of what is saved on the cluster (they stay on this machine).
      {
        name: "spec",
        // nor how layers travel: every distribution mode plans the same steps with the same keys.
        hash: hash({
          ...spec,
          ssh: undefined,
          distribution: undefined,
          hosts: spec.hosts.map((h) => ({ ...h, ssh: undefined })),
        }),
        desc: "Clusterfile changed",
      },
      {
        name: "image",
        hash: hash([image.reference, image.manifestDigest]),
        desc: `image is now ${image.reference}`,
      },
    ],
    deps: [...launchDeps, prevLaunch, ...ctx.all.map((ip) => lastOfHost.get(ip) ?? ""), ...removalIds],
    newReason:
      clusterNew === "new cluster"
        ? "new cluster: save the Clusterfile on master0 and in kube-system/sealer-clusterfile"
        : "not applied yet",
  });
  return { nodes: topoSort(nodes), ctx };
}

/**
 * Stable topological order: a step comes after all its deps, otherwise in construction order
 * (re-added hosts are built before the removal they wait for). Deps on unknown ids are dropped.
 */
function topoSort(nodes: GNode[]): GNode[] {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  if (index.size !== nodes.length) {
    const seen = new Set<string>();
    const dup = nodes.find((n) => (seen.has(n.id) ? true : (seen.add(n.id), false)));
    throw new Error(`planner bug: step id ${dup?.id} generated twice`);
  }
  for (const n of nodes) n.deps = [...new Set(n.deps.filter((d) => index.has(d) && d !== n.id))];
  const out: GNode[] = [];
  const state = new Uint8Array(nodes.length); // 0 new, 1 visiting, 2 done
  const visit = (i: number): void => {
    if (state[i] === 2) return;
    const n = nodes[i] as GNode;
    if (state[i] === 1) throw new Error(`planner bug: dependency cycle through ${n.id}`);
    state[i] = 1;
    for (const d of n.deps) visit(index.get(d) as number);
    state[i] = 2;
    out.push(n);
  };
  for (let i = 0; i < nodes.length; i++) visit(i);
  return out;
}

/**
 * Orders Kubernetes versions ("v1.28.2", "1.29.0-rc.1") by semver, so a prerelease comes before
 * its release; a partial version is completed ("v1.28" is 1.28.0), and one with no number at
 * all sorts first.
 */
export function compareVersions(a: string, b: string): number {
  const [pa, pb] = [a, b].map((v) => semver.coerce(v, { includePrerelease: true }));
  if (!pa || !pb) return Number(Boolean(pa)) - Number(Boolean(pb));
  return semver.compare(pa, pb);
}

function replaceCtx(ctx: Ctx, why: string): Ctx {
  (ctx as unknown as { replaceReason: string }).replaceReason = why;
  return ctx;
}

/** Plans the steps that make `applied` into `desired`. Pure and deterministic. */
export function plan(
  desired: Desired,
  applied: AppliedState = emptyApplied(desired.cluster.name),
  opts: PlanOptions = {},
): Plan {
  const out: Plan = { cluster: desired.cluster.name, steps: [], warnings: [] };
  // Identity changes cannot be applied in place.
  if (applied.steps["init-master"]) {
    const before = applied.immutable ?? {};
    const now = immutableOf(desired);
    const changed = Object.keys({ ...before, ...now })
      .filter((k) => before[k] !== undefined && before[k] !== now[k])
      .sort()
      .map((k) => `${k} ${before[k]} -> ${now[k] ?? "(unset)"}`);
    if (applied.cluster !== desired.cluster.name)
      changed.unshift(`cluster name ${applied.cluster} -> ${desired.cluster.name}`);
    if (changed.length) {
      out.replace = `${[...new Set(changed)].join("; ")}: cannot be changed on a running cluster; it requires replacement (delete and recreate the cluster)`;
      return out;
    }
  }
  if (desired.cluster.infra && desired.cluster.hosts.length === 0) {
    out.warnings.push(
      `the Clusterfile asks for machines by count (${desired.cluster.infra.provider}): create them with Infra first; nothing to plan on hosts yet`,
    );
    return out;
  }
  const { nodes, ctx } = buildGraph(desired, applied, opts);
  const replaceReason = (ctx as unknown as { replaceReason?: string }).replaceReason;
  if (replaceReason) {
    out.replace = replaceReason;
    return out;
  }
  out.warnings.push(...ctx.warnings);
  // Init/Join configuration only shapes hosts when they join: say so instead of implying a change.
  const kcRec = applied.steps["kubeadm-config"]?.parts;
  const kcNode = nodes.find((n) => n.id === "kubeadm-config");
  if (ctx.existing && kcRec && kcNode)
    for (const [part, kind] of [
      ["kubeadm:init", "InitConfiguration"],
      ["kubeadm:join", "JoinConfiguration"],
    ] as const) {
      const now = kcNode.parts.find((p) => p.name === part)?.hash;
      if (kcRec[part] !== undefined && now !== kcRec[part])
        out.warnings.push(
          `kubeadm ${kind} changed: it applies to hosts joined from now on; hosts already in the cluster keep their configuration`,
        );
    }

  const planned = new Set<string>();
  const reasons = new Map<string, string>();
  const keys = new Map<string, string>();
  for (const n of nodes) {
    const key = keyOf(n.parts);
    keys.set(n.id, key);
    let reason: string | undefined;
    if (n.kubeHost !== undefined) {
      const rec = applied.hosts[n.kubeHost];
      if (rec?.kubeKey !== key) reason = n.kubeDesc ?? n.newReason;
    } else if (n.force) {
      reason = n.force;
    } else {
      const rec = applied.steps[n.id];
      if (!rec) reason = applied.drift?.[n.id] ? `drift: ${applied.drift[n.id]}` : n.newReason;
      else if (rec.key !== key) {
        const changed = rec.parts ? n.parts.filter((p) => rec.parts?.[p.name] !== p.hash) : [];
        reason = changed.length
          ? [...new Set(changed.map((p) => p.desc).filter(Boolean))].join("; ") || "inputs changed"
          : "inputs changed";
      }
    }
    if (reason !== undefined) {
      planned.add(n.id);
      reasons.set(n.id, n.note ? `${reason} (${n.note})` : reason);
    }
  }

  // `after`: the graph order restricted to planned steps, through unplanned ones transitively.
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const memo = new Map<string, Set<string>>();
  const effective = (id: string): Set<string> => {
    const m = memo.get(id);
    if (m) return m;
    const out = new Set<string>();
    memo.set(id, out);
    for (const dep of byId.get(id)?.deps ?? []) {
      if (!byId.has(dep)) continue;
      if (planned.has(dep)) out.add(dep);
      else for (const x of effective(dep)) out.add(x);
    }
    return out;
  };
  for (const n of nodes) {
    if (!planned.has(n.id)) continue;
    const after = new Set<string>();
    for (const dep of n.deps) {
      if (!byId.has(dep) || dep === n.id) continue;
      if (planned.has(dep)) after.add(dep);
      else for (const x of effective(dep)) after.add(x);
    }
    out.steps.push({
      id: n.id,
      kind: n.kind,
      hosts: n.hosts,
      reason: reasons.get(n.id) ?? "",
      key: keys.get(n.id) as string,
      after: [...after].sort(),
      parts: partsRecord(n.parts),
      ...(n.extra as StepExtra),
    } as Step);
  }
  return out;
}

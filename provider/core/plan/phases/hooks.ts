/**
 * Hook steps inside the install graph: a Plugin at a phase, on the hosts it picks. Cluster phases
 * (pre/post-install, pre/post-scaleup, upgrade) run once for the cluster; host phases
 * (pre/post-init-host, upgrade-host) once per host in the plugin's scope.
 */
import type { HookPhase, PluginDoc } from "../../clusterfile/types";
import type { PlanContext } from "../context";
import { hash, type Part } from "../keys";
import { NodeList, type StepNode } from "../nodes";
import { pluginFacts } from "../host-view";
import { effectivePlugins, pluginHosts, selectsHosts } from "../plugins";
import type { Upgrade } from "./upgrade";

/** Hook plugins for a phase, in name order: the image's plugins/ and the Clusterfile's (which wins). */
export function hooks(ctx: PlanContext, phase: HookPhase): PluginDoc[] {
  return effectivePlugins(ctx.spec.plugins, ctx.image.plugins).filter((p) => p.actions.includes(phase));
}

/** Hosts a plugin runs on at `phase` (scope, legacy `on`, HOSTNAME's IPs); none given = every candidate. */
function scopeHosts(ctx: PlanContext, p: PluginDoc, phase: HookPhase, candidates: string[]): string[] {
  return pluginHosts(
    p,
    phase,
    candidates,
    (ip) => pluginFacts(ctx.hosts.get(ip), ctx.applied.hosts[ip]),
    ctx.master0,
  );
}

/** A hook keys on its plugin and on the files under the image's plugins/ its script may call. */
function pluginParts(ctx: PlanContext, p: PluginDoc): Part[] {
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

export interface ClusterHookOptions {
  /** Hosts a plugin with a scope picks from. */
  candidates: string[];
  /** The host a plugin without a scope runs on (it acts on the cluster, with kubectl). */
  at: string;
  deps: string[];
  /** One more input of the key (e.g. the hosts added), described by the reason when its desc is "". */
  extraPart?: Part;
  /** What the phase is part of (an upgrade, hosts added): the reason, instead of "new cluster". */
  why?: string;
}

/**
 * The hooks of a cluster phase, one after the other. Keyed by the plugin (its scope included),
 * not by the hosts it lands on: a cluster-phase hook has run for the cluster; new hosts get the
 * scale-up phases instead.
 */
function clusterHooks(ctx: PlanContext, out: NodeList, phase: HookPhase, o: ClusterHookOptions): string[] {
  return hooks(ctx, phase).map((p, i, arr) => {
    const hosts = selectsHosts(p) ? scopeHosts(ctx, p, phase, o.candidates) : [o.at];
    const reason = o.why
      ? `${o.why}: ${phase} hook ${p.name}`
      : `${phase} hook ${p.name} (${ctx.clusterNew})`;
    const extra = o.extraPart;
    return out.add({
      step: { id: `hook:${phase}:${p.name}`, kind: "hook", hosts, phase, plugin: p.name },
      parts: [...pluginParts(ctx, p), ...(extra ? [{ ...extra, desc: extra.desc || reason }] : [])],
      deps: i > 0 ? [`hook:${phase}:${arr[i - 1]?.name}`, ...o.deps] : o.deps,
      newReason: reason,
    });
  });
}

/** What a host's upgrade is and the key of its new Kubernetes inputs (for upgrade-host hooks). */
export interface HostUpgrade {
  what: string;
  key: string;
}

/**
 * The hooks of a host phase on `ip`, one after the other. With `upgrade` (upgrade-host) the
 * hook is keyed by the host's new Kubernetes inputs, so it runs again on every upgrade of the
 * host (not only the first) and says so, instead of the new-host wording.
 */
export function hostHooks(
  ctx: PlanContext,
  out: NodeList,
  phase: HookPhase,
  ip: string,
  deps: string[],
  upgrade?: HostUpgrade,
): string[] {
  const ids: string[] = [];
  for (const p of hooks(ctx, phase)) {
    if (scopeHosts(ctx, p, phase, [ip]).length === 0) continue;
    const reason = upgrade
      ? `${upgrade.what}: ${phase} hook ${p.name} on ${ip}`
      : `${phase} hook ${p.name}: ${ctx.hostNew(ip)}`;
    ids.push(
      out.add({
        step: { id: `hook:${phase}:${p.name}:${ip}`, kind: "hook", hosts: [ip], phase, plugin: p.name },
        parts: [
          ...pluginParts(ctx, p),
          ...(upgrade ? [{ name: "upgrade", hash: upgrade.key, desc: reason }] : []),
        ],
        deps: [...deps, ...ids.slice(-1)],
        newReason: reason,
        force: ctx.force(ip),
      }),
    );
  }
  return ids;
}

/** pre-install (new cluster) and pre-scaleup (hosts added to a running one). */
export function preHooks(ctx: PlanContext): { nodes: StepNode[]; ids: string[] } {
  const out = new NodeList();
  const ids = ctx.existing
    ? []
    : clusterHooks(ctx, out, "pre-install", { candidates: ctx.all, at: ctx.master0, deps: [] });
  if (ctx.addedToExisting.length)
    ids.push(
      ...clusterHooks(ctx, out, "pre-scaleup", {
        candidates: ctx.addedToExisting,
        at: ctx.masters.find((m) => ctx.stable(m)) ?? ctx.master0,
        deps: [],
        ...scaleUp(ctx),
      }),
    );
  return { nodes: out.nodes, ids };
}

/** The key input and wording of the scale-up hooks. */
function scaleUp(ctx: PlanContext): { extraPart: Part; why: string } {
  return {
    extraPart: { name: "added", hash: hash(ctx.addedToExisting), desc: "" },
    why: `hosts added (${ctx.addedToExisting.join(", ")})`,
  };
}

export interface PostHooksInput {
  /** Each host's labels and post-init-host hooks. */
  labels: string[];
  /** Host upgrades (a running cluster), the hosts' last upgrade steps, and the last master step. */
  upgrade: Upgrade;
  upgradeDone: string[];
  lastMaster: string;
  /** Removal steps. */
  removals: string[];
}

/** post-scaleup (hosts added), upgrade (hosts upgraded), then post-install, each after what it follows. */
export function postHooks(
  ctx: PlanContext,
  i: PostHooksInput,
): { nodes: StepNode[]; postInstall: string[]; upgrade: string[] } {
  const out = new NodeList();
  const postScaleup = ctx.addedToExisting.length
    ? clusterHooks(ctx, out, "post-scaleup", {
        candidates: ctx.addedToExisting,
        at: ctx.runner,
        deps: i.labels,
        ...scaleUp(ctx),
      })
    : [];
  const { targets, version } = i.upgrade;
  const upgrade = targets.length
    ? clusterHooks(ctx, out, "upgrade", {
        candidates: ctx.all,
        at: ctx.runner,
        deps: [...i.upgradeDone, i.lastMaster],
        extraPart: { name: "version", hash: hash([version, targets]), desc: "" },
        ...(targets[0] ? { why: i.upgrade.what(targets[0]) } : {}),
      })
    : [];
  const postInstall = clusterHooks(ctx, out, "post-install", {
    candidates: ctx.all,
    at: ctx.master0,
    deps: [...i.labels, ...postScaleup, ...upgrade, ...i.upgradeDone, ...i.removals],
  });
  return { nodes: out.nodes, postInstall, upgrade };
}

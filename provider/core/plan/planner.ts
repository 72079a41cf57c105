/**
 * The planner: plan(desired, applied) -> Plan. PURE (no I/O, no clock, no randomness).
 *
 * How it works:
 * 1. The phases (phases/*.ts) build the full step graph the desired cluster needs, in execution
 *    order, each step with named input parts (layer digests of the classes it reads, Clusterfile
 *    fields, env values…) chosen by the impact table (impact.ts). A step's key is the hash of its
 *    parts. Every phase reads one PlanContext: the desired cluster resolved once, a view per host.
 * 2. A step is planned when it never ran or its key differs from the one recorded in the applied
 *    state. The reason names the parts that changed ("layer sha256:ab12… changed
 *    application/apps/web/"), or why it never ran ("host 10.0.0.7 added as node").
 * 3. Hosts in the applied state but not desired get removal steps; a changed Kubernetes version
 *    (or kube binaries / cluster-wide kubeadm config) on an existing cluster gets the upgrade
 *    sequence instead of init/join.
 * 4. `after` is the graph's order restricted to the planned steps (transitively), so the
 *    executor may run independent steps (workers) in parallel.
 *
 * recordStep (exec/record.ts) is what the executor calls after each successful step;
 * recording every step of a plan and planning again gives zero steps.
 */
import type { ClusterSpec } from "../clusterfile/types";
import { PlanContext as Ctx, type Desired, type PlanOptions } from "./context";
import { keyHolds, keyOf, partsRecord, resetHashMemo, type Part } from "./keys";
import type { StepNode } from "./nodes";
import { launchSteps } from "./phases/apps";
import { postHooks, preHooks } from "./phases/hooks";
import { hostSteps, runtimeOf } from "./phases/hosts";
import { kubeadmConfigStep, labelSteps, masterSteps, workerSteps } from "./phases/kube";
import { registrySteps } from "./phases/registry";
import { saveClusterfileStep } from "./phases/save-clusterfile";
import { scaleInSteps } from "./phases/scale-in";
import { kubeParts, Upgrade, upgradeMasterSteps, upgradeWorkerSteps } from "./phases/upgrade";
import type { AppliedState, ImageFacts, Plan, Role, Step } from "./types";
import { emptyApplied } from "./types";

export type { Desired, PlanOptions } from "./context";

/** Fields fixed at creation; a change needs a new cluster. */
export function immutableOf(d: { cluster: ClusterSpec; image: ImageFacts }): Record<string, string> {
  const env = d.cluster.env;
  const net = (d.cluster.kubeadm.cluster?.networking ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {
    "cluster name": d.cluster.name,
    dataRoot: d.cluster.dataRoot,
    "container runtime": runtimeOf({ spec: d.cluster, image: d.image }),
  };
  const pod = env.PodCIDR?.join(";") ?? (typeof net.podSubnet === "string" ? net.podSubnet : undefined);
  const svc =
    env.SvcCIDR?.join(";") ?? (typeof net.serviceSubnet === "string" ? net.serviceSubnet : undefined);
  if (pod) out["pod CIDR (PodCIDR / networking.podSubnet)"] = pod;
  if (svc) out["service CIDR (SvcCIDR / networking.serviceSubnet)"] = svc;
  if (typeof net.dnsDomain === "string") out["networking.dnsDomain"] = net.dnsDomain;
  return out;
}

/** The step graph in construction order, or why the change needs a new cluster. */
function buildGraph(ctx: Ctx): { nodes: StepNode[]; warnings: string[] } | { replace: string } {
  ctx.checkPlatforms();
  if (ctx.existing && !ctx.masters.some((m) => ctx.stable(m)))
    return {
      replace: `every master of the running cluster would be removed or change role (running masters: ${Object.keys(
        ctx.applied.hosts,
      )
        .filter((ip) => ctx.applied.hosts[ip]?.roles.includes("master"))
        .join(", ")}): keep at least one of them in the Clusterfile, or recreate the cluster`,
    };
  const pre = preHooks(ctx);
  const hosts = hostSteps(ctx, pre.ids);
  const reg = registrySteps(ctx, hosts.lastOfHost);
  const lastOfHost = reg.lastOfHost;
  const kubeadmConfig = kubeadmConfigStep(ctx, lastOfHost);
  const upgrade = new Upgrade(ctx);
  const upMasters = upgradeMasterSteps(ctx, { upgrade, kubeadmConfig: kubeadmConfig.step.id, lastOfHost });
  const masters = masterSteps(ctx, {
    kubeadmConfig: kubeadmConfig.step.id,
    lastOfHost,
    lastMaster: upMasters.last,
  });
  const lastMaster = masters.lastMaster;
  const removal = scaleInSteps(ctx, masters.beforeRemoval);
  const upWorkers = upgradeWorkerSteps(ctx, { upgrade, lastMaster, lastOfHost });
  const workers = workerSteps(ctx, { lastMaster, lastOfHost, removal: removal.deleteNode });
  const labels = labelSteps(ctx, {
    lastMaster,
    lastOfHost: workers.lastOfHost,
    joined: new Map([...masters.joined, ...workers.joined]),
  });
  const post = postHooks(ctx, {
    labels: labels.ids,
    upgrade,
    upgradeDone: upWorkers.done,
    lastMaster,
    removals: removal.ids,
  });
  const launchAfter = [
    ...post.postInstall,
    ...labels.ids,
    ...upWorkers.done,
    ...removal.ids,
    ...post.upgrade,
  ];
  const launch = launchSteps(ctx, launchAfter);
  const save = saveClusterfileStep(ctx, [
    ...launchAfter,
    launch.last,
    ...ctx.all.map((ip) => workers.lastOfHost.get(ip) ?? ""),
    ...removal.ids,
  ]);
  save.deps = save.deps.filter(Boolean);
  const nodes = [
    ...pre.nodes,
    ...hosts.nodes,
    ...reg.nodes,
    kubeadmConfig,
    ...upMasters.nodes,
    ...masters.nodes,
    ...removal.nodes,
    ...upWorkers.nodes,
    ...workers.nodes,
    ...labels.nodes,
    ...post.nodes,
    ...launch.nodes,
    save,
  ];
  return { nodes: topoSort(nodes), warnings: launch.warnings };
}

/**
 * Stable topological order: a step comes after all its deps, otherwise in construction order
 * (re-added hosts are built before the removal they wait for). Deps on unknown ids are dropped.
 */
function topoSort(nodes: StepNode[]): StepNode[] {
  const index = new Map(nodes.map((n, i) => [n.step.id, i]));
  if (index.size !== nodes.length) {
    const seen = new Set<string>();
    const dup = nodes.find((n) => (seen.has(n.step.id) ? true : (seen.add(n.step.id), false)));
    throw new Error(`planner bug: step id ${dup?.step.id} generated twice`);
  }
  for (const n of nodes) n.deps = [...new Set(n.deps.filter((d) => index.has(d) && d !== n.step.id))];
  const out: StepNode[] = [];
  const state = new Uint8Array(nodes.length); // 0 new, 1 visiting, 2 done
  const visit = (i: number): void => {
    if (state[i] === 2) return;
    const n = nodes[i] as StepNode;
    if (state[i] === 1) throw new Error(`planner bug: dependency cycle through ${n.step.id}`);
    state[i] = 1;
    for (const d of n.deps) visit(index.get(d) as number);
    state[i] = 2;
    out.push(n);
  };
  for (let i = 0; i < nodes.length; i++) visit(i);
  return out;
}

/** Why a node is planned (undefined: its recorded key matches). */
function reasonFor(n: StepNode, key: string, applied: AppliedState): string | undefined {
  if (n.kubeHost !== undefined)
    return keyHolds(applied.hosts[n.kubeHost]?.kubeKey, n.parts, key)
      ? undefined
      : (n.kubeDesc ?? n.newReason);
  if (n.force) return n.force;
  const id = n.step.id;
  const rec = applied.steps[id];
  if (!rec) return applied.drift?.[id] ? `drift: ${applied.drift[id]}` : n.newReason;
  if (keyHolds(rec.key, n.parts, key)) return undefined;
  // A part recorded by an older version under its older hash did not change.
  const was = (p: Part) => rec.parts?.[p.name];
  const changed = rec.parts
    ? n.parts.filter((p) => was(p) !== p.hash && (p.legacy === undefined || was(p) !== p.legacy))
    : [];
  return changed.length
    ? [...new Set(changed.map((p) => p.desc).filter(Boolean))].join("; ") || "inputs changed"
    : "inputs changed";
}

/** Init/Join configuration only shapes hosts when they join: say so instead of implying a change. */
function joinConfigWarnings(ctx: Ctx, nodes: StepNode[]): string[] {
  const rec = ctx.applied.steps["kubeadm-config"]?.parts;
  const node = nodes.find((n) => n.step.id === "kubeadm-config");
  if (!ctx.existing || !rec || !node) return [];
  const out: string[] = [];
  for (const [part, kind] of [
    ["kubeadm:init", "InitConfiguration"],
    ["kubeadm:join", "JoinConfiguration"],
  ] as const) {
    const now = node.parts.find((p) => p.name === part)?.hash;
    if (rec[part] !== undefined && now !== rec[part])
      out.push(
        `kubeadm ${kind} changed: it applies to hosts joined from now on; hosts already in the cluster keep their configuration`,
      );
  }
  return out;
}

/** Identity changes (cluster name, data root, runtime, network ranges) cannot be applied in place. */
function identityChange(desired: Desired, applied: AppliedState): string | undefined {
  if (!applied.steps["init-master"]) return undefined;
  const before = applied.immutable ?? {};
  const now = immutableOf(desired);
  const changed = Object.keys({ ...before, ...now })
    .filter((k) => before[k] !== undefined && before[k] !== now[k])
    .sort()
    .map((k) => `${k} ${before[k]} -> ${now[k] ?? "(unset)"}`);
  if (applied.cluster !== desired.cluster.name)
    changed.unshift(`cluster name ${applied.cluster} -> ${desired.cluster.name}`);
  return changed.length
    ? `${[...new Set(changed)].join("; ")}: cannot be changed on a running cluster; it requires replacement (delete and recreate the cluster)`
    : undefined;
}

/** Plans the steps that make `applied` into `desired`. Pure and deterministic. */
export function plan(
  desired: Desired,
  applied: AppliedState = emptyApplied(desired.cluster.name),
  opts: PlanOptions = {},
): Plan {
  const out: Plan = { cluster: desired.cluster.name, steps: [], warnings: [] };
  const replace = identityChange(desired, applied);
  if (replace) return { ...out, replace };
  if (desired.cluster.infra && desired.cluster.hosts.length === 0) {
    out.warnings.push(
      `the Clusterfile asks for machines by count (${desired.cluster.infra.provider}): create them with Infra first; nothing to plan on hosts yet`,
    );
    return out;
  }
  resetHashMemo();
  const ctx = new Ctx(desired, applied, opts);
  const graph = buildGraph(ctx);
  if ("replace" in graph) return { ...out, replace: graph.replace };
  const { nodes } = graph;
  out.warnings.push(...graph.warnings, ...joinConfigWarnings(ctx, nodes));

  const planned = new Set<string>();
  const reasons = new Map<string, string>();
  const keys = new Map<string, string>();
  for (const n of nodes) {
    const key = keyOf(n.parts);
    keys.set(n.step.id, key);
    const reason = reasonFor(n, key, applied);
    if (reason !== undefined) {
      planned.add(n.step.id);
      reasons.set(n.step.id, n.note ? `${reason} (${n.note})` : reason);
    }
  }

  // `after`: the graph order restricted to planned steps, through unplanned ones transitively.
  const byId = new Map(nodes.map((n) => [n.step.id, n]));
  const memo = new Map<string, Set<string>>();
  const effective = (id: string): Set<string> => {
    const m = memo.get(id);
    if (m) return m;
    const set = new Set<string>();
    memo.set(id, set);
    for (const dep of byId.get(id)?.deps ?? []) {
      if (!byId.has(dep)) continue;
      if (planned.has(dep)) set.add(dep);
      else for (const x of effective(dep)) set.add(x);
    }
    return set;
  };
  for (const n of nodes) {
    const id = n.step.id;
    if (!planned.has(id)) continue;
    const after = new Set<string>();
    for (const dep of n.deps) {
      if (!byId.has(dep) || dep === id) continue;
      if (planned.has(dep)) after.add(dep);
      else for (const x of effective(dep)) after.add(x);
    }
    const step: Step = {
      ...n.step,
      reason: reasons.get(id) ?? "",
      key: keys.get(id) ?? "",
      after: [...after].sort(),
      parts: partsRecord(n.parts),
    };
    out.steps.push(step);
  }
  return out;
}

/** The key of the Kubernetes inputs a host of `role` is installed with (recorded as AppliedHost.kubeKey). */
export function kubeKey(d: Desired, role: Role): string {
  return keyOf(kubeParts(new Ctx(d, emptyApplied(d.cluster.name)), role));
}

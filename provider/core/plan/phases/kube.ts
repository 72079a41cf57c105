/**
 * Kubernetes membership: the kubeadm config on the master that drives joins, kubeadm init on
 * master0 (new cluster), masters joined one at a time, the worker VIP and worker joins
 * (parallel), then each host's labels and taints with its post-init-host hooks.
 */
import { DEFAULT_VIP } from "../impact";
import type { PlanContext } from "../context";
import { hash, type Part } from "../keys";
import { NodeList, type StepNode } from "../nodes";
import { hostHooks } from "./hooks";
import { REMOVAL } from "./hosts";
import { registryPart } from "./registry";

/** kubeadm-config on the runner, after its host steps. */
export function kubeadmConfigStep(
  ctx: PlanContext,
  lastOfHost: ReadonlyMap<string, string>,
): StepNode<"kubeadm-config"> {
  const k = ctx.spec.kubeadm;
  const reg = registryPart(ctx);
  const parts: Part[] = [
    ctx.shared("kubeadm:init", () => k.init ?? null, "kubeadm InitConfiguration changed"),
    ctx.shared("kubeadm:join", () => k.join ?? null, "kubeadm JoinConfiguration changed"),
    ctx.shared(
      "kubeadm:cluster-docs",
      () => [k.cluster ?? null, k.kubelet ?? null, k.kubeProxy ?? null],
      "kubeadm Cluster/Kubelet/KubeProxy configuration changed",
    ),
    ctx.layerPart("layers:kubeadm", (c) => c === "kubeadm", "etc/kubeadm*"),
    ctx.shared("masters", () => ctx.masters, `masters changed (${ctx.masters.join(", ")})`),
    ctx.shared(
      "kube:version",
      () => ctx.image.kubeVersion ?? "",
      `kube version changed to ${ctx.image.kubeVersion ?? "(none)"}`,
    ),
    { name: "registry", hash: reg.hash, desc: reg.desc },
    ...ctx.envParts(ctx.runner, "kubeadm-config", (c) => c === "kubeadm", true),
  ];
  return {
    step: { id: "kubeadm-config", kind: "kubeadm-config", hosts: [ctx.runner] },
    parts,
    deps: [lastOfHost.get(ctx.runner) ?? ""],
    newReason: ctx.clusterNew,
  };
}

export interface MastersInput {
  kubeadmConfig: string;
  lastOfHost: ReadonlyMap<string, string>;
  /** The last master step before these (an upgrade), "" when none. */
  lastMaster: string;
}

export interface MastersPhase {
  nodes: StepNode[];
  /** The last master step: what workers and cluster-wide steps wait for. */
  lastMaster: string;
  /** What removals wait for: the masters that stay and the new ones (adds first keeps etcd quorum). */
  beforeRemoval: string;
  /** Host -> the step that made it a member (init or join). */
  joined: Map<string, string>;
}

/** kubeadm init on master0 of a new cluster, then masters joined one at a time. */
export function masterSteps(ctx: PlanContext, i: MastersInput): MastersPhase {
  const out = new NodeList();
  const joined = new Map<string, string>();
  let last = i.lastMaster;
  if (!ctx.existing) {
    last = out.add({
      step: { id: "init-master", kind: "init-master", hosts: [ctx.master0] },
      parts: [{ name: "cluster", hash: hash(ctx.spec.name), desc: "cluster identity changed" }],
      deps: [i.kubeadmConfig, i.lastOfHost.get(ctx.master0) ?? ""],
      newReason: `new cluster: kubeadm init on master0 ${ctx.master0}`,
    });
    joined.set(ctx.master0, last);
  }
  // New masters in the listed order, role-changed ones last (they wait for their removal).
  const toJoin = ctx.masters.filter((ip) => !ctx.stable(ip) && !(ip === ctx.master0 && !ctx.existing));
  toJoin.sort((a, b) => Number(ctx.roleChanged.has(a)) - Number(ctx.roleChanged.has(b)));
  let beforeRemoval: string | undefined;
  for (const ip of toJoin) {
    if (ctx.roleChanged.has(ip) && beforeRemoval === undefined) beforeRemoval = last;
    last = out.add({
      step: { id: `join-master:${ip}`, kind: "join-master", hosts: [ip] },
      parts: [{ name: "role", hash: hash("master"), desc: "role changed" }],
      deps: [
        last,
        i.kubeadmConfig,
        i.lastOfHost.get(ip) ?? "",
        ...(ctx.roleChanged.has(ip) ? [REMOVAL] : []),
      ],
      newReason: ctx.hostNew(ip),
      force: ctx.force(ip),
    });
    joined.set(ip, last);
  }
  return { nodes: out.nodes, lastMaster: last, beforeRemoval: beforeRemoval ?? last, joined };
}

export interface WorkersInput {
  lastMaster: string;
  lastOfHost: ReadonlyMap<string, string>;
  /** The delete-node step when hosts are removed (the VIP is re-pointed after it), else "". */
  removal: string;
}

/** Per worker: the VIP to the masters, then (new workers) the join. */
export function workerSteps(
  ctx: PlanContext,
  i: WorkersInput,
): { nodes: StepNode[]; lastOfHost: Map<string, string>; joined: Map<string, string> } {
  const out = new NodeList();
  const lastOfHost = new Map(i.lastOfHost);
  const joined = new Map<string, string>();
  // The VIP balances over the set of masters: their order does not matter.
  const vipPart = ctx.shared(
    "vip",
    () => [
      [...ctx.masters].sort(),
      ctx.clusterEnv.IPvsVIPv4 ?? [DEFAULT_VIP],
      ctx.spec.registry.localRegistry?.ha ?? false,
    ],
    `masters changed (${ctx.masters.join(", ")}): re-point the worker VIP`,
  );
  for (const ip of ctx.workers) {
    const vip = out.add({
      step: { id: `worker-vip:${ip}`, kind: "worker-vip", hosts: [ip], masters: ctx.masters },
      parts: [vipPart],
      deps: [lastOfHost.get(ip) ?? "", i.lastMaster, i.removal],
      newReason: ctx.hostNew(ip),
      force: ctx.force(ip),
    });
    lastOfHost.set(ip, vip);
    if (!ctx.stable(ip))
      joined.set(
        ip,
        out.add({
          step: { id: `join-worker:${ip}`, kind: "join-worker", hosts: [ip] },
          parts: [{ name: "role", hash: hash("node"), desc: "role changed" }],
          deps: [vip, i.lastMaster],
          newReason: ctx.hostNew(ip),
          force: ctx.force(ip),
        }),
      );
  }
  return { nodes: out.nodes, lastOfHost, joined };
}

export interface LabelsInput {
  lastMaster: string;
  lastOfHost: ReadonlyMap<string, string>;
  /** Host -> its init/join step. */
  joined: ReadonlyMap<string, string>;
}

/** Per host: role labels, host labels and taints, then its post-init-host hooks. */
export function labelSteps(ctx: PlanContext, i: LabelsInput): { nodes: StepNode[]; ids: string[] } {
  const out = new NodeList();
  const ids: string[] = [];
  for (const ip of ctx.all) {
    const v = ctx.hosts.get(ip);
    const id = out.add({
      step: { id: `node-labels:${ip}`, kind: "node-labels", hosts: [ip] },
      parts: [
        {
          name: "labels",
          hash: hash([v?.roles, v?.labels, v?.taints]),
          desc: `labels/taints of ${ip} changed`,
        },
      ],
      deps: [i.joined.get(ip) ?? i.lastOfHost.get(ip) ?? "", i.lastMaster],
      newReason: ctx.hostNew(ip),
      force: ctx.force(ip),
    });
    ids.push(id, ...hostHooks(ctx, out, "post-init-host", ip, [id]));
  }
  return { nodes: out.nodes, ids };
}

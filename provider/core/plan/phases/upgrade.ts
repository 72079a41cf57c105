/**
 * Upgrade of a running cluster: the hosts whose Kubernetes inputs (version, kube binaries,
 * cluster-wide kubeadm configuration) changed are upgraded in place — masters one at a time
 * (master0 first), then workers in bounded batches — each after its upgrade-host hooks.
 * Upgrade steps are keyed by the host's recorded kubeKey, not by a step record.
 */
import * as semver from "semver";
import type { PlanContext } from "../context";
import { keyHolds, keyOf, type Part } from "../keys";
import { NodeList, type StepNode } from "../nodes";
import type { Role } from "../types";
import { hostHooks, type HostUpgrade } from "./hooks";

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

/** The Kubernetes inputs of a host of `role` (what an upgrade brings it to). */
export function kubeParts(ctx: PlanContext, role: Role): Part[] {
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

/** What the upgrade of a running cluster is: which hosts, to what, and how to say it. */
export class Upgrade {
  /** Hosts already in the cluster whose Kubernetes inputs changed, masters first. */
  readonly targets: string[];
  readonly version: string;

  constructor(private readonly ctx: PlanContext) {
    this.version = ctx.image.kubeVersion ?? "";
    this.targets = ctx.all.filter((ip) => {
      if (!ctx.stable(ip)) return false;
      const rec = ctx.applied.hosts[ip];
      return rec?.kubeKey !== undefined && !keyHolds(rec.kubeKey, kubeParts(ctx, ctx.role(ip)));
    });
  }

  /** The reason of a host's upgrade step. */
  reason(ip: string): string {
    const was = this.ctx.applied.hosts[ip]?.kubeVersion;
    if (was !== undefined && was !== this.version)
      return `kube version ${was || "(unknown)"} -> ${this.version}${compareVersions(this.version, was) < 0 ? " (older: a rollback)" : ""}`;
    return "kubernetes binaries or cluster-wide kubeadm configuration changed (upgrade with config)";
  }

  /** What an upgrade of `ip` is, for its hooks: "upgrade to v1.29.0", "rollback to v1.28.2". */
  what(ip: string): string {
    const was = this.ctx.applied.hosts[ip]?.kubeVersion;
    if (was !== undefined && was !== this.version)
      return `${compareVersions(this.version, was) < 0 ? "rollback" : "upgrade"} to ${this.version}`;
    return "upgrade with changed kubernetes binaries or kubeadm configuration";
  }

  hook(ip: string): HostUpgrade {
    return { what: this.what(ip), key: keyOf(kubeParts(this.ctx, this.ctx.role(ip))) };
  }
}

export interface UpgradeMastersInput {
  upgrade: Upgrade;
  kubeadmConfig: string;
  lastOfHost: ReadonlyMap<string, string>;
}

/** Masters to upgrade, one at a time in Clusterfile order (master0 first: `first`). */
export function upgradeMasterSteps(
  ctx: PlanContext,
  i: UpgradeMastersInput,
): { nodes: StepNode[]; last: string } {
  const out = new NodeList();
  let last = "";
  for (const ip of ctx.masters) {
    if (!i.upgrade.targets.includes(ip)) continue;
    const pre = hostHooks(ctx, out, "upgrade-host", ip, [i.lastOfHost.get(ip) ?? ""], i.upgrade.hook(ip));
    last = out.add({
      step: {
        id: `upgrade-master:${ip}`,
        kind: "upgrade-master",
        hosts: [ip],
        version: i.upgrade.version,
        first: last === "",
      },
      parts: kubeParts(ctx, "master"),
      deps: [i.kubeadmConfig, last, ...pre, i.lastOfHost.get(ip) ?? ""],
      newReason: i.upgrade.reason(ip),
      kubeHost: ip,
      kubeDesc: i.upgrade.reason(ip),
    });
  }
  return { nodes: out.nodes, last };
}

export interface UpgradeWorkersInput {
  upgrade: Upgrade;
  /** The last master step: worker upgrades start after every master. */
  lastMaster: string;
  lastOfHost: ReadonlyMap<string, string>;
}

/** Workers to upgrade in batches (each batch after the previous one); `done` is the last batch. */
export function upgradeWorkerSteps(
  ctx: PlanContext,
  i: UpgradeWorkersInput,
): { nodes: StepNode[]; done: string[] } {
  const out = new NodeList();
  const workers = ctx.workers.filter((ip) => i.upgrade.targets.includes(ip));
  const batch = Math.max(1, ctx.opts.workerUpgradeBatch ?? Math.ceil(workers.length / 10));
  let prev: string[] = [i.lastMaster];
  for (let b = 0; b < workers.length; b += batch) {
    const ids: string[] = [];
    for (const ip of workers.slice(b, b + batch)) {
      const pre = hostHooks(
        ctx,
        out,
        "upgrade-host",
        ip,
        [i.lastOfHost.get(ip) ?? "", ...prev],
        i.upgrade.hook(ip),
      );
      ids.push(
        out.add({
          step: {
            id: `upgrade-worker:${ip}`,
            kind: "upgrade-worker",
            hosts: [ip],
            version: i.upgrade.version,
          },
          parts: kubeParts(ctx, "node"),
          deps: [...prev, ...pre, i.lastOfHost.get(ip) ?? ""],
          newReason: i.upgrade.reason(ip),
          kubeHost: ip,
          kubeDesc: i.upgrade.reason(ip),
        }),
      );
    }
    prev = ids;
  }
  return { nodes: out.nodes, done: workers.length ? prev : [] };
}

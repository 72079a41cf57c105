/**
 * Removal of hosts gone from the Clusterfile and of hosts that change role: per host its
 * pre-clean-host hooks and clean-host, then one kubectl delete node for all of them, then the
 * post-clean-host hooks. Removed hosts are gone from the Clusterfile: hooks pick them by their
 * recorded roles and labels.
 */
import type { HookPhase, PluginDoc } from "../../clusterfile/types";
import type { PlanContext } from "../context";
import { pluginFacts } from "../host-view";
import { hash } from "../keys";
import { NodeList, type StepNode } from "../nodes";
import { pluginHosts } from "../plugins";
import { hooks } from "./hooks";
import { REMOVAL } from "./hosts";

/** Hosts among `ips` a plugin runs on, by their recorded roles and labels. */
function recordedHosts(ctx: PlanContext, p: PluginDoc, phase: HookPhase, ips: string[]): string[] {
  return pluginHosts(p, phase, ips, (ip) => pluginFacts(undefined, ctx.applied.hosts[ip]), ctx.master0);
}

export interface ScaleInPhase {
  nodes: StepNode[];
  /** Every removal step (what the post-install hooks, the launch and the save wait for). */
  ids: string[];
  /** The delete-node step, "" when nothing is removed. */
  deleteNode: string;
}

/** `after`: the masters that stay and the new ones (adds before removals keeps etcd quorum). */
export function scaleInSteps(ctx: PlanContext, after: string): ScaleInPhase {
  const out = new NodeList();
  const toRemove = [...ctx.removed, ...ctx.roleChanged.keys()];
  if (toRemove.length === 0) return { nodes: [], ids: [], deleteNode: "" };
  const ids: string[] = [];
  const cleanIds: string[] = [];
  for (const ip of toRemove) {
    const was = ctx.applied.hosts[ip]?.roles.join(",") ?? "host";
    const why = ctx.roleChanged.has(ip)
      ? `host ${ip} changes role ${ctx.roleChanged.get(ip)} -> ${ctx.role(ip)}`
      : `host ${ip} (${was}) removed from the Clusterfile`;
    const removal = [{ name: "removal", hash: hash(ip), desc: why }];
    const pre: string[] = [];
    for (const p of hooks(ctx, "pre-clean-host")) {
      if (recordedHosts(ctx, p, "pre-clean-host", [ip]).length === 0) continue;
      pre.push(
        out.add({
          step: {
            id: `hook:pre-clean-host:${p.name}:${ip}`,
            kind: "hook",
            hosts: [ip],
            phase: "pre-clean-host",
            plugin: p.name,
          },
          parts: removal,
          deps: [after, ...pre.slice(-1)],
          newReason: why,
        }),
      );
    }
    cleanIds.push(
      out.add({
        step: { id: `clean-host:${ip}`, kind: "clean-host", hosts: [ip] },
        parts: removal,
        deps: [after, ...pre],
        newReason: why,
      }),
    );
    ids.push(...pre);
  }
  ids.push(...cleanIds);
  const nodes = [...toRemove].sort();
  const deleteNode = out.add({
    step: { id: REMOVAL, kind: "delete-node", hosts: [ctx.runner], nodes },
    parts: [{ name: "nodes", hash: hash(nodes), desc: `delete nodes ${nodes.join(", ")}` }],
    deps: [...cleanIds, after],
    newReason: `kubectl delete node ${nodes.join(" ")} (hosts cleaned first)`,
  });
  ids.push(deleteNode);
  for (const p of hooks(ctx, "post-clean-host")) {
    const hostsIn = recordedHosts(ctx, p, "post-clean-host", nodes);
    if (!hostsIn.length) continue;
    ids.push(
      out.add({
        step: {
          id: `hook:post-clean-host:${p.name}`,
          kind: "hook",
          hosts: [ctx.runner],
          phase: "post-clean-host",
          plugin: p.name,
        },
        parts: [{ name: "removal", hash: hash(hostsIn), desc: `hosts ${hostsIn.join(", ")} removed` }],
        deps: [deleteNode],
        newReason: `hosts ${hostsIn.join(", ")} removed`,
      }),
    );
  }
  return { nodes: out.nodes, ids, deleteNode };
}

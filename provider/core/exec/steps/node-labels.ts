/** node-labels: role labels, the Clusterfile's host labels and taints (those removed since the last apply taken off). */
import { findHost } from "../../clusterfile";
import { drift, list, type CheckResult } from "../../drift/check";
import { ROLE_LABEL_WORKER, labelTaintCmds } from "../../kube/commands";
import { parseTaintSpec } from "../../runtime/taints";
import { keyOnly, type HostFacts, type StepKindDef } from "./kind";

export const nodeLabels: StepKindDef<"node-labels"> = {
  async run(ctx, step) {
    const cmds: string[] = [];
    const hosts: Record<string, HostFacts> = {};
    for (const ip of step.hosts) {
      const h = findHost(ctx.spec, ip);
      const labels: Record<string, string> = {
        ...(ctx.isMaster(ip) ? {} : { [ROLE_LABEL_WORKER]: "" }),
        ...(h?.labels ?? {}),
      };
      const taints = h?.taints ?? [];
      const prev = ctx.state.hosts[ip];
      const nodeName = await ctx.nodeName(ip);
      cmds.push(
        ...labelTaintCmds(
          nodeName,
          { labels, taints },
          { labels: prev?.labels ?? {}, taints: prev?.taints ?? [] },
        ),
      );
      // A taint ending in "-" removes it: it is not on the node afterwards.
      hosts[ip] = { labels, taints: taints.filter((t) => !t.endsWith("-")), nodeName };
    }
    if (cmds.length) await ctx.sh(ctx.master0, "node-labels", cmds.join(" && "));
    return { hosts };
  },
  // The labels and taints set are host facts the handler reports.
  record: keyOnly,
  probe: {
    expect: ({ applied, ip, recorded }) => {
      const id = `node-labels:${ip}`;
      if (!recorded(id)) return {};
      const h = applied.hosts[ip];
      return {
        nodeLabels: {
          labelSteps: [id],
          ...(h?.labels ? { labels: h.labels } : {}),
          ...(h?.taints ? { taints: h.taints } : {}),
        },
      };
    },
    // On a registered node (the join kinds check that it is there).
    compare(e, _o, nodes): CheckResult[] {
      const n = nodes.ok && e.node ? nodes.nodes.find((x) => x.name === e.node!.name) : undefined;
      if (!n || !e.node) return [];
      const out: CheckResult[] = [];
      if (e.node.labels) {
        const wrong = Object.entries(e.node.labels).filter(([k, v]) => n.labels[k] !== v);
        out.push(
          wrong.length
            ? drift(
                "labels",
                wrong.map(([k, v]) => `${k}=${v}`).join(", "),
                wrong.map(([k]) => (k in n.labels ? `${k}=${n.labels[k]}` : `${k} absent`)).join(", "),
                e.node.labelSteps,
              )
            : { check: "labels", status: "ok" },
        );
      }
      if (e.node.taints) {
        const have = new Set(n.taints.map((t) => parseTaintSpec(t).text));
        const missing = e.node.taints.filter((t) => !have.has(parseTaintSpec(t).text));
        out.push(
          missing.length
            ? drift("taints", missing.join(", "), `absent (node has ${list(n.taints)})`, e.node.labelSteps)
            : { check: "taints", status: "ok" },
        );
      }
      return out;
    },
  },
};

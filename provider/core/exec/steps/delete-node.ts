/** delete-node: kubectl delete node for removed hosts, from a remaining master. */
import { shellQuote } from "../../ssh";
import type { StepKindDef } from "./kind";

export const deleteNode: StepKindDef<"delete-node"> = {
  async run(ctx, step) {
    const from = step.hosts[0] ?? ctx.master0;
    const names = step.nodes.map((n) => ctx.state.hosts[n]?.nodeName ?? n);
    if (names.length)
      await ctx.sh(from, "delete-node", `kubectl delete node ${names.map(shellQuote).join(" ")}`);
    return {};
  },
  record(next, step) {
    // The removal is complete: forget the hosts and every record that concerned only them.
    // Per-host step ids end with ":<ip>"; cluster-level records just stop naming the hosts.
    const gone = new Set(step.nodes);
    for (const [id, rec] of Object.entries(next.steps)) {
      if (step.nodes.some((ip) => id.endsWith(`:${ip}`))) delete next.steps[id];
      else next.steps[id] = { ...rec, hosts: rec.hosts.filter((h) => !gone.has(h)) };
    }
    for (const ip of gone) delete next.hosts[ip];
    return "untracked";
  },
};

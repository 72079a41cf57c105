/**
 * hook: a Plugin at a phase on the hosts in its scope. SHELL runs its script; the legacy kinds
 * map to hostname/kubectl, CLUSTERCHECK and ETCD act on master0.
 */
import { UserError } from "../../errors";
import { effectivePlugins } from "../../plan/plugins";
import { shellQuote } from "../../ssh";
import type { ExecContext } from "../context";
import { scriptFootprint } from "../footprint";
import { runClusterCheck, runEtcdSnapshot } from "../legacy-plugins";
import { keyOnly, type Observed, type StepKindDef, type StepOf } from "./kind";

async function run(ctx: ExecContext, step: StepOf<"hook">): Promise<Observed> {
  // The same set the planner made the step from: the image's plugins/ and the Clusterfile's.
  const plugin = effectivePlugins(ctx.spec.plugins, ctx.image.plugins).find((p) => p.name === step.plugin);
  if (!plugin)
    throw new UserError(
      `step "hook ${step.phase}": plugin ${step.plugin} is neither in the Clusterfile nor in the image's plugins/`,
    );
  const label = `hook ${step.phase} ${plugin.name}`;
  switch (plugin.type) {
    case "SHELL": {
      // A hook that edits a config file another step wrote owns that content too (withFootprint).
      const footprint = await scriptFootprint(ctx, step.hosts, label, (ip) =>
        ctx.sh(ip, label, `sh -s`, { stdin: plugin.data, env: { SEALER_HOOK_PHASE: step.phase } }),
      );
      return { footprint };
    }
    case "HOSTNAME": {
      // data: lines "IP hostname"
      const names = new Map(
        plugin.data
          .split("\n")
          .map((l) => l.trim().split(/\s+/))
          .filter((p) => p.length === 2)
          .map((p) => [p[0]!, p[1]!] as const),
      );
      await ctx.eachHost(step.hosts, async (ip) => {
        const n = names.get(ip);
        if (n) await ctx.sh(ip, label, `hostname ${shellQuote(n)} && echo ${shellQuote(n)} > /etc/hostname`);
      });
      return {};
    }
    case "LABEL":
    case "TAINT": {
      // data: lines "IP k=v,k2=v2" (LABEL) or "IP k=v:Effect[,...]" with a trailing "-" removing (TAINT), as sealer's legacy plugins.
      const cmds: string[] = [];
      for (const line of plugin.data.split("\n")) {
        const [ip, spec] = line.trim().split(/\s+/, 2);
        if (!ip || !spec || !step.hosts.includes(ip)) continue;
        const node = shellQuote(await ctx.nodeName(ip));
        const items = spec.split(",").filter(Boolean).map(shellQuote).join(" ");
        cmds.push(
          plugin.type === "LABEL"
            ? `kubectl label node ${node} --overwrite ${items}`
            : `kubectl taint node ${node} --overwrite ${items}`,
        );
      }
      if (cmds.length) await ctx.sh(ctx.master0, label, cmds.join(" && "));
      return {};
    }
    case "CLUSTERCHECK":
      await runClusterCheck(ctx, label);
      return {};
    case "ETCD":
      await runEtcdSnapshot(ctx, label, plugin.on);
      return {};
  }
}

export const hook: StepKindDef<"hook"> = { run, record: keyOnly };

/** Host preparation steps: init-host, container-runtime, host-aliases, and SHELL hooks. */
import { effectivePlugins } from "../../plan/plugins";
import { UserError } from "../../errors";
import type { Step } from "../../plan/types";
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { shellQuote } from "../../ssh";
import type { ExecContext } from "../context";
import { runClusterCheck, runEtcdSnapshot } from "./legacy-plugins";
import { scriptFootprint, type Footprint } from "../footprint";

/** Host init scripts of the image, in the order sealer runs them; each only when present. */
export const INIT_SCRIPTS = ["scripts/init.sh", "scripts/kubelet-pre-start.sh", "scripts/init-kube.sh"];

export async function runInitHost(
  ctx: ExecContext,
  step: Extract<Step, { kind: "init-host" }>,
): Promise<Footprint> {
  const script = INIT_SCRIPTS.map((s) => `if [ -f ${s} ]; then echo "running ${s}"; sh ${s}; fi`).join(
    " && ",
  );
  return scriptFootprint(ctx, step.hosts, "init-host", (ip) =>
    ctx.sh(ip, "init-host", `mkdir -p /etc/kubernetes ${shellQuote(ctx.clusterDir)} && ${script}`),
  );
}

export async function runContainerRuntime(
  ctx: ExecContext,
  step: Extract<Step, { kind: "container-runtime" }>,
): Promise<Footprint> {
  const script = `scripts/${step.runtime}.sh`;
  return scriptFootprint(ctx, step.hosts, "container-runtime", async (ip) => {
    const has = await ctx.sh(ip, "container-runtime", `test -f ${script}`, { allowFail: true, quiet: true });
    if (has.code !== 0)
      throw new UserError(
        `[${ip}] step "container-runtime": the image has no ${script}; build the image with a ${step.runtime} install script or set spec.containerRuntime.type to the runtime the image ships`,
      );
    return ctx.sh(ip, "container-runtime", `sh ${script}`);
  });
}

export async function runHostAliases(
  ctx: ExecContext,
  step: Extract<Step, { kind: "host-aliases" }>,
): Promise<void> {
  const entries = ctx.spec.hostAliases.map((a) => ({ ip: a.ip, names: a.hostnames }));
  await ctx.eachHost(step.hosts, (ip) =>
    ctx.sh(ip, "host-aliases", setHostsBlockCmd(ctx.cluster, "aliases", entries)).then(() => undefined),
  );
}

/** A Plugin at a phase on the hosts in its scope. SHELL runs its script; the legacy kinds map to kubectl/hostname, CLUSTERCHECK and ETCD act on master0. */
export async function runHook(
  ctx: ExecContext,
  step: Extract<Step, { kind: "hook" }>,
): Promise<Footprint | void> {
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
      return scriptFootprint(ctx, step.hosts, label, (ip) =>
        ctx.sh(ip, label, `sh -s`, { stdin: plugin.data, env: { SEALER_HOOK_PHASE: step.phase } }),
      );
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
      return;
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
      return;
    }
    case "CLUSTERCHECK":
      return runClusterCheck(ctx, label);
    case "ETCD":
      return runEtcdSnapshot(ctx, label, plugin.on);
  }
}

/** launch-app, launch-cmds (on master0, cwd = the cluster rootfs) and save-clusterfile. */
import { dumpClusterfile } from "../../clusterfile";
import type { Step } from "../../plan/types";
import { saveClusterfileCmd } from "../../runtime/kube";
import { saveClusterfileTo } from "../../state";
import type { ExecContext } from "../context";
import { hashes, type Footprint } from "../footprint";

/** Runs commands one after the other on master0; the first failure stops (names the command). */
async function runCmds(
  ctx: ExecContext,
  label: string,
  cmds: string[],
  env: Record<string, string> = {},
): Promise<void> {
  for (const c of cmds) {
    ctx.log(ctx.master0).info(`${label}: ${c}`);
    await ctx.sh(ctx.master0, label, c, { env });
  }
}

export async function runLaunchApp(
  ctx: ExecContext,
  step: Extract<Step, { kind: "launch-app" }>,
): Promise<void> {
  const app = ctx.image.apps.find((a) => a.name === step.app);
  await runCmds(ctx, `launch-app ${step.app}`, step.cmds, app?.env ?? {});
}

export async function runLaunchCmds(
  ctx: ExecContext,
  step: Extract<Step, { kind: "launch-cmds" }>,
): Promise<void> {
  await runCmds(ctx, "launch-cmds", step.cmds);
}

/** The merged Clusterfile (secrets left out) to the local state dir, master0 and configmap kube-system/sealer-clusterfile. */
export async function runSaveClusterfile(
  ctx: ExecContext,
  _step: Extract<Step, { kind: "save-clusterfile" }>,
): Promise<Footprint> {
  const text = dumpClusterfile(ctx.spec);
  const remote = `${ctx.clusterDir}/Clusterfile`;
  await ctx.put(ctx.master0, "save-clusterfile", remote, text, 0o600);
  await ctx.sh(ctx.master0, "save-clusterfile", saveClusterfileCmd(remote));
  // Locally last, once the cluster has it (a failure above leaves the local record as it was),
  // with its secrets in their own 0600 file (`sealer join/delete` reload them); on the cluster without.
  await saveClusterfileTo(ctx.stateDir, ctx.spec);
  return { [ctx.master0]: { files: hashes({ [remote]: text }) } };
}

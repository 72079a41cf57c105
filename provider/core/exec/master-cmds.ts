/** Commands run one after the other on master0 (cwd = the cluster rootfs): launch-app and launch-cmds. */
import type { ExecContext } from "./context";

/** The first failure stops the rest (the error names the command's step and host). */
export async function runOnMaster0(
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

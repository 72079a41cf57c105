/** One node's Kubernetes upgrade: drained from master0, kubeadm upgrade, kubelet restarted, uncordoned. */
import { shellQuote } from "../ssh";
import type { ExecContext } from "../exec/context";

const restartKubelet =
  "if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl daemon-reload && systemctl restart kubelet; fi";

export async function upgradeNode(
  ctx: ExecContext,
  ip: string,
  label: string,
  kubeadmCmd: string,
): Promise<void> {
  const name = await ctx.nodeName(ip);
  await ctx.sh(
    ctx.master0,
    label,
    `kubectl drain ${shellQuote(name)} --ignore-daemonsets --delete-emptydir-data`,
  );
  await ctx.sh(ip, label, kubeadmCmd, { env: { SANDBOX_NODE_NAME: name } });
  await ctx.sh(ip, label, restartKubelet);
  await ctx.sh(ctx.master0, label, `kubectl uncordon ${shellQuote(name)}`);
}

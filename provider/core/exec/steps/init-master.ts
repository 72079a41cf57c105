/**
 * init-master: kubeadm init on master0 with a token and certificate key made here (registered as
 * secrets before kubeadm prints them). When an earlier apply already ran it but stopped before
 * recording, fresh join material is fetched instead.
 */
import { immutableOf } from "../../plan/planner";
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { ADMIN_CONF, kubeadmInitCmd, parseJoinOutput } from "../../kube/commands";
import { APISERVER_DOMAIN, initConfigYaml } from "../../kube/kubeadm-config";
import { initConfigPath, newJoinSecrets, refreshJoin, withNodeName } from "../../kube/join";
import { compareNode, expectNode } from "../../drift/expect-node";
import type { StepKindDef } from "./kind";

export const initMaster: StepKindDef<"init-master"> = {
  async run(ctx) {
    const m0 = ctx.master0;
    const step = "init-master";
    await ctx.sh(
      m0,
      step,
      setHostsBlockCmd(ctx.cluster, "apiserver", [{ ip: m0, names: [APISERVER_DOMAIN] }]),
    );
    const done = await ctx.sh(m0, step, `test -f ${ADMIN_CONF}`, { allowFail: true, quiet: true });
    if (done.code === 0) {
      ctx
        .log(m0)
        .info(`init-master: ${ADMIN_CONF} exists, kubeadm init already ran; refreshing the join material`);
      await refreshJoin(ctx);
    } else {
      const { token, certificateKey } = newJoinSecrets(ctx);
      const cfg = await ctx.kubeadm(step);
      const text = await withNodeName(ctx, m0, initConfigYaml(cfg, { token, certificateKey }));
      await ctx.put(m0, step, initConfigPath(ctx), text, 0o600);
      const r = await ctx.sh(m0, step, kubeadmInitCmd(initConfigPath(ctx)));
      const j = parseJoinOutput(r.stdout);
      if (!j.caCertHash)
        throw new Error(
          `[${m0}] step "${step}": kubeadm init succeeded but printed no join command with the CA hash`,
        );
      ctx.secret(j.caCertHash);
      ctx.join = { token, certificateKey, caCertHash: j.caCertHash };
    }
    const kubeconfig = ctx.secret(await ctx.read(m0, step, ADMIN_CONF));
    return {
      secrets: { ...ctx.join, ...(kubeconfig ? { kubeconfig } : {}) },
      hosts: { [m0]: { nodeName: await ctx.nodeName(m0) } },
    };
  },
  record(next, step, kit) {
    next.dataRoot = kit.desired.cluster.dataRoot;
    next.immutable = immutableOf(kit.desired);
    for (const ip of step.hosts) kit.setKube(ip);
  },
  probe: {
    expect: (p) =>
      p.master0 && p.recorded("init-master")
        ? {
            blocks: [
              {
                tag: "apiserver",
                lines: [`${p.ip} ${p.layout.apiserverDomain}`],
                steps: [],
                manual: `restore the line "${p.ip} ${p.layout.apiserverDomain}" between the sealer:${p.layout.cluster}:apiserver markers in /etc/hosts on master0 (re-running kubeadm init is not safe)`,
              },
            ],
            ...expectNode(p, "init-master", "init-master"),
          }
        : {},
    compare: (e, _o, nodes) => compareNode("init-master", e, nodes),
  },
};

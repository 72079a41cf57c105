/** host-aliases: spec.hostAliases as the cluster's "aliases" block in every host's /etc/hosts. */
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { keyOnly, type StepKindDef } from "./kind";

export const hostAliases: StepKindDef<"host-aliases"> = {
  async run(ctx, step) {
    const entries = ctx.spec.hostAliases.map((a) => ({ ip: a.ip, names: a.hostnames }));
    await ctx.eachHost(step.hosts, (ip) =>
      ctx.sh(ip, "host-aliases", setHostsBlockCmd(ctx.cluster, "aliases", entries)).then(() => undefined),
    );
    return {};
  },
  record: keyOnly,
  probe: {
    expect: ({ ip, layout, recorded }) =>
      recorded(`host-aliases:${ip}`) && layout.hostAliases.length > 0
        ? {
            blocks: [
              {
                tag: "aliases",
                lines: layout.hostAliases.map((a) => `${a.ip} ${a.names.join(" ")}`),
                steps: [`host-aliases:${ip}`],
              },
            ],
          }
        : {},
  },
};

/**
 * registry: the cluster's registry started on the registry hosts (TLS certificate, htpasswd, its
 * data from the image's registry/); with an external registry, the image's cached container
 * images pushed there instead.
 */
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { htpasswdLine, registryLayout, startRegistryCmd } from "../../runtime/registry";
import { pushCachedImages } from "../../lifecycle/external-registry";
import { hashes, type Footprint } from "../footprint";
import { registryPki } from "../registry-pki";
import { drift, type CheckResult } from "../../drift/check";
import { keyOnly, type StepKindDef } from "./kind";

export const registry: StepKindDef<"registry"> = {
  async run(ctx, step) {
    const reg = ctx.registryAddress();
    if (reg.external) {
      await pushCachedImages({
        layout: ctx.layout,
        layers: ctx.image.layers,
        domain: reg.domain,
        port: reg.port,
        ...(reg.username ? { username: reg.username } : {}),
        ...(reg.password ? { password: reg.password } : {}),
        scratchDir: ctx.stateDir,
      });
      return {};
    }
    const p = await registryPki(ctx, "registry");
    // master0 keeps the CA so another machine can recover the cluster's PKI.
    await ctx.put(ctx.master0, "registry", `${ctx.clusterDir}/pki/ca.crt`, p.caCert, 0o644);
    await ctx.put(ctx.master0, "registry", `${ctx.clusterDir}/pki/ca.key`, p.caKey, 0o600);
    const withAuth = !!(reg.username && reg.password);
    const htpasswd = withAuth ? await htpasswdLine(reg.username!, reg.password!) : undefined;
    const layout = registryLayout(ctx.clusterDir, withAuth);
    const caFiles = { [`${ctx.clusterDir}/pki/ca.crt`]: p.caCert, [`${ctx.clusterDir}/pki/ca.key`]: p.caKey };
    const footprint: Footprint = {};
    await ctx.eachHost(step.hosts, async (ip) => {
      await ctx.put(ip, "registry", layout.cert, p.cert, 0o644);
      await ctx.put(ip, "registry", layout.key, p.key, 0o600);
      if (htpasswd && layout.htpasswd) await ctx.put(ip, "registry", layout.htpasswd, htpasswd, 0o600);
      // The registry host resolves the domain to itself.
      await ctx.sh(ip, "registry", setHostsBlockCmd(ctx.cluster, "registry", [{ ip, names: [reg.domain] }]));
      await ctx.sh(
        ip,
        "registry",
        startRegistryCmd({
          rootfs: ctx.rootfs,
          layout,
          listen: `${ip}:${reg.port}`,
          domain: reg.domain,
          port: reg.port,
        }),
      );
      // The process is checked by asking it (/v2/); its log and pid file change while it runs.
      footprint[ip] = {
        files: hashes({
          [layout.cert]: p.cert,
          [layout.key]: p.key,
          ...(htpasswd && layout.htpasswd ? { [layout.htpasswd]: htpasswd } : {}),
          ...(ip === ctx.master0 ? caFiles : {}),
        }),
      };
    });
    return { footprint };
  },
  record: keyOnly,
  probe: {
    expect: ({ ip, layout, recorded }) => ({
      registry: layout.localRegistry && layout.registryHosts.includes(ip) && recorded(`registry:${ip}`),
    }),
    // The process is asked over https on its host (any HTTP status means it answers).
    compare(e, o): CheckResult[] {
      if (!e.registry) return [];
      const code = o.registryHttp;
      if (code === undefined) return [{ check: "registry", status: "unknown", detail: "not asked" }];
      if (code === "curl-missing")
        return [{ check: "registry", status: "unknown", detail: "curl is not installed on the host" }];
      if (/^[1-5]\d\d$/.test(code)) return [{ check: "registry", status: "ok" }];
      return [
        drift("registry", "registry answering on https /v2/", "nothing answers", [`registry:${e.host}`]),
      ];
    },
  },
};

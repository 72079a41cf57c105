/** registry-client: every host finds the registry (hosts entry), trusts its CA and, with htpasswd, holds the pull credentials. */
import { setHostsBlockCmd } from "../../runtime/hosts-file";
import { registryClientCmd, registryClientFiles } from "../../runtime/registry";
import { configureExternalRegistryClients, putRegistryCredentials } from "../../lifecycle/external-registry";
import { hashes, type Footprint } from "../footprint";
import { registryPki } from "../registry-pki";
import { keyOnly, type StepKindDef } from "./kind";

export const registryClient: StepKindDef<"registry-client"> = {
  async run(ctx, step) {
    const reg = ctx.registryAddress();
    if (reg.external) {
      await configureExternalRegistryClients(ctx, step.hosts);
      return {};
    }
    const caCert = (await registryPki(ctx, "registry-client")).caCert;
    const creds =
      reg.username && reg.password ? { username: reg.username, password: reg.password } : undefined;
    const footprint: Footprint = {};
    await ctx.eachHost(step.hosts, async (ip) => {
      const to = ctx.registryTargetFor(ip);
      await ctx.sh(
        ip,
        "registry-client",
        setHostsBlockCmd(ctx.cluster, "registry", [{ ip: to, names: [reg.domain] }]),
      );
      const files = { domain: reg.domain, port: reg.port, caCert };
      await ctx.sh(ip, "registry-client", registryClientCmd(files));
      footprint[ip] = { files: hashes(registryClientFiles(files)) };
      // The registry runs with htpasswd: pulls need the credentials (image names say domain:port).
      if (creds) await putRegistryCredentials(ctx, ip, `${reg.domain}:${reg.port}`, creds);
    });
    return { footprint };
  },
  record: keyOnly,
  probe: {
    expect: ({ ip, layout, recorded }) =>
      layout.localRegistry && recorded(`registry-client:${ip}`)
        ? {
            blocks: [
              {
                tag: "registry",
                lines: [`${layout.registryTargets[ip] ?? ip} ${layout.registryDomain}`],
                steps: [`registry-client:${ip}`],
              },
            ],
          }
        : {},
  },
};

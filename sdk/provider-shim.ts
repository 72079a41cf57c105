/**
 * The object Pulumi serialises into every resource's `__provider` property. It is deliberately
 * tiny: it captures only three strings and the preview flag, and require()s the real implementation (and with it ssh2
 * and the whole core) inside each method, in the provider host process. So the serialized text
 * stays a few KB, and changed implementation code is picked up from disk without re-serialising.
 */
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { providerCodeVersion } from "../provider/resources/common";

export type ProviderKind = "cluster-image" | "infra" | "cluster";

type CheckWithMode = (
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  mode: { preview: boolean },
) => Promise<pulumi.dynamic.CheckResult>;

const cache = new Map<string, pulumi.dynamic.ResourceProvider>();

export function dynamicProvider(kind: ProviderKind): pulumi.dynamic.ResourceProvider {
  // Whether this program run is a preview: check() puts the Cluster's `plan` into the inputs of a
  // preview only (see provider/resources/cluster.ts). `__provider` is an internal property: the
  // engine's display and input diffs skip it, so the flag itself never shows as a change.
  const preview = (require("@pulumi/pulumi") as typeof pulumi).runtime.isDryRun();
  const cacheKey = `${kind}:${preview}`;
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  // Absolute path of the implementation next to this SDK (dist/provider/... or the TS sources
  // under tsx); the package path is the fallback when the state was written from another checkout.
  const implPath = path.join(__dirname, "..", "provider", "resources", kind);
  const packagePath = "pulumi-sealer/dist/provider/resources/" + kind;
  const codeVersion = providerCodeVersion();
  function load(): Required<pulumi.dynamic.ResourceProvider> {
    // The checkout's own implementation when it is there; a failure inside it is not hidden.
    let target = packagePath;
    try {
      target = require.resolve(implPath);
    } catch {
      // not next to this SDK: the installed package's
    }
    const mod: { provider: Required<pulumi.dynamic.ResourceProvider> } = require(target);
    if (!mod.provider)
      throw new Error("sealer provider " + implPath + " (code " + codeVersion + ") exports no provider");
    return mod.provider;
  }
  const shim: pulumi.dynamic.ResourceProvider = {
    check: (olds, news) => (load().check as CheckWithMode)(olds, news, { preview }),
    diff: (id, olds, news) => load().diff(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read(id, props),
    update: (id, olds, news) => load().update(id, olds, news),
    delete: (id, props) => load().delete(id, props),
  };
  cache.set(cacheKey, shim);
  return shim;
}

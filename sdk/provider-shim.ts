/**
 * The object Pulumi serialises into every resource's `__provider` property. It is deliberately
 * tiny: it captures only three strings and require()s the real implementation (and with it ssh2
 * and the whole core) inside each method, in the provider host process. So the serialized text
 * stays a few KB, and changed implementation code is picked up from disk without re-serialising.
 */
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { providerCodeVersion } from "../provider/resources/common";

export type ProviderKind = "cluster-image" | "infra" | "cluster";

const cache = new Map<ProviderKind, pulumi.dynamic.ResourceProvider>();

export function dynamicProvider(kind: ProviderKind): pulumi.dynamic.ResourceProvider {
  const hit = cache.get(kind);
  if (hit) return hit;
  // Absolute path of the implementation next to this SDK (dist/provider/... or the TS sources
  // under tsx); the package path is the fallback when the state was written from another checkout.
  const implPath = path.join(__dirname, "..", "provider", "resources", kind);
  const packagePath = "pulumi-sealer/dist/provider/resources/" + kind;
  const codeVersion = providerCodeVersion();
  function load(): Required<pulumi.dynamic.ResourceProvider> {
    let mod: { provider: Required<pulumi.dynamic.ResourceProvider> };
    try {
      mod = require(implPath);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code !== "MODULE_NOT_FOUND" || !String(e.message).includes(implPath)) throw err;
      mod = require(packagePath);
    }
    if (!mod.provider)
      throw new Error("sealer provider " + implPath + " (code " + codeVersion + ") exports no provider");
    return mod.provider;
  }
  const shim: pulumi.dynamic.ResourceProvider = {
    check: (olds, news) => load().check(olds, news),
    diff: (id, olds, news) => load().diff(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read(id, props),
    update: (id, olds, news) => load().update(id, olds, news),
    delete: (id, props) => load().delete(id, props),
  };
  cache.set(kind, shim);
  return shim;
}

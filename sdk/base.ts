import * as pulumi from "@pulumi/pulumi";
import { DYNAMIC_MODULE, secretOutputNames, type ResourceDesc } from "../provider/shared/descriptors";
import { providerCodeVersion } from "../provider/resources/common";

/**
 * Props for a dynamic resource: the user's inputs, the provider-code version, and every output
 * name (undefined) so the SDK resolves it. Properties the provider computes in check are never
 * taken from the user. Inputs that hold a secret (a password, a key, registry credentials) go to
 * the engine as secrets even when the program passed plain values: the engine stores a
 * resource's inputs in its state and shows them in diffs.
 */
export function resourceProps(
  desc: ResourceDesc,
  inputs: Record<string, unknown>,
  computedInputs: readonly string[],
): pulumi.Inputs {
  const secret = new Set(secretOutputNames(desc));
  const props: Record<string, unknown> = {};
  for (const k of Object.keys(desc.outputs)) props[k] = undefined;
  for (const k of Object.keys(desc.inputs)) {
    const v = computedInputs.includes(k) ? undefined : inputs[k];
    props[k] = v !== undefined && secret.has(k) ? pulumi.secret(v) : v;
  }
  props.providerVersion = providerCodeVersion();
  return props;
}

export function resourceOptions(
  desc: ResourceDesc,
  opts: pulumi.CustomResourceOptions | undefined,
): pulumi.CustomResourceOptions {
  const extra = secretOutputNames(desc);
  return {
    ...opts,
    additionalSecretOutputs: [...new Set([...(opts?.additionalSecretOutputs ?? []), ...extra])],
  };
}

/** Module of the dynamic type: resources show as pulumi-nodejs:dynamic/sealer:<Type>. */
export const MODULE = DYNAMIC_MODULE;

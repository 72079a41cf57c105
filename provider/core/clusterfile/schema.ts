import { z } from "zod";
import { DISTRIBUTION_MODES } from "./types";

/**
 * zod schemas for the raw documents of a Clusterfile, one per kind.
 *
 * These check shapes and types only (strict objects: an unknown field is reported as a
 * warning by the loader, not silently dropped). Semantic rules (IP syntax, duplicates, taint
 * and label syntax, env syntax, roles) are checked afterwards in validate.ts so every problem
 * gets one precise message.
 */

/** sealer writes ports as strings ("22"); people write numbers. Both are accepted. */
const portLike = z.union([z.string(), z.number()]);
const stringList = z.array(z.string());
/** Scalars YAML may type as numbers or booleans where a string is meant (label values "true", "1"). */
const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const metadataSchema = z.looseObject({
  name: z.string().optional(),
  labels: z.record(z.string(), scalar).optional(),
  annotations: z.record(z.string(), scalar).optional(),
});

export const sshSchema = z.strictObject({
  /** sealer's marker that passwd is its AES form (sealer writes it when it saves a Clusterfile). */
  encrypted: z.boolean().nullish(),
  user: z.string().nullish(),
  passwd: scalar.nullish(),
  pk: z.string().nullish(),
  /** Inline private key (PEM); ours, for Pulumi programs that hold the key in a secret. */
  pkData: z.string().nullish(),
  pkPasswd: scalar.nullish(),
  port: portLike.nullish(),
});

export const hostSchema = z.strictObject({
  ips: z.array(z.string()),
  roles: z.array(z.string()).nullish(),
  ssh: sshSchema.nullish(),
  env: stringList.nullish(),
  labels: z.record(z.string(), scalar).nullish(),
  taints: stringList.nullish(),
});

export const hostAliasSchema = z.strictObject({
  ip: z.string(),
  hostnames: stringList,
});

export const localRegistrySchema = z.strictObject({
  domain: z.string().nullish(),
  port: portLike.nullish(),
  ha: z.boolean().nullish(),
  insecure: z.boolean().nullish(),
  username: z.string().nullish(),
  password: scalar.nullish(),
  cert: z
    .strictObject({
      subjectAltName: z.looseObject({ dnsNames: stringList.nullish(), ips: stringList.nullish() }).nullish(),
    })
    .nullish(),
});

export const externalRegistrySchema = z.strictObject({
  domain: z.string(),
  port: portLike.nullish(),
  username: z.string().nullish(),
  password: scalar.nullish(),
});

export const registrySchema = z.strictObject({
  localRegistry: localRegistrySchema.nullish(),
  externalRegistry: externalRegistrySchema.nullish(),
});

export const clusterV2SpecSchema = z.strictObject({
  image: z.string().nullish(),
  env: stringList.nullish(),
  cmd: stringList.nullish(),
  appNames: stringList.nullish(),
  ssh: sshSchema.nullish(),
  hosts: z.array(hostSchema).nullish(),
  containerRuntime: z.strictObject({ type: z.string() }).nullish(),
  hostAliases: z.array(hostAliasSchema).nullish(),
  registry: registrySchema.nullish(),
  dataRoot: z.string().nullish(),
  /** How layer blobs reach the hosts (our extension): ssh, relay or registry. */
  distribution: z.enum(DISTRIBUTION_MODES).nullish(),
});

const v1MachinesSchema = z.strictObject({
  ipList: stringList.nullish(),
  count: portLike.nullish(),
  cpu: portLike.nullish(),
  memory: portLike.nullish(),
  systemDisk: portLike.nullish(),
  dataDisks: z.array(portLike).nullish(),
});

export const clusterV1SpecSchema = z.strictObject({
  image: z.string().nullish(),
  provider: z.string().nullish(),
  env: stringList.nullish(),
  cmd: stringList.nullish(),
  ssh: sshSchema.nullish(),
  network: z
    .strictObject({
      interface: z.string().nullish(),
      cniName: z.string().nullish(),
      podCIDR: z.string().nullish(),
      svcCIDR: z.string().nullish(),
      withoutCNI: z.boolean().nullish(),
    })
    .nullish(),
  certSANS: stringList.nullish(),
  containerRuntime: z.strictObject({ type: z.string() }).nullish(),
  masters: v1MachinesSchema.nullish(),
  nodes: v1MachinesSchema.nullish(),
});

export const configSpecSchema = z.strictObject({
  path: z.string(),
  data: z.string().nullish(),
  strategy: z.string().nullish(),
  process: z.string().nullish(),
  appName: z.string().nullish(),
});

export const pluginSpecSchema = z.strictObject({
  /** Absent in sealer <= 0.4, where metadata.name gave the type. */
  type: z.string().nullish(),
  action: z.string().nullish(),
  scope: z.string().nullish(),
  /** Legacy label selector ("node-role.kubernetes.io/master="). */
  on: z.string().nullish(),
  data: z.string().nullish(),
});

export const applicationSpecSchema = z.strictObject({
  cmds: stringList.nullish(),
  launchApps: stringList.nullish(),
  configs: z
    .array(
      z.strictObject({
        name: z.string(),
        env: stringList.nullish(),
        files: z
          .array(
            z.strictObject({ path: z.string(), strategy: z.string().nullish(), data: z.string().nullish() }),
          )
          .nullish(),
        launch: z.strictObject({ cmds: stringList.nullish() }).nullish(),
      }),
    )
    .nullish(),
});

/** A document with its spec schema; apiVersion/kind/metadata are checked by the loader. */
export function docSchema<T extends z.ZodType>(spec: T, specRequired = true) {
  return z.strictObject({
    apiVersion: z.string(),
    kind: z.string(),
    metadata: metadataSchema.nullish(),
    spec: specRequired ? spec : spec.nullish(),
  });
}

export type RawSsh = z.infer<typeof sshSchema>;
export type RawHost = z.infer<typeof hostSchema>;
export type RawClusterV2Spec = z.infer<typeof clusterV2SpecSchema>;
export type RawClusterV1Spec = z.infer<typeof clusterV1SpecSchema>;
export type RawConfigSpec = z.infer<typeof configSpecSchema>;
export type RawPluginSpec = z.infer<typeof pluginSpecSchema>;
export type RawApplicationSpec = z.infer<typeof applicationSpecSchema>;

/** Alibaba Cloud infra: ECS instances and VPC networking for a cluster. */
export type {
  AlicloudInfraSpec,
  GroupSpec,
  InfraState,
  InstanceRecord,
  ApplyOptions,
  DestroyOptions,
  Tuning,
  Role,
} from "./types";
export { applyInfra, destroyInfra, InfraApplyError, refreshInfra } from "./provisioner";
export { TAG_CLUSTER, TAG_DEPLOYMENT, TAG_ROLE } from "./plan";
export { AlicloudApiError, isRetryableCode, isNotFound } from "./errors";
export { AlicloudClient, resolveEndpoint } from "./client";
export { resolveCredentials } from "./credentials";
export { waitForTcp } from "./ssh-wait";

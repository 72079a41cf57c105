// The SDK: what users import. Resource classes, their Args and output types, and the library
// entry points the CLI is built on (the same core the resources use).
export { ClusterImage, type ClusterImageArgs } from "./cluster-image";
export { Infra, type InfraArgs } from "./infra";
export { Cluster, type ClusterArgs } from "./cluster";
export type {
  Host,
  Ssh,
  RegistryAuth,
  NodeGroup,
  LocalInfra,
  AlicloudInfra,
  ImageMetadata,
  AppMetadata,
  CachedImage,
  Step,
} from "./types";
export { buildSchema } from "../provider/shared/schema";

// Library entry points.
export { parseReference, normalizeReference } from "../provider/core/common/reference";
export { buildImage, type BuildOptions, type BuildResult } from "../provider/core/image/builder";
export { imageFacts } from "../provider/core/image/facts";
export { pushImage } from "../provider/core/registry/push";
export { loadClusterfile } from "../provider/core/clusterfile/load";
export { plan as planCluster, type Desired } from "../provider/core/plan/planner";
// The session API the CLI and the Cluster resource call: the planner's input assembled once.
export {
  assembleDesired,
  planningImage,
  planInstall,
  planDestroy,
  planRollback,
  type DesiredInput,
  type ImageLookup,
} from "../provider/core/session";
export { recordStep } from "../provider/core/exec/record";
export { applyCluster, deleteCluster, type ApplyOptions, type ApplyResult } from "../provider/core/apply";
export type { ClusterSpec } from "../provider/core/clusterfile/types";
export type { Plan, AppliedState, ImageFacts } from "../provider/core/plan/types";

// The SDK: what users import. Resource classes, their Args and output types, and the library
// entry points the CLI uses too.
export { parseReference, normalizeReference } from "../provider/core/image/reference";
export { ClusterImage, type ClusterImageArgs } from "./cluster-image";
export { Infra, type InfraArgs } from "./infra";
export { Cluster, type ClusterArgs } from "./cluster";
export type { Host, Ssh, RegistryAuth, NodeGroup, LocalInfra, AlicloudInfra, ImageMetadata, AppMetadata, Step } from "./types";
export { buildSchema } from "../provider/resources/schema";

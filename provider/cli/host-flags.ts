import type { ClusterFlags } from "../core/clusterfile";

/**
 * The host flags of `sealer run IMAGE` and `sealer plan IMAGE` as commander hands them over:
 * the Clusterfile model's flags, with the password under sealer's flag name `--passwd`.
 */
export type HostFlagOpts = Omit<ClusterFlags, "image" | "password"> & { passwd?: string };

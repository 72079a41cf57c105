/**
 * Per-layer delta distribution of a cluster image to nodes (B1). API published first; the
 * implementation follows in the same file.
 *
 * Node layout under dataRoot:
 *   blobs/sha256/<hex>            content-addressed layer blobs, verified with sha256sum on the node before rename
 *   blobs/sha256/<hex>.partial    an interrupted upload, continued from its size on the next run
 *   <cluster>/rootfs              materialised from the layers in order (OCI whiteouts honoured)
 *   <cluster>/layers.json         { "layers": [digests in order] } that rootfs was built from
 */
import type { OciLayout } from "../image/layout";
import type { SshPool, SshTarget } from "../ssh";

export interface DistributeProgress {
  host: string;
  phase: "list" | "send" | "verify" | "materialise" | "done";
  digest?: string;
  bytes?: number;
  total?: number;
}

export interface DistributeOptions {
  layout: OciLayout;
  /** Layer digests, oldest/base first. */
  layers: string[];
  /** Node data root, e.g. DEFAULT_NODE_DATA_ROOT (/var/lib/sealer). */
  dataRoot: string;
  /** Cluster name: the rootfs goes to <dataRoot>/<cluster>/rootfs. */
  cluster: string;
  /** Hint from the planner: layers before this index are unchanged. The node's layers.json decides. */
  fromLayer?: number;
  /** Hosts served at once (default 8). */
  concurrency?: number;
  /** Retries per host after a transient failure (connection lost); each resumes partial blobs (default 2). */
  retries?: number;
  onProgress?: (p: DistributeProgress) => void;
}

export interface DistributeResult {
  sentBytes: number;
  sentBlobs: number;
  perHost: Record<string, { sentBlobs: number; sentBytes: number; materialisedFrom: number | null }>;
}

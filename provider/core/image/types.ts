/** OCI image-spec types and the sealer metadata carried in manifest annotations. */

export const MediaTypes = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layerTar: "application/vnd.oci.image.layer.v1.tar",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  /** Layers, oldest/base first. */
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: { Labels?: Record<string, string>; Env?: string[]; Cmd?: string[] };
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: HistoryEntry[];
}

/** Annotation keys (sealer v0.9+ keeps its metadata in manifest annotations). */
export const Annotations = {
  refName: "org.opencontainers.image.ref.name",
  created: "org.opencontainers.image.created",
  /** JSON ImageExtension. */
  sealerExtension: "sealer.image.extension",
  /** JSON ContainerImage[]. */
  sealerContainerImages: "sealer.image.container.images",
  /**
   * Ours, on each layer descriptor: JSON list of the rootfs path prefixes the layer changes
   * (depth ≤ 3, dirs end with "/"), so the planner needs no tar listing. Absent on images built
   * by others: then the paths are read from the layer tar.
   */
  layerPaths: "io.pulumi-sealer.layer.paths",
  /**
   * Ours, on each layer descriptor: JSON object of a digest per path of `layerPaths` over the
   * entries under it (layer-groups.ts), so a step keys on the paths it reads, not the layer.
   */
  layerGroups: "io.pulumi-sealer.layer.groups",
  /** Ours, on each layer descriptor: the Kubefile instruction that made it. */
  layerInstruction: "io.pulumi-sealer.layer.instruction",
  /**
   * Ours, on the manifest of an image built with --allow-incomplete while container images were
   * missing: JSON list of what is missing and why. Absent on a complete image.
   */
  incompleteImages: "io.pulumi-sealer.container-images.incomplete",
} as const;

export type AppType = "helm" | "kube" | "shell" | "other";

/** sealer's `sealer.image.extension` JSON (field names as sealer writes them). */
export interface ImageExtension {
  buildClient?: { sealerVersion?: string; buildahVersion?: string };
  type: "kube-installer" | "app-installer";
  applications: Array<{
    name: string;
    type: AppType;
    /** Paths relative to application/apps/<name>/. */
    files: string[];
    version?: string;
    /** APPCMDS: replaces the default launch commands. */
    cmds?: string[];
    /** APPENV. */
    env?: Record<string, string>;
  }>;
  env?: Record<string, string>;
  launch: { cmds?: string[]; app_names?: string[] };
  /** Legacy CMD lines (parents first), run on master0 after install when no LAUNCH/CMDS. */
  legacyCmds?: string[];
  labels?: Record<string, string>;
}

/** One entry of `sealer.image.container.images`. */
export interface ContainerImage {
  image: string;
  appName?: string;
  platform?: Platform;
  /** Ours: digest of the manifest cached in registry/ (sealer ignores unknown fields). */
  digest?: string;
}

export const SealerLabels = {
  clusterRuntimeType: "cluster.alpha.sealer.io/cluster-runtime-type",
  clusterRuntimeVersion: "cluster.alpha.sealer.io/cluster-runtime-version",
  containerRuntimeType: "cluster.alpha.sealer.io/container-runtime-type",
  containerRuntimeVersion: "cluster.alpha.sealer.io/container-runtime-version",
  supportedKubeVersion: "app.alpha.sealer.io/supported-kube-version",
  cniPrefix: "cluster.alpha.sealer.io/kube-cni-",
  csiPrefix: "cluster.alpha.sealer.io/kube-csi-",
} as const;

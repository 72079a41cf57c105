import * as pulumi from "@pulumi/pulumi";
import { resources } from "../provider/shared/descriptors";
import { dynamicProvider } from "./provider-shim";
import { MODULE, resourceOptions, resourceProps } from "./base";
import type { CachedImage, ImageMetadata, RegistryAuth } from "./types";

export interface ClusterImageArgs {
  /** Build context directory. */
  context: pulumi.Input<string>;
  /** Image name, e.g. `127.0.0.1:5000/team/app:1.0`. */
  tag: pulumi.Input<string>;
  /** Kubefile path (default `<context>/Kubefile`). */
  kubefile?: pulumi.Input<string>;
  /** ARG values (`--build-arg`). */
  buildArgs?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Extra labels (`--label`). */
  labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Platforms, e.g. `["linux/amd64", "linux/arm64"]`. */
  platforms?: pulumi.Input<pulumi.Input<string>[]>;
  /** `full` caches container images into the image; `lite` does not. */
  buildMode?: pulumi.Input<"full" | "lite">;
  /** Ignore the build cache. */
  noCache?: pulumi.Input<boolean>;
  /** Push to the image's registry after building. */
  push?: pulumi.Input<boolean>;
  /** Credentials for the push (else the stored `sealer login`). */
  registryAuth?: pulumi.Input<RegistryAuth>;
  /**
   * Full mode: pull each source registry's container images from a mirror,
   * e.g. `{ "docker.io": "127.0.0.1:5000/hub" }` (`--registry-mirror`). A mirror's login comes
   * from the stored `sealer login`.
   */
  registryMirrors?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Full mode: build even when images are missing, listing them in `incompleteImages`. */
  allowIncomplete?: pulumi.Input<boolean>;
  /**
   * Digest of the FROM image when another ClusterImage of this program builds it
   * (`base.digest`), so a changed base rebuilds this image. Default: the local store's.
   */
  baseDigest?: pulumi.Input<string>;
  /**
   * Build during preview too (default true), under a preview name in the local store, so a
   * Cluster's preview knows the new digest and lists the exact steps it will run.
   */
  buildOnPreview?: pulumi.Input<boolean>;
}

/** Computed by the provider's check; never taken from the program. */
const COMPUTED_INPUTS = ["contentHash", "providerVersion"] as const;

/**
 * A cluster image built from a Kubefile into the local store, optionally pushed. Rebuilt exactly
 * when the context content, the Kubefile or the build settings change.
 */
export class ClusterImage extends pulumi.dynamic.Resource {
  /** Normalised reference, e.g. `docker.io/library/app:1.0`. */
  declare public readonly reference: pulumi.Output<string>;
  /** Manifest (or index) digest. */
  declare public readonly digest: pulumi.Output<string>;
  /** Layer digests, base first. */
  declare public readonly layers: pulumi.Output<string[]>;
  declare public readonly metadata: pulumi.Output<ImageMetadata>;
  /** Container images cached inside the image. */
  declare public readonly containerImages: pulumi.Output<string[]>;
  /** Container images cached inside the image, with digest and platform. */
  declare public readonly cachedImages: pulumi.Output<CachedImage[]>;
  /** With `allowIncomplete`: what could not be cached, and why. */
  declare public readonly incompleteImages: pulumi.Output<string[] | undefined>;
  declare public readonly pushed: pulumi.Output<boolean>;
  /** sha256 over the build inputs, computed in check. */
  declare public readonly contentHash: pulumi.Output<string>;
  declare public readonly tag: pulumi.Output<string>;

  constructor(name: string, args: ClusterImageArgs, opts?: pulumi.CustomResourceOptions) {
    const desc = resources.ClusterImage;
    super(
      dynamicProvider("cluster-image"),
      name,
      resourceProps(desc, args as unknown as Record<string, unknown>, COMPUTED_INPUTS),
      resourceOptions(desc, opts),
      MODULE,
      desc.typeName,
    );
  }
}

/**
 * Container images cached inside a cluster image (FEATURES K3). The builder calls
 * `cacheContainerImages` in full build mode after the Kubefile's own layers; it returns the
 * directory to add as the image's final `registry/` layer and the list for the
 * `sealer.image.container.images` annotation.
 *
 * PLACEHOLDER until the registry work lands: discovers nothing and stores nothing.
 */
import type { ContainerImage, Platform } from "../image/types";

export interface CacheContainerImagesOptions {
  /** The image rootfs as built so far (all layers materialised). */
  rootfs: string;
  /** Where to write the registry filesystem-storage tree (becomes `registry/` in the image). */
  outDir: string;
  platform: Platform;
  /** Extra list files (--image-list) and ignore list (--ignored-image-list). */
  imageListFiles?: string[];
  ignoredImageListFiles?: string[];
  /** Images already cached by the base image (skipped). */
  baseImages?: ContainerImage[];
  /** Store-level cache dir so a rebuild pulls nothing and builds work offline. */
  cacheDir: string;
}

export async function cacheContainerImages(_opts: CacheContainerImagesOptions): Promise<{ images: ContainerImage[]; wrote: boolean }> {
  return { images: [], wrote: false };
}

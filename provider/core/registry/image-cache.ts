/**
 * Container images cached inside a cluster image. The builder calls
 * `cacheContainerImages` in full build mode after the Kubefile's own layers; it returns the
 * directory to add as the image's final `registry/` layer and the list for the
 * `sealer.image.container.images` annotation.
 *
 * Steps: discover the images the rootfs needs (image/discovery), drop ignored ones and those the
 * base image already carries, pull each for the build platform only (from its registry mirror
 * when one is configured) into a per-platform cache (an OCI layout under `cacheDir`), then write
 * them under their original names into `outDir` in the registry's filesystem storage layout
 * (fs-storage.ts).
 *
 * No silent holes: a chart Helm cannot render, a manifest that does not parse or an image that
 * cannot be pulled fails the build, naming it. `--ignored-image-list` is the deliberate way past
 * an image; `allowIncomplete` builds anyway and returns what is missing, for the image metadata.
 *
 * Cache policy: an image whose reference is already in the cache with all its blobs is not pulled
 * again (no network at all), so a rebuild pulls nothing and a build works offline once everything
 * is cached (sealer#1858, #1874). Tags are therefore pinned to what was first pulled, like a
 * Kubernetes `IfNotPresent` policy; delete the cache dir or pin digests to refresh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { throwIfProblems } from "../errors";
import { log } from "../log";
import { OciLayout } from "../image/layout";
import { normalizeReference, parseReference } from "../common/reference";
import type { ContainerImage, Index, Manifest, Platform } from "../image/types";
import { ClientOptions, RegistryClient } from "./client";
import { FoundImage, discoverImages } from "../image/discovery/discover";
import { writeRegistryImage } from "./fs-storage";
import { Mirrors, mirrorReference } from "./mirrors";
import { pullImage } from "./pull";
import { mapLimit } from "../common/limit";
import { isIndexMediaType, platformMatches, platformString } from "./remote";

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
  /** Registry client settings (data dir for credentials, retries); optional. */
  client?: ClientOptions;
  /** Source registry host -> mirror `host[:port][/prefix]` to pull from instead. */
  mirrors?: Mirrors;
  /** Kubernetes version Helm charts are rendered for, when the image declares one. */
  kubeVersion?: string;
  /** Build even when images are missing; they are returned in `incomplete`. */
  allowIncomplete?: boolean;
}

export interface CacheContainerImagesResult {
  images: ContainerImage[];
  wrote: boolean;
  /** How many images came from a registry this time (0 on a fully cached rebuild). */
  pulled: number;
  /** With allowIncomplete: what is missing and why (charts not rendered, images not pulled). */
  incomplete: string[];
}

function platformKey(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("-");
}

/** True when `ref` is in the cache with every blob its platform manifest needs. */
async function cachedComplete(cache: OciLayout, ref: string, platform: Platform): Promise<boolean> {
  const d = await cache.resolve(ref);
  if (!d || !(await cache.hasBlob(d.digest))) return false;
  let manifestDigest = d.digest;
  if (isIndexMediaType(d.mediaType)) {
    const idx = await cache.readJson<Index>(d.digest);
    const child = idx.manifests.find((c) => platformMatches(platform, c.platform));
    if (!child || !(await cache.hasBlob(child.digest))) return false;
    manifestDigest = child.digest;
  }
  const m = await cache.readJson<Manifest>(manifestDigest);
  for (const b of [m.config, ...m.layers]) if (!(await cache.hasBlob(b.digest))) return false;
  return true;
}

export async function cacheContainerImages(
  opts: CacheContainerImagesOptions,
): Promise<CacheContainerImagesResult> {
  const found = await discoverImages(opts.rootfs, {
    imageListFiles: opts.imageListFiles ?? [],
    ignoredImageListFiles: opts.ignoredImageListFiles ?? [],
    ...(opts.kubeVersion ? { kubeVersion: opts.kubeVersion } : {}),
  });
  const incomplete: string[] = [];
  const fail = (title: string, problems: string[]) => {
    if (!opts.allowIncomplete) throwIfProblems(title, problems);
    for (const p of problems) log.warn(`incomplete image: ${p}`);
    incomplete.push(...problems);
  };
  fail(
    "cannot tell which container images these need, so the cluster image would miss them (fix each one, or build with --allow-incomplete to build anyway and record them as missing)",
    found.problems,
  );
  const base = new Set(
    (opts.baseImages ?? [])
      .filter((b) => !b.platform || platformMatches(opts.platform, b.platform))
      .map((b) => safeNormalize(b.image)),
  );
  const wanted = found.images.filter((i) => !base.has(i.ref));
  const cache = new OciLayout(path.join(opts.cacheDir, platformKey(opts.platform)));
  await cache.init();
  const clients = new Map<string, Promise<RegistryClient>>();
  const clientFor = (domain: string) => {
    let c = clients.get(domain);
    if (!c) {
      c = RegistryClient.open(domain, opts.client ?? {});
      clients.set(domain, c);
    }
    return c;
  };
  const problems: string[] = [];
  const missing = new Set<string>();
  let pulled = 0;
  const platform = platformString(opts.platform);
  try {
    await mapLimit(wanted, 2, async (img: FoundImage) => {
      const from = mirrorReference(img.ref, opts.mirrors ?? {});
      try {
        if (await cachedComplete(cache, img.ref, opts.platform)) return;
        const client = await clientFor(parseReference(from ?? img.ref).domain);
        log.info(`caching ${img.image} (${platform}) from ${img.source}${from ? ` via mirror ${from}` : ""}`);
        // A digest-pinned reference must be served by that digest, so an index stays an index
        // (with only this platform's child); a tag serves the platform manifest directly.
        await pullImage(from ?? img.ref, {
          store: cache,
          platform: opts.platform,
          flattenToPlatform: !parseReference(img.ref).digest,
          client,
          tagAs: img.ref,
        });
        pulled++;
      } catch (err) {
        missing.add(img.ref);
        const via = from ? ` from mirror ${from}` : "";
        problems.push(`${img.image} (referenced at ${img.source})${via}: ${(err as Error).message}`);
      }
    });
  } finally {
    for (const c of clients.values()) await c.then((x) => x.close()).catch(() => undefined);
  }
  fail(
    `container images could not be cached for ${platform} (fix the reference, log in to its registry, configure a --registry-mirror that has it, or list it in --ignored-image-list to build without it)`,
    problems,
  );

  const images: ContainerImage[] = [];
  for (const img of wanted.filter((w) => !missing.has(w.ref))) {
    const ref = parseReference(img.ref);
    let d = (await cache.resolve(img.ref))!;
    if (isIndexMediaType(d.mediaType) && !ref.digest)
      d = (await cache.readJson<Index>(d.digest)).manifests.find((c) =>
        platformMatches(opts.platform, c.platform),
      )!;
    await writeRegistryImage(opts.outDir, cache, ref.path, d.digest, d.mediaType, ref.tag);
    images.push({
      image: img.ref,
      ...(img.appName ? { appName: img.appName } : {}),
      platform: opts.platform,
      digest: d.digest,
    });
  }
  if (images.length)
    log.info(
      `cached ${images.length} container image(s) for ${platform} (${pulled} pulled, ${images.length - pulled} from cache)`,
    );
  return { images, wrote: images.length > 0 && fs.existsSync(opts.outDir), pulled, incomplete };
}

function safeNormalize(image: string): string {
  try {
    return normalizeReference(image);
  } catch {
    return image;
  }
}

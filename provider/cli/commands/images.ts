/** `sealer build`, `images`, `inspect`, `tag`, `rmi`, `prune`: thin layers over core/image. */
import type { Command } from "commander";
import { UserError } from "../../core/errors";
import { formatBytes } from "../../core/log";
import { dataPaths } from "../../core/paths";
import { cleanStaleTemp } from "../../core/temp-owner";
import { buildImage, parseKeyValues } from "../../core/image/builder";
import { BuildCache } from "../../core/image/build-cache";
import { OciLayout } from "../../core/image/layout";
import {
  formatPlatform,
  inspectImage,
  listImages,
  pruneStore,
  removeImages,
  tagImage,
} from "../../core/image/store";
import { parseMirrorFlags } from "../../core/registry/mirrors";
import { normalizeReference } from "../../core/common/reference";
import { listClusters, loadSavedClusterfile } from "../../core/state";
import { collect, printJson, printTable } from "../output";

function store(): OciLayout {
  return new OciLayout(dataPaths.store());
}

function splitList(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

export function register(program: Command): void {
  program
    .command("build")
    .description("Build a cluster image from a Kubefile into the local store")
    .argument("[context]", "build context directory", ".")
    .option("-f, --file <kubefile>", "Kubefile path (default: <context>/Kubefile)")
    .requiredOption("-t, --tag <name:tag>", "name of the image")
    .option("--build-arg <k=v>", "build argument (repeatable)", collect, [])
    .option("--label <k=v>", "image label (repeatable)", collect, [])
    .option("--no-cache", "do not use the build cache")
    .option("--platform <list>", "target platforms, e.g. linux/amd64,linux/arm64 (repeatable)", collect, [])
    .option("--build-mode <mode>", "full (cache container images into registry/) or lite", "full")
    .option("--image-list <file>", "extra container images to cache (repeatable)", collect, [])
    .option("--ignored-image-list <file>", "container images not to cache (repeatable)", collect, [])
    .option(
      "--registry-mirror <src=mirror>",
      "pull SRC's container images from MIRROR, host[:port][/prefix] (repeatable; docker.io covers short names)",
      collect,
      [],
    )
    .option("--allow-incomplete", "build even when container images are missing (recorded in the image)")
    .option("--ca-file <pem>", "extra CA certificates trusted for https:// APP sources")
    .option("--json", "print the build result as JSON")
    .action(async (context: string, o: Record<string, unknown>) => {
      const mode = o.buildMode as string;
      if (mode !== "full" && mode !== "lite")
        throw new UserError(`--build-mode must be full or lite, not "${mode}"`);
      // Refuse a malformed mirror before building anything.
      parseMirrorFlags(o.registryMirror as string[]);
      const result = await buildImage({
        context,
        ...(o.file ? { kubefile: o.file as string } : {}),
        tag: o.tag as string,
        buildArgs: parseKeyValues(o.buildArg as string[], "--build-arg"),
        labels: parseKeyValues(o.label as string[], "--label"),
        noCache: o.cache === false,
        platforms: splitList(o.platform as string[]),
        buildMode: mode,
        imageListFiles: o.imageList as string[],
        ignoredImageListFiles: o.ignoredImageList as string[],
        registryMirrors: o.registryMirror as string[],
        allowIncomplete: o.allowIncomplete === true,
        ...(o.caFile ? { caFile: o.caFile as string } : {}),
      });
      if (o.json) printJson(result);
      else process.stdout.write(`${result.reference} ${result.digest}\n`);
    });

  program
    .command("images")
    .description("List images in the local store")
    .option("--json", "print as JSON")
    .action(async (o: { json?: boolean }) => {
      const images = await listImages(store());
      if (o.json) return printJson(images);
      printTable(
        ["NAME", "TAG", "IMAGE ID", "PLATFORMS", "SIZE", "CREATED"],
        images.map((i) => [i.name, i.tag, i.id, i.platforms.join(","), formatBytes(i.size), i.created ?? ""]),
      );
    });

  program
    .command("inspect")
    .description("Show an image's manifest, layers, labels and sealer metadata as JSON")
    .argument("<image>", "reference or image id")
    .option("--platform <os/arch>", "platform of a multi-platform image (default: this machine's)")
    .option("--images", "list only the cached container images: original reference, digest, platform, app")
    .action(async (image: string, o: { platform?: string; images?: boolean }) => {
      const info = await inspectImage(store(), image, o.platform);
      if (!o.images) return printJson(info);
      printTable(
        ["IMAGE", "DIGEST", "PLATFORM", "APP"],
        info.containerImages.map((c) => [
          c.image,
          c.digest ?? "",
          c.platform ? formatPlatform(c.platform) : "",
          c.appName ?? "",
        ]),
      );
      for (const m of info.incompleteImages ?? []) process.stderr.write(`incomplete: ${m}\n`);
    });

  program
    .command("tag")
    .description("Give an image another name")
    .argument("<source>", "existing reference or image id")
    .argument("<target>", "new reference")
    .action(async (source: string, target: string) => {
      const ref = await tagImage(store(), source, target);
      process.stdout.write(`${ref}\n`);
    });

  program
    .command("rmi")
    .description("Remove image references (blobs are freed by `sealer prune`)")
    .argument("<images...>", "references or image ids")
    .option(
      "-f, --force",
      "remove every reference of an image id that several references share, and images a recorded cluster uses",
    )
    .action(async (images: string[], o: { force?: boolean }) => {
      const users = await clustersByImage();
      const inUse = (ref: string) => {
        const names = users.get(ref);
        return names?.length
          ? `the recorded cluster${names.length > 1 ? "s" : ""} ${names.join(", ")}`
          : undefined;
      };
      for (const r of await removeImages(store(), images, o.force === true, inUse))
        process.stdout.write(`Untagged: ${r}\n`);
    });

  program
    .command("prune")
    .description("Delete blobs that no image reference uses")
    .action(async () => {
      const layout = store();
      const { blobs, bytes: blobBytes } = await pruneStore(layout);
      // Work directories of builds that were killed (no live owner).
      const stale = await cleanStaleTemp(dataPaths.tmp());
      const bytes = blobBytes + stale.bytes;
      // Cache entries whose layer blob is gone can never hit again.
      const forgotten = await new BuildCache(dataPaths.buildCache(), layout).pruneMissing();
      process.stdout.write(
        `Deleted ${blobs} blob${blobs === 1 ? "" : "s"}, freed ${formatBytes(bytes)} (${bytes} bytes); ${forgotten} build cache entr${forgotten === 1 ? "y" : "ies"} dropped${stale.entries ? `; ${stale.entries} work director${stale.entries === 1 ? "y" : "ies"} of killed builds removed` : ""}\n`,
      );
    });
}

/** Normalised image reference -> recorded clusters whose last applied Clusterfile names it. */
async function clustersByImage(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const name of await listClusters()) {
    // A record that cannot be read protects nothing here: `sealer check` reports it.
    const spec = await loadSavedClusterfile(name).catch(() => undefined);
    if (!spec?.image) continue;
    let ref: string;
    try {
      ref = normalizeReference(spec.image);
    } catch {
      continue;
    }
    out.set(ref, [...(out.get(ref) ?? []), name]);
  }
  return out;
}

import type { Command } from "commander";
import { loadArchive, saveImages } from "../../core/image/archive";
import { OciLayout } from "../../core/image/layout";
import { familiarReference, parseReference } from "../../core/common/reference";
import { log } from "../../core/log";
import { dataPaths } from "../../core/paths";
import { printJson } from "../output";

/** `sealer save` and `sealer load`: OCI archives for offline delivery (FEATURES K7). */
export function register(program: Command): void {
  program
    .command("save")
    .description(
      "Write images from the local store into one OCI archive (readable by skopeo as oci-archive:FILE[:REF])",
    )
    .requiredOption("-o, --output <file>", "archive file to write (replaced atomically)")
    .argument("<images...>", "images to save (an index carries all its platforms)")
    .option("--json", "print what was saved as JSON")
    .action(async (images: string[], opts: { output: string; json?: boolean }) => {
      const r = await saveImages(new OciLayout(dataPaths.store()), images, opts.output);
      if (opts.json) printJson(r);
      else
        log.info(
          `saved ${r.images.map((i) => familiarReference(parseReference(i.ref))).join(", ")} to ${r.file} (${r.blobs} blobs, ${r.bytes} bytes)`,
        );
    });

  program
    .command("load")
    .description(
      "Load the images of an OCI archive into the local store (every blob verified; a bad archive changes nothing)",
    )
    .requiredOption(
      "-i, --input <file>",
      "archive written by sealer save or skopeo copy ... oci-archive:FILE",
    )
    .option(
      "-t, --tag <name>",
      "name for the image of a one-image archive (needed when it carries no ref name)",
    )
    .option("--json", "print the loaded images as JSON")
    .action(async (opts: { input: string; tag?: string; json?: boolean }) => {
      const r = await loadArchive(
        new OciLayout(dataPaths.store()),
        opts.input,
        opts.tag ? { tag: opts.tag } : {},
      );
      if (opts.json) printJson(r);
      else {
        for (const i of r.images)
          process.stdout.write(`Loaded image: ${familiarReference(parseReference(i.ref))} (${i.digest})\n`);
        log.info(`${r.blobsAdded} blobs added, ${r.blobsPresent} already in the store`);
      }
    });
}

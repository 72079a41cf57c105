import type { Command } from "commander";
import { UserError } from "../../core/errors";
import { loadArchive, saveImages } from "../../core/image/archive";
import { withLease } from "../../core/image/store";
import { FIFO_WAIT_MS } from "../../core/image/archive-input";
import { OciLayout } from "../../core/image/layout";
import { familiarReference, InvalidReferenceError, parseReference } from "../../core/common/reference";
import { log } from "../../core/log";
import { dataPaths } from "../../core/paths";
import { printJson } from "../output";

/** `sealer save` and `sealer load`: OCI archives for offline delivery. */
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
      "archive written by sealer save or skopeo copy ... oci-archive:FILE (plain or gzip tar); a named pipe, or - for stdin",
    )
    .option(
      "-t, --tag <name>",
      "name for the image of a one-image archive (needed when it carries no ref name)",
    )
    .option(
      "--fifo-wait <seconds>",
      "how long a named pipe given to -i may stay without a writer",
      String(FIFO_WAIT_MS / 1000),
    )
    .option("--json", "print the loaded images as JSON")
    .action(async (opts: { input: string; tag?: string; fifoWait: string; json?: boolean }) => {
      const wait = Number(opts.fifoWait);
      if (!(wait > 0 && wait <= 86_400))
        throw new UserError(
          `--fifo-wait must be a number of seconds between 0 and 86400, not "${opts.fifoWait}"`,
        );
      // Before the archive is opened: a bad name is the flag's problem, not the archive's.
      if (opts.tag !== undefined) checkTagFlag(opts.tag);
      // Under a lease, like pull: blobs the load stores or finds stored are not pruned before its
      // images are named.
      const r = await withLease(new OciLayout(dataPaths.store()), (store) =>
        loadArchive(store, opts.input, {
          ...(opts.tag ? { tag: opts.tag } : {}),
          fifoWaitMs: wait * 1000,
        }),
      );
      if (opts.json) printJson(r);
      else {
        for (const i of r.images)
          process.stdout.write(`Loaded image: ${familiarReference(parseReference(i.ref))} (${i.digest})\n`);
        log.info(`${r.blobsAdded} blobs added, ${r.blobsPresent} already in the store`);
      }
    });
}

/** `load -t`: a name the image can be stored under (NAME[:TAG], no digest). */
function checkTagFlag(value: string): void {
  let digest: string | undefined;
  try {
    digest = parseReference(value).digest;
  } catch (err) {
    if (err instanceof InvalidReferenceError)
      throw new UserError(
        `-t/--tag "${value}" is not a usable image name: ${err.why}; give NAME:TAG, e.g. team/app:1`,
      );
    throw err;
  }
  if (digest)
    throw new UserError(
      `-t/--tag "${value}" holds a digest, which names content, not an image: give NAME:TAG, e.g. team/app:1`,
    );
}

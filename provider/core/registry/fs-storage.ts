/**
 * Writes images in the on-disk layout of the distribution registry's filesystem storage driver,
 * so a stock registry (`docker-registry`, `registry:2`) whose rootdirectory is that directory
 * serves them unchanged:
 *
 *   docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data
 *   docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link            (config + layers)
 *   docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
 *   docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link
 *   docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link
 *
 * Each link file holds the digest ("sha256:<hex>", no newline).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { OciLayout, digestHex } from "../image/layout";
import { Index, Manifest } from "../image/types";
import { isIndexMediaType } from "./remote";

const V2 = ["docker", "registry", "v2"];

async function writeLink(file: string, digest: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  await fs.promises.writeFile(file, digest);
}

/** Copies (hard-links when possible) a blob from the store into the registry tree. */
async function putBlob(root: string, store: OciLayout, digest: string): Promise<void> {
  const hex = digestHex(digest);
  const dest = path.join(root, ...V2, "blobs", "sha256", hex.slice(0, 2), hex, "data");
  if (fs.existsSync(dest)) return;
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  try {
    await fs.promises.link(store.blobPath(digest), tmp);
  } catch {
    await fs.promises.copyFile(store.blobPath(digest), tmp);
  }
  await fs.promises.rename(tmp, dest);
}

/**
 * Adds the manifest (or index, with its children present in the store) `digest` to `repo`,
 * tagged `tag` when given. Returns the blob digests written.
 */
export async function writeRegistryImage(
  root: string,
  store: OciLayout,
  repo: string,
  digest: string,
  mediaType: string,
  tag?: string,
): Promise<string[]> {
  const repoDir = path.join(root, ...V2, "repositories", ...repo.split("/"));
  const written: string[] = [];
  const addManifest = async (d: string, mt: string) => {
    await putBlob(root, store, d);
    written.push(d);
    await writeLink(path.join(repoDir, "_manifests", "revisions", "sha256", digestHex(d), "link"), d);
    if (isIndexMediaType(mt)) {
      const idx = await store.readJson<Index>(d);
      for (const child of idx.manifests)
        if (await store.hasBlob(child.digest)) await addManifest(child.digest, child.mediaType);
      return;
    }
    const m = await store.readJson<Manifest>(d);
    for (const b of [m.config, ...m.layers]) {
      await putBlob(root, store, b.digest);
      written.push(b.digest);
      await writeLink(path.join(repoDir, "_layers", "sha256", digestHex(b.digest), "link"), b.digest);
    }
  };
  await addManifest(digest, mediaType);
  if (tag) {
    await writeLink(path.join(repoDir, "_manifests", "tags", tag, "current", "link"), digest);
    await writeLink(
      path.join(repoDir, "_manifests", "tags", tag, "index", "sha256", digestHex(digest), "link"),
      digest,
    );
  }
  return written;
}

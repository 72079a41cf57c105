/** Image list files (`manifests/imageList`, `--image-list`, `--ignored-image-list`). */
import { normalizeReference } from "../../common/reference";

/** Entries of an image list file: one reference per line; `#` starts a comment. */
export function parseImageList(
  text: string,
  file: string,
): { images: Array<{ image: string; line: number }>; problems: string[] } {
  const images: Array<{ image: string; line: number }> = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const l = raw.replace(/#.*$/, "").trim();
    if (!l) return;
    try {
      normalizeReference(l);
      images.push({ image: l, line: i + 1 });
    } catch (err) {
      problems.push(`${file}:${i + 1}: ${(err as Error).message}`);
    }
  });
  return { images, problems };
}

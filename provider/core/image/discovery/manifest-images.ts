/**
 * Container images in Kubernetes YAML, found by the shape of a container spec: an object in a
 * `containers`, `initContainers` or `ephemeralContainers` list whose `image` is a string,
 * wherever that list sits (Pod, any pod template, CronJob's jobTemplate, a List's items, operator
 * CRDs that embed pod specs). Keys that merely end in "image" and Helm-values
 * `image: {repository, tag}` objects are not images, so values-file false positives cannot occur.
 */
import * as YAML from "yaml";

const CONTAINER_LISTS = new Set(["containers", "initContainers", "ephemeralContainers"]);

export interface ManifestImage {
  image: string;
  /** 1-based line of the `image:` value in the text. */
  line: number;
}

/** Thrown for text that is not YAML; `line` is where the parser gave up. */
export class YamlSyntaxError extends Error {
  override readonly name = "YamlSyntaxError";
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

/** Container images of every document in `text`, in document order. */
export function imagesInYaml(text: string): ManifestImage[] {
  const lines = new YAML.LineCounter();
  const docs = YAML.parseAllDocuments(text, { lineCounter: lines, uniqueKeys: false });
  const found: ManifestImage[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) throw new YamlSyntaxError(err.message.split("\n")[0] ?? err.message, err.linePos?.[0].line ?? 1);
    const resolve = (n: unknown): unknown => (YAML.isAlias(n) ? n.resolve(doc) : n);
    YAML.visit(doc, {
      Pair(_, pair) {
        const key = resolve(pair.key);
        const list = resolve(pair.value);
        if (!YAML.isScalar(key) || !CONTAINER_LISTS.has(String(key.value)) || !YAML.isSeq(list)) return;
        for (const item of list.items) {
          const spec = resolve(item);
          if (!YAML.isMap(spec)) continue;
          const image = resolve(spec.get("image", true));
          if (!YAML.isScalar(image) || typeof image.value !== "string" || !image.value.trim()) continue;
          found.push({ image: image.value.trim(), line: lines.linePos(image.range?.[0] ?? 0).line });
        }
      },
    });
  }
  return found;
}

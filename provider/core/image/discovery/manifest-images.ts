/**
 * Container images in Kubernetes YAML, found by the shape of a container spec: an object in a
 * `containers`, `initContainers` or `ephemeralContainers` list whose `image` is a string,
 * wherever that list sits (Pod, any pod template, CronJob's jobTemplate, a List's items, operator
 * CRDs that embed pod specs). Keys that merely end in "image" and Helm-values
 * `image: {repository, tag}` objects are not images, so values-file false positives cannot occur.
 *
 * The text is read with js-yaml because it accepts what Kubernetes and Helm (go-yaml) accept
 * where the `yaml` package is stricter: a quoted string continued on lines indented no deeper
 * than its key (kubebuilder CRD descriptions, calico's and openebs' operator manifests) and
 * merge keys (`<<: *base`). Duplicate keys keep the last value, as go-yaml does.
 */
import * as jsyaml from "js-yaml";

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

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Records, per parsed mapping, the line of its `image` value (or, for a mapping whose `image`
 * came from a merge key, the line the mapping starts on), from js-yaml's node open/close events:
 * js-yaml returns plain objects, so this is the only way to point a user at a line.
 */
function lineRecorder(): {
  listener: jsyaml.LoadOptions["listener"];
  lineOf: (o: Obj) => number | undefined;
} {
  interface Frame {
    line: number;
    children: number;
    key?: unknown;
    imageLine?: number;
  }
  const stack: Frame[] = [];
  const lines = new WeakMap<object, number>();
  const listener = (event: "open" | "close", state: jsyaml.State) => {
    if (event === "open") {
      stack.push({ line: state.line + 1, children: 0 });
      return;
    }
    const frame = stack.pop();
    const parent = stack[stack.length - 1];
    const result: unknown = state.result;
    if (frame && isObj(result) && state.kind === "mapping") lines.set(result, frame.imageLine ?? frame.line);
    if (!parent) return;
    // A mapping's children close in key, value order.
    parent.children++;
    if (parent.children % 2 === 1) parent.key = result;
    else if (parent.key === "image") parent.imageLine ??= state.line + 1;
  };
  return { listener, lineOf: (o) => lines.get(o) };
}

/** Container images of every document in `text`, in document order. */
export function imagesInYaml(text: string): ManifestImage[] {
  const rec = lineRecorder();
  let docs: unknown[];
  try {
    docs = jsyaml.loadAll(text, undefined, { json: true, listener: rec.listener });
  } catch (err) {
    if (!(err instanceof jsyaml.YAMLException)) throw err;
    const line = err.mark ? err.mark.line + 1 : 1;
    const at = err.mark ? ` at line ${line}, column ${err.mark.column + 1}` : "";
    throw new YamlSyntaxError(`${err.reason}${at}`, line);
  }
  const found: ManifestImage[] = [];
  // Aliases share one object: each is searched once, so a "billion laughs" document stays cheap.
  // (js-yaml refuses nesting deeper than 100, so the recursion is bounded.)
  const searched = new Set<object>();
  const search = (node: unknown): void => {
    if (typeof node !== "object" || node === null || searched.has(node)) return;
    searched.add(node);
    if (Array.isArray(node)) {
      for (const item of node) search(item);
      return;
    }
    for (const [key, value] of Object.entries(node)) {
      if (CONTAINER_LISTS.has(key) && Array.isArray(value))
        // Every item counts, even one repeated through an alias (it is one more container).
        for (const spec of value) {
          if (!isObj(spec) || typeof spec.image !== "string" || !spec.image.trim()) continue;
          found.push({ image: spec.image.trim(), line: rec.lineOf(spec) ?? 1 });
        }
      search(value);
    }
  };
  for (const doc of docs) search(doc);
  return found;
}

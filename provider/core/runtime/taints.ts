/** Taint text handling (pure): "k=v:Effect", "k:Effect", and a trailing "-" meaning remove. */
export interface TaintSpec {
  text: string;
  remove: boolean;
  /** "k:Effect", what identifies a taint on a node. */
  keyEffect: string;
}

export function parseTaintSpec(t: string): TaintSpec {
  const remove = t.endsWith("-");
  const text = remove ? t.slice(0, -1) : t;
  const [kv, effect] = text.split(":");
  const key = (kv ?? "").split("=")[0] ?? "";
  return { text, remove, keyEffect: effect ? `${key}:${effect}` : key };
}

/**
 * Per-path digests of a layer (`io.pulumi-sealer.layer.groups`): for each path of the layer's
 * summary (layerPaths), a digest of the entries under it. A layer digest changes when any file
 * in it does; a step that reads only some of the layer's paths (containerd's scripts, one app's
 * directory) keys on these instead, so editing one script does not restart the runtime.
 */
import * as crypto from "node:crypto";
import { ancestorDirs, summaryLeaf, type LayerEntry } from "./layer";
import type { TarEntryType } from "./tar";

/** What makes an entry's bytes in the layer: its content digest for files, the target for links. */
export interface GroupEntry {
  path: string;
  type: TarEntryType | "other";
  mode: number;
  size: number;
  /** sha256 hex of a file's content, a symlink's or hard link's target, "" otherwise. */
  content: string;
}

/**
 * Digest per summary path. An entry counts toward the summary path that covers it (itself, the
 * depth-3 dir it was cut to, a listed dir above it, or "/"); a dir entry that only holds other
 * entries (not in the summary) counts toward every summary path below it, so a changed mode on
 * `scripts/` changes the digest of every script under it.
 */
export function layerGroups(entries: GroupEntry[], summary: string[]): Record<string, string> {
  const listed = new Set(summary);
  const lines = new Map<string, string[]>(summary.map((s) => [s, []]));
  const dirLines = new Map<string, string>();
  for (const e of entries) {
    const line = `${e.path}\0${e.type}\0${e.mode.toString(8)}\0${e.size}\0${e.content}`;
    const cover = coverOf(summaryLeaf(e.path), listed);
    if (cover !== undefined) lines.get(cover)?.push(line);
    else if (e.type === "dir") dirLines.set(e.path, line);
  }
  const out: Record<string, string> = {};
  for (const s of summary) {
    const own = lines.get(s) ?? [];
    for (const d of ancestorDirs(s)) {
      const l = dirLines.get(d);
      if (l !== undefined) own.push(l);
    }
    const h = crypto.createHash("sha256");
    for (const l of own.sort()) h.update(l + "\n");
    out[s] = h.digest("hex").slice(0, 32);
  }
  return out;
}

function coverOf(leaf: string, listed: Set<string>): string | undefined {
  if (listed.has(leaf)) return leaf;
  for (const d of ancestorDirs(leaf)) if (listed.has(d)) return d;
  return listed.has("/") ? "/" : undefined;
}

/** layerGroups of a layer the builder just wrote, from its entries and their content digests. */
export function writtenLayerGroups(
  entries: LayerEntry[],
  written: { paths: string[]; fileHashes: Map<string, string> },
): Record<string, string> {
  return layerGroups(
    entries.map((e) => ({
      path: e.path,
      type: e.type,
      mode: e.mode,
      size: e.size,
      content: e.type === "file" ? (written.fileHashes.get(e.path) ?? "") : (e.linkTarget ?? ""),
    })),
    written.paths,
  );
}

/**
 * What a RUN changed in the rootfs: snapshot (lstat of every path) before and after, then a
 * diff into layer entries, deletions as OCI whiteouts.
 *
 * A file counts as changed when its type, exec bit, size, mtime (ns), inode or link target
 * differ. A file rewritten with identical content still gets a new mtime and so lands in the
 * layer: the layer is then different from "nothing changed", which is why RUN is reproducible
 * only when the command is (documented in README). Comparing metadata, never content, keeps the
 * diff fast on big rootfs trees.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LayerEntry, OPAQUE_WHITEOUT, sortEntries, WHITEOUT_PREFIX, withAncestors } from "./layer";
import { normalizeMode, TarEntryType } from "./tar";

export interface PathState {
  type: TarEntryType | "other";
  mode: number;
  size: number;
  mtimeNs: bigint;
  ino: bigint;
  /** Creation time where the filesystem records it (0 otherwise): inode numbers get reused. */
  birthNs: bigint;
  link?: string;
}

/** rootfs-relative path ("etc/x", dirs without trailing "/") -> state. */
export type Snapshot = Map<string, PathState>;

export async function snapshot(root: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  async function walk(rel: string): Promise<void> {
    const names = await fs.promises.readdir(rel ? path.join(root, rel) : root);
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const st = await fs.promises.lstat(path.join(root, r), { bigint: true });
      const type: PathState["type"] = st.isDirectory()
        ? "dir"
        : st.isFile()
          ? "file"
          : st.isSymbolicLink()
            ? "symlink"
            : "other";
      const state: PathState = {
        type,
        mode: Number(st.mode & 0o7777n),
        size: Number(st.size),
        mtimeNs: st.mtimeNs,
        ino: st.ino,
        birthNs: st.birthtimeNs,
      };
      if (type === "symlink") state.link = await fs.promises.readlink(path.join(root, r));
      out.set(r, state);
      if (type === "dir") await walk(r);
    }
  }
  await walk("");
  return out;
}

function sameContent(a: PathState, b: PathState): boolean {
  if (a.type !== b.type) return false;
  switch (a.type) {
    case "dir":
      return true; // normalised dir modes are all 0755; children are compared on their own
    case "symlink":
      return a.link === b.link;
    case "file":
      return (
        a.size === b.size &&
        a.mtimeNs === b.mtimeNs &&
        a.ino === b.ino &&
        normalizeMode("file", a.mode) === normalizeMode("file", b.mode)
      );
    case "other":
      return true;
  }
}

/**
 * Layer entries turning `before` into `after` (rooted at `root`, which holds the after state).
 * A directory replaced by a new one (other inode or creation time) becomes an opaque dir with its full
 * content; a deleted path becomes `.wh.<name>` unless its parent is gone too.
 */
export function diffSnapshots(before: Snapshot, after: Snapshot, root: string): LayerEntry[] {
  const entries: LayerEntry[] = [];
  const opaque = new Set<string>();
  const underOpaque = (p: string) => {
    for (let d = path.posix.dirname(p); d !== "."; d = path.posix.dirname(d)) if (opaque.has(d)) return true;
    return false;
  };
  // Opaque dirs first, so their children are taken in full.
  for (const [p, a] of after) {
    const b = before.get(p);
    if (
      a.type === "dir" &&
      b?.type === "dir" &&
      (a.ino !== b.ino || (a.birthNs !== 0n && a.birthNs !== b.birthNs))
    )
      opaque.add(p);
  }
  for (const [p, a] of after) {
    if (a.type === "other") continue;
    const b = before.get(p);
    const fresh = !b || underOpaque(p) || opaque.has(p);
    if (!fresh && sameContent(b, a)) continue;
    if (a.type === "dir") {
      if (!b || b.type !== "dir" || opaque.has(p) || underOpaque(p))
        entries.push({ path: p + "/", type: "dir", mode: 0o755, size: 0 });
      if (opaque.has(p))
        entries.push({
          path: `${p}/${OPAQUE_WHITEOUT}`,
          type: "file",
          mode: 0o644,
          size: 0,
          data: Buffer.alloc(0),
        });
    } else if (a.type === "symlink") {
      entries.push({ path: p, type: "symlink", mode: 0o777, size: 0, linkTarget: a.link ?? "" });
    } else {
      entries.push({
        path: p,
        type: "file",
        mode: normalizeMode("file", a.mode),
        size: a.size,
        source: path.join(root, p),
      });
    }
  }
  for (const p of before.keys()) {
    if (after.has(p)) continue;
    const parent = path.posix.dirname(p);
    if (parent !== "." && (!after.has(parent) || opaque.has(parent) || underOpaque(parent))) continue;
    const base = path.posix.basename(p);
    entries.push({
      path: parent === "." ? WHITEOUT_PREFIX + base : `${parent}/${WHITEOUT_PREFIX}${base}`,
      type: "file",
      mode: 0o644,
      size: 0,
      data: Buffer.alloc(0),
    });
  }
  return sortEntries(withAncestors(entries));
}

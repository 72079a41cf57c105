/**
 * Pure pieces of layer distribution: what a node lacks, how its rootfs must be (re)built, and
 * the sh scripts that do it with only sh, coreutils, tar, gzip, find and sha256sum (openssl and
 * python3 when present, for speed).
 */
import * as path from "node:path";
import type { LayerRemovals } from "../image/layer-safety";
import { shellQuote as q } from "../ssh/shell";
import { rootfsIntactCmd } from "./footprint";

export interface NodeBlobInventory {
  /** hex -> size of complete (verified) blobs. */
  complete: Map<string, number>;
  /** hex -> size of interrupted uploads. */
  partial: Map<string, number>;
  /** Layers (hex) the node keeps as extracted trees (complete: their listing was recorded). */
  trees: Set<string>;
  /** Layers (hex) whose receive into a tree was cut (its partial tree is there): kept as blobs from then on. */
  cut: Set<string>;
  /** Layers the node's rootfs was built from, oldest first; undefined when none or unreadable. */
  materialised?: string[];
  rootfsExists: boolean;
}

export const INVENTORY_MARK = "==sealer-layers-json==";

/** The layer store's directories under a node's data root, shared by every cluster there. */
export const NODE_STORE_DIRS = ["blobs", "layers"] as const;

export function nodePaths(dataRoot: string, cluster: string) {
  return {
    blobs: path.posix.join(dataRoot, NODE_STORE_DIRS[0], "sha256"),
    /** Extracted layers: `<hex>/` (a layer's tree, verified) and `<hex>.list` (its listing digest). */
    trees: path.posix.join(dataRoot, NODE_STORE_DIRS[1]),
    clusterDir: path.posix.join(dataRoot, cluster),
    rootfs: path.posix.join(dataRoot, cluster, "rootfs"),
    layersJson: path.posix.join(dataRoot, cluster, "layers.json"),
    /** The rootfs's file list as distribute left it (exec/footprint). */
    rootfsList: path.posix.join(dataRoot, cluster, "rootfs.files"),
  };
}

/** Lists blob sizes and prints layers.json after a marker. */
export function inventoryScript(dataRoot: string, cluster: string): string {
  const p = nodePaths(dataRoot, cluster);
  return [
    `mkdir -p ${q(p.blobs)} ${q(p.clusterDir)}`,
    `cd ${q(p.blobs)}`,
    `set -- *`,
    `if [ -e "$1" ]; then stat -c '%s %n' -- "$@"; fi`,
    `for f in ${q(p.trees)}/*.list; do [ -e "$f" ] || continue; h=\${f##*/}; echo "tree \${h%.list}"; done`,
    `for f in ${q(p.trees)}/*.partial; do [ -d "$f" ] || continue; h=\${f##*/}; echo "cut \${h%.partial}"; done`,
    // A rootfs that lost an entry of the file list distribute left beside it (a file removed or
    // resized since) counts as absent, so it is rebuilt rather than kept.
    `if [ -d ${q(p.rootfs)} ] && ${rootfsIntactCmd(p.rootfs, p.rootfsList)}; then echo rootfs=yes; else echo rootfs=no; fi`,
    `echo ${INVENTORY_MARK}`,
    `cat ${q(p.layersJson)} 2>/dev/null || true`,
  ].join("\n");
}

export function parseInventory(stdout: string): NodeBlobInventory {
  const [head, json] = stdout.split(INVENTORY_MARK + "\n");
  const complete = new Map<string, number>();
  const partial = new Map<string, number>();
  const trees = new Set<string>();
  const cut = new Set<string>();
  let rootfsExists = false;
  for (const line of (head ?? "").split("\n")) {
    if (line === "rootfs=yes") rootfsExists = true;
    const t = /^(tree|cut) ([a-f0-9]{64})$/.exec(line.trim());
    if (t) (t[1] === "tree" ? trees : cut).add(t[2]!);
    const m = /^(\d+) ([a-f0-9]{64})(\.partial)?$/.exec(line.trim());
    if (!m) continue;
    (m[3] ? partial : complete).set(m[2]!, Number(m[1]));
  }
  let materialised: string[] | undefined;
  try {
    const parsed = JSON.parse((json ?? "").trim() || "null") as { layers?: unknown } | null;
    if (parsed && Array.isArray(parsed.layers) && parsed.layers.every((x) => typeof x === "string"))
      materialised = parsed.layers as string[];
  } catch {
    materialised = undefined; // half-written or foreign: rebuild
  }
  return { complete, partial, trees, cut, rootfsExists, ...(materialised ? { materialised } : {}) };
}

export type Materialise = { kind: "none" } | { kind: "rebuild" };

/**
 * How to bring the rootfs to `desired`: nothing when the node's list is the same; otherwise the
 * layers are extracted into a fresh directory that is swapped in at the end. Never onto the
 * existing rootfs, even when layers were only added on top: files created there at run time (a
 * hook's symlink, say) are no part of the checked layer stack and could redirect tar out of the
 * rootfs. It is local disk work on the node; no byte is sent again.
 */
export function planMaterialise(desired: string[], inv: NodeBlobInventory): Materialise {
  const cur = inv.materialised;
  if (cur && inv.rootfsExists && cur.length === desired.length && cur.every((d, i) => d === desired[i]))
    return { kind: "none" };
  return { kind: "rebuild" };
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** sh lines setting `$hasher` to a command that prints the sha256 of stdin as the first 64 characters:
 *  openssl when it is there and gives the right digest of nothing (so a broken or odd build is never used), else sha256sum. */
export const SHA256_HASHER: readonly string[] = [
  `hasher=sha256sum`,
  `if command -v openssl >/dev/null 2>&1 && [ "$(printf '' | openssl dgst -sha256 -r 2>/dev/null | cut -c1-64)" = ${EMPTY_SHA256} ]; then hasher="openssl dgst -sha256 -r"; fi`,
];

/**
 * sh lines defining `inflate`, a gzip decompressor of stdin: python3's zlib when the node has it
 * (2-3 times less CPU than gzip's own inflate, the largest per-byte cost of unpacking a gzip layer
 * on a node), else gzip -dc. Concatenated gzip members are decompressed in turn, as gzip does.
 * What it outputs is not trusted anyway: the compressed bytes are verified by digest.
 */
export const GZIP_INFLATER: readonly string[] = [
  `inflate() { gzip -dc; }`,
  `if command -v python3 >/dev/null 2>&1 && python3 -c 'import zlib' >/dev/null 2>&1; then inflate() { python3 -c '${[
    "import sys,zlib",
    "i=sys.stdin.buffer;o=sys.stdout.buffer;d=zlib.decompressobj(31)",
    "while True:",
    " b=i.read(1<<20)",
    " if not b:break",
    " while b:",
    "  if d.eof:d=zlib.decompressobj(31)",
    '  o.write(d.decompress(b));b=d.unused_data if d.eof else b""',
    "o.write(d.flush())",
  ].join("\n")}'; }; fi`,
];

/**
 * The python3 receivers' loop over stdin (4-space indented, inside their try): each chunk is
 * appended to the partial `f`, hashed, and handed to `feed` while `live` (the layer receiver's tar).
 */
const PY_APPEND_STDIN = `    with open(part, "ab", buffering=0) as f:
        while True:
            n = sys.stdin.buffer.raw.readinto(buf)
            if not n:
                break
            f.write(mv[:n])
            h.update(mv[:n])
            if live:
                feed(mv[:n])
            got += n`;

/**
 * The python3 receiver of one blob (argv: hex size, run in the blob dir after the partial was
 * checked): hashes the bytes already in `<hex>.partial`, then per chunk of stdin appends it
 * and hashes it. One process instead of head, tee, a pipe and openssl: on a 256 MiB blob 0.2
 * CPU-s against 0.35. Exit codes as receiveBlobScript's; 95: anything else (its text).
 */
const PY_BLOB_RECEIVER = String.raw`
import sys
try:
    import hashlib, os
except ImportError:
    sys.exit(97)
hx, size = sys.argv[1], int(sys.argv[2])
part = hx + ".partial"
live = False
h = hashlib.sha256()
buf = bytearray(1 << 16)
mv = memoryview(buf)
got = 0
try:
    with open(part, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
            got += n
${PY_APPEND_STDIN}
except Exception as e:
    sys.stderr.write("receiving sha256:%s failed: %s\n" % (hx, e))
    sys.exit(95)
if got != size:
    sys.stderr.write("short transfer of sha256:%s: %d of %d bytes\n" % (hx, got, size))
    sys.exit(91)
if h.hexdigest() != hx:
    os.unlink(part)
    sys.stderr.write("digest mismatch for sha256:%s (got sha256:%s): the received bytes were removed\n" % (hx, h.hexdigest()))
    sys.exit(92)
os.rename(part, hx)
`;

/**
 * Appends stdin to `<hex>.partial`, checks size and digest, renames to `<hex>`.
 * Exit 91: short (the partial is kept for the next resume); 92: digest mismatch (the partial is
 * removed); 93: the partial changed size since it was listed (removed).
 * The digest is computed while the bytes arrive, so verifying costs no second pass over the
 * blob: by one python3 process (PY_BLOB_RECEIVER) when the node has it and `receiver` is "auto";
 * else `tee` appends to the partial and passes the bytes on to the hasher, after the bytes
 * already on disk. The hasher is `openssl dgst -sha256` when the node has a working openssl (it
 * uses the CPU's SHA extensions: several times faster than coreutils sha256sum, which was the
 * node's largest CPU cost per byte), else sha256sum.
 */
export function receiveBlobScript(
  dataRoot: string,
  hex: string,
  size: number,
  offset: number,
  receiver: LayerReceiver = "auto",
): string {
  const dir = nodePaths(dataRoot, "x").blobs;
  return [
    `set -e`,
    `mkdir -p ${q(dir)}`,
    `cd ${q(dir)}`,
    `rm -f ${hex}.fifo.* ${hex}.sum.*`,
    offset === 0
      ? `: > ${hex}.partial`
      : `[ "$(wc -c < ${hex}.partial)" -eq ${offset} ] || { echo "partial upload of sha256:${hex} changed size under us" >&2; rm -f ${hex}.partial; exit 93; }`,
    ...(receiver === "auto" ? pyLines(PY_BLOB_RECEIVER, `${hex} ${size}`) : []),
    `sum=${hex}.sum.$$`,
    ...SHA256_HASHER,
    // head finishes reading the bytes already there before tee appends the rest; a failing tee
    // shows as a short partial below, a failing hasher stops the script (set -e).
    `{ head -c ${offset} ${hex}.partial; tee -a ${hex}.partial; } | $hasher > "$sum"`,
    `got=$(wc -c < ${hex}.partial)`,
    `if [ "$got" -ne ${size} ]; then rm -f "$sum"; echo "short transfer of sha256:${hex}: $got of ${size} bytes" >&2; exit 91; fi`,
    `actual=$(cut -c1-64 "$sum"); rm -f "$sum"`,
    `if [ "$actual" != ${hex} ]; then rm -f ${hex}.partial; echo "digest mismatch for sha256:${hex} (got sha256:$actual): the received bytes were removed" >&2; exit 92; fi`,
    `mv -f ${hex}.partial ${hex}`,
  ].join("\n");
}

/**
 * One layer onto `target`: its removals first (they apply to the layers below), then tar.
 * `checkLayerStack` has proved that no parent of these paths is a symlink in a tree that holds
 * only the checked layers; the `-L` tests are a second guard that costs nothing.
 */
function layerScript(
  blobsDir: string,
  target: string,
  digest: string,
  rm: LayerRemovals,
  gzip: boolean,
): string[] {
  const blob = q(blobsDir + "/" + digest.slice("sha256:".length));
  // A gzip layer through `inflate` (python3's zlib) rather than tar's own gzip: gzip's inflate
  // took 2.4 times the CPU of the whole pipe (256 MiB layer: 1.23 CPU-s against 0.52). tar may
  // stop reading at its end-of-archive blocks: the inflater's broken pipe is not an error.
  return [
    ...removalLines(target, rm),
    gzip
      ? `inflate < ${blob} 2>/dev/null | tar -xf - -C ${q(target)} ${TAR_OPTS}`
      : `tar -xf ${blob} -C ${q(target)} ${TAR_OPTS}`,
  ];
}

/** `--exclude`: whiteout markers are applied by the removals, never extracted. */
const TAR_OPTS = `--exclude='.wh.*'`;

function removalLines(target: string, rm: LayerRemovals): string[] {
  const lines: string[] = [];
  for (const d of rm.opaque) {
    const dir = d === "." ? target : `${target}/${d}`;
    lines.push(
      `if [ -d ${q(dir)} ] && [ ! -L ${q(dir)} ]; then find ${q(dir)} -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi`,
    );
  }
  for (const r of rm.remove) lines.push(`rm -rf ${q(target + "/" + r)}`);
  return lines;
}

/** Who receives a missing layer or blob on the node: "auto" uses python3 when the node has it (one process), else sh. */
export type LayerReceiver = "auto" | "shell";

/**
 * The python3 receiver of one layer (argv: hex size gzip(0|1) staging-dir tar-options…, run in
 * the blob dir): one process, per chunk of stdin, appends it to `<hex>.partial`, hashes it
 * (hashlib: OpenSSL, with the CPU's SHA extensions) and inflates it (zlib, raw deflate: the gzip
 * framing is parsed here and its CRC-32 left unchecked, the digest already proves every
 * compressed byte) into tar's stdin. Against the sh pipeline (tee, a fifo to the hasher, a
 * separate inflater, cat draining tar's tail) every byte crosses two pipes fewer and no 1 MiB
 * buffer is allocated per read: about half the node's CPU per byte.
 * tar may stop reading at its end-of-archive blocks: the broken pipe only ends the feeding; every
 * byte is still hashed and kept. Exit codes as the sh pipeline's; 95: anything else (its text).
 */
const PY_RECEIVER = String.raw`
import sys
try:
    import fcntl, hashlib, os, shutil, subprocess, tempfile, zlib
except ImportError:
    sys.exit(97)
hx, size, gz, keep, tgt = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5]
# keep=0 (a layer received into its own tree): the bytes are hashed and extracted, not stored.
part = hx + ".partial" if keep else os.devnull
h = hashlib.sha256()
err = tempfile.TemporaryFile()
live = True
# gzip members (RFC 1952) are parsed here and their deflate data inflated raw: the digest of the
# compressed bytes already proves them, so zlib's CRC-32 of every inflated byte is skipped.
# hdr: bytes of a member header so far; z: the member's raw inflater; skip: trailer bytes left.
hdr, z, skip = bytearray(), None, 0
def header_len(b):
    # The length of the complete member header at the start of b; 0 while more bytes are needed.
    if len(b) < 10:
        return 0
    if b[0] != 31 or b[1] != 139 or b[2] != 8:
        raise zlib.error("not a gzip member")
    flg, p = b[3], 10
    if flg & 4:
        if len(b) < 12:
            return 0
        p += 2 + (b[10] | b[11] << 8)
    for bit in (8, 16):
        if flg & bit:
            e = b.find(b"\0", p)
            if e < 0:
                return 0
            p = e + 1
    if flg & 2:
        p += 2
    return p if len(b) >= p else 0
def inflate(b):
    global hdr, z, skip
    while len(b):
        if skip:
            k = min(skip, len(b))
            skip -= k
            b = b[k:]
        elif z is None:
            hdr += b
            n = header_len(hdr)
            if not n:
                return
            # A view, not a copy: freeing a copy of this odd size made glibc map every later
            # output buffer afresh (17 times the page faults per byte, measured).
            b, hdr, z = memoryview(hdr)[n:], bytearray(), zlib.decompressobj(-15)
        else:
            tar.stdin.write(z.decompress(b))
            if not z.eof:
                return
            b, z, skip = z.unused_data, None, 8
def feed(b):
    global live
    try:
        if gz:
            inflate(b)
        else:
            tar.stdin.write(b)
    except (BrokenPipeError, zlib.error):
        # tar stopped reading, or the bytes do not inflate: feeding ends; the digest (and tar) decide.
        live = False
def fail(code, msg, drop_tree, drop_part):
    if drop_tree:
        shutil.rmtree(tgt, ignore_errors=True)
    if drop_part and keep:
        os.unlink(part)
    sys.stderr.write(msg + "\n")
    sys.exit(code)
try:
    # GNU tar reads a pipe in 10 KiB records by default; with 128 KiB records (it fills each
    # from the pipe and takes a short last one) six receivers of a 1 GiB layer side by side
    # used about 15% less CPU in all. Other tars (busybox) may not know -b: they keep theirs.
    rec = ["-b", "256"] if b"GNU tar" in subprocess.run(["tar", "--version"], capture_output=True).stdout else []
    tar = subprocess.Popen(["tar"] + rec + ["-xf", "-", "-C", tgt] + sys.argv[6:], stdin=subprocess.PIPE, stderr=err)
    # 1 MiB pipes (ssh's into this process, this one's into tar) instead of 64 KiB: each side
    # runs longer per wake-up, about a tenth less CPU with six nodes sharing two cores. A
    # refusal (an unprivileged user over its pipe quota) keeps the default size.
    for fd in (0, tar.stdin.fileno()):
        try:
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass
    got = 0
    # 64 KiB reads: a larger inflated chunk makes zlib's output buffer cross glibc's mmap
    # threshold, so every chunk is mapped and faulted in afresh (six receivers of a 1 GiB layer
    # side by side: 256 KiB reads cost 1.4 times the CPU, 1 MiB reads twice).
    buf = bytearray(1 << 16)
    mv = memoryview(buf)
${PY_APPEND_STDIN}
    try:
        if live and z is not None:
            tar.stdin.write(z.flush())
        tar.stdin.close()
    except BrokenPipeError:
        pass
    rc = tar.wait()
except Exception as e:
    fail(95, "receiving sha256:%s failed: %s" % (hx, e), True, False)
if got != size:
    fail(91, "short transfer of sha256:%s: %d of %d bytes" % (hx, got, size), False, False)
if h.hexdigest() != hx:
    fail(92, "digest mismatch for sha256:%s (got sha256:%s): the received bytes and the staging rootfs were removed" % (hx, h.hexdigest()), True, True)
if keep:
    os.rename(part, hx)
if rc != 0:
    err.seek(0)
    sys.stderr.write(err.read().decode("utf8", "replace"))
    fail(94, "extracting sha256:%s failed" % hx, True, False)
`;

/**
 * sh lines running a python3 receiver when the node has python3 (-I: no PYTHON* variables or
 * user site; -S: no site import, the start costs half). It exits 97, before reading any byte,
 * when a module it needs is missing: the sh pipeline after these lines then receives the bytes.
 */
function pyLines(script: string, argv: string, onSuccess?: string): string[] {
  return [
    `if command -v python3 >/dev/null 2>&1; then`,
    `  rc=0; python3 -I -S -c ${q(script)} ${argv} || rc=$?`,
    ...(onSuccess ? [`  [ "$rc" -ne 0 ] || { ${onSuccess}; exit 0; }`] : []),
    `  [ "$rc" -eq 97 ] || exit "$rc"`,
    `fi`,
  ];
}

/**
 * The sh pipeline of a one-pass receive, for nodes without python3: one tee feeds the hasher, tar
 * (through `inflate` for a gzip layer) and, with `keep`, appends to `<hex>.partial` (else a byte
 * counter). Then the size and digest checks and tar's own:
 * - 91, short: nothing removed (a kept partial resumes; a partial tree marks the layer as cut);
 * - 92, other bytes: `target` removed, and the kept partial;
 * - 94, tar failed: `target` removed; a kept blob was renamed into place once its digest checked
 *   out, before tar's result is looked at.
 * Needs `$hasher` (SHA256_HASHER) and the cwd the blob (or tree) dir.
 */
function onePassLines(
  layer: { hex: string; size: number; gzip: boolean },
  target: string,
  keep: boolean,
): string[] {
  const { hex, size, gzip } = layer;
  const fail = (code: number, msg: string, drop: string) =>
    `{ ${drop ? `rm -rf ${drop}; ` : ""}echo ${msg} >&2; exit ${code}; }`;
  return [
    `fifo=${hex}.fifo.$$; cnt=${hex}.cnt.$$; sum=${hex}.sum.$$; st=${hex}.tar.$$`,
    ...(gzip ? GZIP_INFLATER : []),
    keep ? `mkfifo "$fifo"` : `mkfifo "$fifo" "$cnt.f"`,
    `$hasher < "$fifo" > "$sum" & hpid=$!`,
    ...(keep ? [] : [`wc -c < "$cnt.f" > "$cnt" & cpid=$!`]),
    // tar stops at the end-of-archive blocks: cat drains the rest so tee and the hasher see every
    // byte. One tee feeds them all (every byte crosses one pipe less).
    `tee ${keep ? `-a ${hex}.partial "$fifo"` : `"$fifo" "$cnt.f"`} | ${gzip ? "inflate 2>/dev/null | " : ""}{ tar -xf - -C ${q(target)} ${TAR_OPTS} 2>"$st.err" && echo 0 > "$st" || echo 1 > "$st"; cat > /dev/null; }`,
    keep ? `wait $hpid` : `wait $hpid; wait $cpid`,
    keep ? `rm -f "$fifo"` : `rm -f "$fifo" "$cnt.f"`,
    keep ? `got=$(wc -c < ${hex}.partial)` : `got=$(tr -d ' ' < "$cnt"); rm -f "$cnt"`,
    `if [ "$got" -ne ${size} ]; then rm -f "$sum" "$st" "$st.err"; ${fail(91, `"short transfer of sha256:${hex}: $got of ${size} bytes"`, "")}; fi`,
    `actual=$(cut -c1-64 "$sum"); rm -f "$sum"`,
    `if [ "$actual" != ${hex} ]; then rm -f "$st" "$st.err"; ${fail(92, `"digest mismatch for sha256:${hex} (got sha256:$actual): the received bytes${keep ? " and the staging rootfs" : ""} were removed"`, `${q(target)}${keep ? ` ${hex}.partial` : ""}`)}; fi`,
    ...(keep ? [`mv -f ${hex}.partial ${hex}`] : []),
    `if [ "$(cat "$st")" != 0 ]; then cat "$st.err" >&2; rm -f "$st" "$st.err"; ${fail(94, `"extracting sha256:${hex} failed"`, q(target))}; fi`,
    `rm -f "$st" "$st.err"`,
  ];
}

/**
 * One pass over a missing layer's bytes on the node: they are appended to a fresh
 * `<hex>.partial`, hashed, and (gunzipped and) extracted into the staging rootfs while they
 * arrive; nothing reads the blob back.
 * Only for bytes streamed from the operator's own store in this very command, a stack
 * checkLayerStack proved: tar follows a symlink already in the staging tree (a lower layer's
 * `etc/localtime -> /usr/share/...`, say), so bytes nobody checked yet must never reach it.
 * A registry's answer, and a partial already on the node's disk (a cut fetch may have left it),
 * go through receiveBlobScript first and are extracted from the verified blob.
 * The staging dir becomes the rootfs only in the epilogue, after every layer checked out; a
 * digest mismatch or a failed tar removes it (and the bad partial), so nothing half-built remains.
 * A cut transfer keeps the partial (exit 91): the next attempt resumes it as a blob.
 * Exit codes as receiveBlobScript: 91 short, 92 digest mismatch; tar's own failure exits 94 with
 * its message.
 * `receiver` "auto" runs PY_RECEIVER when the node has python3 with the modules it needs, else
 * (and with "shell") the sh pipeline below.
 * Used for layers that cannot go into a tree of their own (receiveTreeScript): a hard link into a
 * lower layer, a receive cut before, relay mode, a retry after a lost connection.
 * Why a blob there (a second write of every byte): it makes the transfer resumable at the byte,
 * a later change of any layer rebuilds the rootfs from the node's store instead of sending every
 * lower layer again, and a relay serves its peers from it. It is not free:
 * six receivers of a 1 GiB incompressible layer side by side on two cores took about 0.8 CPU-s
 * per GiB more with it (7.4-8.6 s against 5.3-6.1 s, over ssh). Fed from local files instead
 * (no ssh, the page cache dropped first), the blob doubled the receivers' cost: 9.9-14.2 s and
 * 19.5-28 CPU-s with it, 5.1-6.3 s and 9.7-12 CPU-s without (with the blob on tmpfs: 7.8-10.2 s,
 * so it is the second copy, not the disk). Hence trees: each byte written once, the reuse kept.
 */
export function receiveLayerScript(
  dataRoot: string,
  cluster: string,
  layer: { hex: string; size: number; gzip: boolean },
  rm: LayerRemovals,
  receiver: LayerReceiver = "auto",
): string {
  const { hex, size } = layer;
  const blobs = nodePaths(dataRoot, cluster).blobs;
  const target = nodePaths(dataRoot, cluster).rootfs + ".new";
  return [
    `set -e`,
    `mkdir -p ${q(blobs)}`,
    `cd ${q(blobs)}`,
    `rm -f ${hex}.fifo.* ${hex}.sum.* ${hex}.tar.*`,
    `: > ${hex}.partial`,
    ...removalLines(target, rm),
    ...(receiver === "auto"
      ? pyLines(PY_RECEIVER, `${hex} ${size} ${layer.gzip ? 1 : 0} 1 ${q(target)} ${TAR_OPTS}`)
      : []),
    ...SHA256_HASHER,
    ...onePassLines(layer, target, true),
  ].join("\n");
}

/**
 * sh printing the digest of a layer tree's listing (type, mode, owner, size, mtime and name of
 * every entry): recorded when the tree is made, compared before the tree is linked into a
 * rootfs. The rootfs shares the tree's files (hard links), so a file written in place there, or
 * chmod-ed, changes the tree too: the listing then differs and the layer is sent again rather
 * than linked in as it is now. Needs `$hasher` (SHA256_HASHER).
 */
function treeListingCmd(dir: string): string {
  return `(cd ${q(dir)} && find . -printf '%y %m %U %G %s %T@ %P\\n' | LC_ALL=C sort) | $hasher | cut -c1-64`;
}

/**
 * One pass over a missing layer's bytes on the node, into the layer's own tree: hashed and
 * (gunzipped and) extracted into `layers/<hex>.partial/` while they arrive, written once (no
 * blob). Once the digest checked out the tree becomes `layers/<hex>/` with its listing beside it
 * (`<hex>.list`, last: a tree counts only with it), and materialiseSteps links it into the staging
 * rootfs. Extraction into an empty directory of its own: no symlink of a lower layer is there for
 * tar to follow, whatever the bytes. A layer with a hard link into a lower layer cannot stand on
 * its own (LayerRemovals.linksBelow): it goes through receiveLayerScript instead.
 * Exit codes as receiveLayerScript (91 short, 92 digest mismatch, 94 tar failed). A cut transfer
 * (91) leaves its partial tree as the mark that this layer's receive was cut: the next attempt
 * sends it whole and keeps a blob of it (see distributeLayers); 92 and 94 remove the partial tree.
 */
export function receiveTreeScript(
  dataRoot: string,
  layer: { hex: string; size: number; gzip: boolean },
  receiver: LayerReceiver = "auto",
): string {
  const { hex, size } = layer;
  const trees = nodePaths(dataRoot, "x").trees;
  const target = `${trees}/${hex}.partial`;
  return [
    `set -e`,
    `mkdir -p ${q(trees)}`,
    `cd ${q(trees)}`,
    `rm -rf ${hex}.partial ${hex}.list.tmp ${hex}.fifo.* ${hex}.sum.* ${hex}.tar.* ${hex}.cnt.*`,
    `mkdir ${hex}.partial`,
    ...SHA256_HASHER,
    // Made whole: the listing first, then the tree under its name, the listing last.
    `finish() { ${treeListingCmd(target)} > ${hex}.list.tmp; rm -rf ${hex} ${hex}.list; mv ${hex}.partial ${hex}; mv ${hex}.list.tmp ${hex}.list; }`,
    ...(receiver === "auto"
      ? pyLines(PY_RECEIVER, `${hex} ${size} ${layer.gzip ? 1 : 0} 0 ${q(target)} ${TAR_OPTS}`, "finish")
      : []),
    ...onePassLines(layer, target, false),
    `finish`,
  ].join("\n");
}

/** Exit code of a materialise batch that found a layer tree changed since it was made (it was removed). */
export const TREE_CHANGED = 96;

/**
 * sh linking layer tree `hex` into `target` (after the layer's removals): every file a hard link
 * to the tree's, directories made with the tree's owner, mode and times. Nothing is copied. A tree
 * whose listing changed since it was made is removed, and the batch exits TREE_CHANGED: the
 * caller sends that layer again.
 */
function linkTreeLines(trees: string, target: string, hex: string): string[] {
  const t = `${trees}/${hex}`;
  return [
    // Chosen once per batch of layers (the openssl probe is a process).
    `if [ -z "\${hasher:-}" ]; then`,
    ...SHA256_HASHER,
    `fi`,
    // "$( (" not "$((": that would open an arithmetic expansion.
    `if [ "$( ${treeListingCmd(t)})" != "$(cut -c1-64 ${q(t + ".list")})" ]; then rm -rf ${q(t)} ${q(t + ".list")}; echo "the extracted layer sha256:${hex} on this node changed since it was received (a file of the rootfs written in place or chmod-ed?): it was removed and is sent again" >&2; exit ${TREE_CHANGED}; fi`,
    `cp -a -l --remove-destination ${q(t + "/.")} ${q(target + "/")}`,
  ];
}

export interface MaterialiseSteps {
  /** Prepares a fresh `rootfs.new`. */
  prologue: string;
  /** One script per layer, in order: from its blob (tar) or its tree (links). */
  layers: Array<{
    index: number;
    digest: string;
    script: (rm: LayerRemovals, from?: "blob" | "tree") => string;
  }>;
  /** Swaps the new rootfs in and writes layers.json atomically. */
  epilogue: string;
}

/**
 * The sh scripts that build the rootfs from `desired`. They are separate so layer k can be
 * extracted while layer k+1 is still on the wire.
 *
 * layers.json always tells the truth, whenever a run is cut: the new tree grows in `rootfs.new`
 * (emptied first: it holds nothing but the checked layers) while the old rootfs and its
 * layers.json stay as they were; the epilogue drops layers.json, swaps the trees and writes the
 * new list.
 */
export function materialiseSteps(
  dataRoot: string,
  cluster: string,
  desired: string[],
  /** Layers whose blob is gzip-compressed. */
  gzipped: ReadonlySet<string> = new Set(),
): MaterialiseSteps {
  const p = nodePaths(dataRoot, cluster);
  const target = p.rootfs + ".new";
  const prologue = [`set -e`, `mkdir -p ${q(p.clusterDir)}`, `rm -rf ${q(target)}`, `mkdir -p ${q(target)}`];
  const layers = desired.map((digest, index) => ({
    index,
    digest,
    script: (rm: LayerRemovals, from: "blob" | "tree" = "blob") => {
      const gzip = gzipped.has(digest);
      const lines =
        from === "tree"
          ? [...removalLines(target, rm), ...linkTreeLines(p.trees, target, digest.slice("sha256:".length))]
          : [...(gzip ? GZIP_INFLATER : []), ...layerScript(p.blobs, target, digest, rm, gzip)];
      return [`set -e`, ...lines].join("\n") + "\n";
    },
  }));
  const epilogue = [
    `set -e`,
    `rm -f ${q(p.layersJson)}`,
    `rm -rf ${q(p.rootfs + ".old")}`,
    `if [ -d ${q(p.rootfs)} ]; then mv ${q(p.rootfs)} ${q(p.rootfs + ".old")}; fi`,
    `mv ${q(target)} ${q(p.rootfs)}`,
    `printf '%s\\n' ${q(JSON.stringify({ layers: desired }))} > ${q(p.layersJson + ".tmp")}`,
    `mv -f ${q(p.layersJson + ".tmp")} ${q(p.layersJson)}`,
    `rm -rf ${q(p.rootfs + ".old")}`,
  ];
  return { prologue: prologue.join("\n") + "\n", layers, epilogue: epilogue.join("\n") + "\n" };
}

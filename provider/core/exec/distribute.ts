/**
 * Per-layer delta distribution of a cluster image to nodes.
 *
 * Node layout under dataRoot:
 *   layers/<hex>/ + <hex>.list    a layer streamed from here: extracted once into a tree of its own, verified by sha256 while it
 *                                 arrived; the listing (digest of every entry's type, mode, owner, size, mtime) is checked before use
 *   layers/<hex>.partial/         a cut receive: that layer is kept as a blob from then on (resumable at the byte)
 *   blobs/sha256/<hex>            content-addressed layer blobs (relay, registry, resumed or cut-before layers), verified by sha256
 *                                 on the node (python3's hashlib, openssl or sha256sum) before rename
 *   blobs/sha256/<hex>.partial    an interrupted upload, continued from its size on the next run
 *   <cluster>/rootfs.new          staging: a fresh tree the layers are linked (trees) or extracted (blobs) into, in order (OCI whiteouts honoured)
 *   <cluster>/rootfs              the staging tree, renamed once every layer's digest checked out
 *   <cluster>/layers.json         { "layers": [digests in order] } that rootfs was built from
 */
import * as fs from "node:fs";
import { settleLimit } from "../common/limit";
import { TransientError, UserError } from "../errors";
import { formatBytes, log } from "../log";
import { CommandError, ConnectionLostError } from "../ssh";
import {
  inventoryScript,
  materialiseSteps,
  parseInventory,
  planMaterialise,
  receiveBlobScript,
  receiveLayerScript,
  receiveTreeScript,
  TREE_CHANGED,
  type LayerReceiver,
  type NodeBlobInventory,
} from "./node-layers";
import { checkLayerStack, type LayerRemovals } from "../image/layer-safety";
import { isGzip } from "../image/materialize";
import type { OciLayout } from "../image/layout";
import { distributeViaRelay, type RelayOptions } from "./relay";
import type { SshTarget } from "../ssh";
import type { HostIo } from "./host-io";

export interface DistributeProgress {
  host: string;
  /** list: reading the node's store; send: bytes of `digest` reaching the node (sent from here, unpacked into the staging
   *  rootfs as they arrive; or in registry mode fetched by the node into its store); materialise: extracting `digest`, already on the node, into the staging rootfs;
   *  sent: every layer is on the node, verified and unpacked; done: the host is finished (the staging tree is the rootfs). */
  phase: "list" | "send" | "sent" | "materialise" | "done";
  digest?: string;
  /** send: the relay host forwarding these bytes (relay mode; the operator sent them once to it). */
  via?: string;
  bytes?: number;
  total?: number;
}

export interface DistributeOptions {
  layout: OciLayout;
  /** Layer digests, oldest/base first. */
  layers: string[];
  /** Node data root, e.g. DEFAULT_NODE_DATA_ROOT (/var/lib/sealer). */
  dataRoot: string;
  /** Cluster name: the rootfs goes to <dataRoot>/<cluster>/rootfs. */
  cluster: string;
  /** Hosts served at once (default 8). */
  concurrency?: number;
  /** Retries per host after a transient failure (connection lost); each resumes partial blobs (default 2). */
  retries?: number;
  onProgress?: (p: DistributeProgress) => void;
  /** How a node receives a missing layer (default "auto": one python3 process when the node has it). */
  receiver?: LayerReceiver;
  /** Relay mode: the operator sends each missing blob once to `via`, which forwards it to the other hosts. */
  relay?: RelayOptions;
  /** Layer bytes go to the hosts only once this settles (listing the node happens before). */
  sendAfter?: Promise<unknown>;
  /** Registry mode: each node fetches the layers it lacks itself; a host whose fetch fails is served over SSH. */
  fetch?: LayerFetch;
  /**
   * Layers streamed from here go into trees of their own on the node, written once (default
   * true); false keeps a blob of each as well (what a retry after a cut connection does, so the
   * next cut resumes at the byte). Relay mode always keeps blobs (the relay serves its peers from them).
   */
  layerTrees?: boolean;
}

/** How a node fetches a layer itself (registry mode; exec/registry-distribute.ts builds it). */
export interface LayerFetch {
  /** The registry, for messages. */
  what: string;
  /**
   * An sh script that fetches blob `digest` from byte `offset` and pipes it into the sh script
   * `sink` (the node's blob receiver); it exits with the sink's status. A fetch that fails
   * leaves the sink short of bytes: it exits 91, and curl's message is on stderr.
   */
  script(digest: string, offset: number, sink: string): string;
}

/** A host's fetch from the registry failed (cut, refused, or other bytes than the digest): it is served over SSH instead. */
class FetchFailed extends Error {
  constructor(
    readonly what: string,
    cause: CommandError,
  ) {
    super(cause.message, { cause });
  }
}

export interface DistributeResult {
  /** Blobs and bytes that left the operator (in relay mode: once to the relay, plus direct fallbacks). */
  sentBytes: number;
  sentBlobs: number;
  perHost: Record<string, HostStats>;
  /** Relay mode: blobs and bytes the relay forwarded over the cluster network. */
  relayedBlobs?: number;
  relayedBytes?: number;
}

export interface HostStats {
  sentBlobs: number;
  sentBytes: number;
  materialisedFrom: number | null;
  /** Relay mode only: what reached this host from the relay, and the relay's address (absent when it fell back to direct). */
  relayedBlobs?: number;
  relayedBytes?: number;
  via?: string;
}

/** Puts one missing blob (complete and verified) into a host's blobs/sha256. */
export type BlobSender = (
  d: string,
  size: number,
  partial: number,
  nth: string,
  stats: HostStats,
) => Promise<void>;

/** What the relay mode borrows from the direct path (passed in, so relay.ts does not import this file). */
export interface DirectParts {
  sizes: Map<string, number>;
  /** Runs every target like the direct path, with a sender chosen per target (undefined: direct). */
  runHosts: (
    senderFor: (t: SshTarget) => BlobSender | undefined,
  ) => Promise<{ settled: PromiseSettledResult<void>[]; perHost: Record<string, HostStats> }>;
  /** The direct sender to one host (what distributeLayers does without a relay). */
  sendDirect: (t: SshTarget) => BlobSender;
}

const DIGEST = /^sha256:([a-f0-9]{64})$/;
/** Printed by a batch of extractions that failed, with the index of the layer it was at. */
const EXTRACT_FAILED = "==sealer-extract-failed==";

/**
 * Sends each node the layer blobs it lacks and materialises <dataRoot>/<cluster>/rootfs from
 * `layers` (oldest first). Hosts are served concurrently (bounded); on one host, blobs go one
 * after another (the link, not the CPU, is the limit).
 *
 * The bytes reach hosts through `io` (HostIo): its `stream` call for blobs, `run` for the rest.
 * Per host: list the node's store and layers.json (one command); unless the rootfs already holds
 * exactly `layers`, build a fresh staging tree layer by layer. A missing layer is streamed once
 * and, in that one pass on the node, hashed and extracted into a tree of its own, written once
 * (by one python3 process when the node has it, else an sh pipeline); a layer that cannot stand
 * alone (a hard link into a lower layer), or whose receive was cut before, is also kept as a
 * blob and extracted straight into the staging tree. Layers on the node are linked in from
 * their trees (hard links: no byte copied) or extracted from their blobs, batched into one
 * command with the making of the staging tree or the swap. The staging tree replaces the
 * rootfs after the last layer.
 * In registry mode (`fetch`) the node fetches each missing blob into its store, verified, and
 * the layer is extracted from it (a registry's bytes never reach tar unchecked); a host whose
 * fetch fails is listed again and served over SSH, a cut blob from where its bytes stopped.
 * A lost connection is retried (`retries`, default 2): the staging tree is rebuilt from what the
 * node has, every layer still missing is kept as a blob too from then on, and a cut blob resumes
 * where its bytes stopped, into the store first.
 * Every failure names the host and the step. All hosts are attempted; if any failed, one error
 * lists them all after the others finished.
 */
export async function distributeLayers(
  io: HostIo,
  targets: SshTarget[],
  opts: DistributeOptions,
): Promise<DistributeResult> {
  const problems: string[] = [];
  for (const d of opts.layers) if (!DIGEST.test(d)) problems.push(`"${d}" is not a sha256 digest`);
  if (!opts.cluster || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(opts.cluster))
    problems.push(`cluster name "${opts.cluster}" must be letters, digits, ".", "_" or "-"`);
  if (!opts.dataRoot.startsWith("/")) problems.push(`data root "${opts.dataRoot}" must be an absolute path`);
  if (problems.length)
    throw new UserError(`Invalid distribution request:\n${problems.map((p) => ` - ${p}`).join("\n")}`, {
      problems,
    });
  const sizes = new Map<string, number>();
  for (const d of opts.layers) {
    try {
      sizes.set(d, (await fs.promises.stat(opts.layout.blobPath(d))).size);
    } catch {
      throw new UserError(
        `layer ${d} is not in the local store ${opts.layout.root}; pull or rebuild the image first`,
      );
    }
  }
  // How each layer is unpacked on the nodes (read once here, not per host).
  const gzipped = new Set<string>();
  for (const d of sizes.keys()) if (await isGzip(opts.layout.blobPath(d))) gzipped.add(d);
  // Before any byte leaves: a stack that could write outside the rootfs is refused here.
  const removals = await checkLayerStack(opts.layout, opts.layers, { what: "distribute" });
  const result: DistributeResult = { sentBytes: 0, sentBlobs: 0, perHost: {} };
  const runHosts: DirectParts["runHosts"] = async (senderFor) => ({
    perHost: result.perHost,
    settled: await settleLimit(targets, opts.concurrency ?? 8, async (t) => {
      const stats: HostStats = { sentBlobs: 0, sentBytes: 0, materialisedFrom: null };
      result.perHost[t.host] = stats;
      const send = senderFor(t);
      const retries = opts.retries ?? 2;
      let lost: ConnectionLostError | undefined;
      let resent = false;
      let fetch = opts.fetch;
      for (let attempt = 0; ; attempt++) {
        try {
          // Trees until a connection was cut: from then on every layer is kept as a blob too, so a
          // cut transfer resumes at its byte.
          const trees = opts.layerTrees !== false && !opts.relay && !lost;
          await distributeToHost(io, t, opts, { sizes, gzipped }, removals, stats, { send, fetch, trees });
          return;
        } catch (err) {
          // The registry did not serve this host (unreachable from it, cut, wrong bytes): the next
          // attempt lists the node again and sends what it lacks over SSH, a partial from its byte.
          if (err instanceof FetchFailed && fetch) {
            fetch = undefined;
            attempt--;
            const why = err.message.split("\n").slice(0, 3).join(" ");
            log
              .forHost(t.host)
              .warn(`could not fetch the layers from ${err.what}: ${why}; sending them over SSH`);
            continue;
          }
          // A corrupt partial blob (digest mismatch, or it changed size) was dropped on the node with
          // the staging rootfs: start the host over once, that blob from byte 0.
          // A layer tree that changed on the node since it was received was dropped there: the same.
          if (
            err instanceof CommandError &&
            (err.code === 92 || err.code === 93 || err.code === TREE_CHANGED) &&
            !resent
          ) {
            resent = true;
            attempt--;
            log
              .forHost(t.host)
              .warn(
                `${err.message.split("\n").slice(0, 2).join(" ")}; sending that layer again from the start`,
              );
            continue;
          }
          // Name the step that was cut, not only the reconnect that then failed.
          if (lost && !(err instanceof ConnectionLostError))
            throw new TransientError(
              `${lost.message}; reconnecting failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            );
          if (!(err instanceof ConnectionLostError) || attempt >= retries) throw err;
          // The first cut names the step: a blob stream on its own `ssh` connection can be cut
          // before the pooled connection is found dead by the next attempt's listing.
          lost ??= err;
          log
            .forHost(t.host)
            .warn(`${err.message}; retry ${attempt + 1}/${retries}, resuming partial transfers`);
        }
      }
    }),
  });
  const sendDirect =
    (t: SshTarget): BlobSender =>
    (d, size, partial, nth, stats) =>
      sendBlob(io, t, opts, d, size, partial, nth, stats);
  let settled: PromiseSettledResult<void>[];
  if (opts.relay) {
    const r = await distributeViaRelay(io, targets, opts, { sizes, runHosts, sendDirect });
    settled = r.settled;
    result.sentBlobs += r.relaySent.blobs;
    result.sentBytes += r.relaySent.bytes;
    result.relayedBlobs = 0;
    result.relayedBytes = 0;
    for (const s of Object.values(result.perHost)) {
      result.relayedBlobs += s.relayedBlobs ?? 0;
      result.relayedBytes += s.relayedBytes ?? 0;
    }
  } else settled = (await runHosts(() => undefined)).settled;
  for (const s of Object.values(result.perHost)) {
    result.sentBlobs += s.sentBlobs;
    result.sentBytes += s.sentBytes;
  }
  const failed = settled.flatMap((s, i) =>
    s.status === "rejected" ? [{ host: targets[i]!.host, reason: s.reason as unknown }] : [],
  );
  if (failed.length === 1) throw failed[0]!.reason;
  if (failed.length > 1) {
    const msgs = failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)));
    throw new Error(
      `distribution failed on ${failed.length} hosts:\n${msgs.map((m) => ` - ${m}`).join("\n")}`,
      { cause: failed[0]!.reason },
    );
  }
  return result;
}

async function distributeToHost(
  io: HostIo,
  t: SshTarget,
  opts: DistributeOptions,
  blobs: { sizes: Map<string, number>; gzipped: ReadonlySet<string> },
  removals: LayerRemovals[],
  stats: HostStats,
  via: { send?: BlobSender | undefined; fetch?: LayerFetch | undefined; trees: boolean },
): Promise<void> {
  const { sizes, gzipped } = blobs;
  const { send, fetch, trees } = via;
  const hlog = log.forHost(t.host);
  const progress = opts.onProgress;
  progress?.({ host: t.host, phase: "list" });
  const inv = parseInventory(
    (
      await io.run(t.host, "distribute: list blobs", inventoryScript(opts.dataRoot, opts.cluster), {
        quiet: true,
      })
    ).stdout,
  );
  const plan = planMaterialise(opts.layers, inv);
  /** Blob `d` into the node's store, verified there, from byte `partial`: fetched, relayed or sent from here. */
  const putBlob = (d: string, size: number, partial: number, label: string): Promise<void> =>
    fetch
      ? fetchBlob(
          io,
          t,
          fetch,
          {
            digest: d,
            size,
            partial,
            nth: label,
            dataRoot: opts.dataRoot,
            ...(opts.receiver ? { receiver: opts.receiver } : {}),
          },
          progress,
        )
      : send
        ? send(d, size, partial, label, stats)
        : sendBlob(io, t, opts, d, size, partial, label, stats);
  const unique = [...new Set(opts.layers)];
  const hasTree = (d: string) => inv.trees.has(d.slice(7));
  const missing = unique.filter((d) => !inv.complete.has(d.slice(7)) && !hasTree(d));
  /**
   * A layer streamed from here as a tree of its own: not when it hard-links into a lower layer, and
   * not once a receive of it was cut (a partial tree is there) or a partial blob of it is: from
   * then on it is kept as a blob too, so that a cut resumes at its byte.
   */
  const asTree = (d: string) =>
    trees &&
    !fetch &&
    !send &&
    !removals[opts.layers.indexOf(d)]!.linksBelow &&
    !inv.cut.has(d.slice(7)) &&
    partialOf(inv, d, sizes.get(d)!) === 0;
  if (plan.kind === "none") {
    // The rootfs is current, but blobs it was built from are gone (deleted by hand, a disk
    // cleanup: the drift check reports them). They go back into the store, so that a later
    // layer change rebuilds from them; the rootfs is not touched.
    let nth = 0;
    for (const d of missing) {
      const size = sizes.get(d)!;
      const partial = partialOf(inv, d, size);
      const label = `${++nth}/${missing.length}`;
      if (asTree(d))
        await receiveLayer(
          io,
          t,
          opts,
          { digest: d, index: opts.layers.indexOf(d), size, gzip: gzipped.has(d) },
          "tree",
          { nth: label, stats },
        );
      else await putBlob(d, size, partial, label);
      hlog.info(`restored the missing layer ${d.slice(0, 19)} into the node's store (the rootfs is current)`);
    }
    progress?.({ host: t.host, phase: "sent" });
    progress?.({ host: t.host, phase: "done" });
    return;
  }
  if (missing.length && fetch) {
    const total = missing.reduce((n, d) => n + sizes.get(d)! - partialOf(inv, d, sizes.get(d)!), 0);
    hlog.info(`fetching ${missing.length} layer blob(s) (${formatBytes(total)}) from ${fetch.what}`);
  } else if (missing.length) {
    await opts.sendAfter;
    hlog.info(`sending ${missing.length} of ${unique.length} layer blob(s)`);
  }
  hlog.info(
    `building the rootfs from ${opts.layers.length} layer(s)${inv.materialised ? " (the layers changed)" : ""}`,
  );
  const steps = materialiseSteps(opts.dataRoot, opts.cluster, opts.layers, gzipped);
  // Work that needs no bytes from here (making the fresh staging tree, extracting layers already
  // on the node, the final swap) goes in one command per run of it, not one per layer: on a
  // layer change most layers are on the node, and each command is a round trip.
  // A failure inside names the layer it was extracting (EXTRACT_FAILED), as its own step would.
  const batch: { script: string[]; layers: number[] } = { script: [steps.prologue], layers: [] };
  /** The batch so far as one command (named by its layers), and a fresh batch. */
  const take = (epilogue?: string) => {
    if (epilogue) batch.script.push("at=\n", epilogue);
    if (!batch.script.length) return undefined;
    const [a, b] = [batch.layers[0], batch.layers[batch.layers.length - 1]];
    const step =
      a === undefined
        ? "distribute: materialise rootfs"
        : `distribute: extract layer${a === b ? ` ${a + 1}` : `s ${a + 1}-${b! + 1}`}/${opts.layers.length}${epilogue ? " and swap the rootfs in" : ""}`;
    const script = batch.script.join("");
    batch.script = [];
    batch.layers = [];
    return { step, script };
  };
  const runBatch = async (job: { step: string; script: string }) => {
    const trap = `at=\ntrap 'st=$?; [ "$st" -eq 0 ] || [ -z "$at" ] || echo "${EXTRACT_FAILED} $at" >&2' EXIT\n`;
    try {
      await io.run(t.host, job.step, "sh -s", { stdin: trap + job.script, quiet: true });
    } catch (err) {
      const at =
        err instanceof CommandError ? new RegExp(`^${EXTRACT_FAILED} (\\d+)$`, "m").exec(err.tail) : null;
      if (!at || !(err instanceof CommandError)) throw err;
      const i = Number(at[1]);
      throw new CommandError(
        err.host,
        `distribute: extract layer ${i + 1}/${opts.layers.length} ${opts.layers[i]!.slice(0, 19)}`,
        err.code,
        err.tail.replace(at[0], "").trim(),
      );
    }
  };
  // Batches run one after another, in layer order. One may run behind the next blob's transfer
  // (a blob put on the node first is unpacked while the next arrives); a flush waits for it.
  let extracting: Promise<void> = Promise.resolve();
  const extractBehind = () => {
    const job = take();
    if (!job) return;
    extracting = extracting.then(() => runBatch(job));
    // Seen by the next flush, or by the catch below: never an unhandled rejection meanwhile.
    extracting.catch(() => undefined);
  };
  const flush = async (epilogue?: string) => {
    const job = take(epilogue);
    await extracting;
    if (job) await runBatch(job);
  };
  // Layers in order over one connection. A missing one streamed from here is received,
  // verified and extracted in one pass (the node never reads it back); one already on the node
  // is extracted from its blob. Bytes that do not come from here in that same command are
  // verified before tar reads any of them (receiveLayerScript says why): the relay and the
  // registry put the blob in the node's store first, and so does the resume of a partial.
  const onNode = new Set(unique.filter((d) => inv.complete.has(d.slice(7)) || hasTree(d)));
  const treeOnNode = new Set(unique.filter(hasTree));
  // Where the last layer that needs bytes sits: nothing is left to overlap with after it.
  const lastMissing = steps.layers.reduce((last, l, i) => (onNode.has(l.digest) ? last : i), -1);
  let nth = 0;
  try {
    await eachLayer();
  } catch (err) {
    // A batch still running on the node writes into the staging tree the next attempt rebuilds.
    await extracting.catch(() => undefined);
    throw err;
  }
  progress?.({ host: t.host, phase: "sent" });
  await flush(steps.epilogue);
  stats.materialisedFrom = 0;
  progress?.({ host: t.host, phase: "done" });

  async function eachLayer(): Promise<void> {
    for (const [pos, l] of steps.layers.entries()) {
      const d = l.digest;
      const size = sizes.get(d)!;
      const partial = partialOf(inv, d, size);
      let put = false;
      if (!onNode.has(d) && asTree(d)) {
        // Into its own tree: no flush first (the staging tree is not touched), linked in below.
        await receiveLayer(io, t, opts, { digest: d, index: l.index, size, gzip: gzipped.has(d) }, "tree", {
          nth: `${++nth}/${missing.length}`,
          stats,
        });
        onNode.add(d);
        treeOnNode.add(d);
      }
      if (!onNode.has(d) && (send || fetch || partial > 0)) {
        const label = `${++nth}/${missing.length}`;
        await putBlob(d, size, partial, label);
        onNode.add(d);
        put = true;
      }
      if (onNode.has(d)) {
        progress?.({ host: t.host, phase: "materialise", digest: d });
        batch.script.push(
          `at=${l.index}\n`,
          l.script(removals[l.index]!, treeOnNode.has(d) ? "tree" : "blob"),
        );
        batch.layers.push(l.index);
        if (put && pos < lastMissing) extractBehind();
        continue;
      }
      await flush();
      await receiveLayer(
        io,
        t,
        opts,
        { digest: d, index: l.index, size, gzip: gzipped.has(d) },
        removals[l.index]!,
        {
          nth: `${++nth}/${missing.length}`,
          stats,
        },
      );
      onNode.add(d);
    }
  }
}

/** Bytes of `d` already on the node in its `.partial` (0 when that is larger than the blob: it starts over). */
function partialOf(inv: NodeBlobInventory, d: string, size: number): number {
  const p = inv.partial.get(d.slice(7)) ?? 0;
  return p > size ? 0 : p;
}

/**
 * Registry mode: the node fetches blob `digest` from byte `partial` into its store only, verified
 * there (the layer is extracted from it afterwards, never from the registry's unchecked bytes).
 * Any failure is the fetch's: FetchFailed.
 */
async function fetchBlob(
  io: HostIo,
  t: SshTarget,
  fetch: LayerFetch,
  b: {
    digest: string;
    size: number;
    partial: number;
    nth: string;
    dataRoot: string;
    receiver?: LayerReceiver;
  },
  onProgress?: DistributeOptions["onProgress"],
): Promise<void> {
  const sink = receiveBlobScript(b.dataRoot, b.digest.slice(7), b.size, b.partial, b.receiver);
  const step = `distribute: fetch layer ${b.nth} ${b.digest.slice(0, 19)}`;
  onProgress?.({ host: t.host, phase: "send", digest: b.digest, bytes: b.partial, total: b.size });
  try {
    await io.run(t.host, step, "sh -s", { stdin: fetch.script(b.digest, b.partial, sink), quiet: true });
  } catch (err) {
    if (err instanceof CommandError) throw new FetchFailed(fetch.what, err);
    throw err;
  }
  onProgress?.({ host: t.host, phase: "send", digest: b.digest, bytes: b.size, total: b.size });
}

/** Runs `script` on `t` with the bytes of blob `d` from `offset` as its stdin, counted into `stats` and progress. */
async function streamBlob(
  io: HostIo,
  t: SshTarget,
  opts: DistributeOptions,
  blob: { digest: string; size: number; offset: number },
  stats: { sentBytes: number },
  step: string,
  script: string,
): Promise<void> {
  const { digest: d, size, offset } = blob;
  const base = stats.sentBytes;
  const source = offset < size ? { localFile: opts.layout.blobPath(d), start: offset } : Buffer.alloc(0);
  await io.stream(t.host, step, script, source, {
    onStdinBytes: (n) => {
      stats.sentBytes = base + n;
      opts.onProgress?.({ host: t.host, phase: "send", digest: d, bytes: offset + n, total: size });
    },
  });
}

/**
 * Streams one missing layer from here, from byte 0, received in one pass on the node: into a tree
 * of its own ("tree": receiveTreeScript, each byte written once; a cut one starts over, and is kept
 * as a blob from then on), or with its removals straight into the staging rootfs, kept as a blob
 * too (receiveLayerScript; a cut one keeps its partial, which the next attempt resumes as a blob).
 * A bad transfer (digest mismatch) leaves nothing of it on the node; in the staging rootfs it
 * takes that tree with it, and the caller then starts the host over.
 */
async function receiveLayer(
  io: HostIo,
  t: SshTarget,
  opts: DistributeOptions,
  layer: { digest: string; index: number; size: number; gzip: boolean },
  into: "tree" | LayerRemovals,
  o: { nth: string; stats: HostStats },
): Promise<void> {
  const { digest: d, size, gzip } = layer;
  const l = { hex: d.slice(7), size, gzip };
  const sink =
    into === "tree"
      ? receiveTreeScript(opts.dataRoot, l, opts.receiver)
      : receiveLayerScript(opts.dataRoot, opts.cluster, l, into, opts.receiver);
  const what = `layer ${layer.index + 1}/${opts.layers.length} (blob ${o.nth}) ${d.slice(0, 19)}`;
  await streamBlob(
    io,
    t,
    opts,
    { digest: d, size, offset: 0 },
    o.stats,
    `distribute: send and extract ${what}`,
    sink,
  );
  o.stats.sentBlobs++;
}

/** Streams one blob into the node's store, resuming from `partial` bytes; re-sends once from 0 if the partial was bad. */
async function sendBlob(
  io: HostIo,
  t: SshTarget,
  opts: DistributeOptions,
  d: string,
  size: number,
  partial: number,
  nth: string,
  stats: { sentBytes: number; sentBlobs: number },
): Promise<void> {
  const hlog = log.forHost(t.host);
  const hex = d.slice(7);
  // The relay passes its own inventory's partial: a partial larger than the blob starts over.
  let offset = partial > size ? 0 : partial;
  for (let fresh = 0; ; fresh++) {
    if (offset > 0) hlog.info(`resuming ${d.slice(0, 19)} at byte ${offset} of ${size}`);
    try {
      await streamBlob(
        io,
        t,
        opts,
        { digest: d, size, offset },
        stats,
        `distribute: send layer ${nth} ${d.slice(0, 19)}`,
        receiveBlobScript(opts.dataRoot, hex, size, offset, opts.receiver),
      );
      stats.sentBlobs++;
      return;
    } catch (err) {
      // A corrupt partial (digest mismatch, or it changed size) is dropped and sent once more from byte 0.
      if (err instanceof CommandError && (err.code === 92 || err.code === 93) && fresh === 0) {
        hlog.warn(`${err.message.split("\n")[0]}; sending ${d.slice(0, 19)} again from the start`);
        offset = 0;
        continue;
      }
      throw err;
    }
  }
}

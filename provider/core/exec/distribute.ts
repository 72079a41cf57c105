/**
 * Per-layer delta distribution of a cluster image to nodes (B1).
 *
 * Node layout under dataRoot:
 *   blobs/sha256/<hex>            content-addressed layer blobs, verified by sha256 on the node (openssl or sha256sum) before rename
 *   blobs/sha256/<hex>.partial    an interrupted upload, continued from its size on the next run
 *   <cluster>/rootfs              materialised from the layers in order (OCI whiteouts honoured)
 *   <cluster>/layers.json         { "layers": [digests in order] } that rootfs was built from
 */
import * as fs from "node:fs";
import { TransientError, UserError } from "../errors";
import { log } from "../log";
import { CommandError, ConnectionLostError } from "../ssh";
import {
  inventoryScript,
  materialiseSteps,
  parseInventory,
  planMaterialise,
  receiveBlobScript,
} from "./node-layers";
import { checkLayerStack, type LayerRemovals } from "../image/layer-safety";
import type { OciLayout } from "../image/layout";
import { distributeViaRelay, type RelayOptions } from "./relay";
import type { SshPool, SshTarget } from "../ssh";

export interface DistributeProgress {
  host: string;
  /** list: reading the node's store; send: bytes of `digest` going out; sent: every missing blob is on the node and verified;
   *  materialise: extracting `digest` into the rootfs; done: the host is finished. */
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
  /** Hint from the planner: layers before this index are unchanged. The node's layers.json decides. */
  fromLayer?: number;
  /** Hosts served at once (default 8). */
  concurrency?: number;
  /** Retries per host after a transient failure (connection lost); each resumes partial blobs (default 2). */
  retries?: number;
  onProgress?: (p: DistributeProgress) => void;
  /** Relay mode (B4): the operator sends each missing blob once to `via`, which forwards it to the other hosts. */
  relay?: RelayOptions;
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

async function runLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      try {
        await fn(items[i]!);
        results[i] = { status: "fulfilled", value: undefined };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * Sends each node the layer blobs it lacks and materialises <dataRoot>/<cluster>/rootfs from
 * `layers` (oldest first). Hosts are served concurrently (bounded); on one host, blobs go one
 * after another (the link, not the CPU, is the limit).
 *
 * Per host: list the node's blob store and layers.json (one command); stream each missing blob
 * into `<hex>.partial` (appending from its current size when an earlier transfer was cut),
 * verify its sha256 on the node (openssl when it works there, else sha256sum) and rename it; then extract layers as `planMaterialise` decides.
 * A lost connection is retried (`retries`, default 2), resuming where the bytes stopped.
 * Every failure names the host and the step. All hosts are attempted; if any failed, one error
 * lists them all after the others finished.
 */
export async function distributeLayers(
  pool: SshPool,
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
  // Before any byte leaves: a stack that could write outside the rootfs is refused here.
  const removals = await checkLayerStack(opts.layout, opts.layers, { what: "distribute" });
  const result: DistributeResult = { sentBytes: 0, sentBlobs: 0, perHost: {} };
  const runHosts: DirectParts["runHosts"] = async (senderFor) => ({
    perHost: result.perHost,
    settled: await runLimited(targets, opts.concurrency ?? 8, async (t) => {
      const stats: HostStats = { sentBlobs: 0, sentBytes: 0, materialisedFrom: null };
      result.perHost[t.host] = stats;
      const send = senderFor(t);
      const retries = opts.retries ?? 2;
      let lost: ConnectionLostError | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          await distributeToHost(pool, t, opts, sizes, removals, stats, send);
          return;
        } catch (err) {
          // Name the step that was cut, not only the reconnect that then failed.
          if (lost && !(err instanceof ConnectionLostError))
            throw new TransientError(
              `${lost.message}; reconnecting failed: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            );
          if (!(err instanceof ConnectionLostError) || attempt >= retries) throw err;
          lost = err;
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
      sendBlob(pool, t, opts, d, size, partial, nth, stats);
  let settled: PromiseSettledResult<void>[];
  if (opts.relay) {
    const r = await distributeViaRelay(pool, targets, opts, { sizes, runHosts, sendDirect });
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
  pool: SshPool,
  t: SshTarget,
  opts: DistributeOptions,
  sizes: Map<string, number>,
  removals: LayerRemovals[],
  stats: HostStats,
  send: BlobSender = (d, size, partial, nth, st) => sendBlob(pool, t, opts, d, size, partial, nth, st),
): Promise<void> {
  const hlog = log.forHost(t.host);
  const progress = opts.onProgress;
  progress?.({ host: t.host, phase: "list" });
  const inv = parseInventory(
    await pool.run(t, inventoryScript(opts.dataRoot, opts.cluster), {
      step: "distribute: list blobs",
      logLevel: "debug",
    }),
  );
  const unique = [...new Set(opts.layers)];
  const missing = unique.filter((d) => !inv.complete.has(d.slice(7)));
  if (missing.length) hlog.info(`sending ${missing.length} of ${unique.length} layer blob(s)`);
  const plan = planMaterialise(opts.layers, inv);

  // Two chains on one host: the sender streams missing blobs one after another; the extractor
  // unpacks layer k as soon as its blob is on the node, while layer k+1 is still on the wire.
  let aborted = false;
  const arrived = new Map<
    string,
    { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }
  >();
  for (const d of missing) {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // observed by the extractor, or not needed
    arrived.set(d, { promise, resolve, reject });
  }
  const sender = (async () => {
    try {
      for (const [i, d] of missing.entries()) {
        if (aborted) throw ABORTED;
        await send(d, sizes.get(d)!, inv.partial.get(d.slice(7)) ?? 0, `${i + 1}/${missing.length}`, stats);
        arrived.get(d)!.resolve();
      }
      progress?.({ host: t.host, phase: "sent" });
    } catch (err) {
      for (const a of arrived.values()) a.reject(err);
      throw err;
    }
  })();
  const extractor = (async () => {
    if (plan.kind === "none") return;
    const steps = materialiseSteps(opts.dataRoot, opts.cluster, opts.layers);
    hlog.info(
      `building the rootfs from ${opts.layers.length} layer(s)${inv.materialised ? " (the layers changed)" : ""}`,
    );
    const step = "distribute: materialise rootfs";
    await pool.exec(t, "sh -s", { stdin: steps.prologue, step, logLevel: "debug" });
    for (const l of steps.layers) {
      await arrived.get(l.digest)?.promise;
      if (aborted) throw ABORTED;
      progress?.({ host: t.host, phase: "materialise", digest: l.digest });
      await pool.exec(t, "sh -s", {
        stdin: l.script(removals[l.index]!),
        step: `distribute: extract layer ${l.index + 1}/${opts.layers.length} ${l.digest.slice(0, 19)}`,
        logLevel: "debug",
      });
    }
    await pool.exec(t, "sh -s", { stdin: steps.epilogue, step, logLevel: "debug" });
    stats.materialisedFrom = 0;
  })();
  // Wait for both, so a retry never overlaps a chain still writing on the node; the sender's
  // error (usually the cause) wins.
  const [s1, s2] = await Promise.allSettled([
    sender,
    extractor.catch((e: unknown) => {
      aborted = true;
      throw e;
    }),
  ]);
  if (s1.status === "rejected" && s1.reason !== ABORTED) throw s1.reason;
  if (s2.status === "rejected") throw s2.reason;
  progress?.({ host: t.host, phase: "done" });
}

/** Thrown by one chain when the other failed first; never surfaces to the caller. */
const ABORTED = new Error("stopped because the other chain failed");

/** Streams one blob into the node's store, resuming from `partial` bytes; re-sends once from 0 if the partial was bad. */
async function sendBlob(
  pool: SshPool,
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
  let offset = partial > size ? 0 : partial;
  for (let fresh = 0; ; fresh++) {
    if (offset > 0) hlog.info(`resuming ${d.slice(0, 19)} at byte ${offset} of ${size}`);
    const base = stats.sentBytes;
    try {
      await pool.exec(t, receiveBlobScript(opts.dataRoot, hex, size, offset), {
        step: `distribute: send layer ${nth} ${d.slice(0, 19)}`,
        logLevel: "debug",
        stdin:
          offset < size
            ? fs.createReadStream(opts.layout.blobPath(d), { start: offset, highWaterMark: 1 << 20 })
            : Buffer.alloc(0),
        onStdinBytes: (n) => {
          stats.sentBytes = base + n;
          opts.onProgress?.({ host: t.host, phase: "send", digest: d, bytes: offset + n, total: size });
        },
      });
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

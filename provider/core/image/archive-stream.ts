import { Readable, Transform, TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { formatBytes } from "../log";

/**
 * Reads a tar or gzip-compressed tar in one pass, handing each entry to a visitor, and fails
 * on every way the bytes can be wrong: unknown compression, gzip CRC/length/truncation errors,
 * garbage after the gzip data, corrupt tar headers, entries cut short, a missing tar
 * end-of-archive marker, runaway zero padding (a device like /dev/zero), too many entries.
 *
 * Failures are ArchiveFormatError with a reason in words; the caller names the archive.
 */
export class ArchiveFormatError extends Error {
  override readonly name: string = "ArchiveFormatError";
}

/** More entries than any image archive has (one per blob plus a few): a hostile archive. */
const MAX_ENTRIES = 100_000;
/** Zero bytes tolerated after the tar end-of-archive marker (record padding is at most a few KiB). */
const MAX_TAIL_PADDING = 1024 * 1024;
/** Zero bytes tolerated after the gzip data (more than the stream buffers can hold unread). */
const MAX_GZIP_TAIL = 4 * 1024 * 1024;

const BLOCK = 512;

export type EntryHeader = tar.Header & { byteOffset?: number };

export interface ReadOptions {
  /** Called with the number of archive bytes read so far (compressed, as on disk). */
  onBytes?: (n: number) => void;
}

/**
 * Streams `source` and calls `visit` for each entry, in order. The visitor must consume or
 * resume the body. Visitor errors propagate as they are; a broken stream is an
 * ArchiveFormatError even when the visitor saw it first (the root cause wins).
 */
export async function readTarEntries(
  source: Readable,
  visit: (header: EntryHeader, body: Readable) => Promise<void>,
  opts: ReadOptions = {},
): Promise<void> {
  let rootCause: ArchiveFormatError | undefined;
  // Tearing the streams down makes them emit abort errors; those are not the cause.
  let closing = false;
  const fail = (e: unknown) => {
    if (!closing && e instanceof ArchiveFormatError) rootCause ??= e;
  };
  source.on("error", (err) => fail(new ArchiveFormatError(`reading it failed (${codeOf(err)})`)));

  const head = await peek(source, 6);
  if (head.buffered.length === 0) throw new ArchiveFormatError("it is empty (0 bytes)");
  const compression = compressionOf(head.buffered);
  const gunzip = compression === "gzip" ? zlib.createGunzip() : undefined;
  let raw = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      raw += chunk.length;
      opts.onBytes?.(raw);
      // zlib skips zero bytes after a gzip member without counting them as consumed; an
      // endless supply of them (a device) would otherwise keep load reading forever.
      if (gunzip && raw - gunzip.bytesWritten > MAX_GZIP_TAIL)
        return cb(
          new ArchiveFormatError(
            `more than ${formatBytes(MAX_GZIP_TAIL)} of zeros follow its gzip data (is it a device or a padded stream?)`,
          ),
        );
      cb(null, chunk);
    },
  });
  gunzip?.on("error", (err) => fail(new ArchiveFormatError(gzipReason(err, raw, head.buffered))));
  meter.on("error", fail);
  const watch = new TarWatch();
  watch.on("error", fail);
  const extract = tar.extract();
  let last: string | undefined;
  extract.on("error", (err: Error) =>
    fail(
      new ArchiveFormatError(tarReason(err, watch.total, watch.total < watch.entryEnd ? last : undefined)),
    ),
  );

  const stages: NodeJS.ReadWriteStream[] = [meter, ...(gunzip ? [gunzip] : []), watch];
  const feeding = pipeline(head.stream, ...(stages as [Transform]), (src: AsyncIterable<Buffer>) =>
    writeAll(extract as unknown as Sink, src),
  ).catch((err: unknown) => {
    // A failed feed must end the entry loop below, or it would wait forever.
    extract.destroy(err as Error);
  });

  let entries = 0;
  try {
    for await (const entry of extract as unknown as AsyncIterable<Readable & { header: EntryHeader }>) {
      const h = entry.header;
      if (++entries > MAX_ENTRIES)
        throw new ArchiveFormatError(`it has more than ${MAX_ENTRIES} entries, more than any image archive`);
      watch.entryEnd = (h.byteOffset ?? watch.entryEnd) + roundUp(h.size ?? 0);
      last = h.name;
      await visit(h, entry);
      entry.resume();
    }
  } catch (err) {
    const cause = rootCause;
    closing = true;
    head.stream.destroy();
    extract.destroy();
    await feeding;
    throw cause ?? err;
  }
  await feeding;
  if (rootCause) throw rootCause;
  if (!watch.endMarkerSeen())
    throw new ArchiveFormatError(
      `it ends after ${watch.total} bytes of tar data without the tar end-of-archive marker: the archive is truncated`,
    );
}

function roundUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/**
 * Watches the decompressed tar bytes: the first block must be a header (an all-zero first
 * block is an empty archive, or /dev/zero), and after the last entry's data there must be the
 * two-zero-block end marker, with bounded padding after it.
 */
class TarWatch extends Transform {
  total = 0;
  /** Where the current run of zero bytes started. */
  private zeroRunStart = 0;
  /** End (block-aligned) of the data of the latest entry the reader has seen. */
  entryEnd = 0;
  private first: Buffer | undefined = Buffer.alloc(0);

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.first) {
      this.first = Buffer.concat([this.first, chunk.subarray(0, BLOCK - this.first.length)]);
      if (this.first.length === BLOCK) {
        if (this.first.every((b) => b === 0))
          return cb(
            new ArchiveFormatError(
              "its first tar block is all zeros, so it holds no entries (an empty tar, or not an archive at all)",
            ),
          );
        this.first = undefined;
      }
    }
    let last = chunk.length - 1;
    while (last >= 0 && chunk[last] === 0) last--;
    if (last >= 0) this.zeroRunStart = this.total + last + 1;
    this.total += chunk.length;
    // The reader lags behind, so entryEnd may be stale; then a later header (non-zero) lies
    // between it and the run, the run starts after it, and this does not fire.
    if (this.zeroRunStart <= this.entryEnd && this.total - this.entryEnd > MAX_TAIL_PADDING)
      return cb(
        new ArchiveFormatError(
          `more than ${formatBytes(MAX_TAIL_PADDING)} of zeros follow its last entry (is it a device or a padded stream?)`,
        ),
      );
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.first)
      return cb(
        new ArchiveFormatError(`it holds only ${this.total} bytes of tar data, less than one tar header`),
      );
    cb();
  }

  endMarkerSeen(): boolean {
    return this.zeroRunStart <= this.entryEnd && this.total - this.entryEnd >= 2 * BLOCK;
  }
}

function compressionOf(head: Buffer): "gzip" | "none" {
  const starts = (...b: number[]) => b.every((x, i) => head[i] === x);
  if (starts(0x1f, 0x8b)) return "gzip";
  if (starts(0x28, 0xb5, 0x2f, 0xfd))
    throw new ArchiveFormatError(
      "it is zstd-compressed; decompress it first (zstd -d) or save it as tar or gzip",
    );
  if (starts(0x42, 0x5a, 0x68))
    throw new ArchiveFormatError(
      "it is bzip2-compressed; decompress it first (bunzip2) or save it as tar or gzip",
    );
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00))
    throw new ArchiveFormatError(
      "it is xz-compressed; decompress it first (xz -d) or save it as tar or gzip",
    );
  return "none";
}

/**
 * What zlib's failure means for the archive. zlib gives a truncated stream its own code
 * (Z_BUF_ERROR) but every kind of bad data the same one (Z_DATA_ERROR); only its message says
 * which check failed, so the texts are read here and nowhere else.
 */
function gzipReason(err: NodeJS.ErrnoException, rawBytes: number, head: Buffer): string {
  if (err.code === "Z_BUF_ERROR")
    return `its gzip data ends early (after ${rawBytes} bytes): the archive is truncated`;
  if (err.code !== "Z_DATA_ERROR")
    return `its gzip data could not be read within the first ${rawBytes} bytes (zlib ${err.code ?? "error"})`;
  if (/incorrect data check/.test(err.message))
    return "its gzip checksum (CRC-32) does not match the data: the archive is corrupt";
  if (/incorrect length check/.test(err.message))
    return "its gzip length field does not match the data: the archive is corrupt";
  // The first member's magic was checked before zlib saw it, so a bad magic, or a bad method
  // or flags behind a good first header, belongs to bytes after the first member.
  const firstHeaderOk = head[2] === 8 && ((head[3] ?? 0) & 0xe0) === 0;
  if (
    /incorrect header check/.test(err.message) ||
    (firstHeaderOk && /unknown compression method|header flags/.test(err.message))
  )
    return "garbage follows its gzip data; the archive is corrupt or has bytes appended";
  return `its gzip data is corrupt within the first ${rawBytes} bytes (zlib: ${err.message})`;
}

/** What tar-stream's failure means for the archive: its errors carry no code, only these texts. */
function tarReason(err: Error, tarBytes: number, entry: string | undefined): string {
  if (/Unexpected end of data/.test(err.message))
    return entry
      ? `it ends in the middle of entry "${entry}" (after ${tarBytes} bytes of tar data): the archive is truncated`
      : `it ends in the middle of a tar block or entry (after ${tarBytes} bytes of tar data): the archive is truncated or has bytes appended`;
  if (/Header exceeds max size/.test(err.message))
    return "a long-name or pax header in it is larger than 4 MiB";
  if (/Invalid tar header|Invalid header|Invalid tar/i.test(err.message))
    return `it is not a tar archive, or a tar header in it is corrupt (within the first ${tarBytes} bytes of tar data)`;
  return `it is not a readable tar archive (${err.message})`;
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? "I/O error";
}

/** Reads at least `n` bytes (or to the end) and returns them with a stream of everything. */
async function peek(source: Readable, n: number): Promise<{ buffered: Buffer; stream: Readable }> {
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let have = 0;
  let done = false;
  try {
    while (have < n) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      chunks.push(r.value);
      have += r.value.length;
    }
  } catch (err) {
    throw new ArchiveFormatError(`reading it failed (${codeOf(err)})`);
  }
  const buffered = Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (buffered.length) yield buffered;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { buffered, stream: Readable.from(all(), { objectMode: false }) };
}

export type Sink = {
  write(c: Buffer): boolean;
  end(): unknown;
  on(ev: string, f: () => void): unknown;
  off(ev: string, f: () => void): unknown;
  destroyed?: boolean;
};

/**
 * tar-stream 3 uses streamx streams, which Node's pipeline() does not fully understand; this
 * pumps an async iterable into one with back-pressure and ends it.
 */
export async function writeAll(sink: Sink, source: AsyncIterable<unknown>): Promise<void> {
  for await (const chunk of source) {
    if (sink.destroyed) throw new Error("archive stream closed early");
    if (!sink.write(chunk as Buffer))
      await new Promise<void>((r) => {
        const done = () => {
          sink.off("drain", done);
          sink.off("close", done);
          r();
        };
        sink.on("drain", done);
        sink.on("close", done);
      });
  }
  if (sink.destroyed) throw new Error("archive stream closed early");
  sink.end();
}

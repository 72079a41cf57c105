/**
 * Deterministic parallel gzip (the pigz scheme): the input is cut into fixed-size blocks, each
 * block is raw-deflated on the libuv thread pool with the previous 32 KiB as its dictionary
 * (so the ratio stays close to one stream), non-final blocks end with a sync flush (byte
 * aligned, no final bit), and the blocks are concatenated in order into one gzip member with
 * the CRC32 and size of the whole input.
 *
 * The output depends only on the input bytes, the block size, the level and the zlib build,
 * never on how many blocks ran at once or on timing, so layer digests stay reproducible while
 * all cores compress. The header is fixed: no mtime, no name, OS byte 255 ("unknown").
 */
import * as zlib from "node:zlib";

export const GZIP_BLOCK = 512 * 1024;
const WINDOW = 32 * 1024;
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

const SAMPLE = 8 * 1024;

/**
 * Whether a block looks incompressible (random data, already-compressed archives): three 8 KiB
 * samples deflated at level 1 shrink by less than 3%. Such blocks are stored (deflate level 0)
 * instead of costing a full level-6 search that gains nothing. The decision depends only on the
 * block's bytes, so the output stays deterministic.
 */
export function looksIncompressible(block: Buffer): boolean {
  if (block.length < 4 * SAMPLE) return false;
  const mid = (block.length >> 1) - (SAMPLE >> 1);
  const sample = Buffer.concat([
    block.subarray(0, SAMPLE),
    block.subarray(mid, mid + SAMPLE),
    block.subarray(block.length - SAMPLE),
  ]);
  return zlib.deflateRawSync(sample, { level: 1 }).length > sample.length * 0.97;
}

function deflateBlock(
  block: Buffer,
  level: number,
  dictionary: Buffer | undefined,
  last: boolean,
): Promise<Buffer> {
  if (looksIncompressible(block)) level = 0;
  return new Promise((resolve, reject) => {
    zlib.deflateRaw(
      block,
      {
        level,
        // One output buffer per block (deflate never grows data by more than ~0.1%).
        chunkSize: Math.max(64 * 1024, block.length + (block.length >> 6) + 1024),
        ...(dictionary && dictionary.length ? { dictionary } : {}),
        finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      },
      (err, out) => (err ? reject(err) : resolve(out)),
    );
  });
}

/** Gzips `source`, yielding compressed chunks in order; `concurrency` blocks are in flight. */
export async function* parallelGzip(
  source: AsyncIterable<Buffer>,
  opts: { level: number; concurrency: number; blockSize?: number },
): AsyncGenerator<Buffer> {
  const blockSize = opts.blockSize ?? GZIP_BLOCK;
  const inFlight: Array<Promise<Buffer>> = [];
  let crc = 0;
  let isize = 0;
  let tail: Buffer | undefined;
  const launch = (data: Buffer, last: boolean) => {
    crc = zlib.crc32(data, crc);
    isize = (isize + data.length) % 0x100000000;
    const p = deflateBlock(data, opts.level, tail, last);
    // Keep rejections from surfacing as unhandled while earlier blocks are awaited.
    p.catch(() => undefined);
    inFlight.push(p);
    tail =
      data.length >= WINDOW
        ? data.subarray(data.length - WINDOW)
        : Buffer.concat([tail ?? Buffer.alloc(0), data]).subarray(-WINDOW);
  };
  // Input is copied once, into the block being filled; a full block goes to the pool.
  let block = Buffer.allocUnsafe(blockSize);
  let filled = 0;
  yield HEADER;
  for await (const chunk of source) {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, blockSize - filled);
      chunk.copy(block, filled, off, off + n);
      filled += n;
      off += n;
      if (filled === blockSize) {
        launch(block, false);
        block = Buffer.allocUnsafe(blockSize);
        filled = 0;
        while (inFlight.length >= opts.concurrency) yield await (inFlight.shift() as Promise<Buffer>);
      }
    }
  }
  launch(block.subarray(0, filled), true);
  while (inFlight.length) yield await (inFlight.shift() as Promise<Buffer>);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(isize >>> 0, 4);
  yield trailer;
}

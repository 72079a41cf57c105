import * as fs from "node:fs";
import * as net from "node:net";
import { Readable } from "node:stream";
import { poll } from "../common/retry";
import { UserError } from "../errors";

/**
 * Where `sealer load` reads an archive from: a file, a device, a named pipe, or stdin (`-`).
 * Every source is read once, front to back, without seeking, so pipes work like files.
 */
export interface ArchiveInput {
  /** The stream of archive bytes. */
  stream: Readable;
  /** How messages name the source: the path, or "stdin". */
  label: string;
  /** Bytes to expect, when the source is a regular file (for progress). */
  size?: number;
}

/** How long a named pipe may stay without a writer before load gives up (default). */
export const FIFO_WAIT_MS = 30_000;
const FIFO_POLL_MS = 50;

/**
 * Opens `file` for one sequential pass. Refuses what cannot hold an archive (a directory, a
 * socket, a terminal on stdin) with a message saying what to give instead.
 *
 * A named pipe is opened non-blocking, because a blocking open waits in the kernel until some
 * process opens the other end, which would hang load with no way to report it. It then waits
 * up to `fifoWaitMs` for a writer: no bytes and no writer by then is an error naming the pipe.
 */
export async function openArchiveInput(file: string, fifoWaitMs = FIFO_WAIT_MS): Promise<ArchiveInput> {
  if (file === "-") {
    if (process.stdin.isTTY)
      throw new UserError(
        "sealer load -i - reads the archive from stdin, but stdin is a terminal; pipe the archive in (sealer load -i - < FILE)",
      );
    return { stream: process.stdin, label: "stdin" };
  }
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (err) {
    throw new UserError(`archive ${file} ${whyUnreadable(err)}`);
  }
  if (st.isDirectory())
    throw new UserError(
      `archive ${file} is a directory; give the archive file written by sealer save (or skopeo copy ... oci-archive:FILE)`,
    );
  if (st.isSocket())
    throw new UserError(`archive ${file} is a socket; give an archive file, a named pipe or - for stdin`);
  if (st.isFIFO()) return openFifo(file, fifoWaitMs);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, "r");
  } catch (err) {
    throw new UserError(`archive ${file} ${whyUnreadable(err)}`);
  }
  // No start position: positional reads fail on devices that cannot seek.
  return {
    stream: fh.createReadStream({ highWaterMark: 256 * 1024 }),
    label: file,
    ...(st.isFile() ? { size: st.size } : {}),
  };
}

async function openFifo(file: string, waitMs: number): Promise<ArchiveInput> {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new UserError(`archive ${file} ${whyUnreadable(err)}`);
  }
  // Non-blocking reads tell the states apart: 0 bytes = no writer (yet), EAGAIN = a writer
  // that has not written yet, >0 = data.
  const first = Buffer.alloc(64 * 1024);
  const got = await poll(
    async () => {
      try {
        const n = fs.readSync(fd, first, 0, first.length, null);
        return n > 0 ? n : undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") return 0;
        throw new UserError(`archive ${file} ${whyUnreadable(err)}`);
      }
    },
    `a writer to ${file}`,
    { minMs: FIFO_POLL_MS, maxMs: FIFO_POLL_MS, maxTotalMs: waitMs },
  ).catch((err: unknown) => {
    fs.closeSync(fd);
    if (err instanceof UserError) throw err;
    throw new UserError(
      `archive ${file} is a named pipe, and no process wrote to it within ${waitMs / 1000}s; start the writer (e.g. cat FILE > ${file}) or pipe the archive to sealer load -i -`,
    );
  });
  // A writer is connected: from here the event loop reads the pipe, and the writer closing ends it.
  const socket = new net.Socket({ fd, readable: true, writable: false });
  const head = first.subarray(0, got);
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (head.length) yield head;
      for await (const c of socket) yield c as Buffer;
    } finally {
      socket.destroy();
    }
  }
  return { stream: Readable.from(all(), { objectMode: false }), label: file };
}

/** Why a path cannot be read, in words (no errno text). */
function whyUnreadable(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "does not exist; give the file written by sealer save (or skopeo copy ... oci-archive:FILE)";
    case "EACCES":
    case "EPERM":
      return "cannot be read: permission denied";
    case "ENOTDIR":
      return "does not exist (a part of the path is not a directory)";
    case "ELOOP":
      return "cannot be opened: its symlinks form a loop";
    case "EISDIR":
      return "is a directory; give the archive file";
    case "ENXIO":
      return "cannot be opened for reading (a device or socket with nothing behind it)";
    default:
      return `cannot be read (${(err as NodeJS.ErrnoException).code ?? "unknown error"})`;
  }
}

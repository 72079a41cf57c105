/**
 * Progress of long work as typed events. The core only emits them; front ends subscribe and
 * decide how to show them (the CLI draws bars on a TTY or prints periodic lines, the Pulumi
 * resources log them at info). Nothing here writes to a terminal.
 */

/** The long-running kinds of work a user waits for. */
export type ProgressPhase = "build" | "push" | "pull" | "distribute" | "save" | "load";

export interface ProgressEvent {
  phase: ProgressPhase;
  /** One task: a layer being compressed, a blob being uploaded, a host receiving layers... */
  id: string;
  /** What the task is moving: a short digest, a file name, a step. */
  label: string;
  /** The node the bytes go to (distribution only). */
  host?: string;
  /** start: task begins (done 0); update: `done` bytes so far; end: finished (done = bytes moved). */
  kind: "start" | "update" | "end";
  done: number;
  total?: number;
}

export type ProgressListener = (e: ProgressEvent) => void;

const listeners = new Set<ProgressListener>();

/** Subscribes to every progress event of this process; returns the unsubscribe function. */
export function onProgress(listener: ProgressListener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

export function emitProgress(e: ProgressEvent): void {
  for (const l of listeners) {
    try {
      l(e);
    } catch {
      // A display that fails must never fail the work it shows.
    }
  }
}

let seq = 0;

export interface ProgressTask {
  update(done: number, total?: number): void;
  end(): void;
}

/**
 * One task's events: start now, `update` as bytes move (only when the count changed), `end` once
 * (repeated ends are ignored, so error paths may call it freely).
 */
export function progressTask(
  phase: ProgressPhase,
  label: string,
  total?: number,
  host?: string,
): ProgressTask {
  const id = `${phase}:${++seq}`;
  let done = 0;
  let size = total;
  let ended = false;
  const emit = (kind: ProgressEvent["kind"]) =>
    emitProgress({
      phase,
      id,
      label,
      ...(host ? { host } : {}),
      kind,
      done,
      ...(size !== undefined ? { total: size } : {}),
    });
  emit("start");
  return {
    update(n, t) {
      if (ended || (n === done && (t === undefined || t === size))) return;
      done = n;
      if (t !== undefined) size = t;
      emit("update");
    },
    end() {
      if (ended) return;
      ended = true;
      emit("end");
    },
  };
}

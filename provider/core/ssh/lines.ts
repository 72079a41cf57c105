/**
 * Splits a byte stream into lines as chunks arrive (a chunk may end mid-line, or mid-character).
 * A line's trailing "\r" (CRLF output, as ssh's own messages) is dropped.
 */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; flush(): void } {
  let partial = "";
  const decoder = new TextDecoder("utf-8");
  const out = (line: string) => emit(line.endsWith("\r") ? line.slice(0, -1) : line);
  return {
    push(chunk: Buffer) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) out(line);
    },
    flush() {
      partial += decoder.decode();
      if (partial) out(partial);
      partial = "";
    },
  };
}

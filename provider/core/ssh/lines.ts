/** Splits a byte stream into lines as chunks arrive (a chunk may end mid-line, or mid-character). */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; flush(): void } {
  let partial = "";
  const decoder = new TextDecoder("utf-8");
  return {
    push(chunk: Buffer) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) emit(line);
    },
    flush() {
      partial += decoder.decode();
      if (partial) emit(partial);
      partial = "";
    },
  };
}

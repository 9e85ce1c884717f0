// CSV rows from DuckDB into COPY FROM STDIN without waiting for the whole batch: DuckDB writes the batch
// as several files, one after the other, while the warehouse streams the ones already written, so the
// export and the server's COPY overlap. (A named pipe between the two was 3× slower than a file here:
// every 64 KiB the writer waited for a thread-pool read to come round.)
import { createReadStream } from 'node:fs';

/** The rows of a copyCsv step: one file that holds them, or files still being written, in order. */
export type CsvSource = { path: string } | { parts: readonly Promise<string>[] };

/**
 * Files written by `write(i, path)` for i = 0…count-1, each started when the one before has been written;
 * `pathOf(i)` names them. Every part's promise is handled, so an unread failure is never unhandled.
 */
export function csvParts(count: number, pathOf: (i: number) => string, write: (i: number, path: string) => Promise<void>): { parts: Promise<string>[] } {
  const parts: Promise<string>[] = [];
  let previous: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < count; i++) {
    const path = pathOf(i);
    const part = previous.then(() => write(i, path)).then(() => path);
    part.catch(() => undefined);
    parts.push(part);
    previous = part;
  }
  return { parts };
}

/**
 * Hands the source's bytes to `each` in order, in chunks of up to 1 MiB, each part once it is written.
 * A part that failed is the error reported. Returns only when no part is still being written, also
 * after a failure (the writer's connection is free again).
 */
export async function readCsv(source: CsvSource, each: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  const parts = 'path' in source ? [Promise.resolve(source.path)] : source.parts;
  try {
    for (const part of parts) {
      for await (const chunk of createReadStream(await part, { highWaterMark: 1 << 20 })) await each(chunk as Buffer);
    }
  } finally {
    await Promise.allSettled(parts);
  }
}

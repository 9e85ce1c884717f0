// CSV rows from DuckDB into COPY FROM STDIN without waiting for the whole file: DuckDB writes into a named
// pipe while the warehouse reads it, so the export and the server's COPY overlap (a 200,000-row batch
// otherwise waits ~0.7 s for the CSV before the COPY starts).
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The rows of a copyCsv step: a file that holds them, or a named pipe that `write` fills. */
export interface CsvSource {
  path: string;
  write?: () => Promise<void>;
}

/** A named pipe in `dir` (made once per folder: the loader's batches use it one after the other). */
export async function csvPipe(dir: string): Promise<string> {
  const path = join(dir, 'rows.csv.pipe');
  await promisify(execFile)('mkfifo', ['-m', '600', path]).catch((err: unknown) => {
    if (!/File exists/.test(String((err as { stderr?: unknown }).stderr))) throw err;
  });
  return path;
}

/**
 * Hands the source's bytes to `each` in order, in chunks of up to 1 MiB, while `write` (if any) produces
 * them. A writer that fails is the error reported, also when it failed before opening the pipe (the read
 * would wait for a writer forever: the pipe is opened for writing once, which ends it). A reader that stops
 * (`each` throws) closes the pipe, the writer fails on its next write, and the reader's error is reported.
 */
export async function readCsv(source: CsvSource, each: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  let written: Promise<void> | undefined;
  let writeFailed: unknown;
  if (source.write !== undefined) {
    written = source.write().catch(async (err: unknown) => {
      writeFailed = err;
      // O_RDWR on a pipe does not block: a reader still opening sees a writer come and go, then the end.
      const h = await open(source.path, 'r+');
      await h.close();
    });
  }
  let readFailed: unknown;
  try {
    for await (const chunk of createReadStream(source.path, { highWaterMark: 1 << 20 })) await each(chunk as Buffer);
  } catch (err) {
    readFailed = err;
  }
  await written;
  // A reader that stopped made the writer fail: its own error is the cause.
  if (readFailed !== undefined) throw readFailed;
  if (writeFailed !== undefined) throw writeFailed;
}

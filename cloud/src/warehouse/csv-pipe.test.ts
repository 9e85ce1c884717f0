// The named pipe between DuckDB's CSV export and the warehouse's COPY: every byte arrives in order, and a
// failure on either side ends both with the cause, never a read or a write left waiting.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { csvPipe, readCsv } from './csv-pipe.ts';

const ROWS = `SELECT range AS i, 'row ' || range AS s FROM range(300000)`;

async function duck() {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  onTeardown(() => {
    connection.closeSync();
    instance.closeSync();
  });
  return connection;
}

describe('CSV through a named pipe', () => {
  it('hands over exactly the bytes DuckDB writes to a file, while it writes them, batch after batch', async () => {
    const dir = tempDir('csv-pipe-');
    const db = await duck();
    const file = join(dir, 'rows.csv');
    await db.run(`COPY (${ROWS}) TO ${quotedString(file)} (FORMAT csv, HEADER false)`);
    const pipe = await csvPipe(dir);
    expect(await csvPipe(dir)).toBe(pipe);
    for (let batch = 0; batch < 2; batch++) {
      const chunks: Buffer[] = [];
      const write = async () => void (await db.run(`COPY (${ROWS}) TO ${quotedString(pipe)} (FORMAT csv, HEADER false, USE_TMP_FILE false)`));
      await readCsv({ path: pipe, write }, (chunk) => void chunks.push(chunk));
      expect(chunks.length).toBeGreaterThan(1);
      expect(Buffer.concat(chunks).equals(readFileSync(file))).toBe(true);
    }
  });

  it('reports a writer that fails before it opens the pipe, instead of waiting for it', async () => {
    const dir = tempDir('csv-pipe-');
    const db = await duck();
    const pipe = await csvPipe(dir);
    const write = async () => void (await db.run(`COPY (SELECT * FROM no_such_table) TO ${quotedString(pipe)} (FORMAT csv, USE_TMP_FILE false)`));
    await expect(readCsv({ path: pipe, write }, () => undefined)).rejects.toThrow(/no_such_table/);
  });

  it('stops the writer when the reader stops, and reports the reader', async () => {
    const dir = tempDir('csv-pipe-');
    const db = await duck();
    const pipe = await csvPipe(dir);
    let writer: Promise<void> | undefined;
    const write = () => (writer = db.run(`COPY (SELECT * FROM range(20000000)) TO ${quotedString(pipe)} (FORMAT csv, USE_TMP_FILE false)`).then(() => undefined));
    let seen = 0;
    await expect(
      readCsv({ path: pipe, write }, (chunk) => {
        seen += chunk.length;
        if (seen > 1 << 20) throw new Error('the server went away');
      }),
    ).rejects.toThrow(/the server went away/);
    await expect(writer).rejects.toThrow();
  });
});

// A batch's CSV in parts: every byte arrives in order, the first part is read while later ones are still
// being written, and a failure on either side is reported only once no part is being written any more.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { csvParts, readCsv } from './csv-parts.ts';

const part = (i: number) => `SELECT range AS i, 'row ' || range AS s FROM range(${i * 100_000}, ${(i + 1) * 100_000})`;

async function duck() {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  onTeardown(() => {
    connection.closeSync();
    instance.closeSync();
  });
  return connection;
}

describe('CSV in parts', () => {
  it('hands over the bytes of one export, reading the first part while the last is not written yet', async () => {
    const dir = tempDir('csv-parts-');
    const db = await duck();
    const whole = join(dir, 'whole.csv');
    await db.run(`COPY (${[0, 1, 2].map(part).join(' UNION ALL ')}) TO ${quotedString(whole)} (FORMAT csv, HEADER false)`);
    let firstRead!: () => void;
    const read = new Promise<void>((resolve) => (firstRead = resolve));
    const source = csvParts(3, (i) => join(dir, `p${i}.csv`), async (i, path) => {
      // The last part waits for the reader: without overlap this would never finish.
      if (i === 2) await read;
      await db.run(`COPY (${part(i)}) TO ${quotedString(path)} (FORMAT csv, HEADER false)`);
    });
    const chunks: Buffer[] = [];
    await readCsv(source, (chunk) => {
      chunks.push(chunk);
      firstRead();
    });
    expect(Buffer.concat(chunks).equals(readFileSync(whole))).toBe(true);
  });

  it('reports a part that fails, after the parts before it, and writes nothing after it', async () => {
    const dir = tempDir('csv-parts-');
    const db = await duck();
    const written: number[] = [];
    const source = csvParts(3, (i) => join(dir, `p${i}.csv`), async (i, path) => {
      await db.run(`COPY (${i === 1 ? 'SELECT * FROM no_such_table' : part(i)}) TO ${quotedString(path)} (FORMAT csv)`);
      written.push(i);
    });
    let bytes = 0;
    await expect(readCsv(source, (chunk) => void (bytes += chunk.length))).rejects.toThrow(/no_such_table/);
    expect(bytes).toBe(readFileSync(join(dir, 'p0.csv')).length);
    expect(written).toEqual([0]);
  });

  it('reports a reader that stops, once the parts still being written are done', async () => {
    const dir = tempDir('csv-parts-');
    const db = await duck();
    let writing = 0;
    const source = csvParts(3, (i) => join(dir, `p${i}.csv`), async (i, path) => {
      writing++;
      await db.run(`COPY (${part(i)}) TO ${quotedString(path)} (FORMAT csv)`);
      writing--;
    });
    await expect(
      readCsv(source, () => {
        throw new Error('the server went away');
      }),
    ).rejects.toThrow(/the server went away/);
    expect(writing).toBe(0);
  });
});

// Columns holding one value in every row are written as SQL literals, and integers and timestamps go in
// as DOUBLE: the files must read back exactly as the cells, with the column types of the table schema.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CityError, type CellValue, type TableSchema } from '@city/protocol';
import { parquetFixture } from '../../../test/support/parquet-fixture.ts';
import { SQL_TYPES } from './parquet.ts';

const TABLE: TableSchema = {
  name: 'literals',
  columns: [
    { name: 'text', type: 'string', nullable: true, source: ['text'] },
    { name: 'count', type: 'int64', nullable: true, source: ['count'] },
    { name: 'ratio', type: 'double', nullable: true, source: ['ratio'] },
    { name: 'flag', type: 'boolean', nullable: true, source: ['flag'] },
    { name: 'at', type: 'timestamp', nullable: true, source: ['at'] },
    { name: 'nothing', type: 'string', nullable: true, source: ['nothing'] },
  ],
  partitionKeys: [],
};
const AT = Date.UTC(2026, 10, 29, 6, 0, 0, 123);
const BIG = Number.MAX_SAFE_INTEGER;

describe('Parquet writer: constant columns and integers', () => {
  const fx = parquetFixture('cloud-parquet-literals-');

  async function roundTrip(name: string, rows: CellValue[][]): Promise<unknown[][]> {
    const path = join(fx.dir, `${name}.parquet`);
    await fx.writer.write(TABLE, rows, path);
    const types = (await fx.db.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${path}'))`)).getRows();
    expect(types).toEqual(TABLE.columns.map((c) => [c.name, SQL_TYPES[c.type] === 'TIMESTAMPTZ' ? 'TIMESTAMP WITH TIME ZONE' : SQL_TYPES[c.type]]));
    const back = await fx.db.runAndReadAll(`SELECT "text", "count", ratio, flag, epoch_ms("at"), nothing FROM read_parquet('${path}', file_row_number = true) ORDER BY file_row_number`);
    return back.getRows().map((r) => r.map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  }

  it('reads back a file whose every column is constant, quotes and all, including one row alone', async () => {
    const row: CellValue[] = ["O'Brien \"quoted\" \\ ; DROP", BIG, 0.1, false, AT, null];
    expect(await roundTrip('one', [row])).toEqual([row]);
    expect(await roundTrip('same', [row, [...row], [...row]])).toEqual([row, row, row]);
  });

  it('reads back varying columns beside constant ones, with NULLs and integers up to 2^53 - 1', async () => {
    const rows: CellValue[][] = Array.from({ length: 5000 }, (_, i) => [
      i % 7 === 0 ? null : `t-${i}`,
      i % 2 === 0 ? BIG - i : -i,
      i / 3,
      i % 3 === 0,
      AT + i,
      null,
    ]);
    expect(await roundTrip('varying', rows)).toEqual(rows);
    const constantTime: CellValue[][] = rows.map((r) => [r[0] ?? null, r[1] ?? null, r[2] ?? null, true, AT, 'x']);
    expect(await roundTrip('mixed', constantTime)).toEqual(constantTime);
  });

  it('refuses an integer beyond 2^53 or a fraction in an int64 or timestamp column, naming the column', async () => {
    for (const [index, value] of [[1, BIG + 2], [1, 1.5], [4, AT + 0.5]] as const) {
      const rows: CellValue[][] = [['a', 1, 1, true, AT, null], ['b', 2, 2, true, AT, null]];
      (rows[1] as CellValue[])[index] = value;
      const err = await fx.writer.write(TABLE, rows, join(fx.dir, 'bad.parquet')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CityError);
      expect((err as Error).message).toContain(TABLE.columns[index]!.name);
    }
  });
});

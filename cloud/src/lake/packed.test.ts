// Packed rows (values joined in one buffer per column) must write the same Parquet rows as the same cells,
// whatever the values hold: the separators themselves, nulls, empty strings, one row, one value throughout.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventRow, eventTable, type CellValue, type CityEvent } from '@city/protocol';
import { sampleEvent } from '../../../test/support/lake.ts';
import { parquetFixture } from '../../../test/support/parquet-fixture.ts';
import { RAW_COLUMNS, rawTable, tableSchema } from './layout.ts';
import { PackedColumn, PackedRows, type PackedType } from './packed.ts';

const RAW = tableSchema(rawTable('phone'));

function rawRow(i: number, key: string | null, payload: string): CellValue[] {
  return ['city.phone', 3, 1000 + i, i % 4 === 0 ? null : 1_700_000_000_000 + i, key, `{"h":"${i}"}`, payload, 'utf8', i % 5 === 0 ? null : `e-${i}`, 'gw-1', 1_700_000_000_500, i % 2 === 0];
}

function pack(rows: readonly CellValue[][], constant = true): PackedRows {
  const packed = new PackedRows(RAW_COLUMNS.map((c) => new PackedColumn(c.name, c.type as PackedType, { constant })));
  for (const row of rows) packed.pushRow(row);
  return packed;
}

describe('packed rows', () => {
  const fx = parquetFixture('cloud-packed-');
  let n = 0;

  /** Rows that differ between the two files (each way), and the packed file's row count. */
  async function differ(a: string, b: string): Promise<[bigint, bigint]> {
    const r = await fx.db.runAndReadAll(
      `SELECT (SELECT count(*) FROM (FROM '${a}' EXCEPT ALL FROM '${b}')) + (SELECT count(*) FROM (FROM '${b}' EXCEPT ALL FROM '${a}')), (SELECT count(*) FROM '${a}')`,
    );
    return r.getRows()[0] as [bigint, bigint];
  }

  async function compare(rows: CellValue[][], constant = true): Promise<[bigint, bigint]> {
    const packedFile = join(fx.dir, `packed-${++n}.parquet`);
    const cellsFile = join(fx.dir, `cells-${n}.parquet`);
    const packed = pack(rows, constant);
    expect(packed.columns.map((c) => c.values())).toEqual(RAW_COLUMNS.map((_, i) => rows.map((r) => r[i])));
    await fx.writer.write(RAW, { packed }, packedFile);
    await fx.writer.write(RAW, rows, cellsFile);
    return differ(packedFile, cellsFile);
  }

  it('keeps values holding the separators, nulls, empty strings and any text as they were', async () => {
    const keys = ['\x1e', '\x1f', 'a\x1eb\x1fc', '\x1e\x01', '\x1e\x02', '', null, 'é ☃ 東京 😀', '\x00', 'plain'];
    const rows = Array.from({ length: 40 }, (_, i) => rawRow(i, keys[i % keys.length] ?? null, i % 3 === 0 ? `p\x1f${i}\x1e` : `{"n":${i}}`));
    expect(await compare(rows)).toEqual([0n, 40n]);
    expect(await compare(rows, false)).toEqual([0n, 40n]);
  });

  it('writes one row, and columns that hold one value in every row (literals)', async () => {
    expect(await compare([rawRow(1, 'd', 'x')])).toEqual([0n, 1n]);
    expect(await compare([rawRow(1, '', '')])).toEqual([0n, 1n]);
    const same = Array.from({ length: 30 }, () => rawRow(4, null, 'same'));
    expect(await compare(same)).toEqual([0n, 30n]);
    expect(await compare(same, false)).toEqual([0n, 30n]);
    // A value that differs only late ends the run of equal ones.
    expect(await compare([...same, rawRow(5, 'k', 'other')])).toEqual([0n, 31n]);
    // A text with a NUL in every row cannot be a SQL literal (DuckDB's parser ends the string there).
    const nul = Array.from({ length: 3 }, () => ['city.phone', 3, 1, null, 'a\u0000b', '{}', 'p\u0000q', 'utf8', null, 'g\u0000', 1, true]);
    expect(await compare(nul)).toEqual([0n, 3n]);
  });

  it('spreads large columns over chunks, a value larger than a chunk too, and reuses the chunks of a released file', async () => {
    const big = 'x'.repeat(1_500_000);
    const rows = Array.from({ length: 9_000 }, (_, i) => rawRow(i, `device-${i % 97}`, i === 4_000 ? big : `{"n":${i},"pad":"${'p'.repeat(200)}"}`));
    const first = pack(rows);
    expect((first.column('payload') as PackedColumn).parts().length).toBeGreaterThan(2);
    await fx.writer.write(RAW, { packed: first }, join(fx.dir, 'chunks-a.parquet'));
    await fx.writer.write(RAW, rows, join(fx.dir, 'chunks-a-cells.parquet'));
    first.release();
    expect(() => (first.column('payload') as PackedColumn).push('late')).toThrow(/released/);
    // The next file is written into the chunks the first gave back.
    const other = rows.map((r, i) => rawRow(i + 1, `other-${i}`, String(r[6]).toUpperCase()));
    await fx.writer.write(RAW, { packed: pack(other) }, join(fx.dir, 'chunks-b.parquet'));
    await fx.writer.write(RAW, other, join(fx.dir, 'chunks-b-cells.parquet'));
    expect(await differ(join(fx.dir, 'chunks-a.parquet'), join(fx.dir, 'chunks-a-cells.parquet'))).toEqual([0n, 9_000n]);
    expect(await differ(join(fx.dir, 'chunks-b.parquet'), join(fx.dir, 'chunks-b-cells.parquet'))).toEqual([0n, 9_000n]);
  });

  it('refuses at write time a value its column cannot hold, as the cell writer does', async () => {
    const packed = pack([rawRow(1, 'd', 'x'), ['city.phone', 3, 1.5, null, 'd', '{}', 'x', 'utf8', null, 'gw', null, true]]);
    await expect(fx.writer.write(RAW, { packed }, join(fx.dir, 'bad.parquet'))).rejects.toMatchObject({ code: 'CLD_PARQUET_WRITE', message: expect.stringContaining('kafka_offset') });
    // Also as the first value of a column that looks for one value throughout.
    const first = pack([['city.phone', 3, 7, null, 'd', '{}', 'x', 'utf8', null, 'gw', NaN, true]]);
    await expect(fx.writer.write(RAW, { packed: first }, join(fx.dir, 'bad-first.parquet'))).rejects.toMatchObject({ code: 'CLD_PARQUET_WRITE', message: expect.stringContaining('received_at') });
    // A column that got a value fewer than the others would shift every row after it.
    const short = pack([rawRow(1, 'd', 'x')]);
    (short.column('payload') as PackedColumn).push('extra');
    await expect(fx.writer.write(RAW, { packed: short }, join(fx.dir, 'short.parquet'))).rejects.toMatchObject({ code: 'CLD_PARQUET_WRITE' });
  });

  it('reads event texts from the packed column, and falls back to the JavaScript rows for a repeated key', async () => {
    const table = eventTable('vehicle');
    const texts = [JSON.stringify(sampleEvent('vehicle', 1)), JSON.stringify(sampleEvent('vehicle', 2)).replace('"speed":', '"speed":99,"speed":')];
    for (const [i, subset] of [[0, texts.slice(0, 1)], [1, texts]] as const) {
      const events = subset.map((t) => JSON.parse(t) as CityEvent);
      const packed = new PackedRows([
        new PackedColumn('#text', 'string', { constant: false }),
        new PackedColumn('#keys', 'int64'),
        new PackedColumn('date_observed', 'timestamp'),
        new PackedColumn('gateway_id', 'string'),
        new PackedColumn('received_at', 'timestamp'),
      ]);
      const cells = events.map((e, r) => eventRow('vehicle', e, { gatewayId: 'gw-1', receivedAt: 1_700_000_000_000 + r }));
      subset.forEach((t, r) => {
        const [text, keys, time, gw, rx] = packed.columns as PackedColumn[];
        text?.pushJsonText(t);
        keys?.push(Object.keys(events[r] as object).length + Object.keys((events[r] as { location: object }).location).length);
        time?.push((events[r] as { dateObserved: number }).dateObserved);
        gw?.push('gw-1');
        rx?.push(1_700_000_000_000 + r);
      });
      let fellBack = 0;
      const rows = { packed, json: { text: '#text', keys: '#keys', row: (r: number) => (fellBack++, cells[r] as CellValue[]) } };
      const a = join(fx.dir, `events-${i}.parquet`);
      const b = join(fx.dir, `events-cells-${i}.parquet`);
      await fx.writer.write(table, rows, a);
      await fx.writer.write(table, cells, b);
      expect(await differ(a, b)).toEqual([0n, BigInt(subset.length)]);
      expect(fellBack).toBe(i === 0 ? 0 : subset.length);
    }
  });
});

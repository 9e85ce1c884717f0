import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { CityError, DEADLETTER_TABLE, eventRow, eventTable, type CellValue, type EventKind } from '@city/protocol';
import { sampleEvent } from '../../../test/support/lake.ts';
import { parquetFixture } from '../../../test/support/parquet-fixture.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { rawRowPack, packRawRow } from '../sink/records.ts';
import { ALL_LAKE_TABLES, parquetCodec, rawKind, rawTable, tableSchema } from './layout.ts';
import { createLakeWriter } from './writer.ts';

const META = { gatewayId: 'gw-1', receivedAt: Date.UTC(2024, 4, 1, 0, 0, 1, 999) };
const rowsOf = (kind: EventKind, n: number, from = 0): CellValue[][] =>
  Array.from({ length: n }, (_, i) => eventRow(kind, sampleEvent(kind, from + i), META));

describe('Parquet writer (DuckDB)', () => {
  const fx = parquetFixture('cloud-parquet-');

  const all = fx.all;

  it('writes the table columns in order with their SQL types', async () => {
    const path = join(fx.dir, 'types.parquet');
    await fx.writer.write(eventTable('traffic_camera'), rowsOf('traffic_camera', 10), path);
    const described = await all(`DESCRIBE SELECT * FROM read_parquet('${path}')`);
    const expected = { string: 'VARCHAR', int64: 'BIGINT', double: 'DOUBLE', boolean: 'BOOLEAN', timestamp: 'TIMESTAMP WITH TIME ZONE' };
    expect(described.map((r) => [r.column_name, r.column_type])).toEqual(
      eventTable('traffic_camera').columns.map((c) => [c.name, expected[c.type]]),
    );
    expect((await all(`SELECT count(*) AS n, count_if(congested) AS c FROM read_parquet('${path}')`))[0]).toEqual({ n: 10n, c: 2n });
  });

  it('stores timestamps as UTC-adjusted Parquet timestamps and compresses with Snappy', async () => {
    const path = join(fx.dir, 'utc.parquet');
    await fx.writer.write(eventTable('vehicle'), rowsOf('vehicle', 5), path);
    const schema = await all(`SELECT name, logical_type FROM parquet_schema('${path}') WHERE name IN ('date_observed', 'received_at')`);
    expect(schema).toHaveLength(2);
    for (const column of schema) expect(String(column.logical_type)).toMatch(/isAdjustedToUTC=(1|true)/);
    const codecs = await all(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`);
    expect(codecs).toEqual([{ compression: 'SNAPPY' }]);
    // The same instants whatever the reader's session time zone.
    await fx.db.run(`SET TimeZone = 'America/New_York'`);
    const back = await all(
      `SELECT epoch_ms(date_observed) AS observed, epoch_ms(received_at) AS received,
              received_at = TIMESTAMPTZ '2024-05-01 00:00:01.999+00' AS same
       FROM read_parquet('${path}') ORDER BY seq`,
    );
    await fx.db.run(`SET TimeZone = 'UTC'`);
    expect(back.map((r) => r.observed)).toEqual([0, 1, 2, 3, 4].map((i) => BigInt(Date.UTC(2024, 4, 1) + i * 1000)));
    expect(back.every((r) => r.received === BigInt(META.receivedAt) && r.same === true)).toBe(true);
  });

  it('compresses raw-zone files with zstd, packed or as cells, and every other table with Snappy', async () => {
    const raw = tableSchema(rawTable('vehicle'));
    const cells: CellValue[][] = Array.from({ length: 20 }, (_, i) => ['t', 0, i, i, `k${i}`, '{}', `{"n":${i}}`, 'utf8', `e${i}`, 'gw', i, true]);
    const packed = rawRowPack();
    for (const row of cells) packRawRow(packed, row);
    const paths = { cells: join(fx.dir, 'raw-cells.parquet'), packed: join(fx.dir, 'raw-packed.parquet'), dead: join(fx.dir, 'dead.parquet') };
    await fx.writer.write(raw, cells, paths.cells);
    await fx.writer.write(raw, { packed }, paths.packed);
    await fx.writer.write(DEADLETTER_TABLE, [], paths.dead);
    const codec = async (path: string) => (await all(`SELECT DISTINCT compression FROM parquet_metadata('${path}')`)).map((r) => r.compression);
    expect(await codec(paths.cells)).toEqual(['ZSTD']);
    expect(await codec(paths.packed)).toEqual(['ZSTD']);
    expect(await codec(paths.dead)).not.toContain('ZSTD');
    expect(parquetCodec(raw.name)).toBe('zstd');
    expect(ALL_LAKE_TABLES.filter((t) => parquetCodec(t) === 'zstd')).toEqual(ALL_LAKE_TABLES.filter((t) => rawKind(t) !== undefined));
  });

  it('round-trips values and NULLs exactly', async () => {
    const path = join(fx.dir, 'values.parquet');
    const rows = rowsOf('vehicle', 300);
    await fx.writer.write(eventTable('vehicle'), rows, path);
    const columns = eventTable('vehicle').columns;
    const select = columns.map((c) => (c.type === 'timestamp' ? `epoch_ms(${c.name}) AS ${c.name}` : c.name)).join(', ');
    const back = (await fx.db.runAndReadAll(`SELECT ${select} FROM read_parquet('${path}') ORDER BY seq`)).getRows();
    expect(back.map((r) => r.map((v) => (typeof v === 'bigint' ? Number(v) : v)))).toEqual(rows);
    expect(rows.some((r) => r.includes(null))).toBe(true);
  });

  it('writes more rows than one DuckDB chunk, and an empty file', async () => {
    const path = join(fx.dir, 'big.parquet');
    await fx.writer.write(eventTable('gps'), rowsOf('gps', 5000), path);
    expect((await all(`SELECT count(DISTINCT event_id) AS n FROM read_parquet('${path}')`))[0]).toEqual({ n: 5000n });
    const empty = join(fx.dir, 'empty.parquet');
    await fx.writer.write(DEADLETTER_TABLE, [], empty);
    expect((await all(`SELECT count(*) AS n FROM read_parquet('${empty}')`))[0]).toEqual({ n: 0n });
  });

  it('refuses a value that does not fit its column, with a catalogued error', async () => {
    const rows = rowsOf('gps', 2);
    (rows[1] as CellValue[])[2] = 'not a number'; // seq, an int64
    const err = await fx.writer.write(eventTable('gps'), rows, join(fx.dir, 'bad.parquet')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CityError);
    expect(err).toMatchObject({ code: 'CLD_PARQUET_WRITE', canRetry: true });
    expect((err as Error).message).toMatch(/seq/);
    // The writer stays usable after a failed write.
    await fx.writer.write(eventTable('gps'), rowsOf('gps', 2), join(fx.dir, 'after.parquet'));
  });
});

describe('lake writer over the local folder store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-lake-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('puts each file at its Hive key, replaces it on rewrite and leaves no scratch files', async () => {
    const store = createLocalFolderStore(dir);
    const lake = await createLakeWriter(store);
    const file = {
      table: 'weather' as const,
      partition: { event_date: '2024-05-01', event_hour: 0 },
      topic: 'city.weather.v1',
      kafkaPartition: 2,
      firstOffset: 40n,
      lastOffset: 49n,
      rows: rowsOf('weather', 10),
    };
    const key = await lake.write(file);
    expect(key).toBe('curated/kind=weather/event_date=2024-05-01/event_hour=0/city.weather.v1+2+0000000000000000040.parquet');
    await lake.write({ ...file, lastOffset: 54n, rows: rowsOf('weather', 15) });
    expect(await store.list('curated/')).toEqual([key]);

    const reader = await DuckDBInstance.create(':memory:');
    const db = await reader.connect();
    const path = store.locate(key);
    const count = (await db.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${path}')`)).getRowObjects();
    expect(count).toEqual([{ n: 15n }]);
    const kv = (await db.runAndReadAll(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${path}')`)).getRowObjects();
    expect(Object.fromEntries(kv.map((r) => [r.k, r.v]))).toMatchObject({
      'city.kafka.topic': 'city.weather.v1',
      'city.kafka.partition': '2',
      'city.kafka.first_offset': '40',
      'city.kafka.last_offset': '54',
    });
    db.closeSync();
    reader.closeSync();

    await lake.close();
    expect(await readdir(join(dir, '_scratch'))).toEqual([]);
    expect((await stat(path)).isFile()).toBe(true);
  });

  it('refuses keys that leave the store', async () => {
    const store = createLocalFolderStore(dir);
    const scratch = await store.scratchPath('x.parquet');
    await expect(store.put('../escape.parquet', scratch)).rejects.toThrow(RangeError);
    await expect(store.put('/abs.parquet', scratch)).rejects.toThrow(RangeError);
    await store.close();
    await expect(store.scratchPath('x')).rejects.toMatchObject({ code: 'CLD_CLOSED' });
  });
});

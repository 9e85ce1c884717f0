// The loader on PGlite and on the PostgreSQL server, over a real lake: every event once (replayed
// duplicates merged away), a second load adds nothing, compaction's merged files are recorded as covered
// and not loaded again, a corrupt object is skipped with its reason, and the ledger matches the lake.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_KINDS } from '@city/protocol';
import { lakeCounts, rowsOf, sampleEvent, writeLake } from '../../../test/support/lake.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { TEST_POSTGRES_URL, testSchema, writeCityLake } from '../../../test/support/warehouse.ts';
import { compactLake } from '../lake/compaction.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { createWarehouseLoader } from './loader.ts';
import { createPgliteWarehouse } from './pglite.ts';
import type { Warehouse } from './port.ts';
import { createPostgresWarehouse } from './postgres.ts';

const ENGINES: [string, () => Promise<Warehouse>][] = [
  ['pglite', () => createPgliteWarehouse({ dataDir: join(tempDir('wh-pglite-'), 'db'), schema: 'city' })],
  ['postgres', async () => createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema: testSchema() })],
];

async function open(make: () => Promise<Warehouse>) {
  const warehouse = await make();
  onTeardown(() => warehouse.close());
  return warehouse;
}

async function tableCounts(warehouse: Warehouse): Promise<Record<string, { rows: number; ids: number }>> {
  const sql = EVENT_KINDS.map((k) => `SELECT '${k}' AS kind, count(*) AS n, count(DISTINCT event_id) AS ids FROM ${k}`).join(' UNION ALL ');
  const out: Record<string, { rows: number; ids: number }> = {};
  for (const r of (await warehouse.query(sql)).rows) out[String(r.kind)] = { rows: Number(r.n), ids: Number(r.ids) };
  return out;
}

describe.each(ENGINES)('warehouse loader on %s', (_name, make) => {
  it('loads every event once, and nothing more on the next run', async () => {
    const lakeDir = tempDir('wh-lake-');
    const distinct = await writeCityLake(lakeDir, { perHour: 40, hours: 2, filesPerHour: 2, replayed: 5 });
    const warehouse = await open(make);
    const store = createLocalFolderStore(lakeDir);
    onTeardown(() => store.close());
    const loader = createWarehouseLoader({ warehouse, store, maxObjectsPerBatch: 3 });
    onTeardown(() => loader.close());

    const plan = await loader.init();
    expect(plan.created).toEqual(expect.arrayContaining(['wh_load_ledger', 'dim_device', 'dim_date', 'dim_district', ...EVENT_KINDS]));
    expect((await loader.init()).statements).toEqual([]);

    const first = await loader.load();
    expect(first.skipped).toEqual([]);
    expect(first.objects).toBe(EVENT_KINDS.length * 2 * 3);
    const counts = await tableCounts(warehouse);
    const lake = await lakeCounts(lakeDir);
    for (const kind of EVENT_KINDS) {
      expect(counts[kind], kind).toEqual({ rows: distinct[kind], ids: distinct[kind] });
      expect(lake[`${kind}.ids`]).toBe(distinct[kind]);
    }
    const second = await loader.load();
    expect(second.objects).toBe(0);
    expect(await tableCounts(warehouse)).toEqual(counts);

    const devices = await warehouse.query(`SELECT count(*) AS n FROM dim_device WHERE kind = 'vehicle'`);
    expect(Number(devices.rows[0]?.n)).toBe(50);
    const dates = await warehouse.query(`SELECT event_date, year, month, day, day_of_week FROM dim_date`);
    expect(dates.rows).toEqual([{ event_date: '2024-05-01', year: 2024, month: 5, day: 1, day_of_week: 3 }]);

    const status = await loader.status();
    const vehicle = status.find((s) => s.table === 'vehicle');
    expect(vehicle).toMatchObject({ objectsLoaded: 6, objectsPending: 0, warehouseRows: 80, rowsLoaded: 90, lagHours: 0, lakeNewest: '2024-05-01/1' });
    expect(vehicle?.loadedNewest).toBe('2024-05-01/1');
  });

  it('streams a batch without duplicates as CSV parts written while the first ones are read, every row once', async () => {
    const lakeDir = tempDir('wh-lake-');
    const distinct = await writeCityLake(lakeDir, { perHour: 40, hours: 2, filesPerHour: 2, replayed: 0 });
    const warehouse = await open(make);
    const store = createLocalFolderStore(lakeDir);
    onTeardown(() => store.close());
    // One object per part.
    const loader = createWarehouseLoader({ warehouse, store, csvPartRows: 1 });
    onTeardown(() => loader.close());
    await loader.init();
    const result = await loader.load();
    expect(result.skipped).toEqual([]);
    expect(result.batches).toBe(EVENT_KINDS.length);
    const counts = await tableCounts(warehouse);
    for (const kind of EVENT_KINDS) expect(counts[kind], kind).toEqual({ rows: distinct[kind], ids: distinct[kind] });
  });

  it('records a compacted file of loaded inputs as covered; loads it when its inputs were not', async () => {
    const lakeDir = tempDir('wh-lake-');
    const distinct = await writeCityLake(lakeDir, { kinds: ['vehicle', 'weather'], perHour: 30, hours: 1, filesPerHour: 3, replayed: 4 });
    const warehouse = await open(make);
    const store = createLocalFolderStore(lakeDir);
    onTeardown(() => store.close());
    const loader = createWarehouseLoader({ warehouse, store, tables: ['vehicle', 'weather'] });
    onTeardown(() => loader.close());
    await loader.init();
    // vehicle loaded before compaction, weather only after it.
    await createWarehouseLoader({ warehouse, store, tables: ['vehicle'] }).load();
    await compactLake(store, { keepNewest: false, tables: ['vehicle', 'weather'] });
    const after = await loader.load();
    expect(after.perTable['vehicle']).toEqual({ objects: 0, rows: 0, covered: 1 });
    expect(after.perTable['weather']).toEqual({ objects: 1, rows: 34, covered: 0 });
    const counts = await tableCounts(warehouse);
    expect(counts['vehicle']).toEqual({ rows: distinct['vehicle'], ids: distinct['vehicle'] });
    expect(counts['weather']).toEqual({ rows: distinct['weather'], ids: distinct['weather'] });
    expect((await loader.load()).objects).toBe(0);
    expect((await loader.status()).find((s) => s.table === 'vehicle')).toMatchObject({ objectsCovered: 1, objectsPending: 0 });
  });

  it('loads again a newest file the sink rewrote under the same key with more rows', async () => {
    const lakeDir = tempDir('wh-lake-');
    const partition = { event_date: '2024-05-01', event_hour: 0 };
    const file = (n: number) => ({
      table: 'gps' as const,
      partition,
      topic: 'city.gps.v1',
      kafkaPartition: 0,
      firstOffset: 100n,
      lastOffset: BigInt(99 + n),
      rows: rowsOf('gps', Array.from({ length: n }, (_, i) => sampleEvent('gps', i, { idPrefix: 'rw', dateObserved: Date.UTC(2024, 4, 1, 0, 1, i) }))),
    });
    await writeLake(lakeDir, [file(5)]);
    const warehouse = await open(make);
    const store = createLocalFolderStore(lakeDir);
    onTeardown(() => store.close());
    const loader = createWarehouseLoader({ warehouse, store, tables: ['gps'] });
    onTeardown(() => loader.close());
    await loader.init();
    expect((await loader.load()).rows).toBe(5);
    expect((await loader.load()).objects).toBe(0);
    // A replay after a crash cut the file later: same name, more rows.
    await writeLake(lakeDir, [file(9)]);
    expect((await loader.load()).perTable['gps']).toEqual({ objects: 1, rows: 9, covered: 0 });
    expect((await tableCounts(warehouse))['gps']).toEqual({ rows: 9, ids: 9 });
    expect((await loader.load()).objects).toBe(0);
  });

  it('skips a corrupt object with its reason, loads the rest, and reports it again next run', async () => {
    const lakeDir = tempDir('wh-lake-');
    await writeCityLake(lakeDir, { kinds: ['gps'], perHour: 20, hours: 1, filesPerHour: 2 });
    const bad = 'curated/kind=gps/event_date=2024-05-01/event_hour=0/city.gps.v1+0+0000000000000009000.parquet';
    await writeFile(join(lakeDir, ...bad.split('/')), 'PAR1 not really parquet');
    const warehouse = await open(make);
    const store = createLocalFolderStore(lakeDir);
    onTeardown(() => store.close());
    const loader = createWarehouseLoader({ warehouse, store, tables: ['gps'] });
    onTeardown(() => loader.close());
    await loader.init();
    const result = await loader.load();
    expect(result.objects).toBe(2);
    expect(result.skipped.map((s) => s.key)).toEqual([bad]);
    expect(result.skipped[0]?.error.code).toBe('CLD_WAREHOUSE_OBJECT');
    expect(result.skipped[0]?.reason.length).toBeGreaterThan(0);
    expect((await tableCounts(warehouse))['gps']).toEqual({ rows: 20, ids: 20 });
    // Still pending (not in the ledger): reported again next run.
    expect((await loader.load()).skipped.map((s) => s.key)).toEqual([bad]);
    expect((await loader.status())[0]).toMatchObject({ objectsPending: 1 });
  });
});

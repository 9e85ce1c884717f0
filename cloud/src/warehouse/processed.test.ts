// The processed zone in the warehouse, on PGlite and on the PostgreSQL server: build, load, rebuild with
// late rows, load again → every processed table holds exactly the rows its catalog locations hold (read
// as Athena would, the registered location's files), each partition from the build the catalog names,
// never two builds' rows summed; a load with nothing rebuilt changes nothing.
import { join } from 'node:path';
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { writeCityLake } from '../../../test/support/city-lake.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { TEST_POSTGRES_URL, testSchema } from '../../../test/support/warehouse.ts';
import { filesAt, PARAM } from '../lake/versions.ts';
import { createLocalCatalog, type LocalCatalog } from '../ports/catalog/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { PROCESSED_TABLES } from '../processing/definitions.ts';
import { createDuckDBProcessing } from '../processing/engine.ts';
import { runProcessing } from '../processing/job.ts';
import { createWarehouseLoader } from './loader.ts';
import { createPgliteWarehouse } from './pglite.ts';
import type { Warehouse } from './port.ts';
import { createPostgresWarehouse } from './postgres.ts';
import { processedWarehouseTable, PROCESSED_LEDGER_TABLE } from './processed.ts';
import { createTableSql } from './schema.ts';

const START = Date.UTC(2024, 4, 1, 0);
const MIN = 60_000;

const ENGINES: [string, () => Promise<Warehouse>][] = [
  ['pglite', () => createPgliteWarehouse({ dataDir: join(tempDir('wh-pglite-'), 'db'), schema: 'city' })],
  ['postgres', async () => createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema: testSchema('whp') })],
];

/** A row as comparable text: timestamps as epoch ms (selected so), doubles to 9 significant digits. */
const norm = (row: Record<string, unknown>, names: readonly string[]): string =>
  JSON.stringify(names.map((n) => {
    const v = row[n];
    if (v === null || v === undefined) return null;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toPrecision(9));
    return v;
  }));

/** Every row of a processed table through the catalog only: the files of each registered location. */
async function lakeRows(catalog: LocalCatalog, dir: string, table: string): Promise<string[]> {
  const wt = processedWarehouseTable(PROCESSED_TABLES.find((t) => t.name === table) as (typeof PROCESSED_TABLES)[number]);
  const store = createLocalFolderStore(dir);
  const selects: string[] = [];
  for (const p of await catalog.partitions(table)) {
    for (const key of await filesAt(store, p.location)) {
      const cols = wt.columns.map((c) => {
        if (c.name === 'event_date') return `${quotedString(String(p.values[0]))} AS event_date`;
        if (c.name === 'event_hour') return `${Number(p.values[1])} AS event_hour`;
        return c.type === 'timestamp' ? `epoch_ms("${c.name}") AS "${c.name}"` : `"${c.name}"`;
      });
      selects.push(`SELECT ${cols.join(', ')} FROM read_parquet(${quotedString(store.locate(key))}, hive_partitioning = false)`);
    }
  }
  await store.close();
  if (selects.length === 0) return [];
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(`SET TimeZone = 'UTC'`);
    const rows = (await c.runAndReadAll(selects.join(' UNION ALL '))).getRowObjects();
    return rows.map((r) => norm(r, wt.columns.map((x) => x.name))).sort();
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function warehouseRows(warehouse: Warehouse, table: string): Promise<string[]> {
  const wt = processedWarehouseTable(PROCESSED_TABLES.find((t) => t.name === table) as (typeof PROCESSED_TABLES)[number]);
  const cols = wt.columns.map((c) => (c.type === 'timestamp' ? `CAST(EXTRACT(EPOCH FROM "${c.name}") * 1000 AS BIGINT) AS "${c.name}"` : `"${c.name}"`));
  const result = await warehouse.query(`SELECT ${cols.join(', ')} FROM "${table}"`);
  return result.rows.map((r) => norm(r, wt.columns.map((x) => x.name))).sort();
}

describe.each(ENGINES)('processed tables in the warehouse on %s', (_name, make) => {
  it('replaces each partition by its current build: warehouse = lake rows per processed table after rebuilds and late rows', async () => {
    const dir = tempDir('whp-lake-');
    await writeCityLake(dir, { devices: 80, startMs: START, hours: 2 });
    const store = createLocalFolderStore(dir);
    const catalog = createLocalCatalog(dir);
    onTeardown(() => catalog.close());
    onTeardown(() => store.close());
    const build = async (at: number, rebuild = false) => {
      const engine = await createDuckDBProcessing(dir, store, catalog);
      try {
        return await runProcessing({ store, catalog, engine, now: () => at, rebuild });
      } finally {
        await engine.close();
      }
    };
    const warehouse = await make();
    onTeardown(() => warehouse.close());
    const loader = createWarehouseLoader({ warehouse, store, tables: ['air_quality'], processed: { catalog } });
    onTeardown(() => loader.close());
    const plan = await loader.init();
    expect(plan.created).toEqual(expect.arrayContaining([PROCESSED_LEDGER_TABLE, ...PROCESSED_TABLES.map((t) => t.name)]));

    const converged = async () => {
      for (const t of PROCESSED_TABLES) {
        const lake = await lakeRows(catalog, dir, t.name);
        expect(lake.length, t.name).toBeGreaterThan(0);
        expect(await warehouseRows(warehouse, t.name), t.name).toEqual(lake);
        // The ledger names the build the catalog serves for every partition.
        const ledger = await warehouse.query(`SELECT event_date, event_hour, build, location, is_final FROM ${PROCESSED_LEDGER_TABLE} WHERE table_name = '${t.name}' ORDER BY event_date, event_hour`);
        const parts = await catalog.partitions(t.name);
        expect(ledger.rows, t.name).toEqual(
          parts.map((p) => ({ event_date: p.values[0], event_hour: Number(p.values[1]), build: p.parameters?.[PARAM.build], location: p.location, is_final: p.parameters?.[PARAM.final] === 'true' })),
        );
      }
    };

    // 01:40: hour 0 final, hour 1 open.
    await build(START + 100 * MIN);
    const first = await loader.load();
    expect(first.skipped).toEqual([]);
    expect(first.processed?.partitions).toBe(PROCESSED_TABLES.reduce((n, t) => n + (t.grain === 'day' ? 1 : 2), 0));
    await converged();
    const open = await warehouse.query(`SELECT event_hour, bool_and(is_final) AS f FROM camera_flow_15m GROUP BY event_hour ORDER BY event_hour`);
    expect(open.rows).toEqual([{ event_hour: 0, f: true }, { event_hour: 1, f: false }]);
    const samplesBefore = Number((await warehouse.query(`SELECT sum(samples) AS n FROM air_quality_station_hour WHERE event_hour = 0`)).rows[0]?.n);

    // Late air quality rows for hour 0 after it closed, hour 1 closes: rebuilds of both, loaded again.
    const late = await writeCityLake(dir, { devices: 80, startMs: START, kinds: ['air_quality'], idPrefix: 'late', rate: 0.25, firstOffset: 1_000_000n });
    const report = await build(START + 210 * MIN);
    expect(report.late.partitions).toBe(1);
    const second = await loader.load();
    expect(second.processed?.partitions).toBe(report.built.length);
    expect(second.processed?.perTable['air_quality_station_hour']?.partitions).toBe(2);
    await converged();
    const samplesAfter = Number((await warehouse.query(`SELECT sum(samples) AS n FROM air_quality_station_hour WHERE event_hour = 0`)).rows[0]?.n);
    expect(samplesAfter).toBe(samplesBefore + late.air_quality);
    expect((await warehouse.query(`SELECT count(*) AS n FROM camera_flow_15m WHERE NOT is_final`)).rows).toEqual([{ n: 0 }]);

    // A full rebuild gives new builds of the same rows: replaced, not added.
    await build(START + 215 * MIN, true);
    const third = await loader.load();
    expect(third.processed?.partitions).toBe(first.processed?.partitions);
    await converged();
    // Nothing rebuilt: nothing loaded; status has no lag.
    expect((await loader.load()).processed?.partitions).toBe(0);
    const status = await loader.status();
    const traffic = status.find((s) => s.table === 'traffic_district_5m');
    expect(traffic).toMatchObject({ objectsLoaded: 2, objectsPending: 0, lagHours: 0, lakeNewest: '2024-05-01/1', loadedNewest: '2024-05-01/1' });
    expect(traffic?.warehouseRows).toBe((await lakeRows(catalog, dir, 'traffic_district_5m')).length);
  });
});

describe('processed warehouse tables', () => {
  it('take their columns, a partition-and-group key and a time sort key from the definitions', () => {
    const incidents = processedWarehouseTable(PROCESSED_TABLES.find((t) => t.name === 'incidents') as (typeof PROCESSED_TABLES)[number]);
    expect(incidents.key).toEqual(['event_date', 'event_hour', 'incident_id', 'opened_at']);
    expect(incidents.sortKey).toBe('opened_at');
    const day = processedWarehouseTable(PROCESSED_TABLES.find((t) => t.name === 'weather_district_day') as (typeof PROCESSED_TABLES)[number]);
    expect(day.sortKey).toBe('day');
    const ddl = createTableSql(processedWarehouseTable(PROCESSED_TABLES[0] as (typeof PROCESSED_TABLES)[number]), 'redshift', 'city');
    expect(ddl).toContain('"district" VARCHAR(128) NOT NULL');
    expect(ddl).toContain('"is_final" BOOLEAN');
    expect(ddl).toMatch(/DISTSTYLE AUTO SORTKEY \("bucket_start"\)$/);
    for (const t of PROCESSED_TABLES) {
      const wt = processedWarehouseTable(t);
      expect(wt.columns.map((c) => c.name)).toEqual([...t.schema.columns.map((c) => c.name), 'event_date', 'event_hour']);
      for (const c of wt.columns) if (c.type === 'string') expect(c.maxLength, `${t.name}.${c.name}`).toBeGreaterThan(0);
    }
  });
});

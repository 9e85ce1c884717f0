// The processed zone built locally: incremental (only what changed), final once the hour closed, late
// rows rebuild a final partition and are counted, same inputs give the same rows, and every rebuild is
// a catalog switch to a fresh location whose predecessor lives out its grace period. Readers here go
// through the catalog only: the registered location's files, read all, as Athena or Spark would.
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { writeCityLake } from '../../../test/support/city-lake.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { createLocalCatalog, type LocalCatalog } from '../ports/catalog/index.ts';
import { openLake } from '../ports/query/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { PROCESSED_TABLES } from './definitions.ts';
import { createDuckDBProcessing } from './engine.ts';
import { runProcessing, type ProcessOptions } from './job.ts';
import { filesAt, PARAM, retiredOf } from '../lake/versions.ts';

const START = Date.UTC(2024, 4, 1, 0);
const MIN = 60_000;

async function setup(devices = 120) {
  const dir = tempDir('processing-');
  await writeCityLake(dir, { devices, startMs: START, hours: 2 });
  const store = createLocalFolderStore(dir);
  const catalog = createLocalCatalog(dir);
  onTeardown(() => catalog.close());
  onTeardown(() => store.close());
  const run = async (options: Partial<ProcessOptions> & { at: number }) => {
    const engine = await createDuckDBProcessing(dir, store, catalog);
    try {
      return await runProcessing({ store, catalog, engine, now: () => options.at, ...options });
    } finally {
      await engine.close();
    }
  };
  return { dir, store, catalog, run };
}

/** Every row of a processed table, read through the catalog only: the files of each registered location. */
async function throughCatalog(catalog: LocalCatalog, dir: string, table: string): Promise<string[]> {
  const store = createLocalFolderStore(dir);
  const files: string[] = [];
  for (const p of await catalog.partitions(table)) files.push(...(await filesAt(store, p.location)).map((k) => store.locate(k)));
  await store.close();
  if (files.length === 0) return [];
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(`SET TimeZone = 'UTC'`);
    const rows = (await c.runAndReadAll(`SELECT * EXCLUDE (event_date, event_hour) FROM read_parquet([${files.map(quotedString).join(', ')}], hive_partitioning = true)`)).getRowObjectsJson();
    return rows.map((r) => JSON.stringify(r)).sort();
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

describe('processing job (DuckDB)', () => {
  it('builds every table, marks closed hours final, and leaves unchanged partitions alone', async () => {
    const { dir, catalog, run } = await setup();
    // 01:40: hour 0 closed (lateness ≤ 30 min), hour 1 open; incidents and the day table still open.
    const first = await run({ at: START + 100 * MIN });
    for (const t of PROCESSED_TABLES) expect(first.built.filter((b) => b.table === t.name).length, t.name).toBe(t.grain === 'day' ? 1 : 2);
    for (const b of first.built) {
      const expected = b.table === 'incidents' || b.table === 'weather_district_day' ? false : b.partition.event_hour === 0;
      expect(b.final, `${b.table} ${b.partition.event_hour}`).toBe(expected);
      expect(b.action).toBe('new');
      expect(b.rows).toBeGreaterThan(0);
    }
    const parts = await catalog.partitions('traffic_district_5m');
    expect(parts.map((p) => [p.values.join('/'), p.parameters?.[PARAM.final]])).toEqual([['2024-05-01/0', 'true'], ['2024-05-01/1', 'false']]);
    expect(parts[0]?.location).toMatch(/^processed\/traffic_district_5m\/_v\/\d{8}T\d{6}Z-[0-9a-f]{6}\/event_date=2024-05-01\/event_hour=0\/$/);

    // The lake's views read the same rows the catalog's locations hold; is_final is a column too.
    const lake = await openLake(dir);
    try {
      const viewRows = (await lake.query('SELECT * EXCLUDE (event_date, event_hour) FROM traffic_district_5m')).rows.length;
      expect(viewRows).toBe((await throughCatalog(catalog, dir, 'traffic_district_5m')).length);
      const finals = await lake.query('SELECT event_hour, bool_and(is_final) AS f, count(*) AS n FROM camera_flow_15m GROUP BY event_hour ORDER BY event_hour');
      expect(finals.rows.map((r) => r.f)).toEqual([true, false]);
      const aqi = await lake.query('SELECT count(*) AS n FROM air_quality_station_hour WHERE aqi_pm25 IS NULL OR aqi_category IS NULL OR eea_band IS NULL');
      expect(aqi.rows[0]?.n).toBe(0);
    } finally {
      lake.close();
    }

    // Same time, same inputs: nothing to do.
    const again = await run({ at: START + 100 * MIN });
    expect(again.built).toEqual([]);
    // Hour 1 closes: its partitions are rebuilt once, as final; hour 0 stays.
    const closed = await run({ at: START + 160 * MIN });
    expect(closed.built.filter((b) => b.action === 'closed').map((b) => `${b.table}/${b.partition.event_hour}`).sort()).toEqual(
      PROCESSED_TABLES.filter((t) => t.grain === 'hour' && t.name !== 'incidents').map((t) => `${t.name}/1`).sort(),
    );
  });

  it('rebuilds a final partition that late rows reach, and counts them', async () => {
    const { dir, catalog, run } = await setup();
    await run({ at: START + 200 * MIN });
    const before = await catalog.partitions('air_quality_station_hour');
    expect(before.every((p) => p.parameters?.[PARAM.final] === 'true')).toBe(true);
    // Late: air quality rows of hour 0 arrive after it closed.
    const late = await writeCityLake(dir, { devices: 120, startMs: START, kinds: ['air_quality'], idPrefix: 'late', rate: 0.25, firstOffset: 1_000_000n });
    const report = await run({ at: START + 210 * MIN });
    expect(report.built.map((b) => `${b.table}/${b.partition.event_hour}/${b.action}`)).toEqual(['air_quality_station_hour/0/late']);
    expect(report.late).toEqual({ partitions: 1, rows: late.air_quality });
    const after = await catalog.partitions('air_quality_station_hour');
    expect(after[0]?.parameters).toMatchObject({ [PARAM.lateRebuilds]: '1', [PARAM.lateRows]: String(late.air_quality), [PARAM.final]: 'true' });
    expect(after[1]?.parameters?.[PARAM.lateRebuilds]).toBe('0');
  });

  it('gives the same rows for the same inputs, and deletes replaced versions only after the grace period', async () => {
    const { dir, store, catalog, run } = await setup(60);
    await run({ at: START + 200 * MIN });
    const rows = new Map<string, string[]>();
    for (const t of PROCESSED_TABLES) rows.set(t.name, await throughCatalog(catalog, dir, t.name));
    const firstLocations = (await catalog.partitions('gateway_health_hour')).map((p) => p.location);

    const rebuilt = await run({ at: START + 205 * MIN, rebuild: true, graceMs: 10 * MIN });
    expect(rebuilt.built.every((b) => b.action === 'rebuild')).toBe(true);
    for (const t of PROCESSED_TABLES) expect(await throughCatalog(catalog, dir, t.name), t.name).toEqual(rows.get(t.name));
    const parts = await catalog.partitions('gateway_health_hour');
    expect(parts.map((p) => p.location)).not.toEqual(firstLocations);
    expect(parts.map((p) => retiredOf(p).map((r) => r.location))).toEqual(firstLocations.map((l) => [l]));
    // Within the grace period the old files are still there for readers that listed them.
    for (const l of firstLocations) expect(await filesAt(store, l)).toHaveLength(1);

    const later = await run({ at: START + 216 * MIN, graceMs: 10 * MIN });
    expect(later.built).toEqual([]);
    expect(later.retired.locations).toBe(countPartitions());
    for (const l of firstLocations) expect(await filesAt(store, l)).toEqual([]);
    expect((await catalog.partitions('gateway_health_hour')).every((p) => retiredOf(p).length === 0)).toBe(true);
    for (const t of PROCESSED_TABLES) expect(await throughCatalog(catalog, dir, t.name), t.name).toEqual(rows.get(t.name));
  });

  it('switches nothing of a table whose files could not be stored, and fails the run naming it', async () => {
    const { dir, store, catalog } = await setup(20);
    // Puts run beside the next SELECTs: a failed one must still stop its table's switch.
    const failing = { ...store, put: async (key: string, scratch: string) => (key.includes('camera_flow_15m') ? Promise.reject(new Error('disk full')) : store.put(key, scratch)) };
    const engine = await createDuckDBProcessing(dir, failing, catalog);
    try {
      await expect(runProcessing({ store: failing, catalog, engine, now: () => START + 100 * MIN })).rejects.toThrow(/camera_flow_15m .*disk full/);
    } finally {
      await engine.close();
    }
    expect(await catalog.partitions('camera_flow_15m')).toEqual([]);
    // The next run, with a working store, builds it.
    const again = await (async () => {
      const e = await createDuckDBProcessing(dir, store, catalog);
      try {
        return await runProcessing({ store, catalog, engine: e, now: () => START + 100 * MIN });
      } finally {
        await e.close();
      }
    })();
    expect(again.built.filter((b) => b.table === 'camera_flow_15m')).toHaveLength(2);
  });

  it('refuses unknown tables and bad dates, naming them', async () => {
    const { run } = await setup(20);
    await expect(run({ at: START, tables: ['nope' as 'incidents'] })).rejects.toThrow(/unknown processed table nope/);
    await expect(run({ at: START, from: '2024-5-1' })).rejects.toThrow(/\/from must be YYYY-MM-DD/);
  });
});

/** Partitions of two hours: one per hourly table and hour, one for the day table. */
function countPartitions(): number {
  return PROCESSED_TABLES.reduce((n, t) => n + (t.grain === 'day' ? 1 : 2), 0);
}

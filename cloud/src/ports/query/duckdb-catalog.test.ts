import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRow, eventTable, exampleEvent, type Column } from '@city/protocol';
import { createLakeWriter, createParquetWriter, syncLakeCache, type ObjectSource } from '../../lake/index.ts';
import { createLocalCatalog } from '../catalog/index.ts';
import { createLocalFolderStore } from '../store/index.ts';
import { openLake } from './duckdb.ts';

const META = { gatewayId: 'gw-cat', receivedAt: Date.UTC(2024, 4, 1, 12) };
const vehicle = eventTable('vehicle');
const rowsOf = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    eventRow('vehicle', exampleEvent('vehicle', { eventId: `v-${i}`, seq: i, dateObserved: new Date(Date.UTC(2024, 4, 1, 10, i)).toISOString() }), META),
  );

describe('lake views from the catalog', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-qcat-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adds a view per registered table and widens built-in ones with catalog columns', async () => {
    const lakeDir = join(dir, 'lake');
    // A table of a zone the layout does not know, registered by its writer, with a column the curated table lacks.
    const extra: Column = { name: 'ingest_note', type: 'string', nullable: true, source: [] };
    const raw = { ...vehicle, name: 'staging_vehicle', columns: [...vehicle.columns, extra] };
    const parquet = await createParquetWriter();
    const path = join(lakeDir, 'staging', 'kind=vehicle', 'event_date=2024-05-01', 'event_hour=10', 'f.parquet');
    await mkdir(dirname(path), { recursive: true });
    await parquet.write(raw, rowsOf(3).map((r) => [...r, 'first load']), path);
    parquet.close();

    const catalog = createLocalCatalog(lakeDir);
    await catalog.ensureTable({ name: 'staging_vehicle', columns: raw.columns, partitionKeys: raw.partitionKeys, location: 'staging/kind=vehicle/' });
    await catalog.addPartitions('staging_vehicle', [{ values: ['2024-05-01', '10'], location: 'staging/kind=vehicle/event_date=2024-05-01/event_hour=10/' }]);
    await catalog.ensureTable({ name: 'vehicle', columns: [...vehicle.columns, extra], partitionKeys: vehicle.partitionKeys, location: 'curated/kind=vehicle/' });
    await catalog.close();

    const lake = await openLake(lakeDir);
    try {
      expect(lake.tables.find((t) => t.name === 'staging_vehicle')).toEqual({ name: 'staging_vehicle', files: 1 });
      const result = await lake.query('SELECT event_id, ingest_note, event_date, event_hour FROM staging_vehicle ORDER BY event_id');
      expect(result.rows).toEqual([0, 1, 2].map((i) => ({ event_id: `v-${i}`, ingest_note: 'first load', event_date: '2024-05-01', event_hour: 10 })));
      // The curated view has no files yet, but already the catalog's columns.
      const described = await lake.query('DESCRIBE vehicle');
      expect(described.rows.map((r) => r.column_name)).toContain('ingest_note');
      expect((await lake.counts()).find((c) => c.table === 'vehicle')?.rows).toBe(0);
    } finally {
      lake.close();
    }
  });

  it('queries a remote lake through a local cache that follows the objects', async () => {
    const remoteDir = join(dir, 'remote');
    const writer = await createLakeWriter(createLocalFolderStore(remoteDir));
    for (const hour of [10, 11]) {
      await writer.write({
        table: 'vehicle',
        partition: { event_date: '2024-05-01', event_hour: hour },
        topic: 'city.vehicle.v1',
        kafkaPartition: 0,
        firstOffset: BigInt(hour * 10),
        lastOffset: BigInt(hour * 10 + 1),
        rows: rowsOf(2),
      });
    }
    await writer.close();
    const remote = createLocalFolderStore(remoteDir);
    const downloads: string[] = [];
    // Stands in for S3 GetObject: the cache only sees list() and download().
    const source: ObjectSource = {
      list: (prefix) => remote.list(prefix),
      async download(key, toPath) {
        downloads.push(key);
        await copyFile(join(remoteDir, ...key.split('/')), toPath);
      },
    };
    const cacheDir = join(dir, 'cache');
    expect(await syncLakeCache(source, cacheDir)).toEqual({ downloaded: 2, kept: 0, removed: 0 });
    let lake = await openLake(cacheDir);
    expect((await lake.query('SELECT count(*) AS n FROM vehicle')).rows).toEqual([{ n: 4 }]);
    lake.close();

    // One object disappears remotely (e.g. compacted away): the cache drops it, fetches nothing again.
    const [first] = await remote.list('curated/');
    await rm(join(remoteDir, ...(first as string).split('/')));
    expect(await syncLakeCache(source, cacheDir)).toEqual({ downloaded: 0, kept: 1, removed: 1 });
    expect(downloads).toHaveLength(2);
    lake = await openLake(cacheDir);
    expect((await lake.query('SELECT count(*) AS n FROM vehicle')).rows).toEqual([{ n: 2 }]);
    lake.close();
    await remote.close();

    const failing: ObjectSource = { list: async () => ['curated/kind=vehicle/x.parquet'], download: async () => Promise.reject(new Error('403')) };
    await expect(syncLakeCache(failing, join(dir, 'cache2'))).rejects.toThrow(/fetching curated\/kind=vehicle\/x.parquet: 403/);
  });
});

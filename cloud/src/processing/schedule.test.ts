// The schedule keeps one DuckDB engine open across rounds: each round must still see what the sink
// wrote since the last (new files in a catalog location) and a compaction's switch of a location, so
// late rows rebuild the final partition they reach, exactly as a freshly opened engine would.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleEvent, rowsOf } from '../../../test/support/lake.ts';
import { writeCityLake } from '../../../test/support/city-lake.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { compactLake, createLakeWriter, partitionPrefix, tablePrefix, tableSchema } from '../lake/index.ts';
import { createLocalCatalog } from '../ports/catalog/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { newBuildId, versionLocation } from '../lake/versions.ts';
import { processedTablePrefix } from './definitions.ts';
import { createProcessingSchedule, SWEEP_EVERY_MS } from './schedule.ts';
import type { ProcessReport } from './job.ts';

const START = Date.UTC(2024, 4, 1, 0);
const MIN = 60_000;
const HOUR0 = { event_date: '2024-05-01', event_hour: 0 };

const builds = (r: ProcessReport | undefined) => r?.built.map((b) => `${b.table}/${b.partition.event_hour}/${b.action}`).sort();

describe('processing schedule', () => {
  it('keeps its engine across rounds and sees files written and locations switched since the last round', { timeout: 120_000 }, async () => {
    const dir = tempDir('schedule-');
    // Air quality in small files, registered in the catalog as the sink registers it (the base folders),
    // so compaction has files to merge and switches partitions by version.
    await writeCityLake(dir, { devices: 60, startMs: START, hours: 2, kinds: ['weather', 'gateway_health'] });
    await writeCityLake(dir, { devices: 60, startMs: START, hours: 2, kinds: ['air_quality'], rowsPerFile: 30 });
    const store = createLocalFolderStore(dir);
    const catalog = createLocalCatalog(dir);
    onTeardown(() => store.close());
    onTeardown(() => catalog.close());
    const schema = tableSchema('air_quality');
    await catalog.ensureTable({ name: 'air_quality', columns: schema.columns, partitionKeys: schema.partitionKeys, location: tablePrefix('air_quality') });
    await catalog.addPartitions('air_quality', [0, 1].map((h) => ({ values: ['2024-05-01', String(h)], location: partitionPrefix('air_quality', { event_date: '2024-05-01', event_hour: h }) })));

    // 01:40: hour 0 closed, hour 1 open. Rounds are driven by round(); the timer never fires.
    const at = START + 100 * MIN;
    const failures: string[] = [];
    const log = (level: string, message: string, fields?: Record<string, unknown>) => {
      const error = fields?.['error'];
      if (level !== 'debug' && error instanceof Error) failures.push(`${message}: ${error.message}`);
    };
    const schedule = createProcessingSchedule({ lakeDir: dir, everyMs: 3_600_000, store, now: () => at, tables: ['air_quality_station_hour'], log });
    onTeardown(() => schedule.close());
    expect(builds(await schedule.round())).toEqual(['air_quality_station_hour/0/new', 'air_quality_station_hour/1/new']);
    expect(builds(await schedule.round())).toEqual([]);

    // Late rows of hour 0 land in its registered location: the kept engine's view must list them.
    const late = await writeCityLake(dir, { devices: 60, startMs: START, kinds: ['air_quality'], idPrefix: 'late', rate: 0.25, firstOffset: 1_000_000n });
    const third = await schedule.round();
    expect(builds(third)).toEqual(['air_quality_station_hour/0/late']);
    expect(third?.late).toEqual({ partitions: 1, rows: late.air_quality });

    // Compaction switches hour 0 to a new version location (the old one stays readable for the grace
    // period); the sink, following the catalog, then writes more late rows there. A view still reading
    // the old location would miss them.
    const compacted = await compactLake(store, { catalog, keepNewest: false, tables: ['air_quality'], graceMs: 3_600_000, now: () => at });
    expect(compacted.some((c) => c.merged.length > 0)).toBe(true);
    const location = (await catalog.partition('air_quality', ['2024-05-01', '0']))?.location;
    expect(location).not.toBe(partitionPrefix('air_quality', HOUR0));
    expect(builds(await schedule.round())).toEqual([]);
    // The writer closes its store: its own, as the sink's is.
    const writer = await createLakeWriter(createLocalFolderStore(dir), undefined, { catalog });
    const events = Array.from({ length: 5 }, (_, i) => sampleEvent('air_quality', i, { idPrefix: 'later', deviceId: 'air-quality-0', dateObserved: START + 30 * MIN + i * 1000 }));
    const key = await writer.write({ table: 'air_quality', partition: HOUR0, topic: 'city.air_quality.v1', kafkaPartition: 1, firstOffset: 0n, lastOffset: 4n, rows: rowsOf('air_quality', events) });
    await writer.close();
    expect(key.startsWith(location ?? '?')).toBe(true);
    const fifth = await schedule.round();
    expect(builds(fifth)).toEqual(['air_quality_station_hour/0/late']);
    expect(fifth?.late).toEqual({ partitions: 1, rows: 5 });
    expect(failures).toEqual([]);
    expect(schedule.stats()).toMatchObject({ rounds: 5, errors: 0 });
  });

  it('sweeps orphaned versions on its first round, then at most every SWEEP_EVERY_MS, and again after a failed round', { timeout: 120_000 }, async () => {
    const dir = tempDir('schedule-sweep-');
    await writeCityLake(dir, { devices: 60, startMs: START, kinds: ['gateway_health'] });
    const store = createLocalFolderStore(dir);
    onTeardown(() => store.close());
    let at = START + 100 * MIN;
    // A build killed before its switch: a version folder no partition references.
    const orphan = async (): Promise<string> => {
      const key = `${versionLocation(processedTablePrefix('gateway_health_hour'), HOUR0, newBuildId(at - 2 * MIN))}part-00000.parquet`;
      const scratch = await store.scratchPath(key);
      writeFileSync(scratch, 'PAR1');
      await store.put(key, scratch);
      return key;
    };
    const exists = async (key: string) => (await store.list(key.slice(0, key.lastIndexOf('/') + 1))).includes(key);
    const schedule = createProcessingSchedule({ lakeDir: dir, everyMs: 3_600_000, store, now: () => at, graceMs: MIN, tables: ['gateway_health_hour'], log: () => undefined });
    onTeardown(() => schedule.close());

    const first = await orphan();
    expect((await schedule.round())?.retired.orphans).toBe(1);
    expect(await exists(first)).toBe(false);
    // Within SWEEP_EVERY_MS of the last sweep a round does not list the versions.
    const second = await orphan();
    at += MIN;
    expect((await schedule.round())?.retired.orphans).toBe(0);
    expect(await exists(second)).toBe(true);
    at += SWEEP_EVERY_MS;
    expect((await schedule.round())?.retired.orphans).toBe(1);
    expect(await exists(second)).toBe(false);
    // A failed round (the lake's catalog unreadable) makes the next round sweep.
    const third = await orphan();
    at += MIN;
    const catalogFile = join(dir, '_catalog', 'catalog.json');
    const saved = readFileSync(catalogFile);
    writeFileSync(catalogFile, 'not json');
    expect(await schedule.round()).toBeUndefined();
    writeFileSync(catalogFile, saved);
    expect((await schedule.round())?.retired.orphans).toBe(1);
    expect(await exists(third)).toBe(false);
    expect(schedule.stats()).toMatchObject({ rounds: 4, errors: 1 });
  });
});

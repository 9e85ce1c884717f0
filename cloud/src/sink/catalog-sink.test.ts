// The sink on the real broker of the test run, registering in the local catalog; the named queries then
// answer from the lake it wrote.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exampleEvent, recordHeaders, waitFor, withTimeout } from '@city/protocol';
import { runCli } from '../../../test/support/cli.ts';
import { connectTestKafka, scenario, startTestSink, type TestKafka } from '../../../test/support/sink.ts';
import { tempDir } from '../../../test/support/teardown.ts';
import { createLocalCatalog } from '../ports/catalog/index.ts';
import { namedQuerySql, openLake } from '../ports/query/index.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, '../cli/main.ts');

describe('sink → local catalog → named queries', () => {
  let kafka: TestKafka;
  beforeAll(async () => {
    kafka = await connectTestKafka(brokers, 'catalog-sink-test');
  });
  afterAll(async () => {
    await kafka?.close();
  });

  it('registers what it writes and the named query answers from it', async () => {
    const s = await scenario(brokers, tempDir('cloud-catsink-'), 'cat');
    const { id, topics, lakeDir } = s;
    const at = (hour: number, minute: number) => new Date(Date.UTC(2024, 4, 1, hour, minute)).toISOString();
    const events = [
      exampleEvent('traffic_camera', { eventId: `${id}-1`, deviceId: 'cam-a', dateObserved: at(8, 0), intensity: 10, occupancy: 0.1, congested: false }),
      exampleEvent('traffic_camera', { eventId: `${id}-2`, deviceId: 'cam-a', dateObserved: at(8, 30), intensity: 20, occupancy: 0.3, congested: true }),
      exampleEvent('traffic_camera', { eventId: `${id}-3`, deviceId: 'cam-a', dateObserved: at(9, 0), intensity: 7, occupancy: 0.2, congested: false }),
    ];
    await kafka.produce(
      topics.events.traffic_camera,
      events.map((e) => ({
        key: e.deviceId,
        value: JSON.stringify(e),
        headers: recordHeaders({ gatewayId: 'gw-cat', receivedAt: Date.UTC(2024, 4, 1, 9, 30), eventId: e.eventId }),
      })),
    );

    const catalog = createLocalCatalog(lakeDir);
    const sink = startTestSink(brokers, s, { maxAgeMs: 200, catalog });
    try {
      await withTimeout(sink.start(), 60_000, 'sink start');
      // Both hour partitions registered: the sink catalogs before committing.
      await waitFor(async () => ((await catalog.tables()).find((t) => t.name === 'traffic_camera')?.partitions.length ?? 0) >= 2, {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: 'partitions registered',
      });
    } finally {
      await withTimeout(sink.close(), 30_000, 'sink close');
      await catalog.close();
    }

    const [table] = (await createLocalCatalog(lakeDir).tables()).filter((t) => t.name === 'traffic_camera');
    expect(table?.location).toBe('curated/kind=traffic_camera/');
    expect(table?.partitions.map((p) => p.values).sort()).toEqual([
      ['2024-05-01', '8'],
      ['2024-05-01', '9'],
    ]);

    const lake = await openLake(lakeDir);
    try {
      const { rows } = await lake.query(namedQuerySql('traffic_per_camera_hour', 'duckdb'));
      expect(rows).toEqual([
        { hour_start: '2024-05-01T08:00:00.000Z', camera: 'cam-a', periods: 2, vehicles: 30, avg_occupancy: 0.2, congested_periods: 1 },
        { hour_start: '2024-05-01T09:00:00.000Z', camera: 'cam-a', periods: 1, vehicles: 7, avg_occupancy: 0.2, congested_periods: 0 },
      ]);
    } finally {
      lake.close();
    }
  });

  it('refuses catalog flags of run that cannot work, as usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--catalog', 'hive'], /--catalog must be local or glue/],
      [['--catalog', 'glue', '--glue-database', 'city'], /--catalog glue needs the lake on S3/],
      [['--catalog', 'glue', '--s3-bucket', 'city-lake'], /--catalog glue needs --glue-database/],
      [['--glue-database', 'city'], /--glue-\* flags need --catalog glue/],
      [['--catalog', 'glue', '--s3-bucket', 'city-lake', '--glue-database', 'City Lake'], /database/],
      [['--catalog', 'glue', '--s3-bucket', 'city-lake', '--glue-database', 'city', '--glue-projection-from', 'May'], /YYYY-MM-DD/],
    ];
    const dir = tempDir('cloud-catsink-');
    for (const [flags, message] of cases) {
      const result = await runCli(CLI, ['run', '--brokers', '127.0.0.1:1', '--lake', dir, ...flags], { timeoutMs: 30_000 });
      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});

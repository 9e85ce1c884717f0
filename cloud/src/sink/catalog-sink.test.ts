// The sink on the real broker of the test run, registering in the local catalog; the named queries then
// answer from the lake it wrote.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { exampleEvent, HEADERS, kafkaTopicSet, SCHEMA_VERSION, topicSpecs } from '@city/protocol';
import { ensureTopics } from '../../test/support/kafka.ts';
import { createLocalCatalog } from './catalog-local.ts';
import { silentLog } from './log.ts';
import { namedQuerySql } from './queries.ts';
import { openLake } from './query.ts';
import { createSink } from './sink.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, 'cli.ts');

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe('sink → local catalog → named queries', () => {
  let dir: string;
  let producer: Producer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-catsink-'));
    producer = new Kafka({ clientId: 'catalog-sink-test', brokers, logLevel: logLevel.NOTHING }).producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await withTimeout(producer.connect(), 30_000, 'producer connect');
  });
  afterAll(async () => {
    await withTimeout(producer.disconnect(), 20_000, 'producer disconnect').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('registers what it writes and the named query answers from it', async () => {
    const id = `cat${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(id);
    await ensureTopics(brokers, topicSpecs(topics));
    const lakeDir = join(dir, id);
    const at = (hour: number, minute: number) => new Date(Date.UTC(2024, 4, 1, hour, minute)).toISOString();
    const events = [
      exampleEvent('traffic_camera', { eventId: `${id}-1`, deviceId: 'cam-a', dateObserved: at(8, 0), intensity: 10, occupancy: 0.1, congested: false }),
      exampleEvent('traffic_camera', { eventId: `${id}-2`, deviceId: 'cam-a', dateObserved: at(8, 30), intensity: 20, occupancy: 0.3, congested: true }),
      exampleEvent('traffic_camera', { eventId: `${id}-3`, deviceId: 'cam-a', dateObserved: at(9, 0), intensity: 7, occupancy: 0.2, congested: false }),
    ];
    await producer.send({
      topic: topics.events.traffic_camera,
      messages: events.map((e) => ({
        key: e.deviceId,
        value: JSON.stringify(e),
        headers: {
          [HEADERS.gatewayId]: 'gw-cat',
          [HEADERS.receivedAt]: String(Date.UTC(2024, 4, 1, 9, 30)),
          [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
          [HEADERS.eventId]: e.eventId,
        },
      })),
    });

    const catalog = createLocalCatalog(lakeDir);
    const sink = createSink({ brokers, groupId: `sink-${id}`, lakeDir, topics, maxAgeMs: 200, catalog, log: silentLog });
    try {
      await withTimeout(sink.start(), 60_000, 'sink start');
      // Wait (bounded) until both hour partitions are registered: the sink catalogs before committing.
      await withTimeout(
        (async () => {
          for (;;) {
            const table = (await catalog.tables()).find((t) => t.name === 'traffic_camera');
            if ((table?.partitions.length ?? 0) >= 2) return;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })(),
        60_000,
        'partitions registered',
      );
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
    for (const [flags, message] of cases) {
      const args = [CLI, 'run', '--brokers', '127.0.0.1:1', '--lake', dir, ...flags];
      const result = await promisify(execFile)(process.execPath, args, { timeout: 30_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});

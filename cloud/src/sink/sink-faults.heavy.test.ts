// Fault test of the lake writer on S3: a CLI sink child writing through a proxy that fails every few S3
// requests is killed with SIGKILL K times in the middle of its files, then an in-process sink finishes.
// SQL over the lake must then count exactly the produced events, each event id once, although the
// stream also carries duplicates (the same event sent again, as a gateway retry or replay does).
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLog } from '@city/protocol';
import { spawnCli } from '../../../test/support/cli.ts';
import { lakeFolder } from '../../../test/support/lake.ts';
import { startFaultProxy, startS3, type FaultProxy, type TestS3 } from '../../../test/support/s3.ts';
import { connectTestKafka, eventMessages, scenario, startTestSink, type TestKafka } from '../../../test/support/sink.ts';
import { objectSource, syncLakeCache } from '../lake/index.ts';
import { openLake } from '../ports/query/index.ts';
import { createS3Store } from '../ports/store/index.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, '../cli/main.ts');
const KILLS = 3;
const root = lakeFolder('sink-faults-');

let kafka: TestKafka;
let s3: TestS3;
let proxy: FaultProxy;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint, { everyNth: 5 });
  kafka = await connectTestKafka(brokers, 'sink-faults-test');
});

afterAll(async () => {
  await kafka?.close();
  await proxy?.stop();
  await s3?.stop();
});

const messages = (id: string, kind: 'gps' | 'vehicle', from: number, count: number) => eventMessages(id, kind, from, count, { gatewayId: 'gw-faults' });

describe('sink faults on S3', () => {
  it(`killed with SIGKILL ${KILLS} times mid-file while S3 fails intermittently, the lake holds every event exactly once`, async () => {
    const sc = await scenario(brokers, root, 'faults');
    const { id, topics, groupId } = sc;
    const prefix = `lake-${id}`;
    const produce = (topic: string, batch: ReturnType<typeof messages>) => kafka.produce(topic, batch);

    // 3000 gps + 800 vehicle events, and 300 of them sent a second time (retries) further down the log.
    await produce(topics.events.gps, messages(id, 'gps', 0, 3000));
    await produce(topics.events.vehicle, messages(id, 'vehicle', 0, 800));
    await produce(topics.events.gps, messages(id, 'gps', 1000, 300));
    let gps = 3000;

    const env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: s3.region };
    for (let k = 0; k < KILLS; k++) {
      const child = spawnCli(
        CLI,
        [
          'run', '--brokers', brokers.join(','), '--group', groupId, '--topic-suffix', id,
          '--s3-bucket', s3.bucket, '--s3-prefix', prefix, '--s3-endpoint', proxy.endpoint,
          '--max-rows', '97', '--max-age-ms', '200', '--session-timeout-ms', '6000',
        ],
        { env },
      );
      await child.waitForOutput(/"message":"flushed"/, 60_000);
      // Mid-file: the child keeps writing files when it is killed.
      child.signal('SIGKILL');
      await child.exited;
      // More events, plus events the killed sink may already have committed sent again.
      await produce(topics.events.gps, [...messages(id, 'gps', gps, 200), ...messages(id, 'gps', k * 100, 50)]);
      gps += 200;
    }

    // Each child got at least one flush through (files and commit) before it was killed.
    const objectsAfterKills = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }));
    expect(objectsAfterKills.KeyCount ?? 0).toBeGreaterThan(0);

    const flushErrors: string[] = [];
    let duplicates = 0;
    const sink = startTestSink(brokers, { ...sc, lakeDir: `s3://${s3.bucket}/${prefix}` }, {
      maxRows: 97,
      maxAgeMs: 200,
      sessionTimeoutMs: 6000,
      retryInitialMs: 50,
      retryMaxMs: 500,
      log: silentLog,
      store: createS3Store({ bucket: s3.bucket, prefix, endpoint: proxy.endpoint, region: s3.region, credentials: s3.credentials, maxAttempts: 1 }),
    });
    sink.on('flushError', (e) => flushErrors.push(e.error.code));
    sink.on('flush', (f) => {
      duplicates += f.duplicates;
    });
    await sink.start();
    await expect.poll(() => kafka.lagging(groupId, topics), { timeout: 90_000, interval: 500 }).toBe(0);
    await sink.close();

    const local = join(root, id);
    const bucket = createS3Store({ bucket: s3.bucket, prefix, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials });
    try {
      expect((await syncLakeCache(objectSource(bucket), local)).downloaded).toBeGreaterThan(0);
    } finally {
      await bucket.close();
    }
    const lake = await openLake(local);
    try {
      const result = await lake.query(
        `SELECT 'gps' AS t, count(*) AS n, count(DISTINCT event_id) AS ids FROM gps UNION ALL SELECT 'vehicle', count(*), count(DISTINCT event_id) FROM vehicle ORDER BY t`,
      );
      expect(result.rows.map((r) => [r.t, Number(r.n), Number(r.ids)])).toEqual([
        ['gps', gps, gps],
        ['vehicle', 800, 800],
      ]);
      const raw = await lake.query(
        `SELECT kind, count(*) AS n, count(DISTINCT event_id) AS ids FROM read_parquet('${local}/raw/**/*.parquet', hive_partitioning = true) GROUP BY kind ORDER BY kind`,
      );
      expect(raw.rows.map((r) => [r.kind, Number(r.n), Number(r.ids)])).toEqual([
        ['gps', gps, gps],
        ['vehicle', 800, 800],
      ]);
    } finally {
      lake.close();
    }
    const injected = proxy.faults['500'] + proxy.faults['503'] + proxy.faults.drop;
    expect(injected).toBeGreaterThan(0);
    // With one attempt per request, faults the final sink met surface as retried write errors.
    expect(flushErrors.every((code) => code === 'CLD_STORE_PUT')).toBe(true);
    console.log(JSON.stringify({ kills: KILLS, objectsAfterKills: objectsAfterKills.KeyCount, requests: proxy.requests, injected: proxy.faults, sinkWriteErrors: flushErrors.length, duplicatesDroppedByFinalSink: duplicates, gps }));
  }, 240_000);
});

// Fault test of the lake writer on S3: a CLI sink child writing through a proxy that fails every few S3
// requests is killed with SIGKILL K times in the middle of its files, then an in-process sink finishes.
// SQL over the lake must then count exactly the produced events, each event id once, although the
// stream also carries duplicates (the same event sent again, as a gateway retry or replay does).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Kafka, logLevel, Partitioners, type Admin, type Message, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HEADERS, kafkaTopicSet, SCHEMA_VERSION, topicSpecs, type EventKind } from '@city/protocol';
import { ensureTopics } from '../../test/support/kafka.ts';
import { startFaultProxy, startS3, type FaultProxy, type TestS3 } from '../../test/support/s3.ts';
import { silentLog } from './log.ts';
import { openLake } from './query.ts';
import { createS3Store } from './s3-store.ts';
import { sampleEvent } from './samples.ts';
import { createSink, type Sink } from './sink.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, 'cli.ts');
const KILLS = 3;

let kafka: Kafka;
let producer: Producer;
let admin: Admin;
let s3: TestS3;
let proxy: FaultProxy;
let root: string;
const children: ChildProcess[] = [];
let sink: Sink | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sink-faults-'));
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint, { everyNth: 5 });
  kafka = new Kafka({ clientId: 'sink-faults-test', brokers, logLevel: logLevel.NOTHING });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await sink?.close().catch(() => undefined);
  await Promise.all([producer?.disconnect(), admin?.disconnect()]).catch(() => undefined);
  await proxy?.stop();
  await s3?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

function messages(id: string, kind: EventKind, from: number, count: number): Message[] {
  return Array.from({ length: count }, (_, i) => {
    const event = sampleEvent(kind, from + i, { idPrefix: id });
    return {
      key: event.deviceId,
      value: JSON.stringify(event),
      headers: {
        [HEADERS.gatewayId]: 'gw-faults',
        [HEADERS.receivedAt]: String(Date.UTC(2024, 4, 1, 6, 30)),
        [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
        [HEADERS.eventId]: event.eventId,
      },
    };
  });
}

async function produce(topic: string, batch: Message[]): Promise<void> {
  for (let i = 0; i < batch.length; i += 500) await producer.send({ topic, messages: batch.slice(i, i + 500), acks: -1 });
}

async function lagging(groupId: string, topics: string[]): Promise<number> {
  const committed = new Map<string, bigint>();
  for (const t of await admin.fetchOffsets({ groupId, topics })) {
    for (const p of t.partitions) committed.set(`${t.topic}/${p.partition}`, BigInt(p.offset));
  }
  let behind = 0;
  for (const topic of topics) {
    for (const p of await admin.fetchTopicOffsets(topic)) {
      if (p.high !== '0' && (committed.get(`${topic}/${p.partition}`) ?? -1n) < BigInt(p.high)) behind++;
    }
  }
  return behind;
}

/** Copies the lake out of the bucket into a folder, for DuckDB. */
async function download(prefix: string, into: string): Promise<number> {
  let token: string | undefined;
  let n = 0;
  do {
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      const key = object.Key as string;
      const body = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
      const path = join(into, key.slice(prefix.length + 1));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, await (body.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array())));
      n++;
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return n;
}

describe('sink faults on S3', () => {
  it(`killed with SIGKILL ${KILLS} times mid-file while S3 fails intermittently, the lake holds every event exactly once`, async () => {
    const id = `faults${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(id);
    const topicNames = [...Object.values(topics.events), topics.deadletter];
    await ensureTopics(brokers, topicSpecs(topics));
    const groupId = `sink-${id}`;
    const prefix = `lake-${id}`;

    // 3000 gps + 800 vehicle events, and 300 of them sent a second time (retries) further down the log.
    await produce(topics.events.gps, messages(id, 'gps', 0, 3000));
    await produce(topics.events.vehicle, messages(id, 'vehicle', 0, 800));
    await produce(topics.events.gps, messages(id, 'gps', 1000, 300));
    let gps = 3000;

    const env = { ...process.env, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: s3.region };
    for (let k = 0; k < KILLS; k++) {
      const child = spawn(
        process.execPath,
        [
          CLI, 'run', '--brokers', brokers.join(','), '--group', groupId, '--topic-suffix', id,
          '--s3-bucket', s3.bucket, '--s3-prefix', prefix, '--s3-endpoint', proxy.endpoint,
          '--max-rows', '97', '--max-age-ms', '200', '--session-timeout-ms', '6000',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], env },
      );
      children.push(child);
      let stderr = '';
      const flushed = new Promise<void>((resolve, reject) => {
        child.stderr?.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes('"message":"flushed"')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited with ${code}: ${stderr}`)));
      });
      await flushed;
      // Mid-file: the child keeps writing files when it is killed.
      child.kill('SIGKILL');
      await once(child, 'exit').catch(() => undefined);
      // More events, plus events the killed sink may already have committed sent again.
      await produce(topics.events.gps, [...messages(id, 'gps', gps, 200), ...messages(id, 'gps', k * 100, 50)]);
      gps += 200;
    }

    // Each child got at least one flush through (files and commit) before it was killed.
    const objectsAfterKills = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }));
    expect(objectsAfterKills.KeyCount ?? 0).toBeGreaterThan(0);

    const flushErrors: string[] = [];
    let duplicates = 0;
    sink = createSink({
      brokers,
      groupId,
      lakeDir: `s3://${s3.bucket}/${prefix}`,
      topics,
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
    await expect.poll(() => lagging(groupId, topicNames), { timeout: 90_000, interval: 500 }).toBe(0);
    await sink.close();

    const local = join(root, id);
    expect(await download(prefix, local)).toBeGreaterThan(0);
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

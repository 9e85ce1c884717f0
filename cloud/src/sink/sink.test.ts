// The sink against the real Kafka broker of the test run: every test has its own topics and group.
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message } from 'kafkajs';
import { HEADERS, kafkaTopicSet, recordHeaders, silentLog, sleep, withTimeout, type DeadLetter, type EventKind } from '@city/protocol';
import { spawnCli } from '../../../test/support/cli.ts';
import { expectedCounts, lakeCounts, sampleEvent } from '../../../test/support/lake.ts';
import { connectTestKafka, eventMessages, RECEIVED_AT, scenario as newScenario, startTestSink, type Scenario, type TestKafka } from '../../../test/support/sink.ts';
import { tempDir } from '../../../test/support/teardown.ts';
import { parseDataFileKey } from '../lake/index.ts';
import { openLake } from '../ports/query/index.ts';
import { createLocalFolderStore, type ObjectStore } from '../ports/store/index.ts';
import type { FlushErrorInfo } from './events.ts';
import { createSink } from './sink.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, '../cli/main.ts');

let kafka: TestKafka;

beforeAll(async () => {
  kafka = await connectTestKafka(brokers, 'sink-test');
});

afterAll(async () => {
  await kafka?.close();
});

/** Topics, group and a lake folder of the current test (removed after it, once its sinks are closed). */
const scenario = (name: string): Promise<Scenario> => newScenario(brokers, tempDir('cloud-sink-'), name);

const startSink = (s: Scenario, options: Parameters<typeof startTestSink>[2] = {}) => startTestSink(brokers, s, options);
const produce = (topic: string, messages: Message[]) => kafka.produce(topic, messages);
const offsets = (s: Scenario) => kafka.offsets(s.groupId, s.topics);
const headers = (extra: { eventId?: string } = {}) => recordHeaders({ gatewayId: 'gw-test', receivedAt: RECEIVED_AT, eventId: extra.eventId ?? null });

async function waitForRows(lakeDir: string, expected: Record<string, number>, timeout = 45_000): Promise<void> {
  await expect
    .poll(
      async () => {
        const counts = await lakeCounts(lakeDir);
        return Object.fromEntries(Object.keys(expected).map((k) => [k, counts[k] ?? 0]));
      },
      { timeout, interval: 250 },
    )
    .toEqual(expected);
}

describe('sink with a real Kafka broker', () => {
  it('writes every record exactly once, keeps refused ones as dead letters, and commits the end offsets', async () => {
    const s = await scenario('all');
    const perKind: Partial<Record<EventKind, number>> = { vehicle: 120, gps: 90, weather: 30, air_quality: 25, traffic_camera: 20, emergency: 7, phone: 40, gateway_health: 3 };
    for (const [kind, n] of Object.entries(perKind) as [EventKind, number][]) await produce(s.topics.events[kind], eventMessages(s.id, kind, 0, n));
    const letters: DeadLetter[] = [0, 1, 2].map((i) => ({
      stage: 'gateway',
      reason: '/speed must be <= 100 [maximum]',
      problems: [{ path: '/speed', rule: 'maximum', message: 'must be <= 100' }],
      payload: `{"speed":${400 + i}}`,
      payloadEncoding: 'utf8',
      mqttTopic: `city/v1/devices/bus-${i}/vehicle`,
      clientId: `bus-${i}`,
      deviceId: `bus-${i}`,
      kind: 'vehicle',
      gatewayId: 'gw-test',
      receivedAt: RECEIVED_AT + i,
    }));
    await produce(s.topics.deadletter, letters.map((l) => ({ key: l.deviceId ?? null, value: JSON.stringify(l), headers: headers() })));
    // Refused here: bad JSON on an event topic and on the dead-letter topic, and an event breaking its schema.
    await produce(s.topics.events.vehicle, [
      { key: 'bus-9', value: '{"kind":"vehicle",', headers: headers({ eventId: 'broken-1' }) },
      { key: 'bus-9', value: 'not json at all', headers: headers({ eventId: 'broken-2' }) },
      { key: 'gps-1', value: JSON.stringify({ ...sampleEvent('gps', 1, { idPrefix: s.id }), speed: 9999 }), headers: headers({ eventId: `${s.id}-gps-1` }) },
    ]);
    await produce(s.topics.events.gps, [{ key: 'gps-0', value: JSON.stringify({ ...sampleEvent('gps', 1000, { idPrefix: s.id }), speed: 9999 }), headers: headers({ eventId: `${s.id}-gps-1000` }) }]);
    await produce(s.topics.deadletter, [{ key: null, value: '<<garbage>>', headers: headers() }]);
    const refused = 5;

    const sink = startSink(s, { maxRows: 40 });
    const flushes: number[] = [];
    // Curated and dead-letter rows; the raw zone holds one more row per event-topic record.
    sink.on('flush', (f) => flushes.push(Object.entries(f.byKind).reduce((a, [t, n]) => (t.startsWith('raw_') ? a : a + n), 0)));
    await sink.start();
    await waitForRows(s.lakeDir, expectedCounts(perKind, letters.length + refused));
    await withTimeout(sink.close(), 20_000, 'close');
    expect(sink.state).toBe('closed');

    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts(perKind, letters.length + refused));
    const { committed, end } = await offsets(s);
    expect(committed).toEqual(end);
    expect(sink.stats()).toMatchObject({ rejected: refused, buffered: 0, writeErrors: 0, commitErrors: 0 });
    const events = Object.values(perKind).reduce((a, b) => a + b, 0);
    expect(flushes.reduce((a, b) => a + b, 0)).toBe(events + letters.length + refused);

    const lake = await openLake(s.lakeDir);
    try {
      const stages = await lake.query('SELECT stage, count(*) AS n FROM deadletter GROUP BY stage ORDER BY stage');
      expect(stages.rows).toEqual([
        { stage: 'gateway', n: 3 },
        { stage: 'sink', n: refused },
      ]);
      const sinkLetters = await lake.query(`SELECT kind, event_id, reason, payload, gateway_id FROM deadletter WHERE stage = 'sink' ORDER BY payload`);
      expect(sinkLetters.rows.map((r) => r.payload)).toEqual(
        expect.arrayContaining(['{"kind":"vehicle",', 'not json at all', '<<garbage>>']),
      );
      for (const r of sinkLetters.rows) expect(r.reason).toMatch(/\[(json|maximum|topic)\]/);
      expect(sinkLetters.rows.find((r) => r.payload === 'not json at all')).toMatchObject({ kind: 'vehicle', event_id: 'broken-2', gateway_id: 'gw-test' });
      // A gps event on the vehicle topic is refused for both its speed and its kind.
      expect(sinkLetters.rows.find((r) => r.event_id === `${s.id}-gps-1`)?.reason).toMatch(/\[maximum\].*\[topic\]/);
      const gateway = await lake.query(`SELECT reason, received_at, event_date, event_hour FROM deadletter WHERE stage = 'gateway' ORDER BY received_at`);
      expect(gateway.rows[0]).toEqual({ reason: letters[0]?.reason, received_at: '2024-05-01T06:30:00.000Z', event_date: '2024-05-01', event_hour: 6 });
      const vehicle = await lake.query('SELECT min(date_observed) AS first, max(received_at) AS received, count(DISTINCT gateway_id) AS gateways FROM vehicle');
      expect(vehicle.rows[0]).toEqual({ first: '2024-05-01T00:00:00.000Z', received: '2024-05-01T06:30:00.000Z', gateways: 1 });
    } finally {
      lake.close();
    }

    // Every file is named after its Kafka source; no scratch file is left.
    const files = await createLocalFolderStore(s.lakeDir).list('');
    expect(files.length).toBeGreaterThan(9);
    for (const key of files) {
      const parsed = parseDataFileKey(key);
      expect(parsed, key).toBeDefined();
      expect(parsed?.topic.endsWith(`.${s.id}`)).toBe(true);
    }
    expect(await readdir(join(s.lakeDir, '_scratch'))).toEqual([]);
  }, 90_000);

  it('closed with rows only buffered, it flushes and commits them; a restart reads only what is new', async () => {
    const s = await scenario('closebuf');
    await produce(s.topics.events.weather, eventMessages(s.id, 'weather', 0, 60));
    const first = startSink(s, { maxAgeMs: 600_000 });
    await first.start();
    await expect.poll(() => first.stats().consumed, { timeout: 30_000 }).toBe(60);
    expect(first.stats().flushes).toBe(0);
    expect(await lakeCounts(s.lakeDir)).toMatchObject({ weather: 0 });
    await withTimeout(first.close(), 20_000, 'close');
    expect(await lakeCounts(s.lakeDir)).toMatchObject({ weather: 60 });

    await produce(s.topics.events.weather, eventMessages(s.id, 'weather', 60, 15));
    const second = startSink(s);
    await second.start();
    await waitForRows(s.lakeDir, expectedCounts({ weather: 75 }, 0));
    await withTimeout(second.close(), 20_000, 'close');
    expect(second.stats().consumed).toBe(15);
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ weather: 75 }, 0));
    const { committed, end } = await offsets(s);
    expect(committed).toEqual(end);
  }, 90_000);

  it('abandoned mid-flush (close deadline), nothing is committed and a restart rewrites the same files', async () => {
    const s = await scenario('abandon');
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 0, 300));
    await produce(s.topics.events.phone, eventMessages(s.id, 'phone', 0, 200));
    // The first file is stored, then the store dawdles past the close deadline.
    const local = createLocalFolderStore(s.lakeDir);
    let dawdling: Promise<void> | undefined;
    const slow: ObjectStore = {
      ...local,
      put(key, scratch) {
        dawdling = (async () => {
          await local.put(key, scratch);
          await sleep(300);
        })();
        return dawdling;
      },
    };
    const first = startSink(s, { maxAgeMs: 600_000, closeTimeoutMs: 100, store: slow });
    await first.start();
    await expect.poll(() => first.stats().consumed, { timeout: 30_000 }).toBe(500);
    await expect(first.close()).rejects.toMatchObject({ code: 'CLD_CLOSE_TIMEOUT' });
    // The put under way when the deadline passed ends; nothing after it may start.
    await dawdling;
    const written = await local.list('curated/');
    expect(written).toHaveLength(1);
    const afterCrash = await offsets(s);
    expect(Object.values(afterCrash.committed).every((o) => o === '-1')).toBe(true);

    const second = startSink(s);
    await second.start();
    await waitForRows(s.lakeDir, expectedCounts({ vehicle: 300, phone: 200 }, 0));
    await withTimeout(second.close(), 20_000, 'close');
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ vehicle: 300, phone: 200 }, 0));
    // The replay wrote the abandoned file again under the same name instead of adding a second copy.
    expect(await local.list('curated/')).toContain(written[0]);
    const { committed, end } = await offsets(s);
    expect(committed).toEqual(end);
  }, 90_000);

  it('killed with SIGKILL mid-way through a stream, a restart loses and duplicates nothing', async () => {
    const s = await scenario('kill');
    const total = 3000;
    await produce(s.topics.events.gps, eventMessages(s.id, 'gps', 0, total));
    const child = spawnCli(CLI, ['run', '--brokers', brokers.join(','), '--lake', s.lakeDir, '--group', s.groupId, '--topic-suffix', s.id, '--max-rows', '50', '--max-age-ms', '100', '--session-timeout-ms', '6000']);
    await child.waitForOutput(/"message":"flushed"/, 30_000);
    child.signal('SIGKILL');
    await child.exited;
    const partial = await lakeCounts(s.lakeDir);
    expect(partial.gps).toBeGreaterThan(0);
    expect(partial.gps).toBeLessThan(total);

    const sink = startSink(s);
    await sink.start();
    await waitForRows(s.lakeDir, expectedCounts({ gps: total }, 0));
    await withTimeout(sink.close(), 20_000, 'close');
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ gps: total }, 0));
    const { committed, end } = await offsets(s);
    expect(committed).toEqual(end);
  }, 90_000);

  it('when the store fails, it commits nothing, reports the error and retries until the rows are written', async () => {
    const s = await scenario('storefail');
    await produce(s.topics.events.emergency, eventMessages(s.id, 'emergency', 0, 30));
    const local = createLocalFolderStore(s.lakeDir);
    let failures = 3;
    const flaky: ObjectStore = {
      ...local,
      async put(key, scratch) {
        if (failures > 0) {
          failures--;
          throw new Error('disk on fire');
        }
        return local.put(key, scratch);
      },
    };
    const sink = startSink(s, { store: flaky, retryInitialMs: 50, retryMaxMs: 200 });
    const errors: FlushErrorInfo[] = [];
    let committedAtFirstError: Record<string, string> | undefined;
    const firstError = new Promise<void>((resolve) => {
      sink.on('flushError', (info) => {
        errors.push(info);
        if (errors.length === 1) {
          void offsets(s).then((o) => {
            committedAtFirstError = o.committed;
            resolve();
          });
        }
      });
    });
    await sink.start();
    await withTimeout(firstError, 30_000, 'first flush error');
    expect(Object.values(committedAtFirstError ?? { x: 'missing' }).every((o) => o === '-1')).toBe(true);
    await waitForRows(s.lakeDir, expectedCounts({ emergency: 30 }, 0));
    await withTimeout(sink.close(), 20_000, 'close');
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors[0]).toMatchObject({ stage: 'write', attempt: 1, error: { code: 'CLD_STORE_PUT', canRetry: true } });
    expect(sink.stats().writeErrors).toBe(errors.length);
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ emergency: 30 }, 0));
    const { committed, end } = await offsets(s);
    expect(committed).toEqual(end);
  }, 90_000);

  it('shares the partitions of a group between sinks across rebalances without loss or duplicates', async () => {
    const s = await scenario('rebalance');
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 0, 200));
    const a = startSink(s, { clientId: 'sink-a' });
    await a.start();
    await waitForRows(s.lakeDir, expectedCounts({ vehicle: 200 }, 0));

    const b = startSink(s, { clientId: 'sink-b' });
    const rebalanced = new Promise<void>((resolve) => a.once('rebalance', () => resolve()));
    await b.start();
    await withTimeout(rebalanced, 30_000, 'rebalance of the first sink');
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 200, 300));
    await produce(s.topics.events.gps, eventMessages(s.id, 'gps', 0, 100));
    await waitForRows(s.lakeDir, expectedCounts({ vehicle: 500, gps: 100 }, 0));
    expect(a.stats().consumed).toBeGreaterThan(0);
    expect(b.stats().consumed).toBeGreaterThan(0);

    await withTimeout(a.close(), 20_000, 'close a');
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 500, 100));
    await waitForRows(s.lakeDir, expectedCounts({ vehicle: 600, gps: 100 }, 0));
    await withTimeout(b.close(), 20_000, 'close b');
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ vehicle: 600, gps: 100 }, 0));
    const { committed, end } = await offsets(s);
    expect(committed).toEqual(end);
  }, 120_000);
});

describe('sink files, duplicates and catalog', () => {
  it('cuts the same files whatever the batches and timing: keys depend on the record stream only', async () => {
    const s = await scenario('determ');
    // Kafka timestamps 4 s apart: the 60 s record-time rule ends a segment every 15 records or so. They end
    // in the recent past: older than the broker's retention (7 days), their log segments would be deleted
    // by its next retention check (every 5 minutes) while the sinks read them — this test's old flake.
    const base = Date.now() - 600 * 4_000 - 60_000;
    const stamped = (from: number, count: number): Message[] =>
      eventMessages(s.id, 'gps', from, count).map((m, i) => ({ ...m, timestamp: String(base + (from + i) * 4_000) }));
    await produce(s.topics.events.gps, stamped(0, 300));
    const options = { maxRows: 40, maxSpanMs: 60_000, maxAgeMs: 600_000 };
    // One sink reads a backlog in big batches; the other reads the same stream while it is produced.
    const first = startSink({ ...s, groupId: `${s.groupId}-a`, lakeDir: `${s.lakeDir}-a` }, options);
    await first.start();
    const second = startSink({ ...s, groupId: `${s.groupId}-b`, lakeDir: `${s.lakeDir}-b` }, options);
    await second.start();
    for (let i = 300; i < 600; i += 20) await produce(s.topics.events.gps, stamped(i, 20));
    await expect.poll(() => first.stats().consumed + second.stats().consumed, { timeout: 45_000 }).toBe(1200);
    await withTimeout(Promise.all([first.close(), second.close()]), 30_000, 'close');
    const keysA = await createLocalFolderStore(`${s.lakeDir}-a`).list('curated/');
    const keysB = await createLocalFolderStore(`${s.lakeDir}-b`).list('curated/');
    expect(keysA.length).toBeGreaterThan(600 / 40);
    expect(keysB).toEqual(keysA);
    expect(await lakeCounts(`${s.lakeDir}-a`)).toMatchObject(expectedCounts({ gps: 600 }, 0));
  }, 90_000);

  it('drops events sent again (same id) within the window, counts them, and catalogs before committing', async () => {
    const s = await scenario('dedup');
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 0, 100));
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 20, 30));
    const calls: string[] = [];
    const committedAtCatalog: string[] = [];
    const catalog = {
      async ensureTable(table: { name: string; location: string }) {
        calls.push(`table ${table.name} ${table.location}`);
      },
      async addPartitions(table: string, partitions: readonly { values: string[]; location: string }[]) {
        calls.push(...partitions.map((p) => `partition ${table} ${p.values.join('/')} ${p.location}`));
        if (committedAtCatalog.length === 0) committedAtCatalog.push(...Object.values((await offsets(s)).committed));
      },
      async close() {},
    };
    let duplicates = 0;
    const sink = startSink(s, { catalog, maxAgeMs: 300 });
    sink.on('flush', (f) => (duplicates += f.duplicates));
    await sink.start();
    await waitForRows(s.lakeDir, expectedCounts({ vehicle: 100 }, 0));
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 90, 20));
    await waitForRows(s.lakeDir, expectedCounts({ vehicle: 110 }, 0));
    await withTimeout(sink.close(), 20_000, 'close');
    expect(duplicates).toBe(40);
    expect(sink.stats().duplicates).toBe(40);
    // A restarted sink rebuilds its window from Kafka: the same events sent again are still dropped.
    await produce(s.topics.events.vehicle, eventMessages(s.id, 'vehicle', 0, 10));
    const again = startSink(s, { catalog });
    await again.start();
    await expect.poll(() => again.stats().duplicates, { timeout: 30_000 }).toBe(10);
    await withTimeout(again.close(), 20_000, 'close');
    expect(await lakeCounts(s.lakeDir)).toMatchObject(expectedCounts({ vehicle: 110 }, 0));
    // The second sink wrote no row (all duplicates): one table and one partition registered, before any commit.
    expect(calls).toEqual([
      'table vehicle curated/kind=vehicle/',
      'partition vehicle 2024-05-01/0 curated/kind=vehicle/event_date=2024-05-01/event_hour=0/',
      'table raw_vehicle raw/kind=vehicle/',
      'partition raw_vehicle 2024-05-01/0 raw/kind=vehicle/event_date=2024-05-01/event_hour=0/',
    ]);
    // The raw zone holds each kept record as received, once.
    const lake = await openLake(s.lakeDir);
    try {
      const raw = await lake.query(
        `SELECT count(*) AS n, count(DISTINCT event_id) AS ids, bool_and(valid) AS valid, min(payload_encoding) AS enc, max(gateway_id) AS gw, max(kind) AS kind
         FROM read_parquet('${s.lakeDir}/raw/**/*.parquet', hive_partitioning = true)`,
      );
      expect(raw.rows[0]).toEqual({ n: 110, ids: 110, valid: true, enc: 'utf8', gw: 'gw-test', kind: 'vehicle' });
      const sample = await lake.query(`SELECT payload, headers FROM read_parquet('${s.lakeDir}/raw/**/*.parquet') WHERE event_id = '${s.id}-vehicle-7'`);
      expect(JSON.parse(String(sample.rows[0]?.payload))).toMatchObject({ eventId: `${s.id}-vehicle-7`, kind: 'vehicle' });
      expect(JSON.parse(String(sample.rows[0]?.headers))).toMatchObject({ [HEADERS.gatewayId]: 'gw-test' });
    } finally {
      lake.close();
    }
    expect(committedAtCatalog.length).toBeGreaterThan(0);
    expect(committedAtCatalog.every((o) => o === '-1')).toBe(true);
  }, 90_000);
});

describe('sink lifecycle', () => {
  it('validates options once, naming the field', () => {
    expect(() => createSink({ brokers: [], lakeDir: '/tmp/x' })).toThrow(/\/brokers/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', maxRows: 0 })).toThrow(/\/maxRows must be >= 1/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', maxRows: 10, maxBufferedRows: 5 })).toThrow(/maxBufferedRows/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', maxBytes: 10 })).toThrow(/\/maxBytes must be >= 1024/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', maxSpanMs: 0 })).toThrow(/\/maxSpanMs/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', dedupWindow: 0 })).toThrow(/\/dedupWindow/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', catalog: {} as never })).toThrow(/\/catalog must be a CatalogPort/);
    expect(() => createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', compactEveryMs: -1 })).toThrow(/\/compactEveryMs must be >= 0/);
    const sink = createSink({ brokers: ['localhost:9092'], lakeDir: '/tmp/x', groupId: undefined });
    expect(sink.options).toMatchObject({ groupId: 'city-sink', maxRows: 50_000, maxAgeMs: 5_000, maxSpanMs: 300_000, rawZone: true, fromBeginning: true });
    expect(sink.options).toMatchObject({ compactEveryMs: 60_000, compactTargetBytes: 128 * 1024 * 1024 });
    expect(sink.options.topics.deadletter).toBe('city.deadletter.v1');
  });

  it('closes idempotently with one promise, and refuses to start after close', async () => {
    const sink = createSink({ brokers, lakeDir: join(tempDir('cloud-sink-'), 'lifecycle'), log: silentLog });
    const a = sink.close();
    expect(sink.close()).toBe(a);
    await a;
    expect(sink.state).toBe('closed');
    await expect(sink.start()).rejects.toMatchObject({ code: 'CLD_CLOSED' });
  });

  it('starts once: a second start is CLD_ALREADY_STARTED', async () => {
    const s = await scenario('twice');
    const sink = startSink(s);
    await sink.start();
    expect(sink.state).toBe('running');
    await expect(sink.start()).rejects.toMatchObject({ code: 'CLD_ALREADY_STARTED' });
    await withTimeout(sink.close(), 20_000, 'close');
    expect(sink.state).toBe('closed');
  }, 60_000);

  it('fails to start with a catalogued error when its topics do not exist', async () => {
    const s = { topics: kafkaTopicSet(`missing${randomUUID().slice(0, 8)}`) };
    const sink = startTestSink(brokers, { ...s, id: 'missing', groupId: 'sink-missing', lakeDir: join(tempDir('cloud-sink-'), 'missing') });
    const err = await withTimeout(sink.start(), 60_000, 'start').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLD_KAFKA_START', canRetry: true });
    expect((err as Error).message).toContain(`topics do not exist: ${s.topics.events.vehicle}, `);
  }, 90_000);
});

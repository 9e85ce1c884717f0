// Alerts and KPI windows as data, end to end on the run's real Kafka broker and PostgreSQL: the live
// engine publishes them → the sink writes the lake tables (registered in the catalog, queried by DuckDB
// and the named query `alerts`) → the loader puts them in the warehouse exactly once, emitted_at only
// increasing → the Power BI Lambda (Data API stand-in on the same PostgreSQL) pushes them to the local
// Power BI contract server.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Message } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { alertLakeRow, exampleEvent, kafkaTopicSet, liveTopicSet, liveTopicSpecs, recordHeaders, silentLog, topicSpecs, waitFor, withTimeout, type EventKind } from '@city/protocol';
import { startDataApi } from '../../../test/support/data-api.ts';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { startPowerBiServer } from '../../../test/support/powerbi.ts';
import { connectTestKafka, type TestKafka } from '../../../test/support/sink.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { dropSchema, TEST_POSTGRES_URL, testSchema } from '../../../test/support/warehouse.ts';
import { createLocalCatalog } from '../ports/catalog/local.ts';
import { openLake } from '../ports/query/duckdb.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { namedQuerySql } from '../ports/query/named.ts';
import { createSink } from '../sink/sink.ts';
import { createLiveTablesLoader } from '../warehouse/live-loader.ts';
import { createWarehouseLoader } from '../warehouse/loader.ts';
import { createRedshiftWarehouse } from '../warehouse/redshift.ts';
import { createTableSql, LEDGER_TABLE_DEF } from '../warehouse/schema.ts';
import { liveWarehouseDdl } from './lambda/tables.ts';
import { createLakeWriter } from '../lake/writer.ts';
import { createPgliteWarehouse } from '../warehouse/pglite.ts';
import { createPostgresWarehouse } from '../warehouse/postgres.ts';
import { createHandler } from './lambda/handler.ts';
import { createLive } from './live.ts';
import { staticTokenSource } from './powerbi/token.ts';

const brokers = inject('kafkaBrokers');
const T0 = Date.parse('2026-12-01T12:00:00.000Z');
let kafka: TestKafka;

beforeAll(async () => {
  kafka = await connectTestKafka(brokers, 'live-tables-test');
});
afterAll(async () => {
  await kafka?.close();
});

function message(kind: EventKind, overrides: Record<string, unknown>): Message {
  const e = exampleEvent(kind, overrides as never) as { eventId: string; deviceId: string };
  return { key: e.deviceId, value: JSON.stringify(e), headers: recordHeaders({ gatewayId: 'gw-live', receivedAt: T0, eventId: e.eventId }) };
}

function lakeStore(dir: string) {
  const store = createLocalFolderStore(dir);
  onTeardown(() => store.close());
  return store;
}

async function pgQuery(text: string): Promise<pg.QueryResult> {
  const db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await db.connect();
  try {
    return await db.query(text);
  } finally {
    await db.end();
  }
}

describe('alerts and KPI windows as lake and warehouse tables', () => {
  it('live engine → topics → lake → warehouse (exactly once, emitted_at increasing) → the Power BI Lambda', async () => {
    const id = `lt${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(id);
    const liveTopics = liveTopicSet(id);
    await ensureTopics(brokers, [...topicSpecs(topics), ...liveTopicSpecs(liveTopics)]);
    const lakeDir = join(tempDir('live-tables-'), 'lake');
    const catalog = createLocalCatalog(lakeDir);

    // Vehicles in two 5-minute windows, then event time moves on so they become final; unhealthy air then
    // clean air (AQI raises and clears); a high-severity incident opens and closes.
    const events: [string, Message[]][] = [];
    const vehicles: Message[] = [];
    for (let i = 0; i < 120; i++) {
      const device = `veh-${i % 12}`;
      vehicles.push(message('vehicle', { eventId: `${id}-v${i}`, deviceId: device, seq: i, dateObserved: new Date(T0 + i * 5_000).toISOString(), location: { lat: 52.37, lon: 4.89 }, speed: 5 + (i % 7) }));
    }
    for (let i = 0; i < 12; i++) vehicles.push(message('vehicle', { eventId: `${id}-w${i}`, deviceId: `veh-${i}`, seq: 1_000 + i, dateObserved: new Date(T0 + 900_000).toISOString(), location: { lat: 52.37, lon: 4.89 } }));
    events.push([topics.events.vehicle, vehicles]);
    events.push([
      topics.events.air_quality,
      [
        message('air_quality', { eventId: `${id}-a1`, deviceId: 'aq-1', dateObserved: new Date(T0 + 60_000).toISOString(), pm25: 80 }),
        message('air_quality', { eventId: `${id}-a2`, deviceId: 'aq-1', dateObserved: new Date(T0 + 3_700_000).toISOString(), pm25: 4 }),
      ],
    ]);
    events.push([
      topics.events.emergency,
      [
        message('emergency', { eventId: `${id}-e1`, deviceId: 'amb-1', incidentId: `inc-${id}`, severity: 'high', incidentStatus: 'open', dateObserved: new Date(T0 + 5_000).toISOString() }),
        message('emergency', { eventId: `${id}-e2`, deviceId: 'amb-1', incidentId: `inc-${id}`, severity: 'high', incidentStatus: 'closed', dateObserved: new Date(T0 + 90_000).toISOString() }),
      ],
    ]);
    for (const [topic, messages] of events) await kafka.produce(topic, messages);

    const live = createLive({ brokers, groupId: `${id}-live`, topics, liveTopics, log: silentLog, tickMs: 200, idleTimeoutMs: 1_500, sessionTimeoutMs: 6_000, allowedLatenessMs: 60_000, mergeGraceMs: 1_000 });
    onTeardown(() => withTimeout(live.close(), 30_000, 'closing the live engine').catch(() => undefined));
    const finals = new Set<string>();
    const transitions = new Set<string>();
    live.on('kpi', (u) => {
      if (u.final) finals.add(`${u.kpi}|${u.key}|${u.windowStart}|${u.revision}`);
    });
    live.on('alert', (a) => transitions.add(`${a.alertId}|${a.state}`));
    const sink = createSink({ brokers, groupId: `${id}-sink`, lakeDir, topics, liveTopics: { kpi: liveTopics.kpi, alerts: liveTopics.alerts }, catalog, maxAgeMs: 300, compactEveryMs: 0, log: silentLog });
    onTeardown(() => withTimeout(sink.close(), 20_000, 'closing the sink').catch(() => undefined));
    await live.start();
    await sink.start();

    await waitFor(() => [...transitions].filter((t) => t.endsWith('|cleared')).length >= 2 && finals.size >= 2, { timeoutMs: 45_000, what: () => `alerts cleared and windows final: ${[...transitions].join(' ')}; finals ${finals.size}` });
    // The lake has every transition and every final revision the engine published (replays aside, no fewer).
    const lake = await openLake(lakeDir, { catalog });
    onTeardown(() => lake.close());
    const lakeKeys = async () => {
      await lake.refresh();
      const a = await lake.query(`SELECT DISTINCT alert_id || '|' || state AS k FROM alerts`);
      const k = await lake.query(`SELECT DISTINCT kpi || '|' || key || '|' || strftime(window_start, '%Y-%m-%dT%H:%M:%S.%g') || 'Z|' || CAST(revision AS VARCHAR) AS k FROM kpi_windows WHERE final`);
      return { alerts: new Set(a.rows.map((r) => String(r.k))), finals: new Set(k.rows.map((r) => String(r.k))) };
    };
    await waitFor(async () => {
      const got = await lakeKeys();
      return [...transitions].every((t) => got.alerts.has(t)) && [...finals].every((f) => got.finals.has(f));
    }, { timeoutMs: 30_000, what: 'the lake to hold what the live engine published' });
    const inLake = await lakeKeys();
    expect(inLake.alerts).toEqual(transitions);

    // Registered in the catalog like the event tables, partitioned by date and hour.
    const registered = new Map((await catalog.tables()).map((t) => [t.name, t]));
    expect(registered.get('alerts')?.partitions.map((p) => p.values)).toContainEqual(['2026-12-01', '12']);
    expect(registered.get('kpi_windows')?.columns.map((c) => c.name)).toEqual(expect.arrayContaining(['kpi', 'window_start', 'values_json', 'partial_json']));

    // The named query: the AQI and incident alerts, each at its latest (cleared) transition.
    const named = await lake.query(namedQuerySql('alerts', 'duckdb'));
    const byRule = new Map(named.rows.map((r) => [String(r.rule), r]));
    expect(byRule.get('aqi')).toMatchObject({ state: 'cleared', key: 'aq-1', transitions: 2 });
    expect(byRule.get('incident')).toMatchObject({ state: 'cleared', key: `inc-${id}`, transitions: 2 });
    expect((await lake.query(namedQuerySql('alerts', 'duckdb', { open: 'true' }))).rows.filter((r) => r.rule === 'aqi' || r.rule === 'incident')).toEqual([]);

    // Warehouse: PostgreSQL, loaded twice; the second load finds nothing new.
    const schema = testSchema('lt');
    onTeardown(() => dropSchema(schema));
    const warehouse = createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema });
    onTeardown(() => warehouse.close());
    const loader = createWarehouseLoader({ warehouse, store: lakeStore(lakeDir), catalog, tables: [], liveTables: true, log: silentLog });
    onTeardown(() => loader.close());
    await loader.init();
    const first = await loader.load();
    expect(first.skipped).toEqual([]);
    expect(first.perTable['alerts']?.objects).toBeGreaterThan(0);
    const count = async (table: string, where = 'TRUE') => Number((await pgQuery(`SELECT count(*) AS n FROM "${schema}".${table} WHERE ${where}`)).rows[0].n);
    expect(await count('alerts')).toBe(inLake.alerts.size);
    expect(await count('kpi_windows')).toBe((await lakeKeys()).finals.size);
    expect(await count('kpi_windows', 'NOT final')).toBe(0);
    expect((await loader.load()).objects).toBe(0);
    expect(await count('alerts')).toBe(inLake.alerts.size);

    // The Lambda pushes what the warehouse holds.
    const powerbi = await startPowerBiServer();
    onTeardown(() => powerbi.close());
    const { client } = startDataApi();
    const handler = createHandler({
      env: { REDSHIFT_WORKGROUP: 'city-wg', REDSHIFT_DATABASE: 'dev', REDSHIFT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:wh', WAREHOUSE_SCHEMA: schema, POWERBI_API: powerbi.apiBase, POWERBI_DATASET: 'City live', POWERBI_WORKSPACE_ID: 'ws-1' },
      dataClient: client,
      tokens: staticTokenSource(powerbi.token),
      log: silentLog,
    });
    const run = await handler({}, {});
    expect(run.tables.find((t) => t.source === 'alerts')).toMatchObject({ read: inLake.alerts.size, pushed: inLake.alerts.size });
    expect(new Set(powerbi.rows('City live', 'alerts').map((r) => `${String(r['alert_id'])}|${String(r['state'])}`))).toEqual(transitions);
    const pushedTraffic = powerbi.rows('City live', 'traffic_district_5m');
    expect(pushedTraffic.length).toBe(await count('kpi_windows', `kpi = 'traffic_district_5m'`));
    expect(pushedTraffic.every((r) => r['final'] === true && typeof r['samples'] === 'number')).toBe(true);

    // An alert published now with an old record timestamp (its file lands after the newest row): loaded
    // with an emitted_at past every row already there, so the Lambda's watermark does not skip it.
    const newestBefore = (await pgQuery(`SELECT max(emitted_at) AS m FROM "${schema}".alerts`)).rows[0].m as Date;
    const late = { alertId: `heat|st-${id}|2026-12-01T11:00:00.000Z`, rule: 'heat', key: `st-${id}`, state: 'raised', raisedAt: '2026-12-01T12:10:00.000Z', clearedAt: null, value: 31, threshold: 30, severity: 'warning', message: 'heat' };
    await kafka.producer.send({ topic: liveTopics.alerts, messages: [{ key: late.alertId, value: JSON.stringify(late), timestamp: String(T0) }] });
    await waitFor(async () => (await loader.load()).perTable['alerts']?.rows === 1, { timeoutMs: 30_000, what: 'the late alert loaded' });
    const lateRow = (await pgQuery(`SELECT emitted_at FROM "${schema}".alerts WHERE alert_id = '${late.alertId}'`)).rows[0].emitted_at as Date;
    expect(lateRow.getTime()).toBeGreaterThan(newestBefore.getTime());
    const second = await handler({}, {});
    expect(second.tables.find((t) => t.source === 'alerts')).toMatchObject({ read: 1, pushed: 1 });
    expect(powerbi.rows('City live', 'alerts').filter((r) => r['alert_id'] === late.alertId)).toHaveLength(1);
  }, 180_000);

  it('loads the same lake into PGlite, also through INSERT statements (the Redshift path, split to fit its limits), with the same rows', async () => {
    const root = tempDir('live-tables-pglite-');
    const lakeDir = join(root, 'lake');
    const id = `ltp${randomUUID().slice(0, 8)}`;
    const liveTopics = liveTopicSet(id);
    await ensureTopics(brokers, [...topicSpecs(kafkaTopicSet(id)), ...liveTopicSpecs(liveTopics)]);
    // Records straight on the live topics, as the engine writes them: an alert raised, escalated, cleared;
    // a window's early update and two final revisions; and a record that is not an alert.
    const alert = { alertId: `wind|ws-1|${id}`, rule: 'wind', key: 'ws-1', state: 'raised', raisedAt: '2026-12-01T12:02:00.000Z', clearedAt: null, value: 18, threshold: 17.2, severity: 'warning', message: 'wind' };
    const window = { kpi: 'traffic_district_5m', key: 'Centrum', windowStart: '2026-12-01T12:00:00.000Z', windowEnd: '2026-12-01T12:05:00.000Z', emittedAt: '2026-12-01T12:05:01.000Z', partial: { samples: 3 }, values: { samples: 3, vehicles: 2 }, sources: 1 };
    const ts = (s: number) => String(T0 + s * 1_000);
    await kafka.producer.send({
      topic: liveTopics.alerts,
      messages: [
        { key: alert.alertId, value: JSON.stringify(alert), timestamp: ts(1) },
        { key: alert.alertId, value: JSON.stringify({ ...alert, value: 25, threshold: 24.5, severity: 'critical' }), timestamp: ts(2) },
        { key: alert.alertId, value: JSON.stringify({ ...alert, state: 'cleared', clearedAt: '2026-12-01T13:10:00.000Z', value: 10 }), timestamp: ts(3) },
        { key: 'junk', value: '{"alertId": 5}', timestamp: ts(4) },
      ],
    });
    await kafka.producer.send({
      topic: liveTopics.kpi,
      messages: [
        { key: 'k', value: JSON.stringify({ ...window, final: false, revision: 1 }), timestamp: ts(1) },
        { key: 'k', value: JSON.stringify({ ...window, final: true, revision: 2 }), timestamp: ts(2) },
        { key: 'k', value: JSON.stringify({ ...window, final: true, revision: 3, values: { samples: 4, vehicles: 2 } }), timestamp: ts(3) },
      ],
    });
    const catalog = createLocalCatalog(lakeDir);
    const sink = createSink({ brokers, groupId: `${id}-sink`, lakeDir, topics: kafkaTopicSet(id), liveTopics: { kpi: liveTopics.kpi, alerts: liveTopics.alerts }, catalog, maxAgeMs: 300, compactEveryMs: 0, log: silentLog });
    onTeardown(() => withTimeout(sink.close(), 20_000, 'closing the sink').catch(() => undefined));
    await sink.start();
    await waitFor(() => (sink.stats().rows.alerts ?? 0) === 3 && (sink.stats().rows.kpi_windows ?? 0) === 3 && (sink.stats().rows.deadletter ?? 0) === 1, {
      timeoutMs: 30_000,
      what: () => `the sink to write the live records: ${JSON.stringify(sink.stats().rows)}`,
    });
    const lake = await openLake(lakeDir, { catalog });
    onTeardown(() => lake.close());
    const dead = await lake.query(`SELECT kind, reason FROM deadletter`);
    expect(dead.rows).toEqual([{ kind: 'alerts', reason: expect.stringMatching(/alertId/) }]);
    // Partitioned by the transition's time: the clear lies in the next hour.
    expect((await lake.query(`SELECT state, event_hour FROM alerts ORDER BY emitted_at`)).rows.map((r) => [r.state, r.event_hour])).toEqual([['raised', 12], ['raised', 12], ['cleared', 13]]);
    const open = await lake.query(namedQuerySql('alerts', 'duckdb'));
    expect(open.rows).toMatchObject([{ alert_id: alert.alertId, state: 'cleared', severity: 'warning', transitions: 3 }]);

    const store = lakeStore(lakeDir);
    const results: unknown[] = [];
    for (const mode of ['copy', 'insert', 'insert-split'] as const) {
      const pglite = await createPgliteWarehouse({ dataDir: join(root, `pglite-${mode}`), schema: 'city' });
      onTeardown(() => pglite.close());
      let transactions = 0;
      // canCopyCsv false: the INSERT path Redshift takes (it cannot COPY from a local file).
      const warehouse = mode === 'copy' ? pglite : { ...pglite, canCopyCsv: false, transaction: (steps: Parameters<typeof pglite.transaction>[0]) => (transactions++, pglite.transaction(steps)) };
      const loader = createWarehouseLoader({ warehouse, store, catalog, tables: [], liveTables: true });
      onTeardown(() => loader.close());
      await loader.init();
      if (mode === 'insert-split') {
        // One row per statement and one statement per transaction: the alerts batch (two files) splits in
        // two, the one KPI file with two final rows goes in two transactions, its ledger row with the last.
        const live = createLiveTablesLoader({ warehouse, store, catalog, maxInsertBytes: 450, maxInsertsPerTransaction: 1 });
        onTeardown(() => live.close());
        transactions = 0;
        expect((await live.load()).rows).toBe(4);
        expect(transactions).toBe(4);
        expect((await live.load()).objects).toBe(0);
      } else {
        expect((await loader.load()).rows).toBe(4);
        expect((await loader.load()).objects).toBe(0);
      }
      const alerts = await warehouse.query(`SELECT alert_id, state, severity, value, cleared_at, emitted_at FROM city.alerts ORDER BY state DESC`);
      const windows = await warehouse.query(`SELECT kpi, key, revision, final, values_json, sources FROM city.kpi_windows ORDER BY revision`);
      results.push({ alerts: alerts.rows, windows: windows.rows });
      expect(alerts.rows.map((r) => [r.state, r.severity, r.value])).toEqual([['raised', 'critical', 25], ['cleared', 'warning', 10]]);
      expect(windows.rows.map((r) => [r.revision, r.final, JSON.parse(String(r.values_json)).samples])).toEqual([[2, true, 3], [3, true, 4]]);
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    // Three PGlite databases (seconds apiece on a busy machine).
  }, 240_000);

  it('loads through the Redshift adapter (Data API stand-in running the SQL on PostgreSQL), every batch within the Data API limits', async () => {
    const schema = testSchema('ltr');
    await pgQuery(`CREATE SCHEMA "${schema}"`);
    onTeardown(() => dropSchema(schema));
    const { client, submitted } = startDataApi();
    const warehouse = createRedshiftWarehouse({ database: 'dev', workgroupName: 'city', secretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:x', schema, client, pollInitialMs: 5, pollMaxMs: 20 });
    onTeardown(() => warehouse.close());
    for (const sql of [createTableSql(LEDGER_TABLE_DEF, 'redshift', schema), ...liveWarehouseDdl('redshift', schema)]) await warehouse.transaction([{ sql }]);
    // 300 alert transitions with long messages (~360 KB of INSERTs) in one file, and one more file.
    const lakeDir = join(tempDir('live-tables-rs-'), 'lake');
    const store = lakeStore(lakeDir);
    const writer = await createLakeWriter(store);
    const alert = (i: number) =>
      alertLakeRow({ alertId: `heat|st-${i}|x`, rule: 'heat', key: `st-${i}`, state: 'raised', raisedAt: '2026-12-01T12:00:00.000Z', clearedAt: null, value: 31, threshold: 30, severity: 'warning', message: 'm'.repeat(1_000) }, T0 + i);
    const partition = { event_date: '2026-12-01', event_hour: 12 };
    await writer.write({ table: 'alerts', partition, topic: 'city.alerts.v1', kafkaPartition: 0, firstOffset: 0n, lastOffset: 299n, rows: Array.from({ length: 300 }, (_, i) => alert(i)) });
    await writer.write({ table: 'alerts', partition, topic: 'city.alerts.v1', kafkaPartition: 1, firstOffset: 0n, lastOffset: 0n, rows: [alert(300)] });
    await writer.close();
    const live = createLiveTablesLoader({ warehouse, store, log: silentLog });
    onTeardown(() => live.close());
    submitted.length = 0;
    const first = await live.load();
    expect(first).toMatchObject({ objects: 2, rows: 301, skipped: [] });
    const batches = submitted.filter((sqls) => sqls.some((q) => q.startsWith('INSERT INTO "wh_live_src"')));
    expect(batches.length).toBeGreaterThan(0);
    for (const sqls of batches) {
      expect(sqls.length).toBeLessThanOrEqual(40);
      for (const q of sqls) expect(Buffer.byteLength(q)).toBeLessThan(100_000);
    }
    expect(batches.flat().filter((q) => q.startsWith('INSERT INTO "wh_live_src"')).length).toBeGreaterThan(5);
    expect(Number((await pgQuery(`SELECT count(*) AS n FROM "${schema}".alerts`)).rows[0].n)).toBe(301);
    expect((await live.load()).objects).toBe(0);
  });
});


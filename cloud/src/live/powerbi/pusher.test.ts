// Contract tests of the Power BI output against a local server that follows the documented request
// shapes and enforces the limits (test/support/powerbi.ts), the Entra token cache, and the Fabric
// Eventstream output against the run's Kafka broker.
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { waitFor, withTimeout } from '@city/protocol';
import { ensureTopics } from '../../../../test/support/kafka.ts';
import { startPowerBiServer, type PowerBiServer } from '../../../../test/support/powerbi.ts';
import { onTeardown } from '../../../../test/support/teardown.ts';
import { createEventstreamOutput, eventstreamEndpoint } from '../eventstream.ts';
import { outputTables, type OutputRow } from '../output.ts';
import { createPowerBiOutput, type PowerBiOutput, type PowerBiPushOptions } from './pusher.ts';
import { cachedTokenSource, POWERBI_SCOPE, staticTokenSource } from './token.ts';

const brokers = inject('kafkaBrokers');

async function server(options: Parameters<typeof startPowerBiServer>[0] = {}): Promise<PowerBiServer> {
  const s = await startPowerBiServer(options);
  onTeardown(() => s.close());
  return s;
}

function output(s: PowerBiServer, options: Partial<PowerBiPushOptions> = {}): PowerBiOutput {
  const o = createPowerBiOutput({ mode: 'push', apiBase: s.apiBase, workspaceId: 'ws-1', datasetName: 'city-live', tokens: staticTokenSource(s.token), retry: { initialMs: 20, maxMs: 100 }, ...options });
  onTeardown(() => withTimeout(o.close(), 20_000, 'closing the Power BI output').catch(() => undefined));
  return o;
}

const T0 = Date.parse('2026-12-01T12:00:00.000Z');
/** `n` traffic rows, one per 5-minute window from T0 on. */
function trafficRows(n: number, key = 'Centrum'): OutputRow[] {
  return Array.from({ length: n }, (_, i) => ({
    window_start: new Date(T0 + i * 300_000).toISOString(), window_end: new Date(T0 + (i + 1) * 300_000).toISOString(), key, final: true,
    emitted_at: new Date(T0).toISOString(), vehicles: 3, samples: 10, mean_speed_kmh: 31.5, travel_time_index: 1.59,
  }));
}
const alertRow: OutputRow = {
  alert_id: 'aqi|aq-1|2026-12-01T12:00:00.000Z', rule: 'aqi', key: 'aq-1', state: 'raised', severity: 'warning', raised_at: new Date(T0).toISOString(),
  cleared_at: null, value: 168, threshold: 151, message: 'air quality at aq-1 (PM2.5 AQI): 168 ≥ 151',
};

describe('Power BI push dataset output', () => {
  it('creates the dataset and its tables ahead (basicFIFO, typed columns), finds it again, and pushes KPI and alert rows', async () => {
    const s = await server();
    const first = output(s);
    await first.start();
    const [dataset] = s.datasets();
    expect(dataset).toMatchObject({ name: 'city-live', defaultRetentionPolicy: 'basicFIFO' });
    expect(Object.keys(dataset!.tables).sort()).toEqual(outputTables().map((t) => t.name).sort());
    expect(dataset!.tables['traffic_district_5m']).toContainEqual({ name: 'travel_time_index', dataType: 'Double' });
    expect(dataset!.tables['traffic_district_5m']).toContainEqual({ name: 'vehicles', dataType: 'Int64' });
    expect(dataset!.tables['alerts']).toContainEqual({ name: 'raised_at', dataType: 'DateTime' });

    first.write('traffic_district_5m', trafficRows(3));
    first.write('alerts', [alertRow]);
    await first.flush();
    expect(s.rows('city-live', 'traffic_district_5m')).toHaveLength(3);
    expect(s.rows('city-live', 'alerts')).toEqual([alertRow]);
    expect(first.stats()).toMatchObject({ delivered: 4, dropped: 0, failed: 0, throttled: 0 });

    const second = output(s);
    await second.start();
    expect(s.datasets()).toHaveLength(1);
    expect(second.datasetId).toBe(first.datasetId);
  });

  it('sends at most 10,000 rows per POST and at most 5 POSTs at a time, with no 429', async () => {
    const s = await server({ latencyMs: 100 });
    const o = output(s);
    await o.start();
    // A day of 5-minute windows for 200 keys.
    for (let k = 0; k < 200; k++) o.write('traffic_district_5m', trafficRows(288, `key-${k}`));
    await o.flush();
    expect(s.rows('city-live', 'traffic_district_5m')).toHaveLength(57_600);
    expect(s.counts).toMatchObject({ tooLarge: 0, throttled: 0, badRows: 0 });
    expect(s.counts.posts).toBe(6);
    expect(s.counts.maxPendingSeen).toBeLessThanOrEqual(5);
  });

  it('keeps under the POSTs-per-minute limit on its own: the server never answers 429', async () => {
    const s = await server({ limits: { postsPerMinute: 4 } });
    const o = output(s, { limits: { postsPerMinute: 4, rowsPerPost: 10 }, closeTimeoutMs: 100 });
    await o.start();
    o.write('traffic_district_5m', trafficRows(100));
    await waitFor(() => o.stats().delivered === 40, { timeoutMs: 10_000, what: 'the first minute of POSTs' });
    // 100 rows need 10 POSTs; only 4 fit in a minute, the rest wait their turn.
    expect(o.stats()).toMatchObject({ delivered: 40, queued: 60, throttled: 0 });
    expect(s.counts.throttled).toBe(0);
    // Closing cannot wait for the next minute: what is left is counted, not lost silently.
    await o.close();
    expect(o.stats()).toMatchObject({ delivered: 40, dropped: 60, queued: 0 });
  });

  it('honours 429 Retry-After, retries 5xx with backoff, and delivers every row', async () => {
    const s = await server();
    const o = output(s);
    await o.start();
    s.failNext(1, 429, JSON.stringify({ error: { code: 'TooManyRequests' } }), { 'retry-after': '1' });
    s.failNext(2, 503, JSON.stringify({ error: { code: 'ServiceUnavailable' } }));
    o.write('traffic_district_5m', trafficRows(5));
    const started = Date.now();
    await o.flush();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(s.rows('city-live', 'traffic_district_5m')).toHaveLength(5);
    expect(o.stats()).toMatchObject({ delivered: 5, throttled: 1, retried: 2, failed: 0, dropped: 0 });
  });

  it('never retries another 4xx and reports its body', async () => {
    const s = await server();
    const o = output(s);
    await o.start();
    s.failNext(1, 400, JSON.stringify({ error: { code: 'InvalidRequest', message: 'column mean_speed_kmh is not a Double' } }));
    o.write('traffic_district_5m', trafficRows(5));
    await o.flush();
    expect(s.counts.posts).toBe(1);
    expect(o.stats()).toMatchObject({ delivered: 0, failed: 5, dropped: 5, retried: 0 });
    expect(o.lastError()).toMatch(/^Power BI refused the request: POST rows to traffic_district_5m: HTTP 400: .*column mean_speed_kmh is not a Double/);
  });

  it('reports FeatureDeprecatedError clearly, pointing to the Fabric Eventstream output', async () => {
    const s = await server();
    s.refuseNewDatasets(true);
    await expect(output(s).start()).rejects.toMatchObject({ code: 'CLD_POWERBI_DEPRECATED', message: expect.stringMatching(/Fabric Real-Time Intelligence instead \(--output eventstream/) });
  });

  it('sends coarser data when the hourly row limit would be crossed, counting every row left out', async () => {
    const s = await server({ limits: { rowsPerHour: 100 } });
    const o = output(s, { limits: { rowsPerHour: 100 } });
    await o.start();
    o.write('alerts', [alertRow]);
    o.write('traffic_district_5m', trafficRows(300));
    // A window re-emitted after a late event: only its latest revision is worth a row.
    o.write('traffic_district_5m', trafficRows(1));
    await o.flush();
    const st = o.stats();
    const kept = s.rows('city-live', 'traffic_district_5m');
    expect(s.rows('city-live', 'alerts')).toHaveLength(1);
    expect(kept.length + 1).toBeLessThanOrEqual(100);
    expect(st.delivered + st.dropped).toBe(302);
    expect(st.superseded).toBe(1);
    expect(s.counts.throttled).toBe(0);
    // Coarser, not truncated: the kept windows still span the whole period, every 4th one.
    expect(kept.map((r) => r['window_start'])).toContain(new Date(T0 + 296 * 300_000).toISOString());
  });

  it('uses a fresh token after a 401, once', async () => {
    const s = await server();
    let current = s.token;
    let invalidated = 0;
    const o = output(s, { tokens: { token: async () => current, invalidate: () => ((current = s.token), invalidated++) } });
    await o.start();
    current = 'expired';
    o.write('alerts', [alertRow]);
    await o.flush();
    expect(invalidated).toBe(1);
    expect(s.counts.unauthorized).toBe(1);
    expect(o.stats()).toMatchObject({ delivered: 1, failed: 0 });
  });
});

describe('Entra token source', () => {
  it('asks for the Power BI scope, caches the token and refreshes it before it expires', async () => {
    let now = 1_000_000;
    const scopes: unknown[] = [];
    let n = 0;
    const tokens = cachedTokenSource({ getToken: async (scope) => (scopes.push(scope), { token: `t${++n}`, expiresOnTimestamp: now + 3_600_000 }) }, { refreshMarginMs: 300_000, now: () => now });
    expect(await Promise.all([tokens.token(), tokens.token()])).toEqual(['t1', 't1']);
    now += 3_000_000;
    expect(await tokens.token()).toBe('t1');
    now += 400_000; // within 5 minutes of expiry
    expect(await tokens.token()).toBe('t2');
    expect(scopes).toEqual([POWERBI_SCOPE, POWERBI_SCOPE]);
    tokens.invalidate();
    expect(await tokens.token()).toBe('t3');
  });

  it('turns a credential failure into CLD_POWERBI_TOKEN', async () => {
    const tokens = cachedTokenSource({ getToken: () => Promise.reject(new Error('AADSTS7000215: Invalid client secret provided')) });
    await expect(tokens.token()).rejects.toMatchObject({ code: 'CLD_POWERBI_TOKEN', message: expect.stringMatching(/AADSTS7000215/) });
  });
});

describe('Power BI streaming dataset output', () => {
  it('posts a bare array of rows to the push URL (key in the URL, no token)', async () => {
    const s = await server();
    const table = outputTables().find((t) => t.name === 'alerts')!;
    const pushUrl = s.streamingDataset('alerts-stream', table.columns);
    const o = createPowerBiOutput({ mode: 'streaming', pushUrls: { alerts: pushUrl } });
    onTeardown(() => o.close());
    await o.start();
    o.write('alerts', [alertRow, { ...alertRow, state: 'cleared', cleared_at: new Date(T0 + 60_000).toISOString() }]);
    o.write('traffic_district_5m', trafficRows(2)); // no push URL for it: not sent
    await o.flush();
    expect(s.rows('alerts-stream', 'alerts-stream').map((r) => r['state'])).toEqual(['raised', 'cleared']);
    expect(o.stats()).toMatchObject({ delivered: 2, failed: 0 });
  });
});

describe('Fabric Eventstream output', () => {
  const connection = 'Endpoint=sb://esehcity1234.servicebus.windows.net/;SharedAccessKeyName=key_abc;SharedAccessKey=c2VjcmV0;EntityPath=es_city_live';

  it('derives the Kafka endpoint from the connection string: port 9093, TLS, SASL PLAIN as $ConnectionString, topic = EntityPath', () => {
    expect(eventstreamEndpoint(connection)).toEqual({
      brokers: ['esehcity1234.servicebus.windows.net:9093'],
      topic: 'es_city_live',
      kafka: { ssl: true, sasl: { mechanism: 'plain', username: '$ConnectionString', password: connection } },
    });
    expect(() => eventstreamEndpoint('Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=abc')).toThrow(/lacks SharedAccessKeyName, EntityPath/);
  });

  it('publishes rows as uncompressed JSON records to the EntityPath topic', async () => {
    const topic = `es_city_${randomUUID().slice(0, 8)}`;
    await ensureTopics(brokers, [{ topic, numPartitions: 1 }]);
    const o = createEventstreamOutput({ connectionString: connection.replace('es_city_live', topic), override: { brokers } });
    onTeardown(() => o.close());
    await o.start();
    o.write('alerts', [alertRow]);
    o.write('traffic_district_5m', trafficRows(2));
    await o.flush();
    const consumer = new Kafka({ brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `${topic}-r` });
    const seen: { key: string; value: Record<string, unknown> }[] = [];
    await consumer.connect();
    onTeardown(() => consumer.disconnect());
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.push({ key: message.key!.toString(), value: JSON.parse(message.value!.toString()) as Record<string, unknown> }) });
    await waitFor(() => seen.length === 3, { timeoutMs: 20_000, what: 'three Eventstream records' });
    expect(seen[0]).toEqual({ key: alertRow['alert_id'], value: { table: 'alerts', ...alertRow } });
    expect(seen[1]!.key).toBe(`traffic_district_5m|Centrum|${new Date(T0).toISOString()}`);
    expect(o.stats()).toMatchObject({ delivered: 3, dropped: 0 });
  });
});

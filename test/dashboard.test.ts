// The operations dashboard in Chromium, end to end on the suite's Kafka: records published to the event
// topics and to the live engine's KPI and alert topics reach the page; no request leaves localhost; an
// alert is raised and cleared on screen; a dropped stream resumes from the ring without a gap; and a
// screenshot is kept as an artifact.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exampleEvent, silentLog, sleep, waitFor, type EventKind, type EventOf } from '@city/protocol';
import {
  buildPage,
  createDashboard,
  createLocalFolderStore,
  createPostgresWarehouse,
  createWarehouseLoader,
  dashboardTopics,
  type AlertView,
  type Dashboard,
  type KpiView,
  type VehicleRow,
} from '@city/cloud';
import { ensureTopics } from './support/kafka.ts';
import { onTeardown, tempDir } from './support/teardown.ts';
import { TEST_POSTGRES_URL, testSchema, writeCityLake } from './support/warehouse.ts';

const brokers = inject('kafkaBrokers');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Where the screenshot is kept for CI to collect (the folder is ignored by git). */
const ARTIFACTS = process.env['TEST_ARTIFACTS_DIR'] ?? join(import.meta.dirname, '..', '.cache', 'test-artifacts');
const suffix = `dash${randomUUID().slice(0, 8)}`;
const topics = dashboardTopics(suffix);
const sinkGroup = `sink-${suffix}`;

interface Probe {
  lastSeq: number | undefined;
  messages: number;
  snapshots: number;
  gaps: number;
  opens: number;
  vehicleCount(): number;
  vehicle(id: string): VehicleRow | undefined;
  station(id: string): { aqi?: number; aqiBand?: number; temperature?: number } | undefined;
  camera(id: string): { congestedLanes: number } | undefined;
  incident(id: string): { severity: string } | undefined;
}

let dashboard: Dashboard;
let producer: Producer;
let browser: Browser;
let page: Page;
const requested: string[] = [];
const aborted: string[] = [];
const failed: string[] = [];
let pageDir: string;

async function publish<K extends EventKind>(kind: K, overrides: Partial<EventOf<K>>): Promise<void> {
  const event = exampleEvent(kind, { eventId: randomUUID(), dateObserved: new Date().toISOString(), ...overrides });
  await producer.send({ topic: topics.events[kind as keyof typeof topics.events], messages: [{ key: event.deviceId, value: JSON.stringify(event) }] });
}
const publishKpi = (k: KpiView) =>
  producer.send({ topic: topics.kpi, messages: [{ key: `${k.kpi}|${k.key}|${k.windowStart}`, value: JSON.stringify(k) }] });
const publishAlert = (a: AlertView) => producer.send({ topic: topics.alerts, messages: [{ key: a.alertId, value: JSON.stringify(a) }] });

const probe = <T>(fn: (city: Probe) => T): Promise<T> =>
  page.evaluate(`(${fn.toString()})(window.__city)`) as Promise<T>;
const until = async (what: string, fn: () => Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

beforeAll(async () => {
  pageDir = await buildPage(join(tempDir('dashboard-page-'), 'page'));
  await ensureTopics(brokers, [...Object.values(topics.events), topics.kpi, topics.alerts].map((topic) => ({ topic, numPartitions: 2 })));
  const kafka = new Kafka({ clientId: 'dashboard-test', brokers, logLevel: logLevel.NOTHING });
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  // An alert raised before the dashboard starts: the dashboard reads the alert topic from its start.
  await publishAlert(alert('alert-early', 'raised'));
  dashboard = createDashboard({ brokers, port: 0, topics, sinkGroup, pageDir, deltaIntervalMs: 100, healthIntervalMs: 500, retryMs: 300, log: silentLog });
  await dashboard.start();
  expect(dashboard.stats().missingTopics).toEqual([]);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const origin = new URL(dashboard.url()).origin;
  // The route guard: every request the page makes is seen here; anything not for the dashboard is aborted.
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    requested.push(url);
    if (new URL(url).origin === origin) await route.continue();
    else {
      aborted.push(url);
      await route.abort('blockedbyclient');
    }
  });
  page = await context.newPage();
  page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await producer?.disconnect();
});

function alert(alertId: string, state: 'raised' | 'cleared'): AlertView & { extra: string } {
  return {
    alertId,
    rule: 'aqi_category',
    key: 'station-7',
    state,
    raisedAt: '2026-12-01T12:05:00.000Z',
    clearedAt: state === 'cleared' ? '2026-12-01T12:20:00.000Z' : null,
    value: 162,
    threshold: 151,
    severity: 'critical',
    message: 'AQI unhealthy at station-7',
    // The live engine may add fields; the dashboard ignores them.
    extra: 'ignored',
  };
}

const kpi = (windowStart: string, value: number, final = false): KpiView & { partial: object; emittedAt: string } => ({
  kpi: 'traffic_district_5m',
  key: 'district-3',
  windowStart,
  windowEnd: new Date(Date.parse(windowStart) + 300_000).toISOString(),
  final,
  emittedAt: new Date().toISOString(),
  partial: { speed_sum: value * 40, count: 40 },
  values: { mean_speed_kmh: value, vehicles: 40 },
});

describe('the operations dashboard in Chromium', () => {
  it('loads with no request leaving localhost, and live values change as events flow', async () => {
    const response = await page.goto(dashboard.url());
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("connect-src 'self'");
    await until('the stream to open with a snapshot', () => probe((c) => c !== undefined && c.opens >= 1 && c.snapshots >= 1));

    // The alert raised before the page (and the dashboard) started is on screen.
    await page.locator('#alerts li[data-alert-id="alert-early"][data-state="raised"]').waitFor({ timeout: 20_000 });

    await publish('vehicle', { deviceId: 'bus-1', location: { lat: 52.37, lon: 4.89 }, speed: 10 });
    await until('bus-1 on the map', () => probe((c) => c.vehicle('bus-1')?.[1] === 4.89));
    await publish('vehicle', { deviceId: 'bus-1', location: { lat: 52.38, lon: 4.9 }, speed: 12 });
    await until('bus-1 moved', () => probe((c) => c.vehicle('bus-1')?.[1] === 4.9 && c.vehicle('bus-1')?.[2] === 52.38));
    expect(await probe((c) => c.vehicle('bus-1')?.[4])).toBe(43.2);
    // An older report (a replay) does not move it back.
    await publish('vehicle', { deviceId: 'bus-1', location: { lat: 52.36, lon: 4.88 }, dateObserved: '2026-01-01T00:00:00.000Z' });
    await publish('gps', { deviceId: 'tracker-1', location: { lat: 52.365, lon: 4.87 } });
    await until('tracker-1 on the map', () => probe((c) => c.vehicle('tracker-1') !== undefined));
    expect(await probe((c) => c.vehicle('bus-1')?.[1])).toBe(4.9);

    await publish('air_quality', { deviceId: 'aq-1', pm25: 60, pm10: 20, airQualityIndex: undefined });
    await until('aq-1 unhealthy', () => probe((c) => c.station('aq-1')?.aqiBand === 3));
    // EPA PM2.5 breakpoints: 55.5–125.4 µg/m³ is 151–200, so 60 gives 154.
    expect(await probe((c) => c.station('aq-1')?.aqi)).toBe(154);
    await publish('weather', { deviceId: 'ws-1', temperature: 21.5 });
    await until('ws-1 reading', () => probe((c) => c.station('ws-1')?.temperature === 21.5));
    await publish('traffic_camera', { deviceId: 'cam-1', congested: true });
    await until('cam-1 congested', () => probe((c) => c.camera('cam-1')?.congestedLanes === 1));
    await publish('emergency', { deviceId: 'amb-1', incidentId: 'inc-1', severity: 'critical' });
    await until('inc-1 on the map', () => probe((c) => c.incident('inc-1')?.severity === 'critical'));
    await publish('emergency', { deviceId: 'amb-1', incidentId: 'inc-1', incidentStatus: 'closed' });
    await until('inc-1 closed', () => probe((c) => c.incident('inc-1') === undefined));

    await publish('gateway_health', { deviceId: 'gw-east-1', bufferDepth: 1234 });
    const gw = page.locator('#gateways tr[data-gateway="gw-east-1"]');
    await expect.poll(() => gw.textContent(), { timeout: 20_000 }).toContain('1234');
    expect(await gw.getAttribute('data-offline')).toBe('false');
    // A gateway whose last report is old shows offline.
    await publish('gateway_health', { deviceId: 'gw-west-9', dateObserved: new Date(Date.now() - 10 * 60_000).toISOString() });
    await expect.poll(() => page.locator('#gateways tr[data-gateway="gw-west-9"]').getAttribute('data-offline'), { timeout: 20_000 }).toBe('true');

    await publishKpi(kpi('2026-12-01T12:05:00.000Z', 31.2));
    const tile = page.locator('.tile[data-kpi="traffic_district_5m"] .value');
    await expect.poll(() => tile.textContent(), { timeout: 20_000 }).toBe('31.2');
    await publishKpi(kpi('2026-12-01T12:05:00.000Z', 28.4, true));
    await expect.poll(() => tile.textContent(), { timeout: 20_000 }).toBe('28.4');
    // A late update of an older window does not replace the newer one on screen.
    await publishKpi(kpi('2026-12-01T12:00:00.000Z', 99));
    await publishKpi(kpi('2026-12-01T12:10:00.000Z', 35.0));
    await expect.poll(() => tile.textContent(), { timeout: 20_000 }).toBe('35.0');
    // The newest window is early: the last final value stays on the tile beside it.
    const lastFinal = page.locator('.tile[data-kpi="traffic_district_5m"] .last-final');
    expect(await lastFinal.textContent()).toBe('final to 12:10:00: 28.4');
    expect(await probe((c) => (c as unknown as { finals: Map<string, number> }).finals.has('traffic_district_5m|district-3|2026-12-01T12:10:00.000Z'))).toBe(true);

    // Consumer lag and rates per topic on the health panel.
    await expect.poll(() => page.locator(`#topics tr[data-topic="${topics.events.vehicle}"]`).count(), { timeout: 20_000 }).toBe(1);

    expect(requested.length).toBeGreaterThan(3);
    expect(requested.every((u) => u.startsWith(new URL(dashboard.url()).origin))).toBe(true);
    expect(aborted).toEqual([]);
    expect(failed).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'dashboard.png');
    await page.screenshot({ path: shot });
    expect(existsSync(shot)).toBe(true);
  });

  it('shows an alert raised and then cleared', async () => {
    await publishAlert(alert('alert-1', 'raised'));
    await page.locator('#alerts li[data-alert-id="alert-1"][data-state="raised"]').waitFor({ timeout: 20_000 });
    await expect.poll(() => page.locator('#alert-count').textContent(), { timeout: 20_000 }).toBe('2');
    expect(await page.locator('#alerts li[data-alert-id="alert-1"]').first().textContent()).toContain('AQI unhealthy at station-7');
    await publishAlert(alert('alert-1', 'cleared'));
    await page.locator('#alerts li[data-alert-id="alert-1"][data-state="cleared"]').waitFor({ timeout: 20_000 });
    await expect.poll(() => page.locator('#alert-count').textContent(), { timeout: 20_000 }).toBe('1');
    expect(await page.locator('#alerts li[data-alert-id="alert-1"][data-state="raised"]').getAttribute('data-active')).toBe('false');
  });

  it("shows the sink's lag per topic from its committed offsets", async () => {
    const admin = new Kafka({ clientId: 'dashboard-test-admin', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      // A sink that committed nothing past the start of the vehicle topic is behind by every record in it.
      await admin.setOffsets({ groupId: sinkGroup, topic: topics.events.vehicle, partitions: [0, 1].map((partition) => ({ partition, offset: '0' })) });
      const ends = await admin.fetchTopicOffsets(topics.events.vehicle);
      const total = ends.reduce((n, e) => n + Number(e.high), 0);
      expect(total).toBeGreaterThan(0);
      const cell = page.locator(`#topics tr[data-topic="${topics.events.vehicle}"] td.sink-lag`);
      await expect.poll(() => cell.textContent(), { timeout: 20_000 }).toBe(String(total));
      // Topics the group never committed on show no figure.
      expect(await page.locator(`#topics tr[data-topic="${topics.events.weather}"] td.sink-lag`).textContent()).toBe('–');
    } finally {
      await admin.disconnect();
    }
  });

  it('reconnects a dropped stream and resumes from the ring without a gap (Last-Event-ID)', async () => {
    const before = await probe((c) => ({ opens: c.opens, snapshots: c.snapshots, gaps: c.gaps }));
    const resumedBefore = dashboard.stats().stream.resumed;
    expect(dashboard.dropClients()).toBe(1);
    // While the page is away, news keeps coming: it lands in the ring.
    const seqAtDrop = dashboard.stats().stream.seq;
    await publish('vehicle', { deviceId: 'bus-away', location: { lat: 52.39, lon: 4.91 } });
    await waitFor(() => dashboard.stats().stream.seq > seqAtDrop && dashboard.stats().vehicles >= 3, { timeoutMs: 20_000, what: 'a delta published while the page is away' });
    await until('the page to reconnect', () => probe((c) => c.opens > 1));
    await until('bus-away replayed', () => probe((c) => c.vehicle('bus-away') !== undefined));
    await until('the page to catch up', async () => (await probe((c) => c.lastSeq)) === dashboard.stats().stream.seq || dashboard.stats().stream.seq > seqAtDrop + 3);
    const after = await probe((c) => ({ opens: c.opens, snapshots: c.snapshots, gaps: c.gaps }));
    expect(after.gaps).toBe(0);
    expect(after.snapshots).toBe(before.snapshots);
    expect(after.opens).toBe(before.opens + 1);
    expect(dashboard.stats().stream.resumed).toBe(resumedBefore + 1);
    expect(dashboard.stats().stream.replayed).toBeGreaterThan(0);
    expect(await probe((c) => c.vehicle('bus-1')?.[1])).toBe(4.9);
    // The dropped stream is the only failed request, and nothing left localhost.
    expect(failed.every((f) => f.includes('/events'))).toBe(true);
    expect(aborted).toEqual([]);
  });

  it("shows the warehouse's freshness: its ledger's latest load, and how far it trails the lake", async () => {
    const lakeDir = tempDir('dashboard-lake-');
    const hour = Date.UTC(2026, 11, 1, 9);
    await writeCityLake(lakeDir, { kinds: ['vehicle'], perHour: 20, hours: 1, filesPerHour: 1, startMs: hour });
    const warehouse = await createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema: testSchema('dash') });
    onTeardown(() => warehouse.close());
    const store = createLocalFolderStore(lakeDir);
    onTeardown(() => store.close());
    const loader = createWarehouseLoader({ warehouse, store, tables: ['vehicle'], log: silentLog });
    onTeardown(() => loader.close());
    await loader.init();
    // The suite's page folder is a temporary of beforeAll, gone after the first test: this dashboard builds its own.
    const ownPage = await buildPage(join(tempDir('dashboard-page-'), 'page'));
    const second = createDashboard({ brokers, port: 0, topics, sinkGroup, pageDir: ownPage, lakeDir, warehouse: () => warehouse, deltaIntervalMs: 100, healthIntervalMs: 500, log: silentLog });
    onTeardown(() => second.close());
    await second.start();
    const p = await browser.newPage();
    onTeardown(() => p.close());
    await p.goto(second.url());
    const line = p.locator('#warehouse-freshness');
    const behind = async () => (await line.getAttribute('data-behind-lake-s')) ?? '';
    await expect.poll(() => line.textContent(), { timeout: 20_000 }).toBe('warehouse: no load yet');
    expect(await page.locator('#warehouse-freshness').textContent()).toBe('warehouse: not configured');
    expect(await p.locator('#freshness').textContent()).toMatch(/^lake freshness: \d+ s/);

    // Loaded after the lake's newest file was written: not behind.
    expect((await loader.load()).objects).toBe(1);
    await expect.poll(() => line.textContent(), { timeout: 20_000 }).toMatch(/^warehouse: last load \d+ s ago · 0 s behind the lake$/);
    // A newer lake file the warehouse has not loaded yet: behind by the time between the load and that file.
    await sleep(2_500);
    await writeCityLake(lakeDir, { kinds: ['vehicle'], perHour: 20, hours: 1, filesPerHour: 1, startMs: hour + 3_600_000, idPrefix: 'later', firstOffset: 1_000n });
    await expect.poll(async () => Number(await behind()), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    // Loaded again: caught up.
    expect((await loader.load()).objects).toBe(1);
    await expect.poll(behind, { timeout: 20_000 }).toBe('0');
    expect(Number(await line.getAttribute('data-freshness-s'))).toBeLessThan(30);
  });
});

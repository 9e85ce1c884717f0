// Benchmark (not a test): the operations dashboard in Chromium.
//   node test/bench/dashboard.ts [--only latency,finals,memory] [--rates 5000,20000] [--seconds 10] [--vehicles 10000]
//        [--window-ends 1] [--minutes M | --soak-seconds 120] [--screenshot docs/dashboard.png]
// 1. Publish → visible: vehicle events published to Kafka at each rate, spread over --vehicles devices;
//    each carries its publish time as event time, and the page records (now − event time) when it applies
//    the row to the state its canvas draws. p50/p99 per rate, against the same figure for a plain kafkajs
//    consumer in this process reading the same topic (the floor: Kafka's own delivery) measured in the same run.
//    The path measured is Kafka → dashboard → SSE → page (devices → gateway → Kafka is benchmarked elsewhere).
// 2. Window KPIs, end of window → final value on the page: the live engine (product defaults: 1 s tick,
//    60 s allowed lateness) over a small city publishing every KPI's kinds, the dashboard, and a page. The
//    city's clock runs a constant offset behind the wall clock, chosen so that an hour boundary of event time
//    (where every KPI's windows end at once) comes 45 s into the phase; --window-ends N waits for N 5-minute
//    boundaries. Per KPI: page time of each window's first final − the window end (in wall time), p50/max
//    over keys, against the goal (allowed lateness + 2 s) and against a kafkajs consumer of the KPI topic
//    in this process (when the final was on Kafka: the engine's own wait, a watermark of min over every
//    partition of max event time − out-of-orderness, 30 s for air quality and weather).
// 3. Browser memory: --vehicles vehicles moving along the city's roads at 1 report/s each for --minutes
//    (or --soak-seconds); JS heap (after a forced GC) and DOM node count sampled every 10 s; the ratio
//    last/first and the slope of a line fitted over the second half say how flat.
// Every figure is measured on a shared two-core machine: read ratios, not absolutes.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Kafka, logLevel, type Message } from 'kafkajs';
import { chromium } from 'playwright-core';
import { kafkaTopicSet, liveTopicSet, liveTopicSpecs, recordHeaders, silentLog, sleep, topicSpecs } from '@city/protocol';
import { buildPage, createDashboard, createLive, dashboardTopics, KPI_DEFINITIONS, LIVE_DEFAULTS } from '@city/cloud';
import { cityGeoJson } from '@city/device-sim';
import { ensureTopics, useKafka } from '@city/deploy/kafka';

const { values } = parseArgs({
  args: isMainThread ? process.argv.slice(2) : [],
  options: {
    rates: { type: 'string' },
    seconds: { type: 'string' },
    vehicles: { type: 'string' },
    'soak-seconds': { type: 'string' },
    minutes: { type: 'string' },
    'window-ends': { type: 'string' },
    only: { type: 'string' },
    screenshot: { type: 'string' },
  },
});
const phases = new Set((values.only ?? 'latency,finals,memory').split(','));
for (const p of phases) if (!['latency', 'finals', 'memory'].includes(p)) throw new Error(`--only: unknown phase ${p} (latency, finals, memory)`);
const windowEnds = Number(values['window-ends'] ?? 1);
const rates = (values.rates ?? '5000,20000').split(',').map(Number);
const seconds = Number(values.seconds ?? 10);
const vehicleCount = Number(values.vehicles ?? 10_000);
const soakSeconds = values.minutes !== undefined ? Number(values.minutes) * 60 : Number(values['soak-seconds'] ?? 120);
if (!(soakSeconds > 0) || !(windowEnds >= 1)) throw new Error('--minutes/--soak-seconds must be > 0 and --window-ends ≥ 1');

const percentile = (sorted: readonly number[], p: number) => (sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number));
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
};

// Roads as polylines in lon/lat: a vehicle i drives road i % roads at its own offset.
const roads = cityGeoJson().features.flatMap((f) => (f.geometry.type === 'LineString' ? [f.geometry.coordinates] : []));
function positionOf(i: number, t: number): { lon: number; lat: number; heading: number } {
  const road = roads[i % roads.length] as [number, number][];
  const segs = road.length - 1;
  const u = ((i * 0.618_034 + t * 0.002 * (1 + (i % 7) / 7)) % 1) * segs;
  const k = Math.floor(u);
  const f = u - k;
  const [x0, y0] = road[k] as [number, number];
  const [x1, y1] = road[k + 1] as [number, number];
  const heading = ((Math.atan2(x1 - x0, y1 - y0) * 180) / Math.PI + 360) % 360;
  return { lon: x0 + (x1 - x0) * f, lat: y0 + (y1 - y0) * f, heading: heading >= 360 ? 0 : heading };
}
const TYPES = ['car', 'car', 'car', 'van', 'bus', 'lorry', 'tram', 'ambulance', 'police', 'bicycle'] as const;
let seq = 0;
function vehicleEvent(i: number, now: number): Message {
  const p = positionOf(i, now / 1000);
  const deviceId = `bench-v-${String(i).padStart(5, '0')}`;
  const event = {
    kind: 'vehicle',
    eventId: randomUUID(),
    deviceId,
    seq: seq++,
    dateObserved: now,
    location: { lat: Math.round(p.lat * 1e6) / 1e6, lon: Math.round(p.lon * 1e6) / 1e6 },
    vehicleType: TYPES[i % TYPES.length],
    speed: 8 + (i % 10),
    heading: Math.round(p.heading * 10) / 10 >= 360 ? 0 : Math.round(p.heading * 10) / 10,
    mileageFromOdometer: 1000 + i,
    serviceStatus: 'onRoute',
  };
  return { key: deviceId, value: JSON.stringify(event) };
}

if (!isMainThread) {
  const { brokers, topic } = workerData as { brokers: string[]; topic: string };
  const kafka = new Kafka({ clientId: 'dashboard-bench-load', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  /** Publishes `rate` vehicle events per second for `secs` seconds in 20 ms slices; returns the rate achieved. */
  async function drive(rate: number, secs: number, devices: number): Promise<number> {
    const slice = 20;
    const perSlice = Math.max(1, Math.round((rate * slice) / 1000));
    const start = Date.now();
    let sent = 0;
    let next = 0;
    const inflight = new Set<Promise<unknown>>();
    while (Date.now() - start < secs * 1000) {
      const now = Date.now();
      const messages = Array.from({ length: perSlice }, () => vehicleEvent(next++ % devices, now));
      const p: Promise<unknown> = producer.send({ topic, messages, acks: 1 }).then(() => inflight.delete(p));
      inflight.add(p);
      sent += perSlice;
      if (inflight.size > 20) await Promise.race(inflight);
      const wait = start + (sent / rate) * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await Promise.all(inflight);
    return Math.round(sent / ((Date.now() - start) / 1000));
  }
  
  
  parentPort!.on('message', (m: { rate: number; secs: number; devices: number }) => {
    void drive(m.rate, m.secs, m.devices).then((achieved) => parentPort!.postMessage(achieved));
  });
} else {
const kafkaCluster = await useKafka();
const suffix = `bench${randomUUID().slice(0, 6)}`;
const topics = dashboardTopics(suffix);
await ensureTopics(kafkaCluster.brokers, [...Object.values(topics.events), topics.kpi, topics.alerts].map((topic) => ({ topic, numPartitions: 3 })));
const client = new Kafka({ clientId: 'dashboard-bench', brokers: kafkaCluster.brokers, logLevel: logLevel.NOTHING });
const producer = client.producer({ allowAutoTopicCreation: false });
await producer.connect();

// The floor: a plain consumer of the same topic, taking now − event time on receipt.
const floor: number[] = [];
let floorOn = false;
const reference = client.consumer({ groupId: `bench-ref-${suffix}`, maxWaitTimeInMs: 250 });
await reference.connect();
await reference.subscribe({ topics: [topics.events.vehicle], fromBeginning: false });
await reference.run({
  partitionsConsumedConcurrently: 3,
  eachBatch: async ({ batch }) => {
    const now = Date.now();
    if (!floorOn) return;
    for (const m of batch.messages) floor.push(now - (JSON.parse(m.value!.toString()) as { dateObserved: number }).dateObserved);
  },
});

const pageDir = await buildPage(join(tempDirPath(), 'page'));
const dashboard = createDashboard({ brokers: kafkaCluster.brokers, port: 0, topics, pageDir, log: silentLog });
await dashboard.start();
const browser = await chromium.launch({ executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium', args: ['--no-sandbox', '--enable-precise-memory-info'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
await page.goto(dashboard.url());
await page.waitForFunction('window.__city && window.__city.snapshots >= 1');
const cdp = await page.context().newCDPSession(page);
await cdp.send('Performance.enable');
await sleep(3_000);

/** Publishes from a worker thread, so the load generator does not share an event loop with what it measures. */
const driver = new Worker(new URL(import.meta.url), { workerData: { brokers: kafkaCluster.brokers, topic: topics.events.vehicle } });
let driveDone: ((achieved: number) => void) | undefined;
driver.on('message', (achieved: number) => driveDone?.(achieved));
function drive(rate: number, secs: number, devices: number): Promise<number> {
  return new Promise((resolve) => {
    driveDone = resolve;
    driver.postMessage({ rate, secs, devices });
  });
}

console.log(`dashboard bench: Kafka ${kafkaCluster.version ?? 'external'}, ${vehicleCount} vehicles, Chromium headless; shared 2-core machine`);
if (phases.has('latency')) {
console.log('\npublish → visible on the page (ms), vs a plain kafkajs consumer of the same topic in the same run');
console.log('rate/s (achieved)  page p50  page p99  page max  consumer p50  consumer p99  p99 ratio  page samples');
for (const rate of rates) {
  await drive(Math.min(rate, 2000), 2, vehicleCount); // warm the path at this vehicle count
  await sleep(1_000);
  await page.evaluate('window.__city.latencies.length = 0; window.__city.sampleLatency = true');
  floor.length = 0;
  floorOn = true;
  const achieved = await drive(rate, seconds, vehicleCount);
  await sleep(2_000);
  floorOn = false;
  const pageLat = (await page.evaluate('(() => { window.__city.sampleLatency = false; return window.__city.latencies.slice(); })()')) as number[];
  const a = stats(pageLat);
  const b = stats(floor);
  console.log(
    `${String(rate).padStart(6)} (${String(achieved).padStart(6)})  ${String(a.p50).padStart(8)}  ${String(a.p99).padStart(8)}  ${String(a.max).padStart(8)}  ${String(b.p50).padStart(12)}  ${String(b.p99).padStart(12)}  ${(a.p99 / b.p99).toFixed(1).padStart(9)}  ${a.n}`,
  );
}
console.log('(the page applies each vehicle\'s newest position once per delta: samples are fewer than events at high rates)');
}

if (phases.has('finals')) await windowFinals();

// Browser memory over a run with every vehicle moving at 1 report/s.
async function sample() {
  await cdp.send('HeapProfiler.collectGarbage');
  const metrics = (await cdp.send('Performance.getMetrics')).metrics;
  const m = (name: string) => metrics.find((x) => x.name === name)?.value ?? NaN;
  return { t: 0, heapMb: m('JSHeapUsedSize') / 1024 ** 2, nodes: m('Nodes'), domNow: (await page.evaluate('window.__city.domNodes()')) as number, vehicles: (await page.evaluate('window.__city.vehicleCount()')) as number };
}
if (phases.has('memory')) {
console.log(`\nbrowser memory, ${vehicleCount} vehicles at 1 report/s each, ${soakSeconds} s`);
console.log('   t/s  vehicles  JS heap MB  DOM nodes (document)  nodes (CDP)');
const samples: Awaited<ReturnType<typeof sample>>[] = [];
const soakStart = Date.now();
const soak = (async () => {
  while (Date.now() - soakStart < soakSeconds * 1000) await drive(vehicleCount, Math.min(10, soakSeconds), vehicleCount);
})();
// Other layers, so the page shows (and the soak carries) everything it draws.
await seedCity();
while (Date.now() - soakStart < soakSeconds * 1000) {
  await sleep(10_000);
  const s = await sample();
  s.t = (Date.now() - soakStart) / 1000;
  samples.push(s);
  console.log(`${String(Math.round((Date.now() - soakStart) / 1000)).padStart(6)}  ${String(s.vehicles).padStart(8)}  ${s.heapMb.toFixed(1).padStart(10)}  ${String(s.domNow).padStart(20)}  ${String(s.nodes).padStart(11)}`);
}
await soak;
if (samples.length >= 2) {
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const maxHeap = Math.max(...samples.map((s) => s.heapMb));
  console.log(`heap last/first ${(last.heapMb / first.heapMb).toFixed(2)} (max ${maxHeap.toFixed(1)} MB); DOM nodes last/first ${(last.domNow / first.domNow).toFixed(2)}`);
  // Growth per minute over the second half (the first includes filling the map), as a least-squares slope.
  const half = samples.slice(Math.floor(samples.length / 2));
  if (half.length >= 2) {
    const slope = (ys: number[]) => {
      const xs = half.map((s) => s.t / 60);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const num = xs.reduce((a, x, i) => a + (x - mx) * ((ys[i] as number) - my), 0);
      const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
      return den === 0 ? 0 : num / den;
    };
    console.log(`second half: heap ${slope(half.map((s) => s.heapMb)).toFixed(2)} MB/min, DOM ${slope(half.map((s) => s.domNow)).toFixed(1)} nodes/min`);
  }
}
}
const streamStats = dashboard.stats().stream;
console.log(`stream: ${streamStats.seq} messages, ring ${streamStats.ringMessages} messages / ${(streamStats.ringBytes / 1024 ** 2).toFixed(1)} M chars, slow pages cut ${streamStats.slowDropped}`);

if (values.screenshot !== undefined) {
  mkdirSync(dirname(values.screenshot), { recursive: true });
  await page.screenshot({ path: values.screenshot });
  console.log(`screenshot: ${values.screenshot}`);
}

await browser.close();
await dashboard.close();
await reference.disconnect();
await producer.disconnect();
await driver.terminate();
await kafkaCluster.stop();
process.exit(0);


/** Window end → final value on the page, per KPI (see the header). */
async function windowFinals(): Promise<void> {
  const id = `${suffix}f`;
  const eventTopics = kafkaTopicSet(id);
  const liveTopics = liveTopicSet(id);
  await ensureTopics(kafkaCluster.brokers, [...topicSpecs(eventTopics), ...liveTopicSpecs(liveTopics)]);
  const live = createLive({ brokers: kafkaCluster.brokers, groupId: `bench-live-${id}`, topics: eventTopics, liveTopics, log: silentLog });
  await live.start();
  const screen = createDashboard({ brokers: kafkaCluster.brokers, port: 0, topics: dashboardTopics(id), pageDir, log: silentLog });
  await screen.start();
  const page2 = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  await page2.goto(screen.url());
  await page2.waitForFunction('window.__city && window.__city.snapshots >= 1');

  // The reference: when each final was on the KPI topic, read by a plain consumer in this process.
  const onTopic = new Map<string, number>();
  const kpiReader = client.consumer({ groupId: `bench-kpi-${id}`, maxWaitTimeInMs: 100 });
  await kpiReader.connect();
  await kpiReader.subscribe({ topics: [liveTopics.kpi], fromBeginning: true });
  await kpiReader.run({
    eachMessage: async ({ message }) => {
      const u = JSON.parse(message.value!.toString()) as { kpi: string; key: string; windowEnd: string; final: boolean };
      const k = `${u.kpi}|${u.key}|${u.windowEnd}`;
      if (u.final && !onTopic.has(k)) onTopic.set(k, Date.now());
    },
  });

  const LEAD_MS = 45_000;
  const start = Date.now();
  const hour = Math.floor(start / 3_600_000) * 3_600_000;
  // Event time = wall time + shift: the hour boundary `hour` is reached LEAD_MS into the phase.
  const shift = hour - (start + LEAD_MS);
  const ends = Array.from({ length: windowEnds }, (_, k) => hour + k * 300_000);
  const lastEndWall = ends.at(-1)! - shift;
  const slowestOoo = 30_000;
  const stopAt = lastEndWall + slowestOoo + LIVE_DEFAULTS.tickMs + 15_000;
  console.log(`\nwindow end → final value on the page (ms); ${windowEnds} window end(s), the first ${LEAD_MS / 1000} s in; live engine: tick ${LIVE_DEFAULTS.tickMs} ms, allowed lateness ${LIVE_DEFAULTS.allowedLatenessMs} ms (goal ≤ ${LIVE_DEFAULTS.allowedLatenessMs + 2_000} ms); the phase runs ${Math.round((stopAt - start) / 1000)} s`);

  const msg = (e: Record<string, unknown> & { deviceId: string; eventId: string }): Message => ({
    key: e.deviceId, value: JSON.stringify(e), headers: recordHeaders({ gatewayId: 'bench-gw', receivedAt: Date.now(), eventId: e.eventId }),
  });
  const geo = cityGeoJson();
  const sites = (layer: string) => geo.features.filter((f) => f.properties.layer === layer && f.geometry.type === 'Point').map((f) => f.geometry.coordinates as [number, number]);
  const cams = sites('camera_site');
  const airs = sites('air_site');
  const wss = sites('weather_site');
  let n = 0;
  const base = (kind: string, deviceId: string, at: number, where: [number, number]) => ({ kind, eventId: `${id}-${n++}`, deviceId, seq: n, dateObserved: at, location: { lon: where[0], lat: where[1] } });
  for (let tick = 0; Date.now() < stopAt; tick++) {
    const now = Date.now();
    const at = now + shift;
    const vehicles = Array.from({ length: 100 }, (_, k) => {
      const i = (tick * 100 + k) % 400;
      const m = JSON.parse(vehicleEvent(i, at).value as string) as Record<string, unknown> & { deviceId: string; eventId: string };
      return msg(m);
    });
    const sends: Promise<unknown>[] = [producer.send({ topic: eventTopics.events.vehicle, messages: vehicles })];
    if (tick % 10 === 0) {
      sends.push(producer.send({ topic: eventTopics.events.traffic_camera, messages: cams.map((c, i) => msg({ ...base('traffic_camera', `cam-${i}`, at, c), laneId: 1, laneDirection: 'forward', periodDuration: 60, intensity: 10 + ((tick + i) % 30), occupancy: ((tick + i) % 10) / 10, averageVehicleSpeed: 12, congested: (tick + i) % 4 === 0 })) }));
      sends.push(producer.send({ topic: eventTopics.events.air_quality, messages: airs.map((c, i) => msg({ ...base('air_quality', `aq-${i}`, at, c), pm25: 5 + ((tick + i) % 40), pm10: 20, no2: 30 })) }));
      sends.push(producer.send({ topic: eventTopics.events.weather, messages: wss.map((c, i) => msg({ ...base('weather', `ws-${i}`, at, c), temperature: 10 + i, relativeHumidity: 0.7, atmosphericPressure: 1010, windSpeed: 3 + ((tick + i) % 12), windDirection: 200, precipitation: 0 })) }));
    }
    if (tick % 4 === 0) {
      sends.push(producer.send({ topic: eventTopics.events.phone, messages: Array.from({ length: 20 }, (_, i) => msg({ ...base('phone', `phone-${i}`, at, [4.88 + (i % 5) * 0.01, 52.36 + (i % 4) * 0.01]), platform: i % 2 === 0 ? 'ios' : 'android', osVersion: '19', appVersion: '3.4.0', eventType: 'issueReport', reportCategory: 'pothole' })) }));
    }
    await Promise.all(sends);
    const wait = start + (tick + 1) * 500 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  await sleep(3_000);

  const seen = new Map((await page2.evaluate('[...window.__city.finals]')) as [string, number][]);
  const pct = (xs: number[], p: number) => stats(xs)[p === 50 ? 'p50' : 'max'];
  console.log('KPI                          window end (event time)  keys  page p50  page max  topic p50  topic max  page−topic p50  goal met');
  for (const d of KPI_DEFINITIONS) {
    for (const end of ends) {
      const endIso = new Date(end).toISOString();
      const wall = end - shift;
      const page: number[] = [];
      const topic: number[] = [];
      const extra: number[] = [];
      for (const [k, t] of seen) {
        if (!k.startsWith(`${d.name}|`) || !k.endsWith(`|${endIso}`)) continue;
        page.push(t - wall);
        const q = onTopic.get(k);
        if (q !== undefined) {
          topic.push(q - wall);
          extra.push(t - q);
        }
      }
      const keysOnTopic = [...onTopic.keys()].filter((k) => k.startsWith(`${d.name}|`) && k.endsWith(`|${endIso}`)).length;
      if (keysOnTopic === 0 && page.length === 0) continue;
      const met = page.length > 0 && pct(page, 100) <= LIVE_DEFAULTS.allowedLatenessMs + 2_000;
      console.log(
        `${d.name.padEnd(29)}${endIso.slice(11, 19).padEnd(25)}${`${page.length}/${keysOnTopic}`.padStart(6)}  ${String(pct(page, 50)).padStart(8)}  ${String(pct(page, 100)).padStart(8)}  ${String(pct(topic, 50)).padStart(9)}  ${String(pct(topic, 100)).padStart(9)}  ${String(pct(extra, 50)).padStart(14)}  ${met ? 'yes' : 'no'}`,
      );
    }
  }
  console.log('(keys: finals seen on the page / finals on the KPI topic; the page keeps, per KPI and key, the newest window and the newest final beside it)');
  await kpiReader.disconnect();
  await page2.close();
  await screen.close();
  await live.close();
}

function tempDirPath(): string {
  const dir = join(process.env['TMPDIR'] ?? '/tmp', `dashboard-bench-${suffix}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Stations, cameras, incidents, gateways, KPIs and an alert at the city's own sites. */
async function seedCity(): Promise<void> {
  const now = Date.now();
  const geo = cityGeoJson();
  const sites = (layer: string) => geo.features.filter((f) => f.properties.layer === layer && f.geometry.type === 'Point').map((f) => ({ name: f.properties.name, at: f.geometry.coordinates as [number, number] }));
  const common = (kind: string, deviceId: string, at: [number, number]) => ({ kind, eventId: randomUUID(), deviceId, seq: seq++, dateObserved: now, location: { lon: at[0], lat: at[1] } });
  const send = (topic: string, events: object[]) => producer.send({ topic, messages: events.map((e) => ({ key: (e as { deviceId?: string }).deviceId ?? 'k', value: JSON.stringify(e) })) });
  await send(
    topics.events.air_quality,
    sites('air_site').map((s, i) => ({ ...common('air_quality', `airq-${i}`, s.at), pm25: [6, 14, 40, 70, 8, 20][i % 6], pm10: 20, no2: 30 })),
  );
  await send(
    topics.events.weather,
    sites('weather_site').map((s, i) => ({ ...common('weather', `weather-${i}`, s.at), temperature: 7 + i, relativeHumidity: 0.8, atmosphericPressure: 1008, windSpeed: [4, 19, 6, 3, 8][i % 5], windDirection: 240, precipitation: [0, 0, 1.2, 0, 0][i % 5] })),
  );
  await send(
    topics.events.traffic_camera,
    sites('camera_site').map((s, i) => ({ ...common('traffic_camera', `camera-${i}`, s.at), laneId: 1, laneDirection: 'forward', periodDuration: 60, intensity: 20 + i, occupancy: [0.1, 0.7, 0.2, 0.9, 0.1, 0.3, 0.1, 0.6][i % 8], averageVehicleSpeed: 12, congested: i % 3 === 1 })),
  );
  await send(topics.events.emergency, [
    { ...common('emergency', 'emergency-1', [4.895, 52.372]), incidentId: 'inc-1', category: 'traffic', subCategory: 'carAccident', severity: 'high', incidentStatus: 'open' },
    { ...common('emergency', 'emergency-2', [4.86, 52.35]), incidentId: 'inc-2', category: 'fire', subCategory: 'buildingFire', severity: 'critical', incidentStatus: 'inProgress' },
  ]);
  await send(
    topics.events.gateway_health,
    ['gw-centrum-01', 'gw-haven-02', 'gw-zuid-03'].map((id, i) => ({
      kind: 'gateway_health', eventId: randomUUID(), deviceId: id, seq: seq++, dateObserved: i === 2 ? now - 5 * 60_000 : now,
      cpuLoad: 0.3, memoryUsed: 4e8, memoryTotal: 1e9, diskFree: 1e10, uptime: 3600, bufferDepth: [0, 4200, 180][i], bufferBytes: [0, 1_300_000, 60_000][i], connectedDevices: 120, inRate: 40, outRate: i === 1 ? 5 : 40,
    })),
  );
  const windowStart = new Date(Math.floor(now / 300_000) * 300_000).toISOString();
  const windowEnd = new Date(Date.parse(windowStart) + 300_000).toISOString();
  const kpis = [
    ...['centrum', 'oostpark', 'zuidveld', 'westpoort'].map((d, i) => ({ kpi: 'traffic_district_5m', key: `district-${d}`, values: { mean_speed_kmh: [24.5, 38.2, 31.0, 44.1][i], vehicles: 300 + i * 40 } })),
    ...['stationsplein', 'oostpark'].map((s, i) => ({ kpi: 'air_quality_station_hour', key: `station-${s}`, values: { aqi_pm25: [72, 38][i], pm25: [22.1, 8.4][i] } })),
    { kpi: 'camera_flow_15m', key: 'camera-a10-noord', values: { intensity: 310, mean_speed_kmh: 41.5 } },
    { kpi: 'weather_station_hour', key: 'weather-westpoort', values: { max_wind_speed: 21.4, mean_temperature: 8.2 } },
  ].map((k) => ({ ...k, windowStart, windowEnd, final: false, emittedAt: new Date().toISOString(), partial: {} }));
  await producer.send({ topic: topics.kpi, messages: kpis.map((k) => ({ key: `${k.kpi}|${k.key}|${windowStart}`, value: JSON.stringify(k) })) });
  const alert = (alertId: string, rule: string, key: string, state: 'raised' | 'cleared', value: number, threshold: number, severity: 'warning' | 'critical', message: string) => ({
    alertId, rule, key, state, raisedAt: new Date(now - 600_000).toISOString(), clearedAt: state === 'cleared' ? new Date(now).toISOString() : null, value, threshold, severity, message,
  });
  await producer.send({
    topic: topics.alerts,
    messages: [
      alert('a-gust-westpoort', 'severe_weather_gust', 'weather-westpoort', 'raised', 21.4, 20, 'warning', 'Gusts above 20 m/s at Westpoort'),
      alert('a-aqi-westhaven', 'aqi_category', 'station-westhavenweg', 'raised', 158, 151, 'critical', 'AQI unhealthy at Westhavenweg'),
      alert('a-gw-zuid', 'gateway_offline', 'gw-zuid-03', 'raised', 300, 120, 'critical', 'gw-zuid-03 silent for 5 min'),
      alert('a-congestion-a10', 'congestion_tti', 'camera-a10-zuid', 'cleared', 1.2, 1.5, 'warning', 'Congestion on A10 Zuid cleared'),
    ].map((a) => ({ key: a.alertId, value: JSON.stringify(a) })),
  });
}
}

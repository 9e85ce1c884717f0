// One definition, two executions: the same events go through the live engine (the run's real Kafka
// broker) and, written to a lake, through the processing job (DuckDB). For every figure the processed
// zone and the live engine share, the live finals equal the processed rows: same keys, windows and
// values (to float rounding).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message } from 'kafkajs';
import { exampleEvent, kafkaTopicSet, liveTopicSet, liveTopicSpecs, recordHeaders, silentLog, topicSpecs, waitFor, withTimeout, type CityEvent, type EventKind } from '@city/protocol';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { rowsOf, writeLake } from '../../../test/support/lake.ts';
import { connectTestKafka, type TestKafka } from '../../../test/support/sink.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { createLocalCatalog } from '../ports/catalog/index.ts';
import { openLake } from '../ports/query/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { createDuckDBProcessing } from '../processing/engine.ts';
import { runProcessing } from '../processing/job.ts';
import { checkDefinitions, KEY_SEPARATOR, KPI_DEFINITIONS, type ValueExpr } from './definitions.ts';
import { createLive } from './live.ts';
import type { KpiUpdate } from './output.ts';

const brokers = inject('kafkaBrokers');
const H0 = Date.parse('2026-12-01T10:00:00.000Z');
const HOURS = 2;
const RECEIVED = H0 + 10 * 3_600_000;
let kafka: TestKafka;

beforeAll(async () => {
  kafka = await connectTestKafka(brokers, 'kpi-definitions-test');
});
afterAll(async () => {
  await kafka?.close();
});

/** Two hours of a small city: values with many decimals, so no sum lands on a rounding boundary. */
function cityEvents(id: string): Map<EventKind, CityEvent[]> {
  let seed = 11;
  const rnd = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const where = () => ({ lat: 52.335 + rnd() * 0.07, lon: 4.825 + rnd() * 0.12 });
  const out = new Map<EventKind, CityEvent[]>();
  let n = 0;
  const push = (kind: EventKind, deviceId: string, ms: number, fields: Record<string, unknown>) => {
    const e = exampleEvent(kind, { eventId: `${id}-${n}`, deviceId, seq: n++, dateObserved: new Date(ms).toISOString(), ...fields } as never) as CityEvent;
    for (const [k, v] of Object.entries(fields)) if (v === undefined) delete (e as unknown as Record<string, unknown>)[k];
    out.set(kind, [...(out.get(kind) ?? []), e]);
  };
  const cameras = Array.from({ length: 6 }, where);
  const stations = Array.from({ length: 4 }, where);
  for (let s = 0; s < HOURS * 3600; s += 20) {
    const ms = H0 + s * 1000;
    for (let v = 0; v < 12; v++) {
      push('vehicle', `veh-${v}`, ms + v * 97, {
        location: where(), speed: rnd() * 25, serviceStatus: pick(['onRoute', 'onRoute', 'onRoute', 'parked', 'broken'] as const),
        routeId: pick(['bus-12', 'tram-5', 'ring-a10', 'L99', undefined]),
      });
    }
    if (s % 60 === 0) {
      cameras.forEach((at, c) =>
        push('traffic_camera', `cam-${c}`, ms + c * 301, {
          location: at, intensity: Math.floor(rnd() * 40), occupancy: rnd(), congested: rnd() < 0.25, averageVehicleSpeed: rnd() < 0.15 ? undefined : rnd() * 20,
        }),
      );
      stations.forEach((at, a) => {
        push('air_quality', `aq-${a}`, ms + a * 503, { location: at, pm25: rnd() * (a === 0 ? 140 : 40), pm10: rnd() * 90, no2: rnd() * 150, o3: a === 1 ? undefined : rnd() * 120 });
        if (a < 3) {
          const fog = a === 0 && s < 3600 && rnd() < 0.2; // saturated calm air at one station for an hour
          push('weather', `ws-${a}`, ms + a * 709, {
            location: at, temperature: 20 + rnd() * 20, relativeHumidity: fog ? 0.98 : rnd(), windSpeed: fog ? rnd() * 2 : rnd() * 22, precipitation: rnd() * 3,
          });
        }
      });
    }
    if (s % 40 === 0) {
      for (let p = 0; p < 10; p++) {
        push('phone', `phone-${p}`, ms + p * 211, {
          location: rnd() < 0.15 ? undefined : where(), platform: pick(['ios', 'android'] as const), eventType: pick(['issueReport', 'issueReport', 'appOpen'] as const),
          reportCategory: pick(['pothole', 'litter', 'noise', undefined]),
        });
      }
    }
  }
  // One event per device an hour after the last window: every window becomes final in the live engine.
  for (const [kind, events] of out) {
    for (const device of new Set(events.map((e) => e.deviceId))) push(kind, device, H0 + (HOURS + 1) * 3_600_000, {});
  }
  return out;
}

const message = (e: CityEvent): Message => ({ key: e.deviceId, value: JSON.stringify(e), headers: recordHeaders({ gatewayId: 'gw-kpi', receivedAt: RECEIVED, eventId: e.eventId }) });

/**
 * Equal to float rounding. The two executions sum in different orders, so an unrounded figure may
 * differ in its last bits; a rounded one (or an AQI, rounded to an integer) by one unit of its rounding
 * when the sum sits on a boundary (free-flow speeds are round numbers, so their means often do).
 */
function same(e: ValueExpr, a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    const unit = 'round' in e ? 10 ** -e.digits : 'aqiPm25' in e ? 1 : 0;
    return Math.abs(a - b) <= unit * 1.000001 + 1e-9 * Math.max(1, Math.abs(a));
  }
  return a === b;
}

describe('KPI definitions, two executions', () => {
  it('are the processed tables: the same columns, figure for figure', () => {
    expect(checkDefinitions(KPI_DEFINITIONS)).toEqual([]);
    expect(KPI_DEFINITIONS.map((d) => d.name)).toEqual(['traffic_district_5m', 'camera_flow_15m', 'air_quality_station_hour', 'weather_station_hour', 'phone_reports_district_hour']);
  });

  it('the live finals over Kafka equal the processed tables built from the lake on the same events', { timeout: 240_000 }, async () => {
    const id = `kpi${randomUUID().slice(0, 8)}`;
    const events = cityEvents(id);

    // Processed zone: the events in the lake, the job run once every hour has closed.
    const dir = tempDir('kpi-definitions-');
    const topicsFor = (kind: EventKind) => `city.${kind}.v1`;
    await writeLake(dir, [...events].flatMap(([kind, list]) => {
      const byHour = new Map<number, CityEvent[]>();
      for (const e of list) {
        const h = Math.floor(Date.parse(String(e.dateObserved)) / 3_600_000) * 3_600_000;
        byHour.set(h, [...(byHour.get(h) ?? []), e]);
      }
      let offset = 0n;
      return [...byHour].map(([h, hour]) => {
        const first = offset;
        offset += BigInt(hour.length);
        const partition = { event_date: new Date(h).toISOString().slice(0, 10), event_hour: new Date(h).getUTCHours() };
        return { table: kind, partition, topic: topicsFor(kind), kafkaPartition: 0, firstOffset: first, lastOffset: offset - 1n, rows: rowsOf(kind, hour, { gatewayId: 'gw-kpi', receivedAt: RECEIVED }) };
      });
    }));
    const store = createLocalFolderStore(dir);
    const catalog = createLocalCatalog(dir);
    onTeardown(() => catalog.close());
    onTeardown(() => store.close());
    const engine = await createDuckDBProcessing(dir, store, catalog);
    try {
      await runProcessing({ store, catalog, engine, now: () => H0 + 48 * 3_600_000 });
    } finally {
      await engine.close();
    }
    const lake = await openLake(dir);
    const processed = new Map<string, Map<string, Record<string, unknown>>>();
    try {
      for (const d of KPI_DEFINITIONS) {
        const rows = (await lake.query(`SELECT epoch_ms(${d.bucketColumn}) AS window_ms, * FROM ${d.name} WHERE ${d.bucketColumn} < to_timestamp(${(H0 + HOURS * 3_600_000) / 1000})`)).rows;
        processed.set(d.name, new Map(rows.map((r) => [`${d.keyColumns.map((c) => String(r[c])).join(KEY_SEPARATOR)}|${Number(r['window_ms'])}`, r])));
      }
    } finally {
      lake.close();
    }

    // Live: the same events on Kafka, the latest update of every window kept.
    const topics = kafkaTopicSet(id);
    const liveTopics = liveTopicSet(id);
    await ensureTopics(brokers, [...topicSpecs(topics), ...liveTopicSpecs(liveTopics)]);
    const live = createLive({ log: silentLog, brokers, groupId: `${id}-g`, topics, liveTopics, tickMs: 200, idleTimeoutMs: 1_500, sessionTimeoutMs: 6_000, allowedLatenessMs: 6 * 3_600_000, mergeGraceMs: 1_000 });
    onTeardown(() => withTimeout(live.close(), 30_000, 'closing the live instance').catch(() => undefined));
    const latest = new Map<string, KpiUpdate>();
    live.on('kpi', (u) => latest.set(`${u.kpi}|${u.key}|${Date.parse(u.windowStart)}`, u));
    await live.start();
    for (const [kind, list] of events) await kafka.produce(topics.events[kind], list.map(message));

    const finals = (kpi: string) => new Map([...latest].filter(([, u]) => u.kpi === kpi && u.final && Date.parse(u.windowStart) < H0 + HOURS * 3_600_000).map(([k, u]) => [k.slice(kpi.length + 1), u]));
    // Every window final, with the row count its processed row has (the first figure counts the rows).
    const settled = () =>
      KPI_DEFINITIONS.every((d) => {
        const want = processed.get(d.name)!;
        const got = finals(d.name);
        const count = d.inputs[0]!.aggregates[0]!.name;
        return got.size === want.size && [...want].every(([k, r]) => Number(got.get(k)?.values[count]) === Number(r[count]));
      });
    await waitFor(settled, {
      timeoutMs: 120_000,
      what: () => `live finals for every processed row: ${KPI_DEFINITIONS.map((d) => `${d.name} ${finals(d.name).size}/${processed.get(d.name)!.size}`).join(', ')}; ${JSON.stringify(live.stats())}`,
    });

    let compared = 0;
    for (const d of KPI_DEFINITIONS) {
      const want = processed.get(d.name)!;
      const got = finals(d.name);
      expect([...got.keys()].sort(), d.name).toEqual([...want.keys()].sort());
      expect(want.size, d.name).toBeGreaterThan(0);
      const differences: string[] = [];
      for (const [k, row] of want) {
        const u = got.get(k)!;
        expect(u.windowEnd).toBe(new Date(Number(row['window_ms']) + d.bucket.sizeMs).toISOString());
        for (const [figure, e] of Object.entries(d.values)) {
          compared++;
          if (!same(e, u.values[figure], row[figure])) differences.push(`${d.name} ${k} ${figure}: live ${String(u.values[figure])}, processed ${String(row[figure])}`);
        }
      }
      expect(differences, d.name).toEqual([]);
    }
    // Each figure's rows carry varied values (not all null or equal): the comparison can fail.
    const distinct = (table: string, figure: string) => new Set([...processed.get(table)!.values()].map((r) => String(r[figure]))).size;
    for (const [table, figure] of [['traffic_district_5m', 'travel_time_index'], ['traffic_district_5m', 'congested_share'], ['traffic_district_5m', 'tti_band'], ['camera_flow_15m', 'mean_speed_kmh'], ['air_quality_station_hour', 'aqi_category'], ['air_quality_station_hour', 'eea_band'], ['weather_station_hour', 'max_heat_index'], ['weather_station_hour', 'dense_fog'], ['phone_reports_district_hour', 'reporters']] as const) {
      expect(distinct(table, figure), `${table}.${figure}`).toBeGreaterThan(1);
    }
    expect(compared).toBeGreaterThan(1_000);
  });
});

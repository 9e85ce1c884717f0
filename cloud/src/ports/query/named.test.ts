import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRow, exampleEvent, partitionOf, type CityEvent, type EventKind, type EventOf } from '@city/protocol';
import { createLakeWriter } from '../../lake/index.ts';
import { createLocalFolderStore } from '../store/index.ts';
import { openLake, type Lake } from './duckdb.ts';
import { DISTRICT_BOXES, NAMED_QUERIES, namedQuery, namedQuerySql } from './named.ts';
import type { QueryResult } from './port.ts';

const t = (day: number, hour: number, minute: number) => new Date(Date.UTC(2024, 4, day, hour, minute)).toISOString();
const CENTRUM = { lat: 52.37, lon: 4.89 };
const NOORDOEVER = { lat: 52.39, lon: 4.89 };
const OOSTPARK = { lat: 52.365, lon: 4.92 };
const FAR_AWAY = { lat: 52.5, lon: 5.0 };

let seq = 0;
const ev = <K extends EventKind>(kind: K, fields: Record<string, unknown>): CityEvent =>
  exampleEvent(kind, { eventId: `ev-${kind}-${seq}`, seq: seq++, ...fields } as Partial<EventOf<K>>) as CityEvent;

const EVENTS: CityEvent[] = [
  ev('vehicle', { deviceId: 'bus-1', dateObserved: t(1, 10, 1), location: CENTRUM, speed: 10 }),
  ev('vehicle', { deviceId: 'bus-1', dateObserved: t(1, 10, 3), location: CENTRUM, speed: 20 }),
  ev('vehicle', { deviceId: 'bus-2', dateObserved: t(1, 10, 4), location: CENTRUM, speed: 5 }),
  ev('vehicle', { deviceId: 'car-1', dateObserved: t(1, 10, 6), location: NOORDOEVER, speed: 15 }),
  ev('vehicle', { deviceId: 'car-2', dateObserved: t(1, 10, 7), location: FAR_AWAY, speed: 0 }),
  ev('air_quality', { deviceId: 'aq-1', dateObserved: t(1, 10, 10), pm25: 10, pm10: 20, no2: 30, airQualityIndex: 30 }),
  ev('air_quality', { deviceId: 'aq-1', dateObserved: t(1, 10, 50), pm25: 20, pm10: 30, no2: 40, airQualityIndex: 50 }),
  ev('air_quality', { deviceId: 'aq-1', dateObserved: t(1, 11, 5), pm25: 5, pm10: 6, no2: 7, airQualityIndex: 9 }),
  ev('air_quality', { deviceId: 'aq-2', dateObserved: t(1, 10, 20), pm25: 40, pm10: 50, no2: 60, airQualityIndex: 80 }),
  ev('emergency', { incidentId: 'inc-1', dateObserved: t(1, 10, 0), incidentStatus: 'open' }),
  ev('emergency', { incidentId: 'inc-1', dateObserved: t(1, 10, 30), incidentStatus: 'inProgress' }),
  ev('emergency', { incidentId: 'inc-1', dateObserved: t(1, 11, 0), incidentStatus: 'closed' }),
  ev('emergency', { incidentId: 'inc-2', dateObserved: t(1, 10, 5), incidentStatus: 'open', location: CENTRUM }),
  ev('emergency', { incidentId: 'inc-2', dateObserved: t(1, 10, 40), incidentStatus: 'inProgress', location: CENTRUM, severity: 'medium' }),
  ev('emergency', { incidentId: 'inc-3', dateObserved: t(2, 12, 0), incidentStatus: 'open', location: OOSTPARK, category: 'fire', subCategory: 'buildingFire', severity: 'critical' }),
  ev('weather', { deviceId: 'ws-a', dateObserved: t(1, 1, 0), temperature: 5, windSpeed: 10, precipitation: 0.5 }),
  ev('weather', { deviceId: 'ws-a', dateObserved: t(1, 13, 0), temperature: 8, windSpeed: 6, precipitation: 0.7 }),
  ev('weather', { deviceId: 'ws-b', dateObserved: t(1, 4, 0), temperature: 2, windSpeed: 3, precipitation: 0.1 }),
  ev('weather', { deviceId: 'ws-b', dateObserved: t(1, 14, 0), temperature: 12, windSpeed: 2, precipitation: 0 }),
  ev('weather', { deviceId: 'ws-a', dateObserved: t(2, 9, 0), temperature: 20, windSpeed: 1, precipitation: 0 }),
  ev('traffic_camera', { deviceId: 'cam-1', dateObserved: t(1, 10, 0), intensity: 10, occupancy: 0.1, congested: false }),
  ev('traffic_camera', { deviceId: 'cam-1', dateObserved: t(1, 10, 30), intensity: 30, occupancy: 0.3, congested: true }),
  ev('traffic_camera', { deviceId: 'cam-2', dateObserved: t(1, 10, 15), intensity: 5, occupancy: 0.05, congested: false }),
];

/** Trino functions the Athena variants use, as DuckDB macros: the Athena SQL then runs here for real. */
const TRINO_SHIMS = [
  'CREATE OR REPLACE MACRO to_unixtime(ts) AS epoch(ts)',
  'CREATE OR REPLACE MACRO from_unixtime(s) AS to_timestamp(s)',
];

describe('named city queries on DuckDB', () => {
  let dir: string;
  let lake: Lake;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-named-'));
    const writer = await createLakeWriter(createLocalFolderStore(dir));
    try {
      // One file per (table, partition), as the sink writes them.
      const groups = new Map<string, CityEvent[]>();
      for (const e of EVENTS) {
        const p = partitionOf(Date.parse(e.dateObserved as string));
        const key = `${e.kind}|${p.event_date}|${p.event_hour}`;
        groups.set(key, [...(groups.get(key) ?? []), e]);
      }
      let offset = 0n;
      for (const [key, events] of groups) {
        const [kind, date, hour] = key.split('|') as [EventKind, string, string];
        await writer.write({
          table: kind,
          partition: { event_date: date, event_hour: Number(hour) },
          topic: `city.${kind}.v1`,
          kafkaPartition: 0,
          firstOffset: offset,
          lastOffset: offset + BigInt(events.length - 1),
          rows: events.map((e) => eventRow(kind, e, { gatewayId: 'gw-n', receivedAt: Date.UTC(2024, 4, 3) })),
        });
        offset += BigInt(events.length);
      }
    } finally {
      await writer.close();
    }
    lake = await openLake(dir);
    for (const sql of TRINO_SHIMS) await lake.query(sql);
  });
  afterAll(async () => {
    lake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (name: string, params: Record<string, string> = {}): Promise<QueryResult> => {
    const result = await lake.query(namedQuerySql(name, 'duckdb', params));
    expect(result.columns).toEqual(namedQuery(name).columns);
    // The Athena variant, run here with Trino's functions shimmed, must give the same answer.
    const athena = await lake.query(namedQuerySql(name, 'athena', params));
    expect(athena).toEqual(result);
    return result;
  };

  it('average speed by district per 5 minutes', async () => {
    const { rows } = await run('speed_by_district_5m');
    expect(rows).toEqual([
      { bucket_start: '2024-05-01T10:00:00.000Z', district: 'Centrum', vehicles: 2, samples: 3, avg_speed_kmh: 42 },
      { bucket_start: '2024-05-01T10:05:00.000Z', district: 'Noordoever', vehicles: 1, samples: 1, avg_speed_kmh: 54 },
      { bucket_start: '2024-05-01T10:05:00.000Z', district: 'outside', vehicles: 1, samples: 1, avg_speed_kmh: 0 },
    ]);
  });

  it('air quality by station per hour', async () => {
    const { rows } = await run('air_quality_by_station_hour');
    expect(rows).toEqual([
      { hour_start: '2024-05-01T10:00:00.000Z', station: 'aq-1', samples: 2, pm25: 15, pm10: 25, no2: 35, max_aqi: 50 },
      { hour_start: '2024-05-01T10:00:00.000Z', station: 'aq-2', samples: 1, pm25: 40, pm10: 50, no2: 60, max_aqi: 80 },
      { hour_start: '2024-05-01T11:00:00.000Z', station: 'aq-1', samples: 1, pm25: 5, pm10: 6, no2: 7, max_aqi: 9 },
    ]);
  });

  it('open incidents: latest report per incident, closed ones left out', async () => {
    const { rows } = await run('open_incidents');
    expect(rows).toEqual([
      {
        incident_id: 'inc-3', category: 'fire', sub_category: 'buildingFire', severity: 'critical', incident_status: 'open',
        last_report: '2024-05-02T12:00:00.000Z', reports: 1, district: 'Oostpark',
      },
      {
        incident_id: 'inc-2', category: 'traffic', sub_category: 'carAccident', severity: 'medium', incident_status: 'inProgress',
        last_report: '2024-05-01T10:40:00.000Z', reports: 2, district: 'Centrum',
      },
    ]);
  });

  it('weather extremes per day with the station that saw them', async () => {
    const { rows } = await run('weather_extremes');
    expect(rows).toEqual([
      {
        event_date: '2024-05-01', min_temperature: 2, coldest_station: 'ws-b', max_temperature: 12, hottest_station: 'ws-b',
        max_wind_speed: 10, windiest_station: 'ws-a', max_station_precipitation_mm: 1.2,
      },
      {
        event_date: '2024-05-02', min_temperature: 20, coldest_station: 'ws-a', max_temperature: 20, hottest_station: 'ws-a',
        max_wind_speed: 1, windiest_station: 'ws-a', max_station_precipitation_mm: 0,
      },
    ]);
  });

  it('traffic intensity per camera per hour', async () => {
    const { rows } = await run('traffic_per_camera_hour');
    expect(rows).toEqual([
      { hour_start: '2024-05-01T10:00:00.000Z', camera: 'cam-1', periods: 2, vehicles: 40, avg_occupancy: 0.2, congested_periods: 1 },
      { hour_start: '2024-05-01T10:00:00.000Z', camera: 'cam-2', periods: 1, vehicles: 5, avg_occupancy: 0.05, congested_periods: 0 },
    ]);
  });

  it('filters on the date partition with from/to', async () => {
    const { rows } = await run('open_incidents', { from: '2024-05-01', to: '2024-05-01' });
    expect(rows.map((r) => r.incident_id)).toEqual(['inc-2']);
    const weather = await run('weather_extremes', { from: '2024-05-02' });
    expect(weather.rows.map((r) => r.event_date)).toEqual(['2024-05-02']);
  });

  it('every named query returns its declared columns on an empty lake too', async () => {
    const empty = await openLake(join(dir, 'nothing-here'));
    try {
      for (const q of NAMED_QUERIES) {
        const result = await empty.query(namedQuerySql(q.name, 'duckdb'));
        expect(result.columns).toEqual(q.columns);
        expect(result.rows).toEqual([]);
      }
    } finally {
      empty.close();
    }
  });
});

describe('named query parameters', () => {
  it('refuses unknown names, unknown parameters and values outside their pattern', () => {
    expect(() => namedQuerySql('nope', 'duckdb')).toThrow(/unknown query "nope".*speed_by_district_5m/);
    expect(() => namedQuerySql('open_incidents', 'duckdb', { day: '2024-05-01' })).toThrow(/unknown parameter "day"/);
    expect(() => namedQuerySql('open_incidents', 'athena', { from: "2024-05-01' OR '1'='1" })).toThrow(
      expect.objectContaining({ code: 'CLD_NAMED_QUERY', message: expect.stringMatching(/parameter from=/) }),
    );
  });

  it('keeps engine differences to the time bucket and the district boxes in both', () => {
    const duck = namedQuerySql('speed_by_district_5m', 'duckdb');
    const athena = namedQuerySql('speed_by_district_5m', 'athena');
    expect(duck).toContain("time_bucket(INTERVAL '5 minutes', date_observed)");
    expect(athena).toContain('from_unixtime(floor(to_unixtime(date_observed) / 300) * 300)');
    expect(athena).not.toContain('time_bucket');
    for (const d of DISTRICT_BOXES) expect(athena).toContain(`'${d.name}'`);
  });
});

// Lake fixtures for tests and benchmarks: deterministic sample events of every kind, lake files written
// through the lake writer, and what SQL over a lake counts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { EVENT_KINDS, eventRow, type CellValue, type CityEvent, type EventKind, type EventOf } from '@city/protocol';
import { createLakeWriter, createLocalFolderStore, openLake, type LakeFile, type LakePartition, type ObjectStore } from '@city/cloud';

export interface SampleOptions {
  /** Device id; defaults to `<kind>-<n % 50>`. */
  deviceId?: string;
  /** Event time, epoch ms or RFC 3339; defaults to 2024-05-01T00:00:00Z + n seconds. */
  dateObserved?: number | string;
  /** Prefix making event ids unique across runs. */
  idPrefix?: string;
}

const BASE_TIME_MS = Date.UTC(2024, 4, 1);

/**
 * A valid event of `kind`, the same for the same `n`. Values vary with `n` so files are not trivially
 * compressible and optional fields are sometimes absent (NULL columns).
 */
export function sampleEvent<K extends EventKind>(kind: K, n: number, options: SampleOptions = {}): EventOf<K> {
  const envelope = {
    eventId: `${options.idPrefix ?? 'ev'}-${kind}-${n}`,
    deviceId: options.deviceId ?? `${kind.replace('_', '-')}-${n % 50}`,
    seq: n,
    dateObserved: options.dateObserved ?? BASE_TIME_MS + n * 1000,
  };
  const location = { lat: 52.37 + (n % 1000) / 10_000, lon: 4.89 + (n % 777) / 10_000 };
  const events: { [E in EventKind]: () => EventOf<E> } = {
    vehicle: () => ({
      kind: 'vehicle',
      ...envelope,
      location: n % 3 === 0 ? { ...location, alt: 2 + (n % 10), accuracy: 5 } : location,
      vehicleType: (['bus', 'car', 'tram', 'ambulance'] as const)[n % 4] ?? 'bus',
      speed: (n % 300) / 10,
      heading: (n * 7) % 360,
      mileageFromOdometer: 100_000 + n * 13,
      serviceStatus: n % 10 === 0 ? 'parked' : 'onRoute',
      ...(n % 2 === 0 ? { fuelLevel: (n % 100) / 100 } : {}),
      ...(n % 4 === 0 ? { routeId: `R${n % 40}` } : {}),
    }),
    gps: () => ({
      kind: 'gps',
      ...envelope,
      location,
      speed: (n % 250) / 10,
      ...(n % 2 === 0 ? { heading: (n * 3) % 360, satellites: 4 + (n % 12), hdop: 0.8 } : {}),
    }),
    weather: () => ({
      kind: 'weather',
      ...envelope,
      location,
      temperature: -5 + (n % 400) / 10,
      relativeHumidity: (n % 100) / 100,
      atmosphericPressure: 990 + (n % 40),
      windSpeed: (n % 200) / 10,
      windDirection: (n * 11) % 360,
      precipitation: (n % 7) / 2,
      ...(n % 3 === 0 ? { solarRadiation: 200 + (n % 600) } : {}),
    }),
    air_quality: () => ({
      kind: 'air_quality',
      ...envelope,
      location,
      pm25: (n % 500) / 10,
      pm10: (n % 900) / 10,
      no2: (n % 1200) / 10,
      ...(n % 2 === 0 ? { o3: 40 + (n % 50), airQualityIndex: n % 300 } : {}),
    }),
    traffic_camera: () => ({
      kind: 'traffic_camera',
      ...envelope,
      location,
      laneId: 1 + (n % 4),
      laneDirection: n % 2 === 0 ? 'forward' : 'backward',
      periodDuration: 60,
      intensity: n % 120,
      occupancy: (n % 100) / 100,
      averageVehicleSpeed: (n % 250) / 10,
      congested: n % 5 === 0,
    }),
    emergency: () => ({
      kind: 'emergency',
      ...envelope,
      location,
      incidentId: `inc-${Math.floor(n / 3)}`,
      category: (['traffic', 'fire', 'health'] as const)[n % 3] ?? 'traffic',
      subCategory: 'carAccident',
      severity: (['low', 'medium', 'high'] as const)[n % 3] ?? 'low',
      incidentStatus: 'open',
      ...(n % 2 === 0 ? { unitsAssigned: 1 + (n % 5), description: `report ${n}` } : {}),
    }),
    phone: () => ({
      kind: 'phone',
      ...envelope,
      ...(n % 2 === 0 ? { location } : {}),
      platform: n % 2 === 0 ? 'ios' : 'android',
      osVersion: n % 2 === 0 ? '17.4' : '14',
      appVersion: '3.2.1',
      eventType: (['appOpen', 'locationUpdate', 'issueReport'] as const)[n % 3] ?? 'appOpen',
      ...(n % 3 === 2 ? { reportCategory: 'pothole', message: `hole number ${n}` } : {}),
    }),
    gateway_health: () => ({
      kind: 'gateway_health',
      ...envelope,
      cpuLoad: (n % 100) / 100,
      memoryUsed: 512_000_000 + n,
      memoryTotal: 2_000_000_000,
      diskFree: 10_000_000_000 - n,
      uptime: n * 30,
      bufferDepth: n % 1000,
      bufferBytes: (n % 1000) * 300,
      connectedDevices: 10 + (n % 90),
      inRate: 50.5,
      outRate: 49.5,
      ...(n % 2 === 0 ? { temperature: 45 } : {}),
    }),
  };
  return (events[kind] as () => CityEvent)() as EventOf<K>;
}

/**
 * A folder for the lakes of one test file, made now and removed after the file's last test; call it at
 * the top of the file (tempDir of teardown.ts is the per-test one).
 */
export function lakeFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Gateway columns of rows written by the fixtures. */
export const FIXTURE_META = { gatewayId: 'gw-fixture', receivedAt: Date.UTC(2024, 4, 1, 6) };

/** Rows of `kind` from events, with the gateway columns. */
export function rowsOf(kind: EventKind, events: readonly CityEvent[], meta: { gatewayId: string; receivedAt: number } = FIXTURE_META): CellValue[][] {
  return events.map((event) => eventRow(kind, event, meta));
}

/** Writes lake files through the lake writer, into a folder or a store (closed afterwards). */
export async function writeLake(target: string | ObjectStore, files: readonly LakeFile[]): Promise<string[]> {
  const writer = await createLakeWriter(typeof target === 'string' ? createLocalFolderStore(target) : target);
  try {
    const keys: string[] = [];
    for (const file of files) keys.push(await writer.write(file));
    return keys;
  } finally {
    await writer.close();
  }
}

export interface SinkLikeFiles {
  partition: LakePartition;
  kafkaPartition: number;
  files: number;
  rowsPerFile: number;
}

/**
 * Writes vehicle files as the sink would: offsets of a topic-partition rise across files (with gaps, as
 * when a topic-partition's records spread over several hours), and every row carries an event id unique
 * in the lake. Returns the number of rows written.
 */
export async function writeSinkLikeLake(target: string | ObjectStore, specs: readonly SinkLikeFiles[]): Promise<number> {
  const files: LakeFile[] = [];
  let n = 0;
  for (const spec of specs) {
    let offset = 1_000n * BigInt(spec.kafkaPartition + 1);
    for (let f = 0; f < spec.files; f++) {
      const events = Array.from({ length: spec.rowsPerFile }, () => sampleEvent('vehicle', n++, { idPrefix: 'c', dateObserved: Date.UTC(2024, 4, 1, spec.partition.event_hour, 5) }));
      const first = offset;
      const last = offset + BigInt(spec.rowsPerFile * 2 - 2);
      files.push({ table: 'vehicle', partition: spec.partition, topic: 'city.vehicle.v1', kafkaPartition: spec.kafkaPartition, firstOffset: first, lastOffset: last, rows: rowsOf('vehicle', events) });
      offset = last + 5n;
    }
  }
  await writeLake(target, files);
  return n;
}

/** Rows per lake table through the SQL views, and distinct event ids per event table (`<kind>.ids`). */
export async function lakeCounts(lakeDir: string): Promise<Record<string, number>> {
  const lake = await openLake(lakeDir);
  try {
    const counts: Record<string, number> = {};
    for (const c of await lake.counts()) counts[c.table] = c.rows;
    const ids = await lake.query(EVENT_KINDS.map((k) => `SELECT '${k}' AS kind, count(DISTINCT event_id) AS n FROM ${k}`).join(' UNION ALL '));
    for (const row of ids.rows) counts[`${String(row.kind)}.ids`] = Number(row.n);
    return counts;
  } finally {
    lake.close();
  }
}

/** What lakeCounts should say: rows and distinct ids per event kind, and dead letters. */
export function expectedCounts(perKind: Partial<Record<EventKind, number>>, deadletter: number): Record<string, number> {
  const out: Record<string, number> = { deadletter };
  for (const kind of EVENT_KINDS) {
    out[kind] = perKind[kind] ?? 0;
    out[`${kind}.ids`] = perKind[kind] ?? 0;
  }
  return out;
}

// A city-like lake for the processed zone's tests and benchmark: every kind, devices spread over the
// districts, one or more hours of events written through the lake writer as the sink would (files per
// kind and hour, rising Kafka offsets).
import { EVENT_KINDS, type CityEvent, type EventKind } from '@city/protocol';
import type { LakeFile, ObjectStore } from '@city/cloud';
import { rowsOf, sampleEvent, writeLake } from './lake.ts';

/** Share of the devices per kind, and seconds between two events of one device. */
const MIX: { readonly [K in EventKind]: { share: number; everyS: number } } = {
  vehicle: { share: 0.38, everyS: 5 },
  gps: { share: 0.1, everyS: 10 },
  weather: { share: 0.02, everyS: 60 },
  air_quality: { share: 0.04, everyS: 60 },
  traffic_camera: { share: 0.1, everyS: 60 },
  emergency: { share: 0.04, everyS: 120 },
  phone: { share: 0.3, everyS: 30 },
  gateway_health: { share: 0.02, everyS: 60 },
};

export interface CityLakeOptions {
  devices: number;
  /** First hour written (epoch ms of its start). */
  startMs: number;
  hours?: number;
  /** Only these kinds (all by default). */
  kinds?: readonly EventKind[];
  /** Makes event ids unique across calls on one lake (late data). */
  idPrefix?: string;
  /** Scales every device's event rate. */
  rate?: number;
  /** First Kafka offset (raise it for later writes into the same hours). */
  firstOffset?: bigint;
  rowsPerFile?: number;
}

/** Writes the lake; returns rows per kind. */
export async function writeCityLake(target: string | ObjectStore, o: CityLakeOptions): Promise<Record<EventKind, number>> {
  const hours = o.hours ?? 1;
  const rowsPerFile = o.rowsPerFile ?? 20_000;
  const counts = Object.fromEntries(EVENT_KINDS.map((k) => [k, 0])) as Record<EventKind, number>;
  const files: LakeFile[] = [];
  let n = 0;
  for (const kind of o.kinds ?? EVENT_KINDS) {
    const devices = Math.max(1, Math.round(o.devices * MIX[kind].share));
    const every = Math.max(1, Math.round(MIX[kind].everyS / (o.rate ?? 1)));
    let offset = o.firstOffset ?? 0n;
    for (let h = 0; h < hours; h++) {
      const start = o.startMs + h * 3_600_000;
      const events: CityEvent[] = [];
      for (let s = 0; s < 3600; s += every) {
        for (let d = 0; d < devices; d++) {
          // Devices start at different seconds of their period, so buckets hold a steady stream.
          const at = start + (s + (d % every)) * 1000 + (d % 997);
          if (at >= start + 3_600_000) continue;
          events.push(sampleEvent(kind, n++, { deviceId: `${kind.replace('_', '-')}-${d}`, dateObserved: at, idPrefix: o.idPrefix ?? 'city' }));
        }
      }
      counts[kind] += events.length;
      for (let i = 0; i < events.length; i += rowsPerFile) {
        const chunk = events.slice(i, i + rowsPerFile);
        const partition = { event_date: new Date(start).toISOString().slice(0, 10), event_hour: new Date(start).getUTCHours() };
        files.push({ table: kind, partition, topic: `city.${kind}.v1`, kafkaPartition: 0, firstOffset: offset, lastOffset: offset + BigInt(chunk.length - 1), rows: rowsOf(kind, chunk) });
        offset += BigInt(chunk.length);
      }
    }
  }
  await writeLake(target, files);
  return counts;
}

// Warehouse fixtures: a PostgreSQL schema of its own per test on the local server, and a lake of every
// event kind with replayed duplicates (the same events in two files), as the sink leaves after a crash.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { EVENT_KINDS, partitionOf, type EventKind } from '@city/protocol';
import type { LakeFile, ObjectStore } from '@city/cloud';
import { rowsOf, sampleEvent, writeLake } from './lake.ts';
import { onTeardown } from './teardown.ts';

export const TEST_POSTGRES_URL = process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh schema name, dropped (with everything in it) after the current test. */
export function testSchema(prefix = 'wh'): string {
  const schema = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  onTeardown(() => dropSchema(schema));
  return schema;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export interface CityLakeSpec {
  kinds?: readonly EventKind[];
  /** Events per kind per hour. */
  perHour: number;
  hours: number;
  /** Files per kind per hour. */
  filesPerHour: number;
  /** Events of each hour written a second time in an extra file (replayed duplicates). */
  replayed?: number;
  /** Event time of the first hour. */
  startMs?: number;
  /** Event ids are `<idPrefix>-<kind>-<n>`; 'w' by default. */
  idPrefix?: string;
  /** Kafka offset of the first file of each kind (later writes of the same topic start higher). */
  firstOffset?: bigint;
}

/**
 * Writes a sink-like lake: per kind and hour, `filesPerHour` files of consecutive offsets of one Kafka
 * partition, plus a file repeating the first `replayed` events (later offsets, the same event ids).
 * Returns the distinct events per kind. A store given is closed afterwards.
 */
export async function writeCityLake(lake: string | ObjectStore, spec: CityLakeSpec): Promise<Record<string, number>> {
  const start = spec.startMs ?? Date.UTC(2024, 4, 1, 0);
  const files: LakeFile[] = [];
  const distinct: Record<string, number> = {};
  for (const kind of spec.kinds ?? EVENT_KINDS) {
    let n = 0;
    let offset = spec.firstOffset ?? 0n;
    for (let h = 0; h < spec.hours; h++) {
      const hourStart = start + h * 3_600_000;
      const partition = partitionOf(hourStart);
      const events = Array.from({ length: spec.perHour }, (_, i) =>
        sampleEvent(kind, n + i, { idPrefix: spec.idPrefix ?? 'w', dateObserved: hourStart + Math.floor((i * 3_600_000) / spec.perHour) }),
      );
      n += spec.perHour;
      const per = Math.ceil(events.length / spec.filesPerHour);
      for (let f = 0; f < spec.filesPerHour; f++) {
        const slice = events.slice(f * per, (f + 1) * per);
        if (slice.length === 0) continue;
        const first = offset;
        offset += BigInt(slice.length);
        files.push({ table: kind, partition, topic: `city.${kind}.v1`, kafkaPartition: 0, firstOffset: first, lastOffset: offset - 1n, rows: rowsOf(kind, slice) });
      }
      const replay = events.slice(0, spec.replayed ?? 0);
      if (replay.length > 0) {
        const first = offset;
        offset += BigInt(replay.length);
        files.push({ table: kind, partition, topic: `city.${kind}.v1`, kafkaPartition: 0, firstOffset: first, lastOffset: offset - 1n, rows: rowsOf(kind, replay) });
      }
    }
    distinct[kind] = n;
  }
  await writeLake(lake, files);
  return distinct;
}

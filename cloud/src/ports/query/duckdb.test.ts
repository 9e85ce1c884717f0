import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALERTS_LAKE_TABLE, EVENT_KINDS, eventRow, eventTable, PARTITION_KEYS, type DeadLetter, deadLetterRow, type EventKind } from '@city/protocol';
import { sampleEvent } from '../../../../test/support/lake.ts';
import { createLakeWriter, createParquetWriter, dataFileKey, type LakeWriter } from '../../lake/index.ts';
import { createLocalFolderStore } from '../store/index.ts';
import { openLake, queryLake } from './duckdb.ts';

const META = { gatewayId: 'gw-q', receivedAt: Date.UTC(2024, 4, 1, 10, 0, 0, 5) };

describe('querying the lake', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-query-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has a typed, empty view per table on an empty (even missing) lake', async () => {
    const lake = await openLake(join(dir, 'missing'));
    try {
      expect(lake.tables.map((t) => t.name)).toEqual([...EVENT_KINDS, 'deadletter', 'kpi_windows', 'alerts']);
      expect(lake.tables.every((t) => t.files === 0)).toBe(true);
      const described = await lake.query('DESCRIBE vehicle');
      expect(described.rows.map((r) => r.column_name)).toEqual([
        ...eventTable('vehicle').columns.map((c) => c.name),
        ...PARTITION_KEYS.map((k) => k.name),
      ]);
      expect(described.rows.find((r) => r.column_name === 'date_observed')?.column_type).toBe('TIMESTAMP WITH TIME ZONE');
      const letters = await lake.query('SELECT * FROM deadletter');
      expect(letters.rows).toEqual([]);
      expect(letters.columns).toContain('reason');
      const alerts = await lake.query('DESCRIBE alerts');
      expect(alerts.rows.map((r) => r.column_name)).toEqual([...ALERTS_LAKE_TABLE.columns.map((c) => c.name), ...PARTITION_KEYS.map((k) => k.name)]);
      expect((await lake.counts()).every((c) => c.rows === 0)).toBe(true);
    } finally {
      lake.close();
    }
  });

  describe('with files', () => {
    const lakeDir = () => join(dir, 'lake');
    let writer: LakeWriter;
    beforeAll(async () => {
      writer = await createLakeWriter(createLocalFolderStore(lakeDir()));
      const write = async (kind: EventKind, from: number, n: number, dateObserved: (i: number) => number) =>
        writer.write({
          table: kind,
          partition: { event_date: new Date(dateObserved(from)).toISOString().slice(0, 10), event_hour: new Date(dateObserved(from)).getUTCHours() },
          topic: `city.${kind}.v1`,
          kafkaPartition: 0,
          firstOffset: BigInt(from),
          lastOffset: BigInt(from + n - 1),
          rows: Array.from({ length: n }, (_, i) => eventRow(kind, sampleEvent(kind, from + i, { dateObserved: dateObserved(from + i) }), META)),
        });
      await write('vehicle', 0, 3, (i) => Date.UTC(2024, 4, 1, 7, 0, i));
      await write('vehicle', 3, 2, (i) => Date.UTC(2024, 4, 2, 23, 59, i));
      await write('weather', 0, 4, (i) => Date.UTC(2024, 4, 1, 0, 0, i));
      const letter: DeadLetter = {
        stage: 'gateway',
        reason: 'r',
        problems: [{ path: '/x', rule: 'type', message: 'must be number' }],
        payload: '{}',
        payloadEncoding: 'utf8',
        mqttTopic: 'city/v1/devices/d/vehicle',
        clientId: 'd',
        gatewayId: 'gw-q',
        receivedAt: META.receivedAt,
      };
      await writer.write({
        table: 'deadletter',
        partition: { event_date: '2024-05-01', event_hour: 10 },
        topic: 'city.deadletter.v1',
        kafkaPartition: 1,
        firstOffset: 0n,
        lastOffset: 0n,
        rows: [deadLetterRow(letter)],
      });
    });
    afterAll(async () => {
      await writer?.close();
    });

    it('returns plain JS rows: numbers, ISO UTC timestamps, partition columns', async () => {
      const result = await queryLake(
        lakeDir(),
        'SELECT event_id, seq, speed, date_observed, received_at, event_date, event_hour FROM vehicle ORDER BY seq',
      );
      expect(result.columns).toEqual(['event_id', 'seq', 'speed', 'date_observed', 'received_at', 'event_date', 'event_hour']);
      expect(result.rows).toHaveLength(5);
      expect(result.rows[0]).toEqual({
        event_id: 'ev-vehicle-0',
        seq: 0,
        speed: 0,
        date_observed: '2024-05-01T07:00:00.000Z',
        received_at: '2024-05-01T10:00:00.005Z',
        event_date: '2024-05-01',
        event_hour: 7,
      });
      expect(result.rows[4]).toMatchObject({ date_observed: '2024-05-02T23:59:04.000Z', event_date: '2024-05-02', event_hour: 23 });
    });

    it('counts rows per table and knows which tables have files', async () => {
      const lake = await openLake(lakeDir());
      try {
        const counts = Object.fromEntries((await lake.counts()).map((c) => [c.table, c.rows]));
        expect(counts).toMatchObject({ vehicle: 5, weather: 4, deadletter: 1, gps: 0 });
        expect(lake.tables.find((t) => t.name === 'vehicle')?.files).toBe(2);
        const letters = await lake.query('SELECT stage, problems, event_date, event_hour FROM deadletter');
        expect(letters.rows).toEqual([{ stage: 'gateway', problems: '[{"path":"/x","rule":"type","message":"must be number"}]', event_date: '2024-05-01', event_hour: 10 }]);
      } finally {
        lake.close();
      }
    });

    it('keeps the schema when files lack a column (written before it existed)', async () => {
      const old = { ...eventTable('gps'), columns: eventTable('gps').columns.filter((c) => c.name !== 'hdop') };
      const parquet = await createParquetWriter();
      const store = createLocalFolderStore(lakeDir());
      const key = dataFileKey('gps', { event_date: '2024-05-01', event_hour: 0 }, { topic: 'city.gps.v1', partition: 0, firstOffset: 0n });
      const scratch = await store.scratchPath(key);
      const rows = [eventRow('gps', sampleEvent('gps', 2), META).filter((_, i) => eventTable('gps').columns[i]?.name !== 'hdop')];
      await parquet.write(old, rows, scratch);
      await store.put(key, scratch);
      parquet.close();
      await store.close();
      const result = await queryLake(lakeDir(), 'SELECT event_id, hdop, satellites FROM gps');
      expect(result.rows).toEqual([{ event_id: 'ev-gps-2', hdop: null, satellites: 6 }]);
      const described = await queryLake(lakeDir(), 'DESCRIBE gps');
      expect(described.rows.map((r) => r.column_name)).toEqual([...eventTable('gps').columns.map((c) => c.name), 'event_date', 'event_hour']);
    });
  });

  it('converts DuckDB values to plain JS', async () => {
    const result = await queryLake(
      join(dir, 'missing'),
      `SELECT 9007199254740993::BIGINT AS big, 42::HUGEINT AS huge, 1.5::DECIMAL(4,1) AS dec, DATE '2024-01-02' AS day,
              TIMESTAMP '2024-01-02 03:04:05.678' AS naive, TIMESTAMPTZ '2024-01-02 03:04:05+02' AS tz,
              [1, 2] AS list, {'a': 1, 'b': 'x'} AS struct, NULL AS nothing, true AS yes`,
    );
    expect(result.rows).toEqual([
      {
        big: '9007199254740993',
        huge: 42,
        dec: 1.5,
        day: '2024-01-02',
        naive: '2024-01-02T03:04:05.678',
        tz: '2024-01-02T01:04:05.000Z',
        list: [1, 2],
        struct: { a: 1, b: 'x' },
        nothing: null,
        yes: true,
      },
    ]);
  });

  it('reports bad SQL with a catalogued error', async () => {
    await expect(queryLake(join(dir, 'missing'), 'SELECT nope FROM vehicle')).rejects.toMatchObject({ code: 'CLD_QUERY' });
    await expect(queryLake(join(dir, 'missing'), 'SELEC 1')).rejects.toThrow(/syntax error/i);
  });
});

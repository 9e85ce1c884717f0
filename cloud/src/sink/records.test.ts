import { describe, expect, it } from 'vitest';
import {
  DEADLETTER_TABLE,
  DEADLETTER_TOPIC,
  eventTable,
  HEADERS,
  KAFKA_TOPICS,
  SCHEMA_VERSION,
  type CellValue,
  type DeadLetter,
  type TableSchema,
} from '@city/protocol';
import { sampleEvent } from '../../../test/support/lake.ts';
import { RAW_COLUMNS, tableSchema } from '../lake/index.ts';
import { createRawRowBuilder, createRecordDecoder, DEFAULT_TOPICS, type KafkaRecord, type SinkTopics } from './records.ts';

const decode = createRecordDecoder(DEFAULT_TOPICS);
const RECEIVED_AT = Date.UTC(2024, 4, 1, 12, 0, 0, 123);

function record(value: unknown, overrides: Partial<KafkaRecord> & { headers?: KafkaRecord['headers'] } = {}): KafkaRecord {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  const eventId = typeof value === 'object' && value !== null ? (value as { eventId?: string }).eventId : undefined;
  const deviceId = typeof value === 'object' && value !== null ? (value as { deviceId?: string }).deviceId : undefined;
  return {
    key: Buffer.from(deviceId ?? 'dev-1'),
    value: Buffer.from(body),
    timestamp: String(RECEIVED_AT + 5),
    offset: '17',
    headers: {
      [HEADERS.gatewayId]: Buffer.from('gw-1'),
      [HEADERS.receivedAt]: Buffer.from(String(RECEIVED_AT)),
      [HEADERS.schemaVersion]: Buffer.from(String(SCHEMA_VERSION)),
      ...(eventId === undefined ? {} : { [HEADERS.eventId]: Buffer.from(eventId) }),
    },
    ...overrides,
  };
}

function asObject(table: TableSchema, row: readonly CellValue[]): Record<string, CellValue> {
  expect(row).toHaveLength(table.columns.length);
  return Object.fromEntries(table.columns.map((c, i) => [c.name, row[i] as CellValue]));
}

describe('raw zone rows', () => {
  const raw = createRawRowBuilder(DEFAULT_TOPICS);

  it('keeps the record as received with its Kafka metadata, in the partition of its curated row', () => {
    const event = sampleEvent('gps', 3);
    const rec = record(event);
    // The gateway's clock was not synchronised when it stamped this one: raw keeps the word for it.
    rec.headers = { ...rec.headers, [HEADERS.clockSynced]: Buffer.from('0') };
    const decoded = decode(KAFKA_TOPICS.gps, rec);
    const out = raw(KAFKA_TOPICS.gps, 4, rec, decoded);
    expect(out?.table).toBe('raw_gps');
    expect(out?.partition).toEqual(decoded.partition);
    expect(tableSchema('raw_gps').columns).toBe(RAW_COLUMNS);
    const row = asObject(tableSchema('raw_gps'), out?.row ?? []);
    expect(row).toEqual({
      kafka_topic: KAFKA_TOPICS.gps,
      kafka_partition: 4,
      kafka_offset: 17,
      kafka_timestamp: RECEIVED_AT + 5,
      record_key: event.deviceId,
      headers: expect.any(String),
      payload: JSON.stringify(event),
      payload_encoding: 'utf8',
      event_id: event.eventId,
      gateway_id: 'gw-1',
      received_at: RECEIVED_AT,
      valid: true,
    });
    expect(JSON.parse(String(row.headers))).toEqual({
      [HEADERS.eventId]: event.eventId,
      [HEADERS.clockSynced]: '0',
      [HEADERS.gatewayId]: 'gw-1',
      [HEADERS.receivedAt]: String(RECEIVED_AT),
      [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
    });
  });

  it('marks a refused record invalid, keeps non-UTF-8 bytes as base64, and skips the dead-letter topic', () => {
    const rec = record('x', { value: Buffer.from([0xff, 0x00]) });
    const decoded = decode(KAFKA_TOPICS.gps, rec);
    const out = raw(KAFKA_TOPICS.gps, 0, rec, decoded);
    const row = asObject(tableSchema('raw_gps'), out?.row ?? []);
    expect(row).toMatchObject({ valid: false, payload: '/wA=', payload_encoding: 'base64', event_id: null });
    expect(out?.partition).toEqual(decoded.partition);
    expect(raw(DEADLETTER_TOPIC, 0, rec, decode(DEADLETTER_TOPIC, rec))).toBeUndefined();
  });
});

describe('record decoding', () => {
  it('maps a valid event to a row in the table column order, with the gateway columns from headers', () => {
    const event = sampleEvent('vehicle', 4, { dateObserved: '2024-03-10T23:30:00.250-02:00' });
    const out = decode(KAFKA_TOPICS.vehicle, record(event));
    expect(out.rejected).toBeUndefined();
    expect(out.table).toBe('vehicle');
    // Event time 23:30 at -02:00 is 01:30 UTC the next day: partitions are by UTC event time.
    expect(out.partition).toEqual({ event_date: '2024-03-11', event_hour: 1 });
    const row = asObject(eventTable('vehicle'), out.row);
    expect(row).toMatchObject({
      event_id: event.eventId,
      device_id: event.deviceId,
      seq: 4,
      date_observed: Date.UTC(2024, 2, 11, 1, 30, 0, 250),
      location_lat: event.location.lat,
      location_alt: null,
      vehicle_type: 'bus',
      fuel_level: 0.04,
      route_id: 'R4',
      vehicle_plate_identifier: null,
      gateway_id: 'gw-1',
      received_at: RECEIVED_AT,
    });
  });

  it('accepts events for every kind', () => {
    for (const kind of Object.keys(KAFKA_TOPICS) as (keyof typeof KAFKA_TOPICS)[]) {
      const out = decode(KAFKA_TOPICS[kind], record(sampleEvent(kind, 1)));
      expect(out.rejected, kind).toBeUndefined();
      expect(out.table).toBe(kind);
      expect(out.row).toHaveLength(eventTable(kind).columns.length);
    }
  });

  it('turns a corrupt record into a sink dead letter with the reason, keeping the payload', () => {
    const base = record('{"kind":"gps", oops', { key: Buffer.from('gps-7') });
    const out = decode(KAFKA_TOPICS.gps, { ...base, headers: { ...base.headers, [HEADERS.eventId]: 'ev-9' } });
    expect(out.table).toBe('deadletter');
    expect(out.rejected?.problems).toEqual([expect.objectContaining({ path: '', rule: 'json' })]);
    const row = asObject(DEADLETTER_TABLE, out.row);
    expect(row).toMatchObject({
      stage: 'sink',
      payload: '{"kind":"gps", oops',
      payload_encoding: 'utf8',
      device_id: 'gps-7',
      kind: 'gps',
      event_id: 'ev-9',
      gateway_id: 'gw-1',
      received_at: RECEIVED_AT,
    });
    expect(row.reason).toMatch(/is not JSON/);
    expect(JSON.parse(row.problems as string)).toHaveLength(1);
    expect(out.partition).toEqual({ event_date: '2024-05-01', event_hour: 12 });
  });

  it('keeps bytes that are not UTF-8 as base64', () => {
    const out = decode(KAFKA_TOPICS.gps, record('x', { value: Buffer.from([0xff, 0xfe, 0x00]) }));
    expect(asObject(DEADLETTER_TABLE, out.row)).toMatchObject({ payload: '//4A', payload_encoding: 'base64', stage: 'sink' });
  });

  it('refuses an event on the topic of another kind, or under another device key', () => {
    const gps = sampleEvent('gps', 1);
    const wrongTopic = decode(KAFKA_TOPICS.vehicle, record(gps));
    expect(wrongTopic.table).toBe('deadletter');
    expect(wrongTopic.rejected?.problems).toContainEqual(expect.objectContaining({ path: '/kind', rule: 'topic' }));
    const wrongKey = decode(KAFKA_TOPICS.gps, record(gps, { key: Buffer.from('someone-else') }));
    expect(wrongKey.rejected?.problems).toContainEqual(expect.objectContaining({ path: '/deviceId', rule: 'topic' }));
    expect(asObject(DEADLETTER_TABLE, wrongKey.row).event_id).toBe(gps.eventId);
  });

  it('refuses an event whose gateway headers are missing or wrong', () => {
    const event = sampleEvent('weather', 2);
    const noHeaders = decode(KAFKA_TOPICS.weather, record(event, { headers: {} }));
    expect(noHeaders.rejected?.problems.map((p) => p.path)).toEqual([
      `headers/${HEADERS.gatewayId}`,
      `headers/${HEADERS.receivedAt}`,
      `headers/${HEADERS.schemaVersion}`,
      `headers/${HEADERS.eventId}`,
    ]);
    // Without a receive-time header a dead letter is partitioned by the broker's record timestamp.
    expect(asObject(DEADLETTER_TABLE, noHeaders.row)).toMatchObject({ gateway_id: '', received_at: RECEIVED_AT + 5 });

    const base = record(event);
    const bad = decode(KAFKA_TOPICS.weather, {
      ...base,
      headers: { ...base.headers, [HEADERS.receivedAt]: '1714564800', [HEADERS.schemaVersion]: '2', [HEADERS.eventId]: 'other' },
    });
    expect(bad.rejected?.reason).toMatch(/epoch seconds/);
    expect(bad.rejected?.reason).toMatch(/this sink reads version 1/);
    const mismatch = decode(KAFKA_TOPICS.weather, { ...base, headers: { ...base.headers, [HEADERS.eventId]: 'other' } });
    expect(mismatch.rejected?.problems).toEqual([expect.objectContaining({ path: `headers/${HEADERS.eventId}`, rule: 'header' })]);
  });

  it('refuses an invalid event with every problem named', () => {
    const event = { ...sampleEvent('air_quality', 3), pm25: -1, extra: true };
    const out = decode(KAFKA_TOPICS.air_quality, record(event));
    expect(out.rejected?.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '/pm25', rule: 'minimum' }),
        expect.objectContaining({ path: '/extra', rule: 'additionalProperties' }),
      ]),
    );
  });

  it('stores a gateway dead letter as it came, partitioned by its receive time', () => {
    const letter: DeadLetter = {
      stage: 'gateway',
      reason: '/speed must be <= 100 [maximum]',
      problems: [{ path: '/speed', rule: 'maximum', message: 'must be <= 100' }],
      payload: '{"speed":400}',
      payloadEncoding: 'utf8',
      mqttTopic: 'city/v1/devices/bus-1/vehicle',
      clientId: 'bus-1',
      deviceId: 'bus-1',
      kind: 'vehicle',
      gatewayId: 'gw-2',
      receivedAt: Date.UTC(2024, 0, 2, 3, 4, 5),
    };
    const out = decode(DEADLETTER_TOPIC, record(letter, { key: Buffer.from('bus-1') }));
    expect(out.rejected).toBeUndefined();
    expect(out.partition).toEqual({ event_date: '2024-01-02', event_hour: 3 });
    expect(asObject(DEADLETTER_TABLE, out.row)).toEqual({
      stage: 'gateway',
      reason: letter.reason,
      problems: JSON.stringify(letter.problems),
      payload: letter.payload,
      payload_encoding: 'utf8',
      mqtt_topic: letter.mqttTopic,
      client_id: 'bus-1',
      device_id: 'bus-1',
      kind: 'vehicle',
      event_id: null,
      gateway_id: 'gw-2',
      received_at: letter.receivedAt,
    });
  });

  it('turns a malformed dead letter into a sink dead letter', () => {
    const out = decode(DEADLETTER_TOPIC, record({ stage: 'gateway', reason: 'x' }));
    expect(out.table).toBe('deadletter');
    expect(out.rejected?.problems).toContainEqual(expect.objectContaining({ path: '/payload', rule: 'required' }));
    expect(asObject(DEADLETTER_TABLE, out.row)).toMatchObject({ stage: 'sink', payload: '{"stage":"gateway","reason":"x"}' });
    const farFuture = decode(DEADLETTER_TOPIC, record({ ...validLetter(), receivedAt: 9e15 }));
    expect(farFuture.rejected?.problems).toEqual([expect.objectContaining({ path: '/receivedAt', rule: 'eventTime' })]);
  });

  it('uses the configured topic names', () => {
    const topics: SinkTopics = {
      events: Object.fromEntries(Object.entries(KAFKA_TOPICS).map(([k, t]) => [k, `${t}.test`])) as SinkTopics['events'],
      deadletter: 'dl.test',
    };
    const custom = createRecordDecoder(topics);
    expect(custom(`${KAFKA_TOPICS.gps}.test`, record(sampleEvent('gps', 1))).table).toBe('gps');
    expect(custom(KAFKA_TOPICS.gps, record(sampleEvent('gps', 1))).rejected?.problems[0]).toMatchObject({ rule: 'topic' });
  });
});

function validLetter(): DeadLetter {
  return {
    stage: 'gateway',
    reason: 'r',
    problems: [],
    payload: '',
    payloadEncoding: 'utf8',
    mqttTopic: 't',
    clientId: 'c',
    gatewayId: 'g',
    receivedAt: RECEIVED_AT,
  };
}

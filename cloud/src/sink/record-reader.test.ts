// The one-pass reader the intake uses must give exactly the rows of the decoder and the raw-row builder
// (and the raw payload exactly protocol's encodePayload), whatever the record holds; the raw row packed
// straight from the record must be, byte for byte, its cells packed.
import { describe, expect, it } from 'vitest';
import { encodePayload, eventRow, HEADERS, KAFKA_TOPICS, MAX_PAYLOAD_BYTES, SCHEMA_VERSION } from '@city/protocol';
import { sampleEvent } from '../../../test/support/lake.ts';
import { rawKind } from '../lake/index.ts';
import type { PackedRows } from '../lake/packed.ts';
import { createRawRowBuilder, createRecordDecoder, createRecordReader, DEFAULT_TOPICS, eventTextPack, packEvent, packRawRecord, packRawRow, rawCells, rawRowPack, type KafkaRecord } from './records.ts';

const RECEIVED_AT = Date.UTC(2024, 4, 1, 12, 0, 0, 123);
const PAYLOAD_COLUMN = 6;

function record(value: Buffer | null, headers: KafkaRecord['headers'], key: Buffer | null = Buffer.from('weather-3')): KafkaRecord {
  return { key, value, timestamp: String(RECEIVED_AT + 5), offset: '41', headers };
}

const event = sampleEvent('weather', 3);
const text = JSON.stringify(event);
const headers = {
  [HEADERS.gatewayId]: Buffer.from('gw-1'),
  [HEADERS.receivedAt]: Buffer.from(String(RECEIVED_AT)),
  [HEADERS.schemaVersion]: Buffer.from(String(SCHEMA_VERSION)),
  [HEADERS.eventId]: Buffer.from(event.eventId),
};

const cases: [string, KafkaRecord][] = [
  ['a valid event', record(Buffer.from(text), headers)],
  ['a valid event with a repeated key', record(Buffer.from(text.replace('{', '{"kind":"gps",')), headers)],
  ['non-ASCII text', record(Buffer.from('{"note":"café ☃ 東京"}'), headers)],
  ['a literal U+FFFD in the payload', record(Buffer.from(text.replace('}', ',"note":"\uFFFD"}')), headers)],
  ['a leading byte order mark', record(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), headers)],
  ['invalid UTF-8 inside a string', record(Buffer.concat([Buffer.from(text.slice(0, 20)), Buffer.from([0xc3, 0x28]), Buffer.from(text.slice(20))]), headers)],
  ['bytes that are not text', record(Buffer.from([0xff, 0x00, 0xfe]), headers)],
  ['not JSON', record(Buffer.from('{"eventId": '), headers)],
  ['JSON that is not this kind', record(Buffer.from(JSON.stringify(sampleEvent('gps', 3))), headers)],
  ['an eventId header that disagrees', record(Buffer.from(text), { ...headers, [HEADERS.eventId]: Buffer.from('other') })],
  ['no eventId header', record(Buffer.from(text), { [HEADERS.gatewayId]: headers[HEADERS.gatewayId], [HEADERS.receivedAt]: headers[HEADERS.receivedAt], [HEADERS.schemaVersion]: headers[HEADERS.schemaVersion] })],
  ['no headers', record(Buffer.from(text), undefined)],
  ['a repeated header and string header values', record(Buffer.from(text), { ...headers, [HEADERS.gatewayId]: [Buffer.from('gw-0'), 'gw-1'], [HEADERS.receivedAt]: String(RECEIVED_AT) })],
  ['header texts JSON escapes', record(Buffer.from(text), { ...headers, 'x-note': Buffer.from('say "hi" \\ café\n'), 'x-é': Buffer.from('1'), '7': Buffer.from('seven'), 'x-bad': Buffer.from([0xc3, 0x28]) })],
  ['an empty header name and value', record(Buffer.from(text), { ...headers, '': Buffer.alloc(0) })],
  ['a bad receive time', record(Buffer.from(text), { ...headers, [HEADERS.receivedAt]: Buffer.from('soon') })],
  ['no key', record(Buffer.from(text), headers, null)],
  ['no value', record(null, headers)],
  ['a payload over the size limit', record(Buffer.from(text.replace('}', `,"pad":"${'x'.repeat(MAX_PAYLOAD_BYTES)}"}`)), headers)],
];

describe('one-pass record reader', () => {
  const decode = createRecordDecoder(DEFAULT_TOPICS);
  const buildRaw = createRawRowBuilder(DEFAULT_TOPICS);
  const read = createRecordReader(DEFAULT_TOPICS, true);
  const readCuratedOnly = createRecordReader(DEFAULT_TOPICS, false);

  it.each(cases)('gives the decoder’s and the raw builder’s rows for %s', (_name, rec) => {
    const expectedRow = decode(KAFKA_TOPICS.weather, rec);
    const expectedRaw = buildRaw(KAFKA_TOPICS.weather, 2, rec, expectedRow);
    const out = read(KAFKA_TOPICS.weather, 2, rec);
    expect(out.row).toEqual(expectedRow);
    const raw = out.raw!;
    const cells = rawCells(raw);
    expect({ table: raw.table, partition: raw.partition, row: cells }).toEqual(expectedRaw);
    expect(rawKind(raw.table)).toBe('weather');
    // The raw payload is the strict decode of the bytes (base64 when they are not UTF-8), not the lenient text.
    const { payload, payloadEncoding } = encodePayload(rec.value ?? Buffer.alloc(0));
    expect(cells.slice(PAYLOAD_COLUMN, PAYLOAD_COLUMN + 2)).toEqual([payload, payloadEncoding]);
    // Packed from the record, after a row from another record (so no column is a constant by chance).
    const direct = rawRowPack();
    const fromCells = rawRowPack();
    const other = read(KAFKA_TOPICS.weather, 3, { ...cases[0]![1], offset: '7', key: Buffer.from('weather-9') }).raw!;
    for (const r of [other, raw]) packRawRecord(direct, r);
    for (const r of [other, raw]) packRawRow(fromCells, rawCells(r));
    expect(packedBytes(direct)).toEqual(packedBytes(fromCells));
    expect(readCuratedOnly(KAFKA_TOPICS.weather, 2, rec)).toEqual({ row: expectedRow, raw: undefined });
  });

  it('reads each record’s own header values, however alike they are to the last one’s', () => {
    const seen = ['gw-1', 'gw-2', 'gw-2', 'gw-10', 'gw-1', 'gw-é', 'gw-1'].map((gatewayId) => {
      const out = read(KAFKA_TOPICS.weather, 2, record(Buffer.from(text), { ...headers, [HEADERS.gatewayId]: Buffer.from(gatewayId), 'x-seq': Buffer.from(gatewayId) }));
      return [out.raw!.read.meta.gatewayId, out.raw!.read.headers['x-seq']];
    });
    expect(seen).toEqual(['gw-1', 'gw-2', 'gw-2', 'gw-10', 'gw-1', 'gw-é', 'gw-1'].map((g) => [g, g]));
  });

  it('types a valid event as protocol’s eventRow does', () => {
    const out = read(KAFKA_TOPICS.weather, 0, cases[0]![1]);
    expect(out.row.rejected).toBeUndefined();
    expect(out.row.row).toEqual(eventRow('weather', event, { gatewayId: 'gw-1', receivedAt: RECEIVED_AT }));
  });

  it('keeps non-UTF-8 payloads as base64 and valid ones as their text', () => {
    const kinds = cases.map(([, rec]) => rawCells(read(KAFKA_TOPICS.weather, 0, rec).raw!)[PAYLOAD_COLUMN + 1]);
    expect(kinds).toContain('base64');
    expect(kinds).toContain('utf8');
    expect(rawCells(read(KAFKA_TOPICS.weather, 0, cases[0]![1]).raw!)[PAYLOAD_COLUMN]).toBe(text);
  });

  it('reads dead-letter and unknown topics as the decoder does, with no raw row', () => {
    const letter = record(Buffer.from('{}'), headers);
    expect(read(DEFAULT_TOPICS.deadletter, 0, letter)).toEqual({ row: decode(DEFAULT_TOPICS.deadletter, letter), raw: undefined });
    expect(read('some.other.topic', 0, letter)).toEqual({ row: decode('some.other.topic', letter), raw: undefined });
  });
});

/** Each column's bytes and the SQL that reads a value back (which tells its nulls and escapes), or its one value. */
function packedBytes(packed: PackedRows): unknown[] {
  return packed.columns.map((c) => (c.constant ? { first: c.first } : { text: Buffer.concat(c.parts()).toString('latin1'), sql: c.sqlText('v') }));
}

describe('valid events packed as their text', () => {
  const read = createRecordReader(DEFAULT_TOPICS, true, createRecordDecoder(DEFAULT_TOPICS), { eventTexts: true });
  // An incident's free-text description takes any text.
  const incident = sampleEvent('emergency', 3);
  const base = JSON.stringify(incident);
  const described = (description: Buffer) => Buffer.concat([Buffer.from(base.replace(/}$/, ',"description":"')), description, Buffer.from('"}')]);
  const of = (value: Buffer) => record(value, { ...headers, [HEADERS.eventId]: Buffer.from(incident.eventId) }, Buffer.from(incident.deviceId));
  const valid: [string, KafkaRecord][] = [
    ['ASCII', of(Buffer.from(base))],
    ['non-ASCII text', of(described(Buffer.from('café ☃ 東京 🚲')))],
    ['a literal U+FFFD', of(described(Buffer.from('\uFFFD')))],
    ['invalid UTF-8 inside a string', of(described(Buffer.from([0xc3, 0x28])))],
  ];

  it.each(valid)('packs the record’s bytes as the text’s UTF-8 would be packed: %s', (_name, rec) => {
    const event = read(KAFKA_TOPICS.emergency, 2, rec).row.event!;
    expect(event).toBeDefined();
    // The value's bytes stand for the text only where they are its UTF-8 exactly (a U+FFFD makes it unsure).
    if (event.bytes !== undefined) expect(Buffer.from(event.text).equals(event.bytes)).toBe(true);
    const fromBytes = eventTextPack();
    const fromText = eventTextPack();
    const other = read(KAFKA_TOPICS.emergency, 3, { ...valid[0]![1], offset: '7' }).row.event!;
    for (const e of [other, event]) packEvent(fromBytes, e);
    for (const e of [other, event]) packEvent(fromText, { ...e, bytes: undefined });
    expect(packedBytes(fromBytes)).toEqual(packedBytes(fromText));
  });

  it('takes the bytes for what the gateway sends', () => {
    expect(valid.map(([, rec]) => read(KAFKA_TOPICS.emergency, 2, rec).row.event?.bytes !== undefined)).toEqual([true, true, false, false]);
  });
});

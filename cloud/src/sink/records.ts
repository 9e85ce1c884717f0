// The sink's boundary: every Kafka record is validated with protocol and becomes exactly one lake row.
// A record that fails becomes a dead-letter row with stage 'sink' and the reason; none is dropped.
import {
  compileSchema,
  deadLetterRow,
  decodeEventText,
  DeadLetter,
  describeProblems,
  encodePayload,
  EVENT_KINDS,
  eventRow,
  eventTable,
  HEADERS,
  headersAsText,
  kafkaTopicSet,
  parseEventTime,
  partitionOf,
  readRecordHeaders,
  type CellValue,
  type CityEvent,
  type ReadMeta,
  type EventKind,
  type KafkaHeaders,
  type KafkaTopicSet,
  type Problem,
} from '@city/protocol';
// The layout module itself, not the lake's index: decoding must not load DuckDB (the CLI's usage path imports it).
import { RAW_COLUMNS, rawTable, type LakePartition, type LakeTable, type RawTable } from '../lake/layout.ts';
import { PackedColumn, PackedRows, type PackedType } from '../lake/packed.ts';
import type { JsonRows, PackedTableRows } from '../lake/parquet.ts';

/** Topic names the sink reads; tests and staging use their own set (protocol's kafkaTopicSet(suffix)). */
export type SinkTopics = KafkaTopicSet;

export const DEFAULT_TOPICS: SinkTopics = kafkaTopicSet();

export function topicList(topics: SinkTopics): string[] {
  return [...EVENT_KINDS.map((kind) => topics.events[kind]), topics.deadletter];
}

/** The parts of a consumed Kafka record the sink looks at (a subset of kafkajs's KafkaMessage). */
export interface KafkaRecord {
  key: Buffer | null;
  value: Buffer | null;
  /** Kafka record timestamp, epoch ms as a decimal string. */
  timestamp: string;
  offset: string;
  headers?: KafkaHeaders;
}

export interface LakeRow {
  table: LakeTable;
  partition: LakePartition;
  /** The cells in table column order; empty when the row is kept as `event` (its JSON text). */
  row: CellValue[];
  /** A valid event kept as the text it was validated from, for DuckDB to read its columns at the flush. */
  event?: EventText;
  /** Set when the record was refused here and turned into a dead letter. */
  rejected?: { reason: string; problems: Problem[] };
}

export type RecordDecoder = (topic: string, record: KafkaRecord) => LakeRow;

/** Builds the raw-zone row of a record of an event topic (undefined for other topics), in the partition its curated row went to. */
export type RawRowBuilder = (topic: string, partition: number, record: KafkaRecord, decoded: LakeRow) => LakeRow | undefined;

export function createRawRowBuilder(topics: SinkTopics): RawRowBuilder {
  const kindByTopic = new Map<string, EventKind>(EVENT_KINDS.map((kind) => [topics.events[kind], kind]));
  return (topic, partition, record, decoded) => {
    const kind = kindByTopic.get(topic);
    if (kind === undefined) return undefined;
    const raw = rawRecord(kind, topic, partition, record, readParts(record), decoded, payloadEventId(record.value));
    return { table: raw.table, partition: raw.partition, row: rawCells(raw) };
  };
}

/** A valid event as its JSON text, with what its row takes from elsewhere than the text. */
export interface EventText {
  text: string;
  /** The record's value when it is the text's UTF-8 exactly (packed as it came, not encoded again). */
  bytes: Uint8Array | undefined;
  eventId: string;
  eventTimeMs: number;
  gatewayId: string;
  receivedAt: number;
  /** Keys of its objects as JSON.parse read them (see lake/parquet.ts JsonRows). */
  keys: number;
}

/** The row's cells from the text, exactly as the decoder builds them (JSON.parse reads a repeated key's last value). */
export function eventCells(kind: EventKind, event: EventText): CellValue[] {
  return eventRow(kind, JSON.parse(event.text) as CityEvent, { gatewayId: event.gatewayId, receivedAt: event.receivedAt });
}

/** Event texts of one file as the lake writer takes them; row() is the decoder's row, for texts DuckDB cannot read. */
export function eventTextRows(kind: EventKind, events: readonly EventText[]): JsonRows {
  const n = events.length;
  const texts: string[] = new Array(n);
  const keys: number[] = new Array(n);
  const eventTime: number[] = new Array(n);
  const gatewayId: string[] = new Array(n);
  const receivedAt: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = events[i] as EventText;
    texts[i] = e.text;
    keys[i] = e.keys;
    eventTime[i] = e.eventTimeMs;
    gatewayId[i] = e.gatewayId;
    receivedAt[i] = e.receivedAt;
  }
  return {
    texts,
    keys,
    cells: { [EVENT_TEXT_CELLS.eventTime]: eventTime, [EVENT_TEXT_CELLS.gatewayId]: gatewayId, [EVENT_TEXT_CELLS.receivedAt]: receivedAt },
    row: (i) => eventCells(kind, events[i] as EventText),
  };
}

/** Packed columns of an event file that are not table columns: the texts and their key counts. */
const EVENT_PACK = { text: '#text', keys: '#keys' } as const;

/** An event file's packed columns: the texts, their key counts and the cells the texts do not give. */
export function eventTextPack(): PackedRows {
  return new PackedRows([
    new PackedColumn(EVENT_PACK.text, 'string', { constant: false }),
    new PackedColumn(EVENT_PACK.keys, 'int64'),
    new PackedColumn(EVENT_TEXT_CELLS.eventTime, 'timestamp'),
    new PackedColumn(EVENT_TEXT_CELLS.gatewayId, 'string'),
    new PackedColumn(EVENT_TEXT_CELLS.receivedAt, 'timestamp'),
  ]);
}

export function packEvent(packed: PackedRows, event: EventText): void {
  // In eventTextPack's order; indexed rather than destructured (no iterator per event).
  const columns = packed.columns as readonly PackedColumn[];
  const bytes = event.bytes;
  if (bytes === undefined) (columns[0] as PackedColumn).pushJsonText(event.text);
  else (columns[0] as PackedColumn).pushJsonBytes(bytes);
  (columns[1] as PackedColumn).push(event.keys);
  (columns[2] as PackedColumn).push(event.eventTimeMs);
  (columns[3] as PackedColumn).push(event.gatewayId);
  (columns[4] as PackedColumn).push(event.receivedAt);
}

/** A packed event file as the lake writer takes it; row() is the decoder's row, for texts DuckDB cannot read. */
export function packedEventRows(kind: EventKind, packed: PackedRows): PackedTableRows {
  let texts: CellValue[] | undefined;
  let gateways: CellValue[] = [];
  let received: CellValue[] = [];
  return {
    packed,
    json: {
      text: EVENT_PACK.text,
      keys: EVENT_PACK.keys,
      row(i) {
        if (texts === undefined) {
          texts = packed.column(EVENT_PACK.text)?.values() ?? [];
          gateways = packed.column(EVENT_TEXT_CELLS.gatewayId)?.values() ?? [];
          received = packed.column(EVENT_TEXT_CELLS.receivedAt)?.values() ?? [];
        }
        const event = { text: String(texts[i]), bytes: undefined, gatewayId: String(gateways[i]), receivedAt: Number(received[i]), eventId: '', eventTimeMs: 0, keys: 0 };
        return eventCells(kind, event);
      },
    },
  };
}

/** Kafka's key, headers and payload differ record by record: no point looking for one value. */
const RAW_VARYING = new Set(['record_key', 'headers', 'payload', 'kafka_offset', 'event_id']);

/** A raw file's packed columns, the raw table's. */
export function rawRowPack(): PackedRows {
  return new PackedRows(RAW_COLUMNS.map((c) => new PackedColumn(c.name, c.type as PackedType, { constant: !RAW_VARYING.has(c.name) })));
}

const RAW_HEADERS = RAW_COLUMNS.findIndex((c) => c.name === 'headers');
const RAW_PAYLOAD = RAW_COLUMNS.findIndex((c) => c.name === 'payload');
const RAW_VALID = RAW_COLUMNS.findIndex((c) => c.name === 'valid');

/**
 * Appends a raw row to its packed columns. The headers are JSON.stringify's text, and a valid record's
 * payload is a text JSON.parse accepted (or base64): neither holds a raw control character to escape.
 */
export function packRawRow(packed: PackedRows, row: readonly CellValue[]): void {
  const columns = packed.columns;
  const clean = row[RAW_VALID] === true;
  for (let i = 0; i < columns.length; i++) {
    const value = row[i] ?? null;
    const column = columns[i] as PackedColumn;
    if (typeof value === 'string' && (i === RAW_HEADERS || (clean && i === RAW_PAYLOAD))) column.pushJsonText(value);
    else column.push(value);
  }
}

/** Paths of the objects nested in an event of `kind` whose fields are columns (e.g. location). */
const OBJECT_PATHS = new Map<EventKind, readonly (readonly string[])[]>(
  EVENT_KINDS.map((kind) => {
    const seen = new Map<string, string[]>();
    for (const column of eventTable(kind).columns) {
      for (let i = 1; i < column.source.length; i++) seen.set(column.source.slice(0, i).join('.'), column.source.slice(0, i));
    }
    return [kind, [...seen.values()]];
  }),
);

/** Kinds whose rows DuckDB can build from the text: every timestamp column is the event time (given as a cell). */
const TEXT_KINDS = new Set<EventKind>(
  EVENT_KINDS.filter((kind) => eventTable(kind).columns.every((c) => c.type !== 'timestamp' || c.source.length === 0 || (c.source.length === 1 && c.source[0] === 'dateObserved'))),
);

/** Which columns of an event-text row come as cells rather than from the text. */
export const EVENT_TEXT_CELLS = { eventTime: 'date_observed', gatewayId: 'gateway_id', receivedAt: 'received_at' } as const;

function countKeys(value: object, paths: readonly (readonly string[])[]): number {
  let n = 0;
  for (const _ in value) n++;
  for (const path of paths) {
    let node: unknown = value;
    for (const key of path) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
    if (typeof node === 'object' && node !== null) for (const _ in node) n++;
  }
  return n;
}

/** A record read once for both zones: its curated (or dead-letter) row and, on event topics with the raw zone on, its raw row. */
export interface ReadRecord {
  row: LakeRow;
  raw: RawRecord | undefined;
}

/**
 * A raw-zone row as the record it comes from, in the partition its curated row went to: packed straight
 * from the record (packRawRecord) rather than through cells (rawCells gives them, as the builder does).
 */
export interface RawRecord {
  table: RawTable;
  partition: LakePartition;
  topic: string;
  kafkaPartition: number;
  record: KafkaRecord;
  read: RecordParts;
  /** Whether the curated zone has it as an event (else as a dead letter). */
  valid: boolean;
  /** The payload's own eventId, for a record without the header. */
  payloadId: string | undefined;
}

/**
 * The decoder and the raw-row builder in one pass, sharing what both read: the headers and the value as
 * text once, the payload parsed once. Rows are the same as createRecordDecoder's and createRawRowBuilder's.
 */
export function createRecordReader(
  topics: SinkTopics,
  rawZone: boolean,
  /** Decodes the topics that are not event topics (dead letters, the live tables' topics). */
  decode: RecordDecoder = createRecordDecoder(topics),
  /** Valid events as their text (LakeRow.event) rather than cells, where DuckDB can build the row. */
  options: { eventTexts?: boolean } = {},
): (topic: string, partition: number, record: KafkaRecord) => ReadRecord {
  const texts = options.eventTexts === true;
  const kindByTopic = new Map<string, EventKind>(EVENT_KINDS.map((kind) => [topics.events[kind], kind]));
  return (topic, partition, record) => {
    const kind = kindByTopic.get(topic);
    if (kind === undefined) return { row: decode(topic, record), raw: undefined };
    const read = readParts(record);
    const parsed: { value?: unknown } = {};
    const row = decodeEventRecord(kind, record, read, parsed, texts && TEXT_KINDS.has(kind));
    if (!rawZone) return { row, raw: undefined };
    // The payload's own eventId, from the parse the decoder made (a payload it did not parse is parsed here).
    const eventId = 'value' in parsed ? eventIdIn(parsed.value) : payloadEventId(record.value);
    return { row, raw: rawRecord(kind, topic, partition, record, read, row, eventId) };
  };
}

/** Each kind's raw table name, made once (not a new string per record). */
const RAW_TABLES = Object.fromEntries(EVENT_KINDS.map((kind) => [kind, rawTable(kind)])) as Record<EventKind, RawTable>;

/** The raw row of a record of `kind`'s topic, in the partition its curated (or dead-letter) row went to. */
function rawRecord(kind: EventKind, topic: string, partition: number, record: KafkaRecord, read: RecordParts, decoded: LakeRow, payloadId: string | undefined): RawRecord {
  return { table: RAW_TABLES[kind], partition: decoded.partition, topic, kafkaPartition: partition, record, read, valid: decoded.rejected === undefined, payloadId };
}

/** What both zones read of a record, each read once. */
export interface RecordParts {
  /** Every header as text, names sorted (as the raw zone keeps them). */
  headers: Record<string, string>;
  meta: ReadMeta;
  problems: Problem[];
  deviceId: string | undefined;
  /** The value as UTF-8 text (invalid bytes replaced), undefined when the record has none. */
  text: string | undefined;
}

/**
 * Each header's last value and its text: a gateway's id, the schema version and the clock flag repeat
 * record after record. The bytes are compared, not copied: a consumed record's Buffers are never written
 * after they are handed out (kafkajs reads each fetch into a new one).
 */
const lastHeaderTexts = new Map<string, { bytes: Buffer; text: string }>();

function headerValueText(name: string, value: Buffer): string {
  const last = lastHeaderTexts.get(name);
  if (last !== undefined) {
    const bytes = last.bytes;
    const n = value.length;
    if (bytes.length === n) {
      let i = 0;
      while (i < n && bytes[i] === value[i]) i++;
      if (i === n) return last.text;
    }
    last.bytes = value;
    return (last.text = value.toString('utf8'));
  }
  const text = value.toString('utf8');
  // Bounded: names beyond these are decoded every time.
  if (lastHeaderTexts.size < 32) lastHeaderTexts.set(name, { bytes: value, text });
  return text;
}

function readParts(record: KafkaRecord): RecordParts {
  const headers = headersAsText(record.headers, headerValueText);
  const problems: Problem[] = [];
  // The text values read the same as the record's own headers (headersAsText applies headerText's rules).
  const meta = readRecordHeaders(headers, { require: true, reader: 'this sink' }, problems);
  const deviceId = record.key === null ? undefined : record.key.toString('utf8');
  const text = record.value === null ? undefined : record.value.toString('utf8');
  return { headers, meta, problems, deviceId, text };
}

/** The raw row's cells, in RAW_COLUMNS order. */
export function rawCells(raw: RawRecord): CellValue[] {
  const { record, read } = raw;
  const { payload, payloadEncoding } = rawPayload(record.value, read.text);
  const { meta } = read;
  return [
    raw.topic,
    raw.kafkaPartition,
    Number(record.offset),
    recordTimestamp(record) ?? null,
    read.deviceId ?? null,
    JSON.stringify(read.headers),
    payload,
    payloadEncoding,
    meta.eventId ?? raw.payloadId ?? null,
    meta.gatewayId ?? null,
    meta.receivedAt ?? null,
    raw.valid,
  ];
}

/**
 * Appends a raw row to its packed columns as packRawRow(rawCells(raw)) would, without the cells: a valid
 * record's payload is its value's bytes (UTF-8 that JSON.parse accepted: nothing to escape), and the
 * headers' JSON is written from their texts when none needs a JSON escape.
 */
export function packRawRecord(packed: PackedRows, raw: RawRecord): void {
  const columns = packed.columns as readonly PackedColumn[];
  const { record, read } = raw;
  const { meta, text } = read;
  (columns[0] as PackedColumn).push(raw.topic);
  (columns[1] as PackedColumn).push(raw.kafkaPartition);
  (columns[2] as PackedColumn).push(Number(record.offset));
  (columns[3] as PackedColumn).push(recordTimestamp(record) ?? null);
  (columns[4] as PackedColumn).push(read.deviceId ?? null);
  const headers = columns[5] as PackedColumn;
  if (!headers.pushPlainObject(read.headers)) headers.pushJsonText(JSON.stringify(read.headers));
  const value = record.value;
  if (raw.valid && value !== null && text !== undefined && isExactText(text)) {
    (columns[6] as PackedColumn).pushJsonBytes(value);
    (columns[7] as PackedColumn).push('utf8');
  } else {
    const { payload, payloadEncoding } = rawPayload(value, text);
    (columns[6] as PackedColumn).push(payload);
    (columns[7] as PackedColumn).push(payloadEncoding);
  }
  (columns[8] as PackedColumn).push(meta.eventId ?? raw.payloadId ?? null);
  (columns[9] as PackedColumn).push(meta.gatewayId ?? null);
  (columns[10] as PackedColumn).push(meta.receivedAt ?? null);
  (columns[11] as PackedColumn).push(raw.valid);
}

/** encodePayload, without a second decode when the text is already known to be the bytes exactly. */
function rawPayload(value: Buffer | null, text: string | undefined): Pick<DeadLetter, 'payload' | 'payloadEncoding'> {
  if (text !== undefined && isExactText(text)) return { payload: text, payloadEncoding: 'utf8' };
  return encodePayload(value ?? EMPTY);
}

/**
 * Whether the value's lenient UTF-8 text is its strict decode (what encodePayload gives), so the bytes are
 * the text's UTF-8: without U+FFFD (what Node puts for invalid bytes) or a leading BOM (a strict decoder drops it).
 */
function isExactText(text: string): boolean {
  return !text.includes('\uFFFD') && text.charCodeAt(0) !== 0xfeff;
}

const NO_CELLS: CellValue[] = [];
const validateDeadLetter = compileSchema<DeadLetter>(DeadLetter);
const EMPTY = Buffer.alloc(0);

export function createRecordDecoder(topics: SinkTopics): RecordDecoder {
  const kindByTopic = new Map<string, EventKind>(EVENT_KINDS.map((kind) => [topics.events[kind], kind]));
  return (topic, record) => {
    const kind = kindByTopic.get(topic);
    if (kind !== undefined) return decodeEventRecord(kind, record, readParts(record));
    if (topic === topics.deadletter) return decodeDeadLetterRecord(record);
    const problems = [{ path: 'topic', rule: 'topic', message: `${topic} is not a topic this sink reads` }];
    return rejected(record, problems, {});
  };
}

function decodeEventRecord(kind: EventKind, record: KafkaRecord, read: RecordParts, parsed?: { value?: unknown }, asText = false): LakeRow {
  const problems = read.problems;
  const { gatewayId, receivedAt, eventId: eventIdHeader } = read.meta;
  const deviceId = read.deviceId;
  if (deviceId === undefined) problems.push({ path: 'key', rule: 'key', message: 'is missing; the key must be the device id' });
  if (record.value === null || read.text === undefined) {
    problems.push({ path: '', rule: 'required', message: 'record has no value' });
  } else {
    const decoded = decodeEventText(read.text, record.value.length, deviceId === undefined ? { kind } : { kind, deviceId }, parsed);
    if (!decoded.ok) {
      problems.push(...decoded.problems);
    } else if (eventIdHeader !== undefined && decoded.value.eventId !== eventIdHeader) {
      problems.push({ path: `headers/${HEADERS.eventId}`, rule: 'header', message: `is ${eventIdHeader} but the event's eventId is ${decoded.value.eventId}` });
    } else if (problems.length === 0 && gatewayId !== undefined && receivedAt !== undefined) {
      const observed = parseEventTime(decoded.value.dateObserved);
      // decodeEvent already checked the event time; this only narrows the type.
      if ('ms' in observed) {
        if (asText) {
          const bytes = isExactText(read.text) ? record.value : undefined;
          const event = { text: read.text, bytes, eventId: decoded.value.eventId, eventTimeMs: observed.ms, gatewayId, receivedAt, keys: countKeys(decoded.value, OBJECT_PATHS.get(kind) ?? []) };
          return { table: kind, partition: partitionOf(observed.ms), row: NO_CELLS, event };
        }
        return { table: kind, partition: partitionOf(observed.ms), row: eventRow(kind, decoded.value, { gatewayId, receivedAt }) };
      }
    }
  }
  return rejected(record, problems, { kind, deviceId, eventId: eventIdHeader ?? payloadEventId(record.value), gatewayId, receivedAt });
}

function decodeDeadLetterRecord(record: KafkaRecord): LakeRow {
  const { gatewayId, receivedAt } = readRecordHeaders(record.headers, { require: false });
  const deviceId = record.key === null ? undefined : record.key.toString('utf8');
  const context = { deviceId, gatewayId, receivedAt };
  if (record.value === null) return rejected(record, [{ path: '', rule: 'required', message: 'record has no value' }], context);
  let value: unknown;
  try {
    value = JSON.parse(record.value.toString('utf8'));
  } catch (err) {
    return rejected(record, [{ path: '', rule: 'json', message: `is not JSON: ${(err as Error).message}` }], context);
  }
  const checked = validateDeadLetter(value);
  if (!checked.ok) return rejected(record, checked.problems, context);
  const received = parseEventTime(checked.value.receivedAt);
  if (!('ms' in received)) {
    return rejected(record, [{ path: '/receivedAt', rule: 'eventTime', message: received.error }], context);
  }
  return { table: 'deadletter', partition: partitionOf(received.ms), row: deadLetterRow(checked.value) };
}

interface RejectContext {
  kind?: string | undefined;
  deviceId?: string | undefined;
  eventId?: string | undefined;
  gatewayId?: string | undefined;
  receivedAt?: number | undefined;
}

function rejected(record: KafkaRecord, problems: Problem[], context: RejectContext): LakeRow {
  // Dead letters are partitioned by receive time; without a usable header the broker's record timestamp
  // is the next best and, unlike the wall clock, is the same when the record is replayed.
  const receivedAt = context.receivedAt ?? recordTimestamp(record) ?? 0;
  const reason = describeProblems(problems);
  const letter: DeadLetter = {
    stage: 'sink',
    reason,
    problems,
    ...encodePayload(record.value ?? EMPTY),
    // The gateway does not forward the MQTT topic or client id of accepted events: unknown here.
    mqttTopic: '',
    clientId: '',
    gatewayId: context.gatewayId ?? '',
    receivedAt,
  };
  if (context.deviceId !== undefined) letter.deviceId = context.deviceId;
  if (context.kind !== undefined) letter.kind = context.kind;
  if (context.eventId !== undefined) letter.eventId = context.eventId;
  return { table: 'deadletter', partition: partitionOf(receivedAt), row: deadLetterRow(letter), rejected: { reason, problems } };
}

function recordTimestamp(record: KafkaRecord): number | undefined {
  // Records of a batch mostly share their timestamp: the last answer is kept.
  const text = record.timestamp;
  if (text === lastTimestamp.text) return lastTimestamp.ms;
  const parsed = /^\d{1,16}$/.test(text) ? parseEventTime(Number(text)) : undefined;
  const ms = parsed !== undefined && 'ms' in parsed ? parsed.ms : undefined;
  lastTimestamp = { text, ms };
  return ms;
}
let lastTimestamp: { text: string; ms: number | undefined } = { text: '', ms: undefined };

function payloadEventId(value: Buffer | null): string | undefined {
  if (value === null) return undefined;
  try {
    return eventIdIn(JSON.parse(value.toString('utf8')));
  } catch {
    return undefined;
  }
}

function eventIdIn(parsed: unknown): string | undefined {
  const eventId = typeof parsed === 'object' && parsed !== null ? (parsed as { eventId?: unknown }).eventId : undefined;
  return typeof eventId === 'string' ? eventId : undefined;
}

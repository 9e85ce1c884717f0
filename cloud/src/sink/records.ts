// The sink's boundary: every Kafka record is validated with protocol and becomes exactly one lake row.
// A record that fails becomes a dead-letter row with stage 'sink' and the reason; none is dropped.
import {
  compileSchema,
  deadLetterRow,
  decodeEvent,
  DeadLetter,
  describeProblems,
  encodePayload,
  EVENT_KINDS,
  eventRow,
  HEADERS,
  kafkaTopicSet,
  parseEventTime,
  partitionOf,
  SCHEMA_VERSION,
  type CellValue,
  type EventKind,
  type KafkaTopicSet,
  type Problem,
} from '@city/protocol';
import { rawTable, type LakePartition, type LakeTable } from './layout.ts';

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
  headers?: { [key: string]: Buffer | string | (Buffer | string)[] | undefined };
}

export interface LakeRow {
  table: LakeTable;
  partition: LakePartition;
  row: CellValue[];
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
    const headers: Record<string, string> = {};
    for (const name of Object.keys(record.headers ?? {}).sort()) {
      const value = header(record, name);
      if (value !== undefined) headers[name] = value;
    }
    const received = receivedAtHeader(record, []);
    const { payload, payloadEncoding } = encodePayload(record.value ?? EMPTY);
    const row: CellValue[] = [
      topic,
      partition,
      Number(record.offset),
      recordTimestamp(record) ?? null,
      record.key === null ? null : record.key.toString('utf8'),
      JSON.stringify(headers),
      payload,
      payloadEncoding,
      header(record, HEADERS.eventId) ?? payloadEventId(record.value) ?? null,
      header(record, HEADERS.gatewayId) ?? null,
      received ?? null,
      decoded.rejected === undefined,
    ];
    return { table: rawTable(kind), partition: decoded.partition, row };
  };
}

const validateDeadLetter = compileSchema<DeadLetter>(DeadLetter);
const EMPTY = Buffer.alloc(0);

export function createRecordDecoder(topics: SinkTopics): RecordDecoder {
  const kindByTopic = new Map<string, EventKind>(EVENT_KINDS.map((kind) => [topics.events[kind], kind]));
  return (topic, record) => {
    const kind = kindByTopic.get(topic);
    if (kind !== undefined) return decodeEventRecord(kind, record);
    if (topic === topics.deadletter) return decodeDeadLetterRecord(record);
    const problems = [{ path: 'topic', rule: 'topic', message: `${topic} is not a topic this sink reads` }];
    return rejected(record, problems, {});
  };
}

function decodeEventRecord(kind: EventKind, record: KafkaRecord): LakeRow {
  const problems: Problem[] = [];
  const gatewayId = requiredHeader(record, HEADERS.gatewayId, problems);
  const receivedAt = receivedAtHeader(record, problems);
  checkSchemaVersion(record, problems);
  const eventIdHeader = requiredHeader(record, HEADERS.eventId, problems);
  const deviceId = record.key === null ? undefined : record.key.toString('utf8');
  if (deviceId === undefined) problems.push({ path: 'key', rule: 'key', message: 'is missing; the key must be the device id' });
  if (record.value === null) {
    problems.push({ path: '', rule: 'required', message: 'record has no value' });
  } else {
    const decoded = decodeEvent(record.value, deviceId === undefined ? { kind } : { kind, deviceId });
    if (!decoded.ok) {
      problems.push(...decoded.problems);
    } else if (eventIdHeader !== undefined && decoded.value.eventId !== eventIdHeader) {
      problems.push({ path: `headers/${HEADERS.eventId}`, rule: 'header', message: `is ${eventIdHeader} but the event's eventId is ${decoded.value.eventId}` });
    } else if (problems.length === 0 && gatewayId !== undefined && receivedAt !== undefined) {
      const observed = parseEventTime(decoded.value.dateObserved);
      // decodeEvent already checked the event time; this only narrows the type.
      if ('ms' in observed) {
        return { table: kind, partition: partitionOf(observed.ms), row: eventRow(kind, decoded.value, { gatewayId, receivedAt }) };
      }
    }
  }
  return rejected(record, problems, { kind, deviceId, eventId: eventIdHeader ?? payloadEventId(record.value), gatewayId, receivedAt });
}

function decodeDeadLetterRecord(record: KafkaRecord): LakeRow {
  const gatewayId = header(record, HEADERS.gatewayId);
  const deviceId = record.key === null ? undefined : record.key.toString('utf8');
  const context = { deviceId, gatewayId, receivedAt: receivedAtHeader(record, []) };
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

function header(record: KafkaRecord, name: string): string | undefined {
  const raw = record.headers?.[name];
  // Kafka allows repeated headers; kafkajs then gives an array, and the last one wins.
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}

function requiredHeader(record: KafkaRecord, name: string, problems: Problem[]): string | undefined {
  const value = header(record, name);
  if (value === undefined || value === '') {
    problems.push({ path: `headers/${name}`, rule: 'header', message: 'is missing' });
    return undefined;
  }
  return value;
}

function receivedAtHeader(record: KafkaRecord, problems: Problem[]): number | undefined {
  const text = requiredHeader(record, HEADERS.receivedAt, problems);
  if (text === undefined) return undefined;
  const parsed = /^\d{1,16}$/.test(text) ? parseEventTime(Number(text)) : { error: 'must be epoch milliseconds as a decimal string' };
  if ('ms' in parsed) return parsed.ms;
  problems.push({ path: `headers/${HEADERS.receivedAt}`, rule: 'header', message: `${JSON.stringify(text)} ${parsed.error}` });
  return undefined;
}

function checkSchemaVersion(record: KafkaRecord, problems: Problem[]): void {
  const version = requiredHeader(record, HEADERS.schemaVersion, problems);
  if (version !== undefined && version !== String(SCHEMA_VERSION)) {
    problems.push({ path: `headers/${HEADERS.schemaVersion}`, rule: 'header', message: `is ${version} but this sink reads version ${SCHEMA_VERSION}` });
  }
}

function recordTimestamp(record: KafkaRecord): number | undefined {
  const parsed = /^\d{1,16}$/.test(record.timestamp) ? parseEventTime(Number(record.timestamp)) : undefined;
  return parsed !== undefined && 'ms' in parsed ? parsed.ms : undefined;
}

function payloadEventId(value: Buffer | null): string | undefined {
  if (value === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(value.toString('utf8'));
    const eventId = typeof parsed === 'object' && parsed !== null ? (parsed as { eventId?: unknown }).eventId : undefined;
    return typeof eventId === 'string' ? eventId : undefined;
  } catch {
    return undefined;
  }
}

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
  headersAsText,
  kafkaTopicSet,
  parseEventTime,
  partitionOf,
  readRecordHeaders,
  type CellValue,
  type EventKind,
  type KafkaHeaders,
  type KafkaTopicSet,
  type Problem,
} from '@city/protocol';
// The layout module itself, not the lake's index: decoding must not load DuckDB (the CLI's usage path imports it).
import { rawTable, type LakePartition, type LakeTable } from '../lake/layout.ts';

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
    const meta = readRecordHeaders(record.headers, { require: false });
    const { payload, payloadEncoding } = encodePayload(record.value ?? EMPTY);
    const row: CellValue[] = [
      topic,
      partition,
      Number(record.offset),
      recordTimestamp(record) ?? null,
      record.key === null ? null : record.key.toString('utf8'),
      JSON.stringify(headersAsText(record.headers)),
      payload,
      payloadEncoding,
      meta.eventId ?? payloadEventId(record.value) ?? null,
      meta.gatewayId ?? null,
      meta.receivedAt ?? null,
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
  const { gatewayId, receivedAt, eventId: eventIdHeader } = readRecordHeaders(record.headers, { require: true, reader: 'this sink' }, problems);
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

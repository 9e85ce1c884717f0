// Where things live in the lake. Object keys are relative, '/'-separated and Hive-style, so the same
// keys work in a local folder and in an S3 bucket, and DuckDB/Athena read the partition columns from them.
//
// Key scheme (relative to the store root: a folder, or s3://bucket/prefix/):
//   curated/kind=<kind>/event_date=YYYY-MM-DD/event_hour=H/<topic>+<partition>+<offset:19 digits>.parquet
//   raw/kind=<kind>/event_date=YYYY-MM-DD/event_hour=H/<topic>+<partition>+<offset>.parquet
//   deadletter/event_date=YYYY-MM-DD/event_hour=H/<topic>+<partition>+<offset>.parquet
// <offset> is the Kafka offset of the first record routed to the file. The sink cuts files at positions
// that depend only on the record stream (see sink.ts), so a replay rewrites the same keys. Tools that add
// files of their own (compaction) must use names parseDataFileKey accepts and never reuse a sink key.
import { DEADLETTER_TABLE, eventTable, isEventKind, type Column, type EventKind, type TableSchema } from '@city/protocol';

/** Raw zone table of one kind: every record of the kind's topic as received, with its Kafka metadata. */
export type RawTable = `raw_${EventKind}`;

/** A lake table: one per event kind (curated), one raw per kind, plus the dead letters. */
export type LakeTable = EventKind | RawTable | 'deadletter';

export interface LakePartition {
  event_date: string;
  event_hour: number;
}

export const CURATED_PREFIX = 'curated';
export const RAW_PREFIX = 'raw';
export const DEADLETTER_PREFIX = 'deadletter';

/** Kafka offsets are int64: 19 digits keep lexical order equal to numeric order. */
const OFFSET_DIGITS = 19;

/** Columns of a raw table: the record exactly as Kafka delivered it, plus what the sink read from it. */
export const RAW_COLUMNS: readonly Column[] = [
  { name: 'kafka_topic', type: 'string', nullable: false, source: [] },
  { name: 'kafka_partition', type: 'int64', nullable: false, source: [] },
  { name: 'kafka_offset', type: 'int64', nullable: false, source: [] },
  { name: 'kafka_timestamp', type: 'timestamp', nullable: true, unit: 'UTC', description: 'Kafka record timestamp', source: [] },
  { name: 'record_key', type: 'string', nullable: true, description: 'Kafka key: the device id', source: [] },
  { name: 'headers', type: 'string', nullable: false, description: 'JSON object of the Kafka headers (UTF-8 values)', source: [] },
  { name: 'payload', type: 'string', nullable: false, description: 'the record value as received', source: [] },
  { name: 'payload_encoding', type: 'string', nullable: false, description: 'utf8 or base64', source: [] },
  { name: 'event_id', type: 'string', nullable: true, source: [] },
  { name: 'gateway_id', type: 'string', nullable: true, source: [] },
  { name: 'received_at', type: 'timestamp', nullable: true, unit: 'UTC', description: 'gateway receive time', source: [] },
  { name: 'valid', type: 'boolean', nullable: false, description: 'false: the curated zone has it as a dead letter instead', source: [] },
];

const RAW_TABLES = new Map<string, TableSchema>();

export function rawTable(kind: EventKind): RawTable {
  return `raw_${kind}`;
}

/** The event kind of a raw table name, or undefined. */
export function rawKind(table: string): EventKind | undefined {
  const kind = table.startsWith('raw_') ? table.slice(4) : '';
  return isEventKind(kind) ? kind : undefined;
}

export function tableSchema(table: LakeTable): TableSchema {
  if (table === 'deadletter') return DEADLETTER_TABLE;
  if (rawKind(table) === undefined) return eventTable(table as EventKind);
  let schema = RAW_TABLES.get(table);
  if (schema === undefined) {
    schema = { name: table, columns: RAW_COLUMNS, partitionKeys: DEADLETTER_TABLE.partitionKeys };
    RAW_TABLES.set(table, schema);
  }
  return schema;
}

export function isLakeTable(value: string): value is LakeTable {
  return value === 'deadletter' || isEventKind(value) || rawKind(value) !== undefined;
}

/** Key prefix holding every file of a table, ending in '/'. */
export function tablePrefix(table: LakeTable): string {
  if (table === 'deadletter') return `${DEADLETTER_PREFIX}/`;
  const raw = rawKind(table);
  return raw === undefined ? `${CURATED_PREFIX}/kind=${table}/` : `${RAW_PREFIX}/kind=${raw}/`;
}

export function partitionPrefix(table: LakeTable, partition: LakePartition): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(partition.event_date)) throw new RangeError(`bad event_date ${partition.event_date}`);
  if (!Number.isInteger(partition.event_hour) || partition.event_hour < 0 || partition.event_hour > 23) {
    throw new RangeError(`bad event_hour ${partition.event_hour}`);
  }
  return `${tablePrefix(table)}event_date=${partition.event_date}/event_hour=${partition.event_hour}/`;
}

/**
 * File name of the rows of one Kafka topic-partition starting at `firstOffset`. A pure function of the
 * source position, so a replay after a crash rewrites the same object instead of adding a second one.
 */
export function dataFileName(topic: string, partition: number, firstOffset: bigint | string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(topic)) throw new RangeError(`topic name not usable in a file name: ${topic}`);
  if (!Number.isInteger(partition) || partition < 0) throw new RangeError(`bad partition ${partition}`);
  const offset = BigInt(firstOffset);
  if (offset < 0n) throw new RangeError(`bad offset ${offset}`);
  return `${topic}+${partition}+${offset.toString().padStart(OFFSET_DIGITS, '0')}.parquet`;
}

export function dataFileKey(
  table: LakeTable,
  partition: LakePartition,
  source: { topic: string; partition: number; firstOffset: bigint | string },
): string {
  return partitionPrefix(table, partition) + dataFileName(source.topic, source.partition, source.firstOffset);
}

/** Inverse of dataFileKey, for tools that list the lake (compaction, audits). */
export function parseDataFileKey(
  key: string,
): { table: LakeTable; partition: LakePartition; topic: string; kafkaPartition: number; firstOffset: bigint } | undefined {
  const m =
    /^(?:(curated|raw)\/kind=([a-z_]+)|deadletter)\/event_date=(\d{4}-\d{2}-\d{2})\/event_hour=(\d{1,2})\/([A-Za-z0-9._-]+)\+(\d+)\+(\d+)\.parquet$/.exec(
      key,
    );
  if (!m) return undefined;
  const table = m[2] === undefined ? 'deadletter' : m[1] === 'raw' ? `raw_${m[2]}` : m[2];
  if (!isLakeTable(table)) return undefined;
  return {
    table,
    partition: { event_date: m[3] as string, event_hour: Number(m[4]) },
    topic: m[5] as string,
    kafkaPartition: Number(m[6]),
    firstOffset: BigInt(m[7] as string),
  };
}

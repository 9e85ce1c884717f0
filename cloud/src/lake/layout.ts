// Where things live in the lake, and what lake files are called: the one place that knows. Object keys
// are relative, '/'-separated and Hive-style, so the same keys work in a local folder and in an S3
// bucket, and DuckDB/Athena read the partition columns from them.
//
// Key scheme (relative to the store root: a folder, or s3://bucket/prefix/):
//   curated/kind=<kind>/event_date=YYYY-MM-DD/event_hour=H/<file>
//   raw/kind=<kind>/event_date=YYYY-MM-DD/event_hour=H/<file>
//   deadletter/event_date=YYYY-MM-DD/event_hour=H/<file>
//   curated/kind=alerts|kpi_windows/event_date=…/event_hour=…/<file>   the live engine's topics
// <file> is one of
//   <topic>+<partition>+<first>.parquet          written by the sink: the rows of one Kafka topic-partition
//                                                from offset <first> (the first record routed to the file)
//   <topic>+<partition>+<first>+<last>.parquet   written by compaction: every row of the files it merged,
//                                                offsets <first>..<last>
// Offsets are zero-padded to 19 digits, so names sort by offset. The sink cuts files at positions that
// depend only on the record stream (see sink/segments.ts), so a replay rewrites the same keys.
import { DEADLETTER_TABLE, EVENT_KINDS, eventTable, isEventKind, LIVE_LAKE_TABLES, liveLakeTable, SCHEMA_VERSION, type Column, type EventKind, type LiveLakeTableName, type TableSchema } from '@city/protocol';

/** Raw zone table of one kind: every record of the kind's topic as received, with its Kafka metadata. */
export type RawTable = `raw_${EventKind}`;

/** A lake table: one per event kind (curated), one raw per kind, the dead letters, and the live engine's KPI windows and alerts. */
export type LakeTable = EventKind | RawTable | 'deadletter' | LiveLakeTableName;

const isLiveTable = (table: string): table is LiveLakeTableName => (LIVE_LAKE_TABLES as readonly string[]).includes(table);

export interface LakePartition {
  event_date: string;
  event_hour: number;
}

export const CURATED_PREFIX = 'curated';
export const RAW_PREFIX = 'raw';
export const DEADLETTER_PREFIX = 'deadletter';

/** Kafka offsets are int64: 19 digits keep lexical order equal to numeric order. */
const OFFSET_DIGITS = 19;
/** Kafka topic names as they may appear in a file name. */
const TOPIC_NAME = /^[A-Za-z0-9._-]+$/;

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

/** Parquet codecs the lake writes: every reader of the lake (DuckDB, Athena engine 3, Spark) reads both. */
export type ParquetCodec = 'snappy' | 'zstd';

/**
 * The codec of a table's files. Raw files are zstd at level 1: a third of snappy's size for 0.1–0.2 µs
 * more per row (test/bench/raw-zone.ts), and nothing loads them into Redshift. The rest stay snappy, what
 * Redshift's COPY and every Parquet reader take.
 */
export function parquetCodec(table: string): ParquetCodec {
  return rawKind(table) === undefined ? 'snappy' : 'zstd';
}

/** COPY … (FORMAT parquet, …) options for a table's codec. */
export function parquetCodecOptions(table: string): string {
  return parquetCodec(table) === 'zstd' ? 'COMPRESSION zstd, COMPRESSION_LEVEL 1' : 'COMPRESSION snappy';
}

/** The event kind of a raw table name, or undefined. */
export function rawKind(table: string): EventKind | undefined {
  const kind = table.startsWith('raw_') ? table.slice(4) : '';
  return isEventKind(kind) ? kind : undefined;
}

export function tableSchema(table: LakeTable): TableSchema {
  if (table === 'deadletter') return DEADLETTER_TABLE;
  if (isLiveTable(table)) return liveLakeTable(table);
  if (rawKind(table) === undefined) return eventTable(table as EventKind);
  let schema = RAW_TABLES.get(table);
  if (schema === undefined) {
    schema = { name: table, columns: RAW_COLUMNS, partitionKeys: DEADLETTER_TABLE.partitionKeys };
    RAW_TABLES.set(table, schema);
  }
  return schema;
}

export function isLakeTable(value: string): value is LakeTable {
  return value === 'deadletter' || isEventKind(value) || rawKind(value) !== undefined || isLiveTable(value);
}

/** Every lake table: curated per kind, raw per kind, dead letters, live KPI windows and alerts. */
export const ALL_LAKE_TABLES: readonly LakeTable[] = [...EVENT_KINDS, ...EVENT_KINDS.map(rawTable), 'deadletter', ...LIVE_LAKE_TABLES];

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

/** The lake partition a key of `table` lies in, or undefined for keys outside any partition folder. */
export function partitionOfKey(table: LakeTable, key: string): LakePartition | undefined {
  const prefix = tablePrefix(table);
  if (!key.startsWith(prefix)) return undefined;
  const m = /^event_date=(\d{4}-\d{2}-\d{2})\/event_hour=(\d{1,2})\/[^/]+$/.exec(key.slice(prefix.length));
  return m ? { event_date: m[1] as string, event_hour: Number(m[2]) } : undefined;
}

function checkSource(topic: string, partition: number): void {
  if (!TOPIC_NAME.test(topic)) throw new RangeError(`topic name not usable in a file name: ${topic}`);
  if (!Number.isInteger(partition) || partition < 0) throw new RangeError(`bad partition ${partition}`);
}

const pad = (offset: bigint): string => offset.toString().padStart(OFFSET_DIGITS, '0');

/**
 * File name of the rows of one Kafka topic-partition starting at `firstOffset`. A pure function of the
 * source position, so a replay after a crash rewrites the same object instead of adding a second one.
 */
export function dataFileName(topic: string, partition: number, firstOffset: bigint | string): string {
  checkSource(topic, partition);
  const offset = BigInt(firstOffset);
  if (offset < 0n) throw new RangeError(`bad offset ${offset}`);
  return `${topic}+${partition}+${pad(offset)}.parquet`;
}

/** File name of a compacted file: every row of one topic-partition from `firstOffset` to `lastOffset`. */
export function mergedFileName(topic: string, partition: number, firstOffset: bigint, lastOffset: bigint): string {
  checkSource(topic, partition);
  if (firstOffset < 0n || lastOffset < firstOffset) throw new RangeError(`bad offset range ${firstOffset}..${lastOffset}`);
  return `${topic}+${partition}+${pad(firstOffset)}+${pad(lastOffset)}.parquet`;
}

export function dataFileKey(
  table: LakeTable,
  partition: LakePartition,
  source: { topic: string; partition: number; firstOffset: bigint | string },
): string {
  return partitionPrefix(table, partition) + dataFileName(source.topic, source.partition, source.firstOffset);
}

/** A lake data file: one Kafka offset range of one topic-partition inside one lake partition. */
export interface LakeFileKey {
  key: string;
  table: LakeTable;
  partition: LakePartition;
  /** Folder of the file (its lake partition), ending in '/'. */
  folder: string;
  topic: string;
  kafkaPartition: number;
  firstOffset: bigint;
  /** Known from the name for merged files only. */
  lastOffset: bigint | undefined;
  /** Written by compaction (the name carries the whole offset range). */
  merged: boolean;
}

const KEY =
  /^((?:(curated|raw)\/kind=([a-z_]+)|deadletter)\/event_date=(\d{4}-\d{2}-\d{2})\/event_hour=(\d{1,2})\/)([A-Za-z0-9._-]+)\+(\d+)\+(\d+)(?:\+(\d+))?\.parquet$/;

/** Inverse of dataFileKey (and of compaction's merged names), for tools that list the lake. */
export function parseLakeFileKey(key: string): LakeFileKey | undefined {
  const m = KEY.exec(key);
  if (!m) return undefined;
  const table = m[3] === undefined ? 'deadletter' : m[2] === 'raw' ? `raw_${m[3]}` : m[3];
  if (!isLakeTable(table)) return undefined;
  const last = m[9];
  return {
    key,
    table,
    partition: { event_date: m[4] as string, event_hour: Number(m[5]) },
    folder: m[1] as string,
    topic: m[6] as string,
    kafkaPartition: Number(m[7]),
    firstOffset: BigInt(m[8] as string),
    lastOffset: last === undefined ? undefined : BigInt(last),
    merged: last !== undefined,
  };
}

/** A file the sink wrote (not a merged one), for tools that list the lake (audits, tests). */
export function parseDataFileKey(
  key: string,
): { table: LakeTable; partition: LakePartition; topic: string; kafkaPartition: number; firstOffset: bigint } | undefined {
  const file = parseLakeFileKey(key);
  if (file === undefined || file.merged) return undefined;
  return { table: file.table, partition: file.partition, topic: file.topic, kafkaPartition: file.kafkaPartition, firstOffset: file.firstOffset };
}

/** Footer key holding the Kafka offset of a file's last row (compaction reads it to name merged files). */
export const FOOTER_LAST_OFFSET = 'city.kafka.last_offset';

/** Key/value pairs every lake file carries in its Parquet footer: schema version and Kafka source range. */
export function footerMetadata(
  source: { topic: string; kafkaPartition: number; firstOffset: bigint; lastOffset: bigint },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    'city.schema_version': String(SCHEMA_VERSION),
    'city.kafka.topic': source.topic,
    'city.kafka.partition': String(source.kafkaPartition),
    'city.kafka.first_offset': source.firstOffset.toString(),
    [FOOTER_LAST_OFFSET]: source.lastOffset.toString(),
    ...extra,
  };
}

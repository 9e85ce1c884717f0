// Where things live in the lake. Object keys are relative, '/'-separated and Hive-style, so the same
// keys work in a local folder and in an S3 bucket, and DuckDB/Athena read the partition columns from them.
import { DEADLETTER_TABLE, eventTable, isEventKind, type EventKind, type TableSchema } from '@city/protocol';

/** A lake table: one per event kind, plus the dead letters. */
export type LakeTable = EventKind | 'deadletter';

export interface LakePartition {
  event_date: string;
  event_hour: number;
}

export const CURATED_PREFIX = 'curated';
export const DEADLETTER_PREFIX = 'deadletter';

/** Kafka offsets are int64: 19 digits keep lexical order equal to numeric order. */
const OFFSET_DIGITS = 19;

export function tableSchema(table: LakeTable): TableSchema {
  return table === 'deadletter' ? DEADLETTER_TABLE : eventTable(table);
}

export function isLakeTable(value: string): value is LakeTable {
  return value === 'deadletter' || isEventKind(value);
}

/** Key prefix holding every file of a table, ending in '/'. */
export function tablePrefix(table: LakeTable): string {
  return table === 'deadletter' ? `${DEADLETTER_PREFIX}/` : `${CURATED_PREFIX}/kind=${table}/`;
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
    /^(?:curated\/kind=([a-z_]+)|deadletter)\/event_date=(\d{4}-\d{2}-\d{2})\/event_hour=(\d{1,2})\/([A-Za-z0-9._-]+)\+(\d+)\+(\d+)\.parquet$/.exec(
      key,
    );
  if (!m) return undefined;
  const table = m[1] ?? 'deadletter';
  if (!isLakeTable(table)) return undefined;
  return {
    table,
    partition: { event_date: m[2] as string, event_hour: Number(m[3]) },
    topic: m[4] as string,
    kafkaPartition: Number(m[5]),
    firstOffset: BigInt(m[6] as string),
  };
}

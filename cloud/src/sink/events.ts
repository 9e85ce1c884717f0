// What the sink reports: its events and counters.
import type { CityError } from '@city/protocol';
import type { LakeTable } from '../lake/index.ts';
import type { FlushReason } from './segments.ts';

export interface CommittedOffset {
  topic: string;
  partition: number;
  /** The committed offset: the next record to read. */
  offset: string;
}

export interface FlushInfo {
  reason: FlushReason;
  files: number;
  rows: number;
  /** Rows written per lake table (event kinds and 'deadletter'). */
  byKind: Partial<Record<LakeTable, number>>;
  /** Rows in this flush that were refused here and written as dead letters. */
  rejected: number;
  /** Events dropped because an event with the same id was consumed before (retry or replay). */
  duplicates: number;
  /** Segments (topic-partition ranges) this flush wrote. */
  segments: number;
  committed: CommittedOffset[];
  durationMs: number;
}

export interface FlushErrorInfo {
  error: CityError;
  stage: 'write' | 'catalog' | 'commit';
  attempt: number;
  retryInMs: number;
}

export interface RebalanceInfo {
  assigned: { topic: string; partitions: number[] }[];
  /** Buffered rows dropped: Kafka delivers them again from the committed offsets. */
  droppedRows: number;
}

export interface RejectedInfo {
  topic: string;
  partition: number;
  offset: string;
  reason: string;
}

export interface CompactionInfo {
  /** Lake partitions looked at (those holding committed files of this sink's topic-partitions). */
  partitions: number;
  /** Merged files written, and the files they replaced (now deleted). */
  merged: number;
  deleted: number;
  durationMs: number;
}

export interface SinkEvents {
  flush: [FlushInfo];
  flushError: [FlushErrorInfo];
  rebalance: [RebalanceInfo];
  rejected: [RejectedInfo];
  /** A compaction round finished (also when it found nothing to do). */
  compaction: [CompactionInfo];
  /** A compaction round failed; the next round tries again. */
  compactionError: [{ error: CityError }];
  /** The Kafka consumer crashed; with restart false it will not consume again. */
  crash: [{ error: CityError; restart: boolean }];
}

export interface SinkStats {
  /** Records taken from Kafka into the buffer. */
  consumed: number;
  /** Records refused here (written as dead letters with stage 'sink'). */
  rejected: number;
  buffered: number;
  flushes: number;
  /** Files written by flushes (compaction later merges them). */
  files: number;
  /** Rows written per lake table. */
  rows: Partial<Record<LakeTable, number>>;
  /** Events dropped as duplicates of one consumed before (same event id, another Kafka position). */
  duplicates: number;
  writeErrors: number;
  catalogErrors: number;
  commitErrors: number;
  droppedOnRebalance: number;
  /** Compaction rounds run, merged files written, files they replaced, and rounds that failed. */
  compactions: number;
  compactedFiles: number;
  compactedInputs: number;
  compactionErrors: number;
}

export function emptyStats(): SinkStats {
  return {
    consumed: 0,
    rejected: 0,
    buffered: 0,
    flushes: 0,
    files: 0,
    rows: {},
    duplicates: 0,
    writeErrors: 0,
    catalogErrors: 0,
    commitErrors: 0,
    droppedOnRebalance: 0,
    compactions: 0,
    compactedFiles: 0,
    compactedInputs: 0,
    compactionErrors: 0,
  };
}

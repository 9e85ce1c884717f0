// Segment cutting. Each Kafka topic-partition is cut into segments; a segment ends when its records reach
// maxRows or maxBytes, or when a record's Kafka timestamp is maxSpanMs past the segment's first one. These
// rules see only the record stream, and commits happen only at segment ends, so a replay (after a crash,
// or by the next owner after a rebalance) cuts the same segments and writes the same objects: a segment
// becomes one file per lake partition, named by (topic, partition, offset of the first record routed to
// it) — see lake/layout.ts. Two wall-clock rules also end a segment: idle for maxAgeMs (freshness), and
// close or a full buffer. Their cut is not reproducible, so a flush takes at most one such segment per
// topic-partition, last (takeEnded), and commits it before any later one is written: a replay that cuts
// elsewhere still starts every lake partition's first file at the same offset and so replaces that file.
import type { CellValue } from '@city/protocol';
import { rawKind, type LakePartition, type LakeTable } from '../lake/layout.ts';
import type { PackedRows } from '../lake/packed.ts';
import { eventTextPack, packEvent, packRawRecord, rawRowPack, type EventText, type LakeRow, type RawRecord } from './records.ts';

/**
 * Why segments ended: 'rows', 'bytes' and 'span' depend only on the records (reproducible); 'age' (idle),
 * 'close' and 'backpressure' on the wall clock.
 */
export type FlushReason = 'rows' | 'bytes' | 'span' | 'age' | 'close' | 'backpressure';

const REPRODUCIBLE: ReadonlySet<FlushReason> = new Set(['rows', 'bytes', 'span']);

/** How many recently routed files route() checks before a map lookup: a curated, a raw and a dead-letter file. */
const RECENT_FILES = 4;

/** Rows of one segment for one lake table partition: becomes one file. */
export interface SegmentFile {
  table: LakeTable;
  partition: LakePartition;
  /** Offset of the first record routed here, kept or dropped as a duplicate: it names the file. */
  firstOffset: bigint;
  lastOffset: bigint;
  /** Rows as cells: dead letters, and tables whose rows are not packed. */
  rows: CellValue[][];
  /**
   * Rows packed off the heap until the flush: every raw-zone row, and valid events as their text. A file
   * holds cells or packed rows, never both (events only go to event tables, raw rows to raw tables).
   */
  packed: PackedRows | undefined;
  rejected: number;
  duplicates: number;
  /** The segment the file belongs to. */
  segment: KafkaSegment;
}

/** A run of consecutive records of one Kafka topic-partition; committed as a whole. */
export interface KafkaSegment {
  tp: string;
  topic: string;
  partition: number;
  firstOffset: bigint;
  lastOffset: bigint;
  /** Kafka timestamp of the first record with one (epoch ms). */
  firstTimestamp: number | undefined;
  records: number;
  bytes: number;
  files: Map<string, SegmentFile>;
  /** Wall clock (performance.now) of the last record, for the idle rule. */
  lastSeenMs: number;
  endedBy?: FlushReason;
}

/** Rows a file holds, as cells or as event texts. */
export const fileRows = (file: SegmentFile): number => file.rows.length + (file.packed?.rows ?? 0);

export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export interface SegmentRules {
  maxRows: number;
  maxBytes: number;
  maxSpanMs: number;
  maxAgeMs: number;
}

/** The open segment per topic-partition and the ended ones waiting for a flush, with the rows they hold. */
export class Segments {
  readonly #rules: SegmentRules;
  /** Called when a segment ends, so a flush can be requested. */
  readonly #onEnd: (reason: FlushReason) => void;
  #open = new Map<string, KafkaSegment>();
  #ended: KafkaSegment[] = [];
  #bufferedRows = 0;
  #ageTimer: NodeJS.Timeout | undefined;
  /** Files routed to last, newest first. */
  #recent: SegmentFile[] = [];

  constructor(rules: SegmentRules, onEnd: (reason: FlushReason) => void) {
    this.#rules = rules;
    this.#onEnd = onEnd;
  }

  /** Rows held in open and ended segments. */
  get bufferedRows(): number {
    return this.#bufferedRows;
  }

  get hasEnded(): boolean {
    return this.#ended.length > 0;
  }

  /**
   * The open segment of a topic-partition for a record at `offset`, after the record-time rule: a record
   * whose timestamp is maxSpanMs past the segment's first one ends it and starts the next.
   */
  segmentFor(topic: string, partition: number, offset: bigint, timestamp: number | undefined, tp = tpKey(topic, partition)): KafkaSegment {
    let segment = this.#open.get(tp);
    if (segment !== undefined && timestamp !== undefined && segment.firstTimestamp !== undefined && timestamp - segment.firstTimestamp >= this.#rules.maxSpanMs) {
      this.end(segment, 'span');
      segment = undefined;
    }
    if (segment === undefined) {
      segment = { tp, topic, partition, firstOffset: offset, lastOffset: offset, firstTimestamp: timestamp, records: 0, bytes: 0, files: new Map(), lastSeenMs: 0 };
      this.#open.set(tp, segment);
    }
    segment.firstTimestamp ??= timestamp;
    return segment;
  }

  /** The file of `segment` that a row of `row.table`/`row.partition` goes to. */
  route(segment: KafkaSegment, row: Pick<LakeRow, 'table' | 'partition'>, offset: bigint): SegmentFile {
    // Consecutive records mostly go to the same files: look the last ones up before building a key.
    const recent = this.#recent;
    for (let i = 0; i < recent.length; i++) {
      const hit = recent[i] as SegmentFile;
      if (hit.segment === segment && hit.table === row.table && hit.partition.event_hour === row.partition.event_hour && hit.partition.event_date === row.partition.event_date) {
        hit.lastOffset = offset;
        return hit;
      }
    }
    const key = `${row.table}\u0000${row.partition.event_date}\u0000${row.partition.event_hour}`;
    let file = segment.files.get(key);
    if (file === undefined) {
      const packed = rawKind(row.table) === undefined ? undefined : rawRowPack();
      file = { table: row.table, partition: row.partition, firstOffset: offset, lastOffset: offset, rows: [], packed, rejected: 0, duplicates: 0, segment };
      segment.files.set(key, file);
    }
    file.lastOffset = offset;
    recent.unshift(file);
    if (recent.length > RECENT_FILES) recent.pop();
    return file;
  }

  addRow(file: SegmentFile, row: CellValue[]): void {
    if (file.packed !== undefined) throw new Error(`${file.table}: a packed file takes its rows through addEvent or addRaw`);
    file.rows.push(row);
    this.#bufferedRows++;
  }

  addRaw(file: SegmentFile, raw: RawRecord): void {
    if (file.packed === undefined) throw new Error(`${file.table}: not a raw-zone file`);
    packRawRecord(file.packed, raw);
    this.#bufferedRows++;
  }

  addEvent(file: SegmentFile, event: EventText): void {
    packEvent((file.packed ??= eventTextPack()), event);
    this.#bufferedRows++;
  }

  /** After a record was added: the idle timer, then the count rules. */
  recorded(segment: KafkaSegment): void {
    this.#armAgeTimer();
    if (segment.records >= this.#rules.maxRows) this.end(segment, 'rows');
    else if (segment.bytes >= this.#rules.maxBytes) this.end(segment, 'bytes');
  }

  end(segment: KafkaSegment, reason: FlushReason): void {
    if (this.#open.get(segment.tp) !== segment) return;
    this.#open.delete(segment.tp);
    this.#forgetRecent((f) => f.segment === segment);
    segment.endedBy = reason;
    this.#ended.push(segment);
    this.#onEnd(reason);
  }

  endAll(reason: FlushReason): void {
    for (const segment of [...this.#open.values()]) this.end(segment, reason);
  }

  /** Takes the ended segments to write now: per topic-partition, up to and including the first non-reproducible one. */
  takeEnded(): KafkaSegment[] {
    const taken: KafkaSegment[] = [];
    const stopped = new Set<string>();
    const left: KafkaSegment[] = [];
    for (const segment of this.#ended) {
      if (stopped.has(segment.tp)) {
        left.push(segment);
        continue;
      }
      taken.push(segment);
      for (const file of segment.files.values()) this.#bufferedRows -= fileRows(file);
      if (!REPRODUCIBLE.has(segment.endedBy ?? 'close')) stopped.add(segment.tp);
    }
    this.#ended = left;
    return taken;
  }

  /** Whether a segment of `tp` still buffered starts below `offset` (it was read before a commit that passed it). */
  holdsBefore(tp: string, offset: bigint): boolean {
    const open = this.#open.get(tp);
    const ended = this.#ended.find((s) => s.tp === tp);
    return (open !== undefined && open.firstOffset < offset) || (ended !== undefined && ended.firstOffset < offset);
  }

  /** Drops every buffered segment of one topic-partition; returns whether there were any. */
  drop(tp: string): boolean {
    const open = this.#open.get(tp);
    const stale = [...(open === undefined ? [] : [open]), ...this.#ended.filter((s) => s.tp === tp)];
    if (stale.length === 0) return false;
    this.#open.delete(tp);
    this.#forgetRecent((f) => f.segment.tp === tp);
    this.#ended = this.#ended.filter((s) => s.tp !== tp);
    for (const s of stale) for (const f of s.files.values()) this.#bufferedRows -= fileRows(f);
    return true;
  }

  /** Drops everything buffered (after a group join); returns the rows dropped. */
  reset(): number {
    const dropped = this.#bufferedRows;
    this.#open = new Map();
    this.#ended = [];
    this.#recent = [];
    this.#bufferedRows = 0;
    this.stopTimer();
    return dropped;
  }

  /** Files of ended or dropped segments leave the route cache, which would otherwise keep their rows alive. */
  #forgetRecent(match: (file: SegmentFile) => boolean): void {
    if (this.#recent.some(match)) this.#recent = this.#recent.filter((f) => !match(f));
  }

  stopTimer(): void {
    clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
  }

  /** Freshness: a segment idle for maxAgeMs (wall clock) ends, so a quiet partition still reaches the lake. */
  #armAgeTimer(): void {
    if (this.#ageTimer !== undefined) return;
    this.#ageTimer = setTimeout(() => {
      this.#ageTimer = undefined;
      const now = performance.now();
      for (const segment of [...this.#open.values()]) if (now - segment.lastSeenMs >= this.#rules.maxAgeMs) this.end(segment, 'age');
      if (this.#open.size > 0) this.#armAgeTimer();
    }, this.#rules.maxAgeMs / 2);
    this.#ageTimer.unref();
  }
}

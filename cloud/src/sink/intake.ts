// Intake: each consumed record becomes rows in its topic-partition's open segment, exactly once. It skips
// what is buffered or committed already, rebuilds the duplicate window from Kafka after every (re)join
// (so a restarted or new owner decides exactly as an uninterrupted sink would), and drops duplicates.
import { isEventKind, type EventKind, type Log } from '@city/protocol';
import { tableSchema } from '../lake/index.ts';
import type { DuplicateWindow } from './dedup.ts';
import type { RejectedInfo, SinkStats } from './events.ts';
import { createRecordDecoder, createRecordReader, type KafkaRecord, type LakeRow, type RecordDecoder, type SinkTopics } from './records.ts';
import { tpKey, type Segments } from './segments.ts';

/** The topic-partitions this sink owns now, and what it committed of them. */
export interface Ownership {
  assigned: Set<string>;
  /** Offset this sink last committed per topic-partition: rows below it are durable already. */
  committed: Map<string, bigint>;
  /** Counts group joins; a change means the assignment may have moved. */
  generation: number;
}

export interface IntakeDeps {
  topics: SinkTopics;
  /** Record → lake row; by default the event and dead-letter topics' decoder. */
  decoder?: RecordDecoder;
  rawZone: boolean;
  dedupWindow: number;
  segments: Segments;
  duplicates: DuplicateWindow;
  ownership: Ownership;
  stats: SinkStats;
  /** Reads a topic-partition again from an offset; false when the consumer cannot seek now. */
  seek(topic: string, partition: number, offset: bigint): boolean;
  rejected(info: RejectedInfo): void;
  log: Log;
}

export class Intake {
  readonly #deps: IntakeDeps;
  readonly #decode: ReturnType<typeof createRecordDecoder>;
  readonly #read: ReturnType<typeof createRecordReader>;
  /** Next offset expected per topic-partition in the current group generation. */
  readonly #next = new Map<string, bigint>();
  /** Topic-partitions read since the last join; while seeding, records below the offset only fill the window. */
  readonly #started = new Set<string>();
  readonly #seeding = new Map<string, bigint>();
  #lastTopic = '';
  #lastPartition = -1;
  #lastTp = '';

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
    this.#decode = deps.decoder ?? createRecordDecoder(deps.topics);
    this.#read = createRecordReader(deps.topics, deps.rawZone, this.#decode, { eventTexts: true });
  }

  accept(topic: string, partition: number, record: KafkaRecord): void {
    const { segments, ownership, stats } = this.#deps;
    // Records come in batches of one topic-partition: its key is built once per run of them.
    if (topic !== this.#lastTopic || partition !== this.#lastPartition) {
      this.#lastTopic = topic;
      this.#lastPartition = partition;
      this.#lastTp = tpKey(topic, partition);
    }
    const tp = this.#lastTp;
    const offset = BigInt(record.offset);
    const next = this.#next.get(tp);
    const committed = ownership.committed.get(tp);
    if (!this.#started.has(tp)) {
      this.#started.add(tp);
      this.#deps.duplicates.forget(tp);
      if (committed !== undefined && offset > committed) {
        this.#deps.log('warn', 'records expired in Kafka before the sink wrote them', { topic, partition, from: committed.toString(), resumedAt: offset.toString() });
      }
      // Rebuild the duplicate window from Kafka itself: read the dedupWindow records before where reading
      // starts again, then carry on from there.
      const from = offset - BigInt(this.#deps.dedupWindow);
      if (offset > 0n && topic !== this.#deps.topics.deadletter && this.#deps.seek(topic, partition, from > 0n ? from : 0n)) {
        this.#seeding.set(tp, offset);
        return;
      }
    }
    const seedUntil = this.#seeding.get(tp);
    if (seedUntil !== undefined) {
      if (offset < seedUntil) {
        // Same rule as below (valid events only), or a replay would decide differently.
        const eventId = keptEventId(this.#decode(topic, record));
        if (eventId !== undefined) this.#deps.duplicates.isDuplicate(tp, eventId, offset);
        return;
      }
      this.#seeding.delete(tp);
    }
    // Below what is buffered (redelivery) or below our own commit (already durable): skip.
    if ((next !== undefined && offset < next) || (committed !== undefined && offset < committed)) return;

    const timestamp = kafkaTimestamp(record.timestamp);
    const segment = segments.segmentFor(topic, partition, offset, timestamp, tp);
    segment.lastOffset = offset;
    segment.records++;
    segment.bytes += (record.value?.length ?? 0) + (record.key?.length ?? 0);
    segment.lastSeenMs = performance.now();
    stats.consumed++;
    this.#next.set(tp, offset + 1n);

    const { row: decoded, raw } = this.#read(topic, partition, record);
    const file = segments.route(segment, decoded, offset);
    const rawFile = raw === undefined ? undefined : segments.route(segment, raw, offset);
    if (decoded.rejected !== undefined) {
      file.rejected++;
      stats.rejected++;
      const info = { topic, partition, offset: record.offset, reason: decoded.rejected.reason };
      this.#deps.log('debug', 'record refused, kept as dead letter', info);
      this.#deps.rejected(info);
    }
    const eventId = keptEventId(decoded);
    if (eventId !== undefined && this.#deps.duplicates.isDuplicate(tp, eventId, offset)) {
      // Dropped from both zones: raw keeps each event once too.
      file.duplicates++;
      stats.duplicates++;
      this.#deps.log('debug', 'duplicate event dropped', { topic, partition, offset: record.offset, kind: decoded.table });
    } else {
      if (decoded.event !== undefined) segments.addEvent(file, decoded.event);
      else segments.addRow(file, decoded.row);
      if (raw !== undefined && rawFile !== undefined) segments.addRaw(rawFile, raw);
    }
    segments.recorded(segment);
  }

  /** After a group join kafkajs reads every assigned partition again from its committed offset. */
  restart(): void {
    this.#next.clear();
    this.#started.clear();
    this.#seeding.clear();
  }

  /** Drops what is buffered for one topic-partition and reads it again from `offset` (a segment start). */
  rewind(topic: string, partition: number, offset: bigint): void {
    const tp = tpKey(topic, partition);
    if (!this.#deps.segments.drop(tp)) return;
    this.#next.delete(tp);
    // Reading restarts at `offset` and first rebuilds the duplicate window before it.
    this.#started.delete(tp);
    this.#seeding.delete(tp);
    this.#deps.seek(topic, partition, offset);
  }
}

let lastTimestamp: { text: string; ms: number | undefined } = { text: '', ms: undefined };

/** The record's Kafka timestamp as epoch ms, if it is one; records of a batch mostly share it, so the last is kept. */
function kafkaTimestamp(text: string): number | undefined {
  if (text !== lastTimestamp.text) lastTimestamp = { text, ms: /^\d{1,16}$/.test(text) ? Number(text) : undefined };
  return lastTimestamp.ms;
}

/** The event id of a valid event row: the only rows duplicates are dropped from. */
function keptEventId(decoded: LakeRow): string | undefined {
  // A row kept as its text is a valid event.
  if (decoded.event !== undefined) return decoded.event.eventId;
  if (decoded.rejected !== undefined || !isEventKind(decoded.table)) return undefined;
  const eventId = decoded.row[eventIdColumn(decoded.table)];
  return typeof eventId === 'string' ? eventId : undefined;
}

const EVENT_ID_COLUMN = new Map<EventKind, number>();

function eventIdColumn(kind: EventKind): number {
  let index = EVENT_ID_COLUMN.get(kind);
  if (index === undefined) {
    index = tableSchema(kind).columns.findIndex((c) => c.name === 'event_id');
    EVENT_ID_COLUMN.set(kind, index);
  }
  return index;
}

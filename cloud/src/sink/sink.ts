// The sink: a Kafka consumer group that turns records into Parquet files in the lake.
// Offsets are committed only after every file holding their rows is durable and catalogued, so a crash
// anywhere re-consumes records instead of losing them.
//
// Exactly-once files. Each topic-partition is cut into segments; a segment ends when its records reach
// maxRows or maxBytes, or when a record's Kafka timestamp is maxSpanMs past the segment's first one. These
// rules see only the record stream, and commits happen only at segment ends, so a replay (after a crash,
// or by the next owner after a rebalance) cuts the same segments and writes the same objects: a segment
// becomes one file per lake partition, named by (topic, partition, offset of the first record routed to
// it) — see layout.ts. Two wall-clock rules also end a segment: idle for maxAgeMs (freshness) and close
// or a full buffer. Their cut is not reproducible, so a flush writes at most one such segment per
// topic-partition, last, and commits it before any later one is written: a replay that cuts elsewhere
// still starts every lake partition's first file at the same offset and so replaces that file.
// Residual risk: a sink that lost its partitions and writes such a segment after the new owner
// replaced it (both cut differently) can overwrite the newer file; the sink checks its assignment
// right before every write to keep that window small. Deterministic segments are identical whoever
// writes them, so for them the race is harmless.
import { EventEmitter } from 'node:events';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type LogEntry } from 'kafkajs';
import { CityError, isEventKind, type CellValue, type EventKind } from '@city/protocol';
import type { CatalogPort } from './catalog.ts';
import { cloudErrors, errorMessage, type CloudErrorCode } from './errors.ts';
import { partitionPrefix, tablePrefix, tableSchema, type LakePartition, type LakeTable } from './layout.ts';
import { createLakeWriter, type LakeWriter } from './lake-writer.ts';
import type { Log } from './log.ts';
import { resolveSinkOptions, type ResolvedSinkOptions, type SinkOptions } from './options.ts';
import { createRawRowBuilder, createRecordDecoder, topicList, type KafkaRecord, type LakeRow, type RawRowBuilder, type RecordDecoder } from './records.ts';
import { createLocalFolderStore } from './store.ts';

/**
 * Why segments ended: 'rows', 'bytes' and 'span' depend only on the records (reproducible); 'age' (idle),
 * 'close' and 'backpressure' on the wall clock.
 */
export type FlushReason = 'rows' | 'bytes' | 'span' | 'age' | 'close' | 'backpressure';

const REPRODUCIBLE: ReadonlySet<FlushReason> = new Set(['rows', 'bytes', 'span']);

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

export interface SinkEvents {
  flush: [FlushInfo];
  flushError: [FlushErrorInfo];
  rebalance: [RebalanceInfo];
  rejected: [RejectedInfo];
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
  files: number;
  /** Rows written per lake table. */
  rows: Partial<Record<LakeTable, number>>;
  /** Events dropped as duplicates of one consumed before (same event id, another Kafka position). */
  duplicates: number;
  writeErrors: number;
  catalogErrors: number;
  commitErrors: number;
  droppedOnRebalance: number;
}

type State = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/** Rows of one segment for one lake table partition: becomes one file. */
interface OpenFile {
  table: LakeTable;
  partition: LakePartition;
  /** Offset of the first record routed here, kept or dropped as a duplicate: it names the file. */
  firstOffset: bigint;
  lastOffset: bigint;
  rows: CellValue[][];
  rejected: number;
  duplicates: number;
}

/** A run of consecutive records of one topic-partition; committed as a whole. */
interface Segment {
  tp: string;
  topic: string;
  partition: number;
  firstOffset: bigint;
  lastOffset: bigint;
  /** Kafka timestamp of the first record with one (epoch ms). */
  firstTimestamp: number | undefined;
  records: number;
  bytes: number;
  files: Map<string, OpenFile>;
  /** Wall clock (performance.now) of the last record, for the idle rule. */
  lastSeenMs: number;
  endedBy?: FlushReason;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** How often a batch waiting for room in the buffer heartbeats, well under the session timeout. */
const BACKPRESSURE_HEARTBEAT_MS = 1_000;

export class Sink extends EventEmitter<SinkEvents> {
  readonly options: Readonly<ResolvedSinkOptions>;
  readonly #log: Log;
  readonly #decode: RecordDecoder;
  readonly #raw: RawRowBuilder;
  readonly #topics: string[];
  readonly #abort = new AbortController();
  #state: State = 'new';
  #startPromise: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;
  #consumer: Consumer | undefined;
  #lake: LakeWriter | undefined;

  /** The open segment per topic-partition, and ended ones waiting for a flush, in end order. */
  #open = new Map<string, Segment>();
  #ended: Segment[] = [];
  #bufferedRows = 0;
  #ageTimer: NodeJS.Timeout | undefined;
  /** Per topic-partition: event id → offset of its latest record, for the last dedupWindow offsets. */
  readonly #seen = new Map<string, Map<string, bigint>>();
  /** Topic-partitions read since the last join; while seeding, records below the offset only fill #seen. */
  readonly #started = new Set<string>();
  readonly #seeding = new Map<string, bigint>();
  readonly #catalogued = new Set<string>();
  /** Next offset expected per topic-partition in the current group generation. */
  readonly #next = new Map<string, bigint>();
  /** Offset this sink last committed per topic-partition: rows below it are durable already. */
  readonly #committed = new Map<string, bigint>();
  #assigned = new Set<string>();
  #flushLoop: Promise<void> | undefined;
  #flushPending: FlushReason | undefined;
  readonly #stats: SinkStats = {
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
  };

  constructor(options: SinkOptions) {
    super();
    this.options = Object.freeze(resolveSinkOptions(options));
    this.#log = this.options.log;
    this.#decode = createRecordDecoder(this.options.topics);
    this.#raw = createRawRowBuilder(this.options.topics);
    this.#topics = topicList(this.options.topics);
  }

  get state(): State {
    return this.#state;
  }

  stats(): SinkStats {
    return { ...this.#stats, buffered: this.#bufferedRows, rows: { ...this.#stats.rows } };
  }

  /**
   * Connects, joins the consumer group and starts consuming. Resolves once the group is joined; a join
   * that fails later shows as a 'crash' event (kafkajs retries it unless the error is fatal).
   */
  start(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(cloudErrors.create('CLD_CLOSED', 'sink'));
    this.#startPromise ??= this.#start();
    return this.#startPromise;
  }

  /**
   * Stops consuming, writes the buffered rows, commits their offsets and disconnects. Idempotent: every
   * caller gets the same promise. Rejects with CLD_CLOSE_TIMEOUT if the deadline passes first; what was
   * not committed by then is consumed again by the next run.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#closeWithDeadline();
    return this.#closePromise;
  }

  async #start(): Promise<void> {
    this.#state = 'starting';
    const { brokers, clientId, groupId, fromBeginning } = this.options;
    let kafka: Kafka | undefined;
    try {
      this.#lake = await createLakeWriter(this.options.store ?? createLocalFolderStore(this.options.lakeDir));
      kafka = new Kafka({ clientId, brokers, logLevel: logLevel.INFO, logCreator: () => (entry) => this.#kafkaLog(entry) });
      // Topics are created by deployment with their partition counts; the sink must not invent them.
      const { sessionTimeoutMs } = this.options;
      const consumer = kafka.consumer({
        groupId,
        allowAutoTopicCreation: false,
        sessionTimeout: sessionTimeoutMs,
        heartbeatInterval: Math.min(3_000, Math.floor(sessionTimeoutMs / 3)),
        // kafkajs's stop() waits for the fetch in flight: a short long-poll keeps close() quick.
        maxWaitTimeInMs: 1_000,
      });
      this.#consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, (event) => this.#onGroupJoin(event.payload.memberAssignment));
      consumer.on(consumer.events.CRASH, (event) => this.#onCrash(event.payload.error, event.payload.restart));
      await consumer.connect();
      await consumer.subscribe({ topics: this.#topics, fromBeginning });
      if (this.#state !== 'starting') throw cloudErrors.create('CLD_CLOSED', 'sink closed while starting');
      await consumer.run({
        autoCommit: false,
        // Offsets are resolved one by one as records are buffered, never for a whole batch at once.
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.#eachBatch(payload),
      });
      if (this.#state === 'starting') this.#state = 'running';
      this.#log('info', 'sink started', { groupId, brokers, topics: this.#topics.length, lake: this.#lake.store.root });
    } catch (err) {
      const missing = kafka === undefined ? [] : await missingTopics(kafka, this.#topics).catch(() => []);
      const detail = missing.length > 0 ? `topics do not exist: ${missing.join(', ')}` : errorMessage(err);
      const error = err instanceof CityError ? err : cloudErrors.create('CLD_KAFKA_START', detail, err);
      this.#log('error', 'sink start failed', { error });
      await this.#consumer?.disconnect().catch(() => undefined);
      await this.#lake?.close().catch(() => undefined);
      this.#lake = undefined;
      throw error;
    }
  }

  async #closeWithDeadline(): Promise<void> {
    const shutdown = this.#shutdown();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.closeTimeoutMs);
    });
    try {
      const outcome = await Promise.race([shutdown.then(() => 'done' as const), deadline]);
      if (outcome === 'done') return;
    } finally {
      clearTimeout(timer);
    }
    // Out of time: stop retrying, drop the consumer without committing; Kafka keeps the records.
    this.#abort.abort();
    shutdown.catch(() => undefined);
    const unflushed = this.#bufferedRows;
    this.#log('error', 'sink close timed out', { closeTimeoutMs: this.options.closeTimeoutMs, unflushed });
    await withTimeout(this.#consumer?.disconnect() ?? Promise.resolve(), 5_000).catch(() => undefined);
    this.#state = 'closed';
    throw cloudErrors.create('CLD_CLOSE_TIMEOUT', `${this.options.closeTimeoutMs} ms; ${unflushed} buffered rows left uncommitted`);
  }

  async #shutdown(): Promise<void> {
    const wasStarting = this.#startPromise;
    this.#state = 'closing';
    clearTimeout(this.#ageTimer);
    await wasStarting?.catch(() => undefined);
    const consumer = this.#consumer;
    // Stop fetching but stay in the group: the commit below needs the membership.
    this.#stopFetching();
    this.#endAll('close');
    await this.#requestFlush('close');
    await consumer?.disconnect();
    await this.#lake?.close();
    this.#state = 'closed';
    this.#log('info', 'sink closed', { ...this.stats() });
  }

  #stopFetching(): void {
    try {
      this.#consumer?.pause(this.#topics.map((topic) => ({ topic })));
    } catch {
      // not running (start failed or already stopped): nothing to pause
    }
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    for (const message of batch.messages) {
      if ((this.#state !== 'running' && this.#state !== 'starting') || this.#abort.signal.aborted) return;
      if (!isRunning() || isStale()) return;
      this.#accept(batch.topic, batch.partition, message);
      resolveOffset(message.offset);
    }
    await heartbeat();
    await this.#waitForRoom(heartbeat);
  }

  #accept(topic: string, partition: number, record: KafkaRecord): void {
    const tp = tpKey(topic, partition);
    const offset = BigInt(record.offset);
    const next = this.#next.get(tp);
    const committed = this.#committed.get(tp);
    if (!this.#started.has(tp)) {
      this.#started.add(tp);
      this.#seen.delete(tp);
      // Rebuild the duplicate window from Kafka itself: read the dedupWindow records before where reading
      // starts again, so a restarted or new owner decides exactly as an uninterrupted sink would.
      const from = offset - BigInt(this.options.dedupWindow);
      if (offset > 0n && topic !== this.options.topics.deadletter && this.#seek(topic, partition, from > 0n ? from : 0n)) {
        this.#seeding.set(tp, offset);
        return;
      }
    }
    const seedUntil = this.#seeding.get(tp);
    if (seedUntil !== undefined) {
      if (offset < seedUntil) {
        // Same rule as below (valid events only), or a replay would decide differently.
        const eventId = keptEventId(this.#decode(topic, record));
        if (eventId !== undefined) this.#isDuplicate(tp, eventId, offset);
        return;
      }
      this.#seeding.delete(tp);
    }
    // Below what is buffered (redelivery) or below our own commit (already durable): skip.
    if ((next !== undefined && offset < next) || (committed !== undefined && offset < committed)) return;

    const timestamp = /^\d{1,16}$/.test(record.timestamp) ? Number(record.timestamp) : undefined;
    let segment = this.#open.get(tp);
    if (segment !== undefined && timestamp !== undefined && segment.firstTimestamp !== undefined && timestamp - segment.firstTimestamp >= this.options.maxSpanMs) {
      this.#end(segment, 'span');
      segment = undefined;
    }
    if (segment === undefined) {
      segment = { tp, topic, partition, firstOffset: offset, lastOffset: offset, firstTimestamp: timestamp, records: 0, bytes: 0, files: new Map(), lastSeenMs: 0 };
      this.#open.set(tp, segment);
    }
    segment.firstTimestamp ??= timestamp;
    segment.lastOffset = offset;
    segment.records++;
    segment.bytes += (record.value?.length ?? 0) + (record.key?.length ?? 0);
    segment.lastSeenMs = performance.now();
    this.#stats.consumed++;
    this.#next.set(tp, offset + 1n);

    const decoded = this.#decode(topic, record);
    const raw = this.options.rawZone ? this.#raw(topic, partition, record, decoded) : undefined;
    const file = routeTo(segment, decoded, offset);
    const rawFile = raw === undefined ? undefined : routeTo(segment, raw, offset);
    if (decoded.rejected !== undefined) {
      file.rejected++;
      this.#stats.rejected++;
      const info = { topic, partition, offset: record.offset, reason: decoded.rejected.reason };
      this.#log('debug', 'record refused, kept as dead letter', info);
      this.#emitSafe('rejected', info);
    }
    const eventId = keptEventId(decoded);
    if (eventId !== undefined && this.#isDuplicate(tp, eventId, offset)) {
      // Dropped from both zones: raw keeps each event once too.
      file.duplicates++;
      this.#stats.duplicates++;
      this.#log('debug', 'duplicate event dropped', { topic, partition, offset: record.offset, kind: decoded.table });
    } else {
      file.rows.push(decoded.row);
      this.#bufferedRows++;
      if (raw !== undefined && rawFile !== undefined) {
        rawFile.rows.push(raw.row);
        this.#bufferedRows++;
      }
    }
    this.#armAgeTimer();
    if (segment.records >= this.options.maxRows) this.#end(segment, 'rows');
    else if (segment.bytes >= this.options.maxBytes) this.#end(segment, 'bytes');
  }

  /**
   * Whether a record with this event id sits in the dedupWindow offsets before `offset` of the same
   * topic-partition (devices key their records, so retries and replays land there). A pure function of
   * the record stream, so replays and new owners drop exactly the same records.
   */
  #isDuplicate(tp: string, eventId: string, offset: bigint): boolean {
    let seen = this.#seen.get(tp);
    if (seen === undefined) {
      seen = new Map();
      this.#seen.set(tp, seen);
    }
    const floor = offset - BigInt(this.options.dedupWindow);
    // Entries are in offset order: evict from the front.
    for (const [id, at] of seen) {
      if (at >= floor) break;
      seen.delete(id);
    }
    const previous = seen.get(eventId);
    seen.delete(eventId);
    seen.set(eventId, offset);
    return previous !== undefined && previous >= floor && previous < offset;
  }

  #seek(topic: string, partition: number, offset: bigint): boolean {
    try {
      if (this.#consumer === undefined) return false;
      this.#consumer.seek({ topic, partition, offset: offset.toString() });
      return true;
    } catch (err) {
      this.#log('warn', 'seek failed', { topic, partition, error: err });
      return false;
    }
  }

  #end(segment: Segment, reason: FlushReason): void {
    if (this.#open.get(segment.tp) !== segment) return;
    this.#open.delete(segment.tp);
    segment.endedBy = reason;
    this.#ended.push(segment);
    void this.#requestFlush(reason);
  }

  #endAll(reason: FlushReason): void {
    for (const segment of [...this.#open.values()]) this.#end(segment, reason);
  }

  /** Freshness: a segment idle for maxAgeMs (wall clock) ends, so a quiet partition still reaches the lake. */
  #armAgeTimer(): void {
    if (this.#ageTimer !== undefined) return;
    this.#ageTimer = setTimeout(() => {
      this.#ageTimer = undefined;
      const now = performance.now();
      for (const segment of [...this.#open.values()]) if (now - segment.lastSeenMs >= this.options.maxAgeMs) this.#end(segment, 'age');
      if (this.#open.size > 0) this.#armAgeTimer();
    }, this.options.maxAgeMs / 2);
    this.#ageTimer.unref();
  }

  /** Backpressure: while the buffer is full (e.g. the lake is failing), hold the batch and keep heartbeating. */
  async #waitForRoom(heartbeat: () => Promise<void>): Promise<void> {
    while (this.#bufferedRows >= this.options.maxBufferedRows && this.#state === 'running' && !this.#abort.signal.aborted) {
      // Only when nothing ended is waiting do open segments end early.
      if (this.#ended.length === 0) this.#endAll('backpressure');
      const flushing = this.#requestFlush('backpressure');
      await Promise.race([flushing, sleep(BACKPRESSURE_HEARTBEAT_MS, this.#abort.signal)]);
      await heartbeat();
    }
  }

  #onGroupJoin(memberAssignment: Record<string, number[]>): void {
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      for (const partition of partitions) assigned.add(tpKey(topic, partition));
    }
    // kafkajs restarts every assigned partition from its committed offset after a join, not only the new
    // ones: keeping rows of retained partitions would buffer them twice. Revoked ones belong to their new owner.
    const droppedRows = this.#bufferedRows;
    this.#resetBuffer();
    this.#next.clear();
    this.#started.clear();
    this.#seeding.clear();
    for (const tp of [...this.#committed.keys()]) if (!assigned.has(tp)) this.#committed.delete(tp);
    this.#assigned = assigned;
    this.#stats.droppedOnRebalance += droppedRows;
    const info: RebalanceInfo = {
      assigned: Object.entries(memberAssignment).map(([topic, partitions]) => ({ topic, partitions: [...partitions] })),
      droppedRows,
    };
    this.#log('info', 'consumer group joined', { partitions: assigned.size, droppedRows });
    this.#emitSafe('rebalance', info);
  }

  #onCrash(cause: Error, restart: boolean): void {
    const error = cloudErrors.create('CLD_KAFKA_CRASH', cause.message, cause);
    this.#log(restart ? 'warn' : 'error', restart ? 'Kafka consumer crashed, restarting' : 'Kafka consumer crashed', { error });
    this.#emitSafe('crash', { error, restart });
  }

  /** A throwing listener must not break the consume or flush loop it was called from. */
  #emitSafe<E extends keyof SinkEvents>(event: E, ...args: SinkEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: SinkEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.#log('error', `a '${event}' listener threw`, { error: err });
    }
  }

  #kafkaLog(entry: LogEntry): void {
    const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log;
    // kafkajs logs every retried connection error as ERROR; the sink reports what outlasts retries itself.
    const level = entry.level === logLevel.ERROR ? 'info' : 'debug';
    this.#log(level, `kafkajs: ${message}`, { namespace: entry.namespace, ...fields });
  }

  #resetBuffer(): void {
    this.#open = new Map();
    this.#ended = [];
    this.#bufferedRows = 0;
    clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
  }

  /** Drops what is buffered for one topic-partition and reads it again from `offset` (a segment start). */
  #rewind(tp: string, offset: bigint): void {
    const open = this.#open.get(tp);
    const stale = [...(open === undefined ? [] : [open]), ...this.#ended.filter((s) => s.tp === tp)];
    if (stale.length === 0) return;
    this.#open.delete(tp);
    this.#ended = this.#ended.filter((s) => s.tp !== tp);
    for (const s of stale) for (const f of s.files.values()) this.#bufferedRows -= f.rows.length;
    this.#next.delete(tp);
    // Reading restarts at `offset` and first rebuilds the duplicate window before it.
    this.#started.delete(tp);
    this.#seeding.delete(tp);
    const { topic, partition } = stale[0] as Segment;
    this.#seek(topic, partition, offset);
  }

  /** Flushes run one at a time; a request during a flush runs one more round after it. */
  #requestFlush(reason: FlushReason): Promise<void> {
    if (this.#flushLoop !== undefined) {
      this.#flushPending ??= reason;
      return this.#flushLoop;
    }
    const loop = (async () => {
      let next: FlushReason | undefined = reason;
      while (next !== undefined && !this.#abort.signal.aborted) {
        this.#flushPending = undefined;
        try {
          await this.#flushOnce(next);
        } catch (err) {
          // Only a bug gets here (write and commit errors are retried). Rows taken for this flush may not
          // be written, so no later commit may pass them: stop flushing; Kafka keeps the records.
          this.#abort.abort();
          this.#stopFetching();
          const error = cloudErrors.create('CLD_FLUSH_BUG', errorMessage(err), err);
          this.#log('error', 'flush failed unexpectedly; the sink stops committing', { error });
          this.#emitSafe('crash', { error, restart: false });
        }
        next = this.#flushPending ?? (this.#ended.length > 0 ? reason : undefined);
      }
    })().finally(() => {
      this.#flushLoop = undefined;
    });
    this.#flushLoop = loop;
    return loop;
  }

  /** Takes the ended segments to write now: per topic-partition, up to and including the first non-reproducible one. */
  #takeEnded(): Segment[] {
    const taken: Segment[] = [];
    const stopped = new Set<string>();
    const left: Segment[] = [];
    for (const segment of this.#ended) {
      if (stopped.has(segment.tp)) {
        left.push(segment);
        continue;
      }
      taken.push(segment);
      for (const file of segment.files.values()) this.#bufferedRows -= file.rows.length;
      if (!REPRODUCIBLE.has(segment.endedBy ?? 'close')) stopped.add(segment.tp);
    }
    this.#ended = left;
    return taken;
  }

  async #flushOnce(reason: FlushReason): Promise<void> {
    const lake = this.#lake;
    const segments = this.#takeEnded();
    if (segments.length === 0 || lake === undefined) return;
    const started = performance.now();
    const skipped = new Set<string>();
    const written: OpenFile[] = [];
    const byKind: Partial<Record<LakeTable, number>> = {};
    let files = 0;
    let rows = 0;
    let rejected = 0;
    let duplicates = 0;

    for (const segment of segments) {
      const committed = this.#committed.get(segment.tp);
      // Buffered before a commit that passed it (rejoin during a flush): its cut may differ, read again.
      if (committed !== undefined && segment.firstOffset < committed) {
        skipped.add(segment.tp);
        continue;
      }
      for (const file of segment.files.values()) {
        duplicates += file.duplicates;
        if (file.rows.length === 0) continue;
        for (let attempt = 1; ; attempt++) {
          if (this.#abort.signal.aborted) return;
          // A revoked partition is re-read by its new owner; writing it here would only race that owner.
          if (!this.#assigned.has(segment.tp)) {
            skipped.add(segment.tp);
            break;
          }
          try {
            await lake.write({
              table: file.table,
              partition: file.partition,
              topic: segment.topic,
              kafkaPartition: segment.partition,
              firstOffset: file.firstOffset,
              lastOffset: file.lastOffset,
              rows: file.rows,
            });
            files++;
            rows += file.rows.length;
            rejected += file.rejected;
            byKind[file.table] = (byKind[file.table] ?? 0) + file.rows.length;
            written.push(file);
            break;
          } catch (err) {
            this.#stats.writeErrors++;
            await this.#backoff('write', 'CLD_PARQUET_WRITE', err, attempt);
          }
        }
        if (skipped.has(segment.tp)) break;
      }
    }

    await this.#catalogue(written);

    const ends = new Map<string, CommittedOffset>();
    for (const segment of segments) {
      if (skipped.has(segment.tp)) continue;
      ends.set(segment.tp, { topic: segment.topic, partition: segment.partition, offset: (segment.lastOffset + 1n).toString() });
    }
    let committed: CommittedOffset[] = [];
    for (let attempt = 1; ; attempt++) {
      if (this.#abort.signal.aborted) return;
      committed = [...ends]
        .filter(([tp, end]) => this.#assigned.has(tp) && BigInt(end.offset) > (this.#committed.get(tp) ?? -1n))
        .map(([, end]) => end);
      if (committed.length === 0 || this.#consumer === undefined) break;
      try {
        await this.#consumer.commitOffsets(committed);
        for (const c of committed) {
          const tp = tpKey(c.topic, c.partition);
          const offset = BigInt(c.offset);
          this.#committed.set(tp, offset);
          const open = this.#open.get(tp);
          const ended = this.#ended.find((s) => s.tp === tp);
          if ((open !== undefined && open.firstOffset < offset) || (ended !== undefined && ended.firstOffset < offset)) this.#rewind(tp, offset);
        }
        break;
      } catch (err) {
        this.#stats.commitErrors++;
        await this.#backoff('commit', 'CLD_COMMIT', err, attempt);
      }
    }

    this.#stats.flushes++;
    this.#stats.files += files;
    for (const [table, n] of Object.entries(byKind) as [LakeTable, number][]) this.#stats.rows[table] = (this.#stats.rows[table] ?? 0) + n;
    const info: FlushInfo = {
      reason,
      files,
      rows,
      byKind,
      rejected,
      duplicates,
      segments: segments.filter((s) => !skipped.has(s.tp)).length,
      committed,
      durationMs: Math.round(performance.now() - started),
    };
    this.#log('info', 'flushed', { ...info, committed: committed.length });
    if (duplicates > 0) this.#log('info', 'duplicate events dropped', { duplicates, total: this.#stats.duplicates });
    this.#emitSafe('flush', info);
  }

  /** Registers the tables and partitions of written files, once each, before their offsets are committed. */
  async #catalogue(written: readonly OpenFile[]): Promise<void> {
    const catalog = this.options.catalog;
    if (catalog === undefined || written.length === 0) return;
    const tables = new Map<LakeTable, Map<string, LakePartition>>();
    for (const file of written) {
      const id = `${file.table}/${file.partition.event_date}/${file.partition.event_hour}`;
      if (this.#catalogued.has(id)) continue;
      let parts = tables.get(file.table);
      if (parts === undefined) {
        parts = new Map();
        tables.set(file.table, parts);
      }
      parts.set(id, file.partition);
    }
    for (const [table, parts] of tables) {
      for (let attempt = 1; ; attempt++) {
        if (this.#abort.signal.aborted) return;
        try {
          await registerPartitions(catalog, this.#catalogued, table, [...parts.values()]);
          for (const id of parts.keys()) this.#catalogued.add(id);
          break;
        } catch (err) {
          this.#stats.catalogErrors++;
          await this.#backoff('catalog', 'CLD_CATALOG', err, attempt);
        }
      }
    }
  }

  async #backoff(stage: FlushErrorInfo['stage'], code: CloudErrorCode, err: unknown, attempt: number): Promise<void> {
    const error = err instanceof CityError ? err : cloudErrors.create(code, errorMessage(err), err);
    const base = Math.min(this.options.retryMaxMs, this.options.retryInitialMs * 2 ** Math.min(attempt - 1, 30));
    const retryInMs = Math.round(base * (0.8 + Math.random() * 0.4));
    this.#log('error', `${stage} failed, retrying`, { error, attempt, retryInMs });
    this.#emitSafe('flushError', { error, stage, attempt, retryInMs });
    await sleep(retryInMs, this.#abort.signal);
  }
}

export function createSink(options: SinkOptions): Sink {
  return new Sink(options);
}

/** The event id of a valid event row: the only rows duplicates are dropped from. */
function keptEventId(decoded: LakeRow): string | undefined {
  if (decoded.rejected !== undefined || !isEventKind(decoded.table)) return undefined;
  const eventId = decoded.row[eventIdColumn(decoded.table)];
  return typeof eventId === 'string' ? eventId : undefined;
}

function routeTo(segment: Segment, row: LakeRow, offset: bigint): OpenFile {
  const key = `${row.table}\u0000${row.partition.event_date}\u0000${row.partition.event_hour}`;
  let file = segment.files.get(key);
  if (file === undefined) {
    file = { table: row.table, partition: row.partition, firstOffset: offset, lastOffset: offset, rows: [], rejected: 0, duplicates: 0 };
    segment.files.set(key, file);
  }
  file.lastOffset = offset;
  return file;
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

/** Catalog table name: the event kind for curated tables, `deadletter` for dead letters. */
export function catalogTableName(table: LakeTable): string {
  return table;
}

async function registerPartitions(catalog: CatalogPort, done: Set<string>, table: LakeTable, partitions: LakePartition[]): Promise<void> {
  const schema = tableSchema(table);
  const tableId = `table:${table}`;
  if (!done.has(tableId)) {
    await catalog.ensureTable({ name: catalogTableName(table), columns: schema.columns, partitionKeys: schema.partitionKeys, location: tablePrefix(table) });
    done.add(tableId);
  }
  await catalog.addPartitions(
    catalogTableName(table),
    partitions.map((p) => ({ values: [p.event_date, String(p.event_hour)], location: partitionPrefix(table, p) })),
  );
}

/** Which of `topics` the cluster lacks: turns kafkajs's "does not host this topic-partition" into names. */
async function missingTopics(kafka: Kafka, topics: readonly string[]): Promise<string[]> {
  const admin = kafka.admin();
  try {
    await withTimeout(admin.connect(), 10_000);
    const existing = new Set(await withTimeout(admin.listTopics(), 10_000));
    return topics.filter((t) => !existing.has(t));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

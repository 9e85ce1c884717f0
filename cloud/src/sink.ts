// The sink: a Kafka consumer group that turns records into Parquet files in the lake.
// Offsets are committed only after every file holding their rows is durable, so a crash anywhere
// re-consumes records instead of losing them, and file names tied to offsets make the replay rewrite
// the same objects instead of adding duplicates.
import { EventEmitter } from 'node:events';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type LogEntry } from 'kafkajs';
import { CityError, type CellValue } from '@city/protocol';
import { cloudErrors, errorMessage, type CloudErrorCode } from './errors.ts';
import type { LakePartition, LakeTable } from './layout.ts';
import { createLakeWriter, type LakeWriter } from './lake-writer.ts';
import type { Log } from './log.ts';
import { resolveSinkOptions, type ResolvedSinkOptions, type SinkOptions } from './options.ts';
import { createRecordDecoder, topicList, type KafkaRecord, type RecordDecoder } from './records.ts';
import { createLocalFolderStore } from './store.ts';

export type FlushReason = 'rows' | 'age' | 'close' | 'backpressure';

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
  committed: CommittedOffset[];
  durationMs: number;
}

export interface FlushErrorInfo {
  error: CityError;
  stage: 'write' | 'commit';
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
  writeErrors: number;
  commitErrors: number;
  droppedOnRebalance: number;
}

type State = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/** Rows of one Kafka topic-partition for one lake table partition: becomes one file. */
interface OpenFile {
  table: LakeTable;
  partition: LakePartition;
  topic: string;
  kafkaPartition: number;
  rows: CellValue[][];
  offsets: bigint[];
  /** Offsets of the rows that are sink dead letters. */
  rejected: bigint[];
}

interface PartitionEnd {
  topic: string;
  partition: number;
  last: bigint;
}

interface Snapshot {
  files: OpenFile[];
  ends: Map<string, PartitionEnd>;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** How often a batch waiting for room in the buffer heartbeats, well under the session timeout. */
const BACKPRESSURE_HEARTBEAT_MS = 1_000;

export class Sink extends EventEmitter<SinkEvents> {
  readonly options: Readonly<ResolvedSinkOptions>;
  readonly #log: Log;
  readonly #decode: RecordDecoder;
  readonly #topics: string[];
  readonly #abort = new AbortController();
  #state: State = 'new';
  #startPromise: Promise<void> | undefined;
  #closePromise: Promise<void> | undefined;
  #consumer: Consumer | undefined;
  #lake: LakeWriter | undefined;

  #buffer = new Map<string, OpenFile>();
  #bufferEnds = new Map<string, PartitionEnd>();
  #bufferedRows = 0;
  #ageTimer: NodeJS.Timeout | undefined;
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
    writeErrors: 0,
    commitErrors: 0,
    droppedOnRebalance: 0,
  };

  constructor(options: SinkOptions) {
    super();
    this.options = Object.freeze(resolveSinkOptions(options));
    this.#log = this.options.log;
    this.#decode = createRecordDecoder(this.options.topics);
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
    // Below what is buffered (redelivery) or below our own commit (already durable): skip.
    if ((next !== undefined && offset < next) || (committed !== undefined && offset < committed)) return;

    const decoded = this.#decode(topic, record);
    const key = `${tp}\u0000${decoded.table}\u0000${decoded.partition.event_date}\u0000${decoded.partition.event_hour}`;
    let file = this.#buffer.get(key);
    if (file === undefined) {
      file = { table: decoded.table, partition: decoded.partition, topic, kafkaPartition: partition, rows: [], offsets: [], rejected: [] };
      this.#buffer.set(key, file);
    }
    file.rows.push(decoded.row);
    file.offsets.push(offset);
    this.#bufferedRows++;
    this.#stats.consumed++;
    this.#next.set(tp, offset + 1n);
    this.#bufferEnds.set(tp, { topic, partition, last: offset });
    if (decoded.rejected !== undefined) {
      file.rejected.push(offset);
      this.#stats.rejected++;
      const info = { topic, partition, offset: record.offset, reason: decoded.rejected.reason };
      this.#log('debug', 'record refused, kept as dead letter', info);
      this.#emitSafe('rejected', info);
    }
    if (this.#ageTimer === undefined) {
      this.#ageTimer = setTimeout(() => void this.#requestFlush('age'), this.options.maxAgeMs);
      this.#ageTimer.unref();
    }
    if (file.rows.length >= this.options.maxRows) void this.#requestFlush('rows');
  }

  /** Backpressure: while the buffer is full (e.g. the lake is failing), hold the batch and keep heartbeating. */
  async #waitForRoom(heartbeat: () => Promise<void>): Promise<void> {
    while (this.#bufferedRows >= this.options.maxBufferedRows && this.#state === 'running' && !this.#abort.signal.aborted) {
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

  #resetBuffer(): Snapshot {
    const snapshot: Snapshot = { files: [...this.#buffer.values()], ends: this.#bufferEnds };
    this.#buffer = new Map();
    this.#bufferEnds = new Map();
    this.#bufferedRows = 0;
    clearTimeout(this.#ageTimer);
    this.#ageTimer = undefined;
    return snapshot;
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
        next = this.#flushPending;
      }
    })().finally(() => {
      this.#flushLoop = undefined;
    });
    this.#flushLoop = loop;
    return loop;
  }

  async #flushOnce(reason: FlushReason): Promise<void> {
    const snapshot = this.#resetBuffer();
    if (snapshot.ends.size === 0) return;
    const started = performance.now();
    const lake = this.#lake;
    if (lake === undefined) return;
    const skipped = new Set<string>();
    const byKind: Partial<Record<LakeTable, number>> = {};
    let files = 0;
    let rows = 0;
    let rejected = 0;

    for (const open of snapshot.files) {
      const tp = tpKey(open.topic, open.kafkaPartition);
      const file = this.#trimDurable(open, this.#committed.get(tp));
      if (file === undefined) continue;
      for (let attempt = 1; ; attempt++) {
        if (this.#abort.signal.aborted) return;
        // A revoked partition is re-read by its new owner; writing it here would only race that owner.
        if (!this.#assigned.has(tp)) {
          skipped.add(tp);
          break;
        }
        try {
          await lake.write({
            table: file.table,
            partition: file.partition,
            topic: file.topic,
            kafkaPartition: file.kafkaPartition,
            firstOffset: file.offsets[0] as bigint,
            lastOffset: file.offsets[file.offsets.length - 1] as bigint,
            rows: file.rows,
          });
          files++;
          rows += file.rows.length;
          rejected += file.rejected.length;
          byKind[file.table] = (byKind[file.table] ?? 0) + file.rows.length;
          break;
        } catch (err) {
          this.#stats.writeErrors++;
          await this.#backoff('write', 'CLD_PARQUET_WRITE', err, attempt);
        }
      }
    }

    let committed: CommittedOffset[] = [];
    for (let attempt = 1; ; attempt++) {
      if (this.#abort.signal.aborted) return;
      committed = [...snapshot.ends]
        .filter(([tp, end]) => this.#assigned.has(tp) && !skipped.has(tp) && end.last + 1n > (this.#committed.get(tp) ?? -1n))
        .map(([, end]) => ({ topic: end.topic, partition: end.partition, offset: (end.last + 1n).toString() }));
      if (committed.length === 0 || this.#consumer === undefined) break;
      try {
        await this.#consumer.commitOffsets(committed);
        for (const c of committed) this.#committed.set(tpKey(c.topic, c.partition), BigInt(c.offset));
        break;
      } catch (err) {
        this.#stats.commitErrors++;
        await this.#backoff('commit', 'CLD_COMMIT', err, attempt);
      }
    }

    this.#stats.flushes++;
    this.#stats.files += files;
    for (const [table, n] of Object.entries(byKind) as [LakeTable, number][]) this.#stats.rows[table] = (this.#stats.rows[table] ?? 0) + n;
    const info: FlushInfo = { reason, files, rows, byKind, rejected, committed, durationMs: Math.round(performance.now() - started) };
    this.#log('info', 'flushed', { ...info, committed: committed.length });
    this.#emitSafe('flush', info);
  }

  /** Drops rows below our own last commit (delivered again after a rejoin): they are in the lake already. */
  #trimDurable(file: OpenFile, committed: bigint | undefined): OpenFile | undefined {
    if (committed === undefined || (file.offsets[0] as bigint) >= committed) return file;
    const from = file.offsets.findIndex((offset) => offset >= committed);
    if (from === -1) return undefined;
    return { ...file, rows: file.rows.slice(from), offsets: file.offsets.slice(from), rejected: file.rejected.filter((o) => o >= committed) };
  }

  async #backoff(stage: 'write' | 'commit', code: CloudErrorCode, err: unknown, attempt: number): Promise<void> {
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

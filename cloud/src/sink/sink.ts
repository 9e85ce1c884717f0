// The sink: a Kafka consumer group that turns records into Parquet files in the lake, exactly once.
// A short composition of named parts:
//   consumer.ts   the Kafka consumer loop (kafkajs), seeks, commits
//   intake.ts     record → rows of its topic-partition's open segment (skips, duplicate window)
//   segments.ts   segment cutting (why files roll where they do, and why a replay cuts the same files)
//   dedup.ts      the duplicate window
//   flush.ts      flush → catalog → commit, with retries
//   compactor.ts  compaction of the sink's own committed files, on a schedule
// It lives and dies through the shared lifecycle: close() stops consuming, finishes the open files and
// commits their offsets; past closeTimeoutMs it disconnects without committing (Kafka keeps the records)
// and rejects with CLD_CLOSE_TIMEOUT.
import { EventEmitter } from 'node:events';
import type { EachBatchPayload } from 'kafkajs';
import { CityError, createLifecycle, sleep, type Lifecycle, type LifecycleState, type Log } from '@city/protocol';
import { cloudErrors, errorMessage, lifecycleErrors } from '../errors.ts';
import { createLakeWriter, type LakeWriter } from '../lake/index.ts';
import { raiseChunkPool } from '../lake/packed.ts';
import { isVersionedCatalog } from '../ports/catalog/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { Compactor } from './compactor.ts';
import { createSinkConsumer, type SinkConsumer } from './consumer.ts';
import { leanRecordDecoder } from './kafkajs-records.ts';
import { DuplicateWindow } from './dedup.ts';
import { emptyStats, type RebalanceInfo, type SinkEvents, type SinkStats } from './events.ts';
import { Flusher } from './flush.ts';
import { Intake, type Ownership } from './intake.ts';
import { createSinkDecoder } from './live-records.ts';
import { resolveSinkOptions, type ResolvedSinkOptions, type SinkOptions } from './options.ts';
import { topicList } from './records.ts';
import { Segments, tpKey } from './segments.ts';

/** How often a batch waiting for room in the buffer heartbeats, well under the session timeout. */
const BACKPRESSURE_HEARTBEAT_MS = 1_000;

/** Free packed-row chunks kept per buffered row: rows average ~0.4 kB (a raw row ~0.5, an event's text ~0.3). */
const POOL_BYTES_PER_ROW = 1024;
const POOL_MAX_BYTES = 512 * 1024 * 1024;

export class Sink extends EventEmitter<SinkEvents> {
  readonly options: Readonly<ResolvedSinkOptions>;
  readonly #log: Log;
  readonly #topics: string[];
  readonly #life: Lifecycle;
  /** Aborted when the sink must stop working: the close deadline passed, or nothing may be committed any more. */
  readonly #halt = new AbortController();
  readonly #signal: AbortSignal;
  /** Seeks asked of the consumer so far (a batch read before one is stale). */
  #seeks = 0;
  readonly #stats: SinkStats = emptyStats();
  readonly #ownership: Ownership = { assigned: new Set(), committed: new Map(), generation: 0 };
  readonly #segments: Segments;
  readonly #intake: Intake;
  readonly #flusher: Flusher;
  readonly #compactor: Compactor;
  #consumer: SinkConsumer | undefined;
  #lake: LakeWriter | undefined;

  constructor(options: SinkOptions) {
    super();
    this.options = Object.freeze(resolveSinkOptions(options));
    const o = this.options;
    this.#log = o.log;
    this.#topics = [...topicList(o.topics), ...(o.liveTopics === undefined ? [] : [o.liveTopics.kpi, o.liveTopics.alerts])];
    this.#life = createLifecycle({ name: 'sink', deadlineMs: o.closeTimeoutMs, errors: lifecycleErrors });
    this.#signal = AbortSignal.any([this.#life.signal, this.#halt.signal]);
    // The packed rows' chunks of written files are kept for the rows buffered next (up to ~2× the buffer
    // while files are written): a sink reusing them allocates no external memory once warm.
    raiseChunkPool(Math.min(o.maxBufferedRows * POOL_BYTES_PER_ROW, POOL_MAX_BYTES));
    this.#segments = new Segments(o, (reason) => void this.#flusher.request(reason));
    this.#intake = new Intake({
      topics: o.topics,
      decoder: createSinkDecoder(o.topics, o.liveTopics),
      rawZone: o.rawZone,
      dedupWindow: o.dedupWindow,
      segments: this.#segments,
      duplicates: new DuplicateWindow(o.dedupWindow),
      ownership: this.#ownership,
      stats: this.#stats,
      seek: (topic, partition, offset) => {
        this.#seeks++;
        return this.#consumer?.seek(topic, partition, offset) ?? false;
      },
      rejected: (info) => this.#emitSafe('rejected', info),
      log: this.#log,
    });
    this.#flusher = new Flusher({
      segments: this.#segments,
      intake: this.#intake,
      ownership: this.#ownership,
      stats: this.#stats,
      lake: () => this.#lake,
      catalog: o.catalog,
      commit: (offsets) => (this.#consumer === undefined ? Promise.resolve() : this.#consumer.commit(offsets)),
      retryInitialMs: o.retryInitialMs,
      retryMaxMs: o.retryMaxMs,
      signal: this.#signal,
      flushed: (info) => this.#emitSafe('flush', info),
      failed: (info) => this.#emitSafe('flushError', info),
      broken: (error) => {
        // Nothing may be committed any more: stop flushing and fetching; Kafka keeps the records.
        this.#halt.abort();
        this.#consumer?.pauseAll();
        this.#log('error', 'flush failed unexpectedly; the sink stops committing', { error });
        this.#emitSafe('crash', { error, restart: false });
      },
      log: this.#log,
    });
    this.#compactor = new Compactor({
      everyMs: o.compactEveryMs,
      targetBytes: o.compactTargetBytes,
      store: () => this.#lake?.store,
      catalog: isVersionedCatalog(o.catalog) ? o.catalog : undefined,
      ownership: this.#ownership,
      stats: this.#stats,
      compacted: (info) => this.#emitSafe('compaction', info),
      failed: (error) => this.#emitSafe('compactionError', { error }),
      log: this.#log,
    });
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  stats(): SinkStats {
    return { ...this.#stats, buffered: this.#segments.bufferedRows, rows: { ...this.#stats.rows } };
  }

  /**
   * Connects, joins the consumer group and starts consuming. Resolves once the group is joined; a join
   * that fails later shows as a 'crash' event (kafkajs retries it unless the error is fatal). A second
   * call is CLD_ALREADY_STARTED, a call after close CLD_CLOSED; a start that fails closes what it opened.
   */
  start(): Promise<void> {
    return this.#life.start(() => this.#open());
  }

  /**
   * Stops consuming, writes the buffered rows, commits their offsets and disconnects. Every caller gets
   * the same promise. Rejects with CLD_CLOSE_TIMEOUT if the deadline passes first; what was not
   * committed by then is consumed again by the next run.
   */
  close(): Promise<void> {
    return this.#life.close();
  }

  async #open(): Promise<void> {
    const o = this.options;
    const life = this.#life;
    const consumer = createSinkConsumer(
      { brokers: o.brokers, clientId: o.clientId, groupId: o.groupId, fromBeginning: o.fromBeginning, sessionTimeoutMs: o.sessionTimeoutMs, topics: this.#topics, security: o.security, tokenProvider: o.kafkaTokenProvider },
      {
        batch: (payload) => this.#eachBatch(payload),
        joined: (assignment) => this.#joined(assignment),
        crashed: (error, restart) => this.#crashed(error, restart),
        retrying: (error, condition) => this.#log('warn', 'Kafka group coordinator not ready, retrying', { condition, error: error.message }),
      },
      this.#log,
    );
    // With a catalog that switches locations, files go where the catalog points (compaction by version).
    const versioned = isVersionedCatalog(o.catalog) ? o.catalog : undefined;
    const lake = await createLakeWriter(o.store ?? createLocalFolderStore(o.lakeDir), undefined, { catalog: versioned });
    this.#lake = lake;
    life.defer('lake writer', () => lake.close());
    this.#consumer = consumer;
    life.defer('Kafka consumer', () => consumer.disconnect());
    if (life.state !== 'starting') throw cloudErrors.create('CLD_CLOSED', 'sink closed while starting');
    try {
      await consumer.start();
    } catch (err) {
      const missing = await consumer.missingTopics().catch(() => []);
      const detail = missing.length > 0 ? `topics do not exist: ${missing.join(', ')}` : errorMessage(err);
      const error = err instanceof CityError ? err : cloudErrors.create('CLD_KAFKA_START', detail, err);
      this.#log('error', 'sink start failed', { error });
      throw error;
    }
    // Closed in reverse: stop fetching, stop compacting, finish and commit what is buffered.
    life.defer('open files', () => this.#drain(), () => this.#abandon());
    this.#compactor.start();
    life.defer('compaction', () => this.#compactor.stop());
    life.defer('fetching', () => consumer.pauseAll());
    // Which code decodes the records: the sink's stand-in for kafkajs's, or kafkajs's own (CITY_KAFKAJS_RECORDS=stock, another kafkajs).
    const recordDecoder = leanRecordDecoder() ? 'sink' : 'kafkajs';
    this.#log('info', 'sink started', { groupId: o.groupId, brokers: o.brokers, topics: this.#topics.length, lake: this.#lake?.store.root, recordDecoder });
  }

  /** Ends every open segment and flushes until nothing is buffered, then logs the totals. */
  async #drain(): Promise<void> {
    this.#segments.stopTimer();
    this.#segments.endAll('close');
    await this.#flusher.request('close');
    this.#log('info', 'sink closed', { ...this.stats() });
  }

  /** Past the close deadline: what is buffered stays uncommitted; Kafka delivers it to the next run. */
  #abandon(): void {
    this.#halt.abort();
    this.#log('error', 'sink close timed out', { closeTimeoutMs: this.options.closeTimeoutMs, unflushed: this.#segments.bufferedRows });
  }

  #working(): boolean {
    return this.#life.state === 'running' && !this.#signal.aborted;
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    // kafkajs keeps only the last resolved offset per partition: resolving once, after the last record
    // accepted, leaves the same state as resolving each (without a Long parse per record).
    let accepted: string | undefined;
    // Within the loop only what accept() itself does can stop it: a seek (the batch is stale then), a
    // listener closing the sink or a flush breaking. isStale() builds a JSON key and the composite
    // signal refreshes itself on each read, so they are asked again only after a seek.
    let seeks = -1;
    try {
      for (const message of batch.messages) {
        // Records may arrive while starting: the group is joined before run() resolves.
        const state = this.#life.state;
        if ((state !== 'running' && state !== 'starting') || this.#halt.signal.aborted) return;
        if (seeks !== this.#seeks) {
          if (this.#signal.aborted || !isRunning() || isStale()) return;
          seeks = this.#seeks;
        }
        this.#intake.accept(batch.topic, batch.partition, message);
        accepted = message.offset;
      }
    } finally {
      if (accepted !== undefined) resolveOffset(accepted);
    }
    await heartbeat();
    await this.#waitForRoom(heartbeat);
  }

  /** Backpressure: while the buffer is full (e.g. the lake is failing), hold the batch and keep heartbeating. */
  async #waitForRoom(heartbeat: () => Promise<void>): Promise<void> {
    while (this.#segments.bufferedRows >= this.options.maxBufferedRows && this.#working()) {
      // Only when nothing ended is waiting do open segments end early.
      if (!this.#segments.hasEnded) this.#segments.endAll('backpressure');
      const flushing = this.#flusher.request('backpressure');
      await Promise.race([flushing, sleep(BACKPRESSURE_HEARTBEAT_MS, { signal: this.#signal })]);
      await heartbeat();
    }
  }

  #joined(memberAssignment: Record<string, number[]>): void {
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      for (const partition of partitions) assigned.add(tpKey(topic, partition));
    }
    // kafkajs restarts every assigned partition from its committed offset after a join, not only the new
    // ones: keeping rows of retained partitions would buffer them twice. Revoked ones belong to their new owner.
    const droppedRows = this.#segments.reset();
    this.#intake.restart();
    const ownership = this.#ownership;
    for (const tp of [...ownership.committed.keys()]) if (!assigned.has(tp)) ownership.committed.delete(tp);
    ownership.assigned = assigned;
    ownership.generation++;
    this.#compactor.rebalanced();
    this.#stats.droppedOnRebalance += droppedRows;
    const info: RebalanceInfo = {
      assigned: Object.entries(memberAssignment).map(([topic, partitions]) => ({ topic, partitions: [...partitions] })),
      droppedRows,
    };
    this.#log('info', 'consumer group joined', { partitions: assigned.size, droppedRows });
    this.#emitSafe('rebalance', info);
  }

  #crashed(cause: Error, restart: boolean): void {
    const error = cloudErrors.create('CLD_KAFKA_CRASH', cause.message, cause);
    this.#log(restart ? 'warn' : 'error', restart ? 'Kafka consumer crashed, restarting' : 'Kafka consumer crashed', { error });
    // Without a restart nothing can be committed again: a close must not wait for commits.
    if (!restart) this.#halt.abort();
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
}

export function createSink(options: SinkOptions): Sink {
  return new Sink(options);
}

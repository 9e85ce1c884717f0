// Moves buffered records to Kafka. A batch leaves the buffer only after Kafka acknowledged all of it
// (acks=all, idempotent producer, one request in flight), so a retry resends the same records with
// the same event ids and later stages drop duplicates by that id.
//
// Backlog and live. Records already in the buffer when this forwarder started (from before a restart)
// or while Kafka was unreachable are the backlog: they carry the header `replayed: 1` and are paced by
// token buckets (records/s and bytes/s) so a long outage does not flood the uplink or starve live
// traffic. Per-device order wins over live-first: a device with records in the backlog has its new
// records held until its backlog is sent; "live-first" therefore means live records of devices that
// have no backlog go ahead of the backlog (and "backlog-first" the reverse). The backlog itself, and
// each device's records, always go in arrival order.
//
// Failures. A batch Kafka did not take stays in the buffer and is resent with capped, jittered backoff.
// The forwarder tells an unreachable broker from a missing topic (kafka-state.ts) and reports which.
import { EventEmitter } from 'node:events';
import { CompressionTypes, Kafka, logLevel, type Message, type Producer, type TopicMessages } from 'kafkajs';
import { TokenBucket, recordHeaders, sleep, withTimeout } from '@city/protocol';
import type { OutboxBuffer, StoredRecord } from '../buffer/index.ts';
import { gatewayErrors } from '../errors.ts';
import { isUnknownTopic, type KafkaState } from './kafka-state.ts';
import { createCachingPartitioner } from './partitioner.ts';

export const REPLAY_ORDERS = ['live-first', 'backlog-first'] as const;
export type ReplayOrder = (typeof REPLAY_ORDERS)[number];

export interface ForwarderOptions {
  brokers: string[];
  clientId: string;
  gatewayId: string;
  batchSize: number;
  /** How long to wait for more records when the buffer runs dry. */
  idleMs: number;
  /**
   * After a batch that was not full, wait this long before the next one (Kafka's linger.ms): at a
   * light, steady rate each request carries what arrived meanwhile instead of one commit's worth.
   */
  lingerMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  /** kafkajs ships only gzip; snappy/lz4/zstd need codec packages the gateway does not carry. */
  compression: 'none' | 'gzip';
  requestTimeoutMs: number;
  /** Backlog pace; 0 = unpaced. */
  replayRecordsPerSec: number;
  replayBytesPerSec: number;
  replayOrder: ReplayOrder;
  /** How often records past their lane's time-to-live are dropped (counted by the buffer). */
  expireEveryMs: number;
}

export interface ForwarderEvents {
  forwarded: [{ records: number; replayed: number; lastId: number }];
  expired: [{ records: number }];
  /** A batch Kafka did not take: GW_KAFKA_SEND, or GW_KAFKA_TOPIC_MISSING naming the topics. */
  error: [Error];
  /** What is known of Kafka changed (reachable, unreachable, which topics are missing). */
  state: [KafkaState];
  connected: [];
}

export interface Forwarder extends EventEmitter<ForwarderEvents> {
  start(): void;
  /** Wakes the loop: new records are in the buffer. */
  notify(): void;
  /** Resolves once the buffer is empty (or rejects after `timeoutMs`, or when the forwarder closes). */
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  /** Records Kafka acknowledged since start. */
  forwardedTotal(): number;
  /** Of those, records sent as backlog (marked replayed). */
  replayedTotal(): number;
  kafkaState(): KafkaState;
}

/** Capped exponential backoff with jitter: a random wait in [backoff/2, backoff]. */
export function jittered(backoffMs: number, random: () => number = Math.random): number {
  return Math.round(backoffMs / 2 + random() * (backoffMs / 2));
}

export function createForwarder(buffer: OutboxBuffer, options: ForwarderOptions): Forwarder {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.NOTHING,
    requestTimeout: options.requestTimeoutMs,
    // Our loop owns retries (capped backoff, forever); kafkajs only smooths over blips such as a
    // leader election, where its own retry resends just the failed partitions (no duplicates).
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const emitter = new EventEmitter<ForwarderEvents>();
  let producer: Producer | undefined;
  let connected = false;
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let forwardedTotal = 0;
  let replayedTotal = 0;
  let closing: Promise<void> | undefined;
  let kafkaState: KafkaState = { state: 'unknown' };
  const stopController = new AbortController();

  // Records with id ≤ boundary are backlog; backlogKeys are the devices that still have some.
  let boundary = buffer.maxId();
  const backlogKeys = new Set(boundary > 0 ? buffer.keysBetween(0, boundary) : []);
  // One second of burst.
  const recordBucket = new TokenBucket(options.replayRecordsPerSec);
  const byteBucket = new TokenBucket(options.replayBytesPerSec);
  // Neither class is starved: the other always gets at least this share of a batch.
  const minShare = Math.max(1, Math.floor(options.batchSize / 10));

  const setState = (next: KafkaState) => {
    const same =
      next.state === kafkaState.state && (next.topicsMissing ?? []).join('\u0000') === (kafkaState.topicsMissing ?? []).join('\u0000');
    kafkaState = next;
    if (!same) emitter.emit('state', next);
  };

  const extendBacklog = () => {
    const top = buffer.maxId();
    if (top <= boundary) return;
    for (const key of buffer.keysBetween(boundary, top)) backlogKeys.add(key);
    boundary = top;
  };

  const toTopicMessages = (records: readonly StoredRecord[]): TopicMessages[] => {
    const byTopic = new Map<string, Message[]>();
    for (const record of records) {
      let messages = byTopic.get(record.topic);
      if (messages === undefined) byTopic.set(record.topic, (messages = []));
      const headers = recordHeaders({ gatewayId: options.gatewayId, receivedAt: record.receivedAt, eventId: record.eventId, replayed: record.id <= boundary });
      messages.push({ key: record.key, value: record.value, headers, timestamp: String(record.receivedAt) });
    }
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  };

  const connect = async (): Promise<Producer> => {
    if (producer !== undefined && connected) return producer;
    producer ??= kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: createCachingPartitioner });
    await producer.connect();
    connected = true;
    emitter.emit('connected');
    return producer;
  };

  /** Of `topics`, those the brokers do not have; all of them when the brokers cannot be asked. */
  const missingOf = async (topics: string[]): Promise<string[]> => {
    const admin = kafka.admin();
    try {
      const existing = new Set(await withTimeout(admin.connect().then(() => admin.listTopics()), options.requestTimeoutMs, 'listing the Kafka topics'));
      const missing = topics.filter((t) => !existing.has(t));
      return missing.length > 0 ? missing : topics;
    } catch {
      return topics;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };

  /** The failure as the gateway reports it, with the state it leaves Kafka in. */
  const classify = async (err: unknown, records: readonly StoredRecord[]): Promise<{ error: Error; state: KafkaState }> => {
    const reason = err instanceof Error ? err.message : String(err);
    if (!isUnknownTopic(err)) {
      return { error: gatewayErrors.create('GW_KAFKA_SEND', reason, err), state: { state: 'unreachable', error: reason } };
    }
    const topics = [...new Set(records.map((r) => r.topic))].sort();
    const missing = await missingOf(topics);
    return {
      error: gatewayErrors.create('GW_KAFKA_TOPIC_MISSING', missing.join(', '), err),
      state: { state: 'topic-missing', topicsMissing: missing, error: reason },
    };
  };

  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  /** Backlog records the buckets allow now, oldest first, at most `limit`. */
  const takeBacklog = (limit: number): StoredRecord[] => {
    if (backlogKeys.size === 0 || limit <= 0) return [];
    const candidates = buffer.peek(Math.min(limit, Math.max(1, Math.floor(recordBucket.available()))), 0, boundary);
    if (candidates.length === 0) {
      // Backlog sent: every device is live again.
      backlogKeys.clear();
      return [];
    }
    const taken: StoredRecord[] = [];
    let budget = byteBucket.available();
    for (const record of candidates) {
      if (recordBucket.available() - taken.length < 1) break;
      // A record larger than the whole burst still goes when the bucket is full.
      if (record.value.length > budget && !(taken.length === 0 && budget >= byteBucket.burst)) break;
      taken.push(record);
      budget -= record.value.length;
    }
    recordBucket.take(taken.length);
    byteBucket.take(taken.reduce((n, r) => n + r.value.length, 0));
    return taken;
  };

  /** Live records whose device has no backlog, oldest first, at most `limit`. */
  const takeLive = (limit: number): StoredRecord[] => {
    if (limit <= 0) return [];
    if (backlogKeys.size === 0) return buffer.peek(limit, boundary);
    // Held devices' records sit among the live ones: look further ahead so they do not crowd out the rest.
    return buffer
      .peek(limit * 4, boundary)
      .filter((r) => !backlogKeys.has(r.key))
      .slice(0, limit);
  };

  const nextBatch = (): StoredRecord[] => {
    if (options.replayOrder === 'backlog-first') {
      const backlog = takeBacklog(options.batchSize - minShare);
      return [...backlog, ...takeLive(options.batchSize - backlog.length)];
    }
    const live = takeLive(options.batchSize);
    return [...live, ...takeBacklog(Math.max(minShare, options.batchSize - live.length))];
  };

  const run = async () => {
    const signal = stopController.signal;
    let backoff = options.minBackoffMs;
    let lastExpire = 0;
    // Kafka failed and has not accepted a batch since: whatever is waiting now waited through an outage.
    let down = false;
    while (running) {
      if (options.expireEveryMs > 0 && Date.now() - lastExpire >= options.expireEveryMs) {
        lastExpire = Date.now();
        const expired = buffer.expire(lastExpire);
        if (expired > 0) emitter.emit('expired', { records: expired });
      }
      if (down) extendBacklog();
      const records = nextBatch();
      if (records.length === 0) {
        // Nothing sendable: either the buffer is empty or the backlog waits for tokens.
        await idle(backlogKeys.size > 0 ? Math.max(1, Math.min(options.idleMs, recordBucket.waitMs(1))) : options.idleMs);
        continue;
      }
      try {
        const p = await connect();
        await p.sendBatch({
          topicMessages: toTopicMessages(records),
          acks: -1,
          timeout: options.requestTimeoutMs,
          compression: options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
        });
        const ids = records.map((r) => r.id);
        const replayed = records.filter((r) => r.id <= boundary).length;
        buffer.removeIds(ids);
        buffer.maintain();
        forwardedTotal += records.length;
        replayedTotal += replayed;
        backoff = options.minBackoffMs;
        // What arrived while this first batch after an outage was in flight also waited: backlog too.
        if (down) extendBacklog();
        down = false;
        setState({ state: 'reachable' });
        emitter.emit('forwarded', { records: records.length, replayed, lastId: Math.max(...ids) });
        if (options.lingerMs > 0 && records.length < options.batchSize) await sleep(options.lingerMs, { signal });
      } catch (err) {
        // A failed batch stays in the buffer and is sent again, in order; everything waiting now
        // (and arriving until Kafka is back) becomes backlog.
        down = true;
        extendBacklog();
        // A kafkajs idempotent producer can stay wedged after a partly failed batch (its sequence
        // numbers no longer match the broker's: OUT_OF_ORDER_SEQUENCE_NUMBER on every retry). A fresh
        // producer gets a new producer id; what the old one already wrote comes again as a duplicate
        // with the same event id, which later stages drop.
        const stale = producer;
        producer = undefined;
        connected = false;
        await stale?.disconnect().catch(() => undefined);
        const failure = await classify(err, records);
        setState(failure.state);
        emitter.emit('error', failure.error);
        await sleep(jittered(backoff), { signal });
        backoff = Math.min(backoff * 2, options.maxBackoffMs);
      }
    }
  };

  return Object.assign(emitter, {
    start() {
      if (running || closing) return;
      running = true;
      loop = run();
    },
    notify() {
      wake?.();
    },
    async drain(timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (buffer.stats().depth > 0) {
        if (closing !== undefined) throw gatewayErrors.create('GW_CLOSED', 'forwarder closed while draining');
        if (Date.now() > deadline) throw gatewayErrors.create('GW_SHUTDOWN_TIMEOUT', 'buffer not drained');
        wake?.();
        await sleep(20);
      }
    },
    close() {
      closing ??= (async () => {
        running = false;
        stopController.abort();
        wake?.();
        await loop;
        if (producer !== undefined) await producer.disconnect().catch(() => undefined);
      })();
      return closing;
    },
    forwardedTotal: () => forwardedTotal,
    replayedTotal: () => replayedTotal,
    kafkaState: () => kafkaState,
  });
}

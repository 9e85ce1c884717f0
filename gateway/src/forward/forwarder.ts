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
import { Admin, Producer, ProduceAcks } from '@platformatic/kafka';
import { TokenBucket, sleep, withTimeout } from '@city/protocol';
import type { OutboxBuffer, StoredRecord } from '../buffer/index.ts';
import { gatewayErrors } from '../errors.ts';
import { describeKafkaFailure, type KafkaState } from './kafka-state.ts';
import { createMessageEncoder, type UplinkMessage } from './messages.ts';
import { clientSecurity, type UplinkSecurity } from './security.ts';

export const REPLAY_ORDERS = ['live-first', 'backlog-first'] as const;
/** Codecs of the uplink. snappy is left out: nothing here needs it and the sink would need one more codec. */
export const UPLINK_COMPRESSIONS = ['none', 'gzip', 'lz4', 'zstd'] as const;
export type UplinkCompression = (typeof UPLINK_COMPRESSIONS)[number];
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
  /** Record-batch codec; the sink reads each of these (cloud/src/sink/codecs.ts). */
  compression: UplinkCompression;
  requestTimeoutMs: number;
  /** Backlog pace; 0 = unpaced. */
  replayRecordsPerSec: number;
  replayBytesPerSec: number;
  replayOrder: ReplayOrder;
  /** How often records past their lane's time-to-live are dropped (counted by the buffer). */
  expireEveryMs: number;
  /**
   * TLS and SASL of the uplink (security.ts); absent = plaintext, no authentication. A function is
   * called for every new producer, so secrets fixed or rotated on disk are read again; what it throws
   * is reported like a failed send (the records stay buffered).
   */
  security?: UplinkSecurity | (() => UplinkSecurity | undefined);
}

export interface ForwarderEvents {
  forwarded: [{ records: number; replayed: number; lastId: number }];
  expired: [{ records: number }];
  /** A batch Kafka did not take: GW_KAFKA_SEND, GW_KAFKA_TOPIC_MISSING naming the topics, GW_KAFKA_TLS, GW_KAFKA_AUTH or GW_KAFKA_SECRET naming the cause. */
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

// Keys and headers go as Buffers (messages.ts), each record with its partition: no serializer or partitioner runs.
type UplinkProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

export function createForwarder(buffer: OutboxBuffer, options: ForwarderOptions): Forwarder {
  const common = () => ({
    clientId: options.clientId,
    bootstrapBrokers: options.brokers,
    connectTimeout: Math.min(options.requestTimeoutMs, 10_000),
    requestTimeout: options.requestTimeoutMs,
    timeout: options.requestTimeoutMs,
    ...clientSecurity(typeof options.security === 'function' ? options.security() : options.security),
  });
  const newProducer = (): UplinkProducer =>
    new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...common(),
      // Our loop owns retries (capped backoff, forever); the client only smooths over blips such as a
      // leader election, where its own retry resends the same batch with the same sequence numbers.
      retries: 3,
      retryDelay: 100,
      idempotent: true,
      acks: ProduceAcks.ALL,
      compression: options.compression,
      autocreateTopics: false,
    });
  const emitter = new EventEmitter<ForwarderEvents>();
  let producer: UplinkProducer | undefined;
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
  // A paced backlog goes in slices of at least a tenth of a second's pace (at most a batch): taking
  // whatever trickled in since the last send made many small requests (a few hundred records, a few per
  // partition), and every request, partition batch and compression has a cost of its own.
  const minBacklogSlice = options.replayRecordsPerSec > 0 ? Math.max(1, Math.min(options.batchSize, Math.floor(options.replayRecordsPerSec / 10))) : 1;

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

  const encode = createMessageEncoder(options.gatewayId);
  const toMessages = (records: readonly StoredRecord[]): UplinkMessage[] => {
    const messages = new Array<UplinkMessage>(records.length);
    for (let i = 0; i < records.length; i++) messages[i] = encode(records[i]!, records[i]!.id <= boundary);
    return messages;
  };

  const connect = (): UplinkProducer => {
    producer ??= newProducer();
    return producer;
  };

  /** Of `topics`, those the brokers do not have; all of them when the brokers cannot be asked. */
  const missingOf = async (topics: string[]): Promise<string[]> => {
    // retries 0 left a failed connection's promise pending in 2.12 (seen with TLS and SASL refusals).
    const admin = new Admin({ ...common(), retries: 1 });
    try {
      const existing = new Set(await withTimeout(admin.listTopics(), options.requestTimeoutMs, 'listing the Kafka topics'));
      const missing = topics.filter((t) => !existing.has(t));
      return missing.length > 0 ? missing : topics;
    } catch {
      return topics;
    } finally {
      await admin.close().catch(() => undefined);
    }
  };

  /** The failure as the gateway reports it, with the state it leaves Kafka in. */
  const classify = async (err: unknown, records: readonly StoredRecord[]): Promise<{ error: Error; state: KafkaState }> => {
    if (gatewayErrors.is(err, 'GW_KAFKA_SECRET')) return { error: err, state: { state: 'unreachable', error: err.message } };
    const failure = describeKafkaFailure(err);
    if (failure.kind !== 'topic') {
      const code = failure.kind === 'tls' ? 'GW_KAFKA_TLS' : failure.kind === 'auth' ? 'GW_KAFKA_AUTH' : 'GW_KAFKA_SEND';
      return { error: gatewayErrors.create(code, failure.reason, err), state: { state: 'unreachable', error: failure.reason } };
    }
    const topics = [...new Set(records.map((r) => r.topic))].sort();
    const missing = await missingOf(topics);
    return {
      error: gatewayErrors.create('GW_KAFKA_TOPIC_MISSING', missing.join(', '), err),
      state: { state: 'topic-missing', topicsMissing: missing, error: failure.reason },
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
    if (recordBucket.available() < Math.min(limit, minBacklogSlice)) return [];
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
        await idle(backlogKeys.size > 0 ? Math.max(1, Math.min(options.idleMs, recordBucket.waitMs(minBacklogSlice))) : options.idleMs);
        continue;
      }
      try {
        // A bound on the whole send, retries included: a client promise left pending (seen in 2.12 with
        // retries 0 on refused connections) must not stall the loop; the producer is then replaced.
        await withTimeout(connect().send({ messages: toMessages(records) }), options.requestTimeoutMs * 5, 'sending a batch to Kafka');
        if (!connected) {
          connected = true;
          emitter.emit('connected');
        }
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
        // After a partly failed batch an idempotent producer's sequence numbers may no longer match the
        // broker's (OUT_OF_ORDER_SEQUENCE_NUMBER on every retry). A fresh producer gets a new producer
        // id; what the old one already wrote comes again as a duplicate with the same event id, which
        // later stages drop.
        const stale = producer;
        producer = undefined;
        connected = false;
        await stale?.close(true).catch(() => undefined);
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
        if (producer !== undefined) await producer.close().catch(() => undefined);
      })();
      return closing;
    },
    forwardedTotal: () => forwardedTotal,
    replayedTotal: () => replayedTotal,
    kafkaState: () => kafkaState,
  });
}

// Moves buffered records to Kafka, oldest first, one batch at a time, so each device's order holds.
// A batch leaves the buffer only after Kafka acknowledged all of it (acks=all, idempotent producer).
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompressionTypes, Kafka, logLevel, type Message, type Producer, type TopicMessages } from 'kafkajs';
import { HEADERS, SCHEMA_VERSION } from '@city/protocol';
import type { OutboxBuffer, StoredRecord } from './buffer.ts';
import { gatewayErrors } from './errors.ts';

export interface ForwarderOptions {
  brokers: string[];
  clientId: string;
  gatewayId: string;
  batchSize: number;
  /** How long to wait for more records when the buffer runs dry. */
  idleMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  compression: 'none' | 'gzip';
  requestTimeoutMs: number;
}

export interface ForwarderEvents {
  forwarded: [{ records: number; lastId: number }];
  error: [Error];
  connected: [];
}

export interface Forwarder extends EventEmitter<ForwarderEvents> {
  start(): void;
  /** Wakes the loop: new records are in the buffer. */
  notify(): void;
  /** Resolves once the buffer is empty (or rejects after `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  /** Records Kafka acknowledged since start. */
  forwardedTotal(): number;
}

export function createForwarder(buffer: OutboxBuffer, options: ForwarderOptions): Forwarder {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.NOTHING,
    requestTimeout: options.requestTimeoutMs,
    // Our loop owns retries (capped backoff, forever); kafkajs only smooths over blips.
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const emitter = new EventEmitter<ForwarderEvents>();
  let producer: Producer | undefined;
  let connected = false;
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let forwardedTotal = 0;
  let closing: Promise<void> | undefined;
  const stopController = new AbortController();

  const headersFor = (record: StoredRecord): Record<string, string> => {
    const headers: Record<string, string> = {
      [HEADERS.gatewayId]: options.gatewayId,
      [HEADERS.receivedAt]: String(record.receivedAt),
      [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
    };
    if (record.eventId !== null) headers[HEADERS.eventId] = record.eventId;
    return headers;
  };

  const toTopicMessages = (records: readonly StoredRecord[]): TopicMessages[] => {
    const byTopic = new Map<string, Message[]>();
    for (const record of records) {
      let messages = byTopic.get(record.topic);
      if (messages === undefined) byTopic.set(record.topic, (messages = []));
      messages.push({ key: record.key, value: record.value, headers: headersFor(record), timestamp: String(record.receivedAt) });
    }
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  };

  const connect = async (): Promise<Producer> => {
    if (producer !== undefined && connected) return producer;
    producer ??= kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    connected = true;
    emitter.emit('connected');
    return producer;
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

  const run = async () => {
    let backoff = options.minBackoffMs;
    while (running) {
      const records = buffer.peek(options.batchSize);
      if (records.length === 0) {
        await idle(options.idleMs);
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
        const lastId = records[records.length - 1]!.id;
        buffer.remove(lastId);
        forwardedTotal += records.length;
        backoff = options.minBackoffMs;
        emitter.emit('forwarded', { records: records.length, lastId });
      } catch (err) {
        // A failed batch stays in the buffer and is sent again, whole and in order.
        emitter.emit('error', gatewayErrors.create('GW_KAFKA_SEND', (err as Error).message, err));
        await sleep(backoff, undefined, { signal: stopController.signal }).catch(() => undefined);
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
    forwardedTotal() {
      return forwardedTotal;
    },
  });
}

// The sink under test against the run's Kafka broker: topics and a group of its own per scenario, a
// producer that writes records the way the gateway forwards them (headers through protocol), the group's
// committed offsets against the log end, and sinks closed after the test.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners, type Admin, type Message, type Producer } from 'kafkajs';
import { kafkaTopicSet, recordHeaders, topicSpecs, withTimeout, type EventKind, type KafkaTopicSet } from '@city/protocol';
import { silentLog, sleep } from '@city/protocol';
import { createSink, type Sink, type SinkOptions } from '@city/cloud';
import { ensureTopics } from './kafka.ts';
import { sampleEvent } from './lake.ts';
import { onTeardown } from './teardown.ts';

/** Gateway receive time on the records the tests produce. */
export const RECEIVED_AT = Date.UTC(2024, 4, 1, 6, 30);

export interface Scenario {
  id: string;
  topics: KafkaTopicSet;
  groupId: string;
  lakeDir: string;
}

/** Fresh topics (created with their partition counts), a group id and a lake folder under `root`. */
export async function scenario(brokers: string[], root: string, name: string): Promise<Scenario> {
  const id = `${name}${randomUUID().slice(0, 8)}`;
  const topics = kafkaTopicSet(id);
  await ensureTopics(brokers, topicSpecs(topics));
  return { id, topics, groupId: `sink-${id}`, lakeDir: join(root, id) };
}

/** A sink on the scenario's topics, group and lake (quiet, quick to flush), closed after the test. */
export function startTestSink(brokers: string[], s: Scenario, options: Partial<SinkOptions> = {}): Sink {
  const sink = createSink({ brokers, groupId: s.groupId, lakeDir: s.lakeDir, topics: s.topics, maxAgeMs: 300, log: silentLog, ...options });
  onTeardown(() => withTimeout(sink.close(), 20_000, 'closing a test sink').catch(() => undefined));
  return sink;
}

/** Event records as the gateway forwards them: keyed by device, with the gateway's headers. */
export function eventMessages(idPrefix: string, kind: EventKind, from: number, count: number, options: { gatewayId?: string } = {}): Message[] {
  return Array.from({ length: count }, (_, i) => {
    const event = sampleEvent(kind, from + i, { idPrefix });
    return {
      key: event.deviceId,
      value: JSON.stringify(event),
      headers: recordHeaders({ gatewayId: options.gatewayId ?? 'gw-test', receivedAt: RECEIVED_AT, eventId: event.eventId }),
    };
  });
}

export interface TestKafka {
  readonly producer: Producer;
  readonly admin: Admin;
  produce(topic: string, messages: Message[]): Promise<void>;
  /** Committed offset of the group vs the log end, per topic-partition ('-1' = nothing committed / empty). */
  offsets(groupId: string, topics: KafkaTopicSet): Promise<{ committed: Record<string, string>; end: Record<string, string> }>;
  /** Topic-partitions whose committed offset is behind the log end. */
  lagging(groupId: string, topics: KafkaTopicSet): Promise<number>;
  close(): Promise<void>;
}

/** A producer and an admin client for a test file (open in beforeAll, close in afterAll). */
export async function connectTestKafka(brokers: string[], clientId: string): Promise<TestKafka> {
  const kafka = new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
  // Idempotent: a plain kafkajs producer re-sends a whole request on a retriable error, which writes
  // duplicates into the log (seen right after topic creation) and would blur what the sink does.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  const admin = kafka.admin();
  await withTimeout(Promise.all([producer.connect(), admin.connect()]), 30_000, 'connecting the test producer');
  const names = (topics: KafkaTopicSet) => [...Object.values(topics.events), topics.deadletter];
  const offsets: TestKafka['offsets'] = async (groupId, topics) => {
    const committed: Record<string, string> = {};
    const end: Record<string, string> = {};
    for (const t of await admin.fetchOffsets({ groupId, topics: names(topics) })) {
      for (const p of t.partitions) committed[`${t.topic}/${p.partition}`] = p.offset;
    }
    for (const topic of names(topics)) {
      for (const p of await retriable(() => admin.fetchTopicOffsets(topic))) end[`${topic}/${p.partition}`] = p.high === '0' ? '-1' : p.high;
    }
    return { committed, end };
  };
  return {
    producer,
    admin,
    async produce(topic, messages) {
      for (let i = 0; i < messages.length; i += 500) await producer.send({ topic, messages: messages.slice(i, i + 500), acks: -1 });
    },
    offsets,
    async lagging(groupId, topics) {
      const { committed, end } = await offsets(groupId, topics);
      return Object.entries(end).filter(([tp, high]) => high !== '-1' && BigInt(committed[tp] ?? '-1') < BigInt(high)).length;
    },
    async close() {
      await withTimeout(Promise.all([producer.disconnect(), admin.disconnect()]), 20_000, 'disconnecting the test producer').catch(() => undefined);
    },
  };
}

/** Right after a topic is created the broker can answer "not the leader" for a moment: asked again. */
async function retriable<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= 20 || (err as { retriable?: unknown }).retriable !== true) throw err;
      await sleep(250);
    }
  }
}

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners, type KafkaMessage } from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { HEADERS, headerText } from '@city/protocol';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { openBuffer, type OutboxBuffer } from '../buffer/index.ts';
import { createCachingPartitioner, createForwarder, isUnknownTopic, jittered, type Forwarder, type ForwarderOptions, type KafkaState } from './index.ts';

const brokers = inject('kafkaBrokers');
const kafka = new Kafka({ clientId: 'gw-forwarder-test', brokers, logLevel: logLevel.NOTHING });

function tempBuffer(): OutboxBuffer {
  const buffer = openBuffer(join(tempDir('gw-fwd-'), 'b.db'), 'process-crash');
  onTeardown(() => buffer.close());
  return buffer;
}

/** One partition, so the topic's order is the order the forwarder sent in. */
async function createTopic(topic: string): Promise<void> {
  await ensureTopics(brokers, [{ topic, numPartitions: 1 }]);
}

function forwarder(buffer: OutboxBuffer, overrides: Partial<ForwarderOptions>): Forwarder {
  const f = createForwarder(buffer, {
    brokers,
    clientId: `fwd-${randomUUID().slice(0, 8)}`,
    gatewayId: 'gw-fwd',
    batchSize: 100,
    idleMs: 20,
    lingerMs: 0,
    minBackoffMs: 50,
    maxBackoffMs: 500,
    compression: 'gzip',
    requestTimeoutMs: 5000,
    replayRecordsPerSec: 0,
    replayBytesPerSec: 0,
    replayOrder: 'live-first',
    expireEveryMs: 1000,
    ...overrides,
  });
  // A send the broker refuses for a moment (NOT_LEADER_OR_FOLLOWER on a topic just created, seen here) is
  // retried by the loop; unheard, the 'error' event would throw out of it instead.
  f.on('error', () => undefined);
  onTeardown(() => f.close());
  return f;
}

async function consume(topic: string, expected: number): Promise<KafkaMessage[]> {
  // A short fetch wait: disconnecting waits for the fetch in flight.
  const consumer = kafka.consumer({ groupId: `gw-fwd-${randomUUID()}`, maxWaitTimeInMs: 100 });
  onTeardown(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const messages: KafkaMessage[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      messages.push(message);
    },
  });
  await expect.poll(() => messages.length, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(expected);
  return messages;
}

const rec = (topic: string, key: string, eventId: string) => ({
  topic,
  key,
  value: Buffer.from(JSON.stringify({ eventId })),
  receivedAt: Date.now(),
  eventId,
});
const idOf = (m: KafkaMessage) => headerText(m.headers, HEADERS.eventId) ?? '';
const replayed = (m: KafkaMessage) => headerText(m.headers, HEADERS.replayed) === '1';

// Keys of every shape a gateway sends: device ids, and odd ones (empty, non-ASCII, long) to cover
// every murmur2 tail length and multi-byte UTF-8.
const KEYS = Array.from({ length: 5000 }, (_, i) =>
  i % 5 === 0 ? `${'ü'.repeat(i % 7)}dev-${i}-${'x'.repeat(i % 13)}` : i % 5 === 1 ? `${i}` : `sensor-${randomUUID().slice(0, (i % 36) + 1)}`,
).concat(['', 'a', 'ab', 'abc', 'abcd', 'bus-1', '車両-7']);

function metadataOf(count: number) {
  return Array.from({ length: count }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 1, replicas: [1], isr: [1], offlineReplicas: [] }));
}

describe('caching partitioner', () => {
  it("with the producer's modulo, picks the partition kafkajs's default partitioner picks (5,000 keys × 1, 3, 6, 12 partitions)", () => {
    const cached = createCachingPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    for (const count of [1, 3, 6, 12]) {
      const partitionMetadata = metadataOf(count);
      for (const key of KEYS) {
        // Twice per key: the second answer comes from the cache.
        for (const round of [0, 1]) {
          const raw = cached({ topic: 'city.vehicle.v1', key, value: Buffer.from(`${round}`) }, Buffer.from(key), { metadata: undefined });
          expect(raw).toBeGreaterThanOrEqual(0);
          // @platformatic/kafka 2.12 takes `partition %= partitionsCount` of what the partitioner returns.
          expect(raw % count).toBe(reference({ topic: 'city.vehicle.v1', partitionMetadata, message: { key, value: `${round}` } }));
        }
      }
    }
  });

  it('lands every key on that partition of a real topic, end to end (3, 6 and 12 partitions)', { timeout: 120_000 }, async () => {
    const reference = Partitioners.DefaultPartitioner();
    const keys = KEYS.slice(0, 400);
    for (const count of [3, 6, 12]) {
      const topic = `gw-fwd-part-${count}-${randomUUID().slice(0, 8)}`;
      await ensureTopics(brokers, [{ topic, numPartitions: count }]);
      const buffer = tempBuffer();
      buffer.append(keys.map((key, i) => rec(topic, key, `${count}-${i}`)));
      const f = forwarder(buffer, { compression: 'none' });
      f.start();
      const got = await consumeWithPartition(topic, keys.length);
      const partitionMetadata = metadataOf(count);
      const wrong = got.filter(({ key, partition }) => reference({ topic, partitionMetadata, message: { key, value: '' } }) !== partition);
      expect(wrong).toEqual([]);
      expect(new Set(got.map((g) => g.partition)).size).toBe(count);
      await f.close();
    }
  });
});

async function consumeWithPartition(topic: string, expected: number): Promise<{ key: string; partition: number }[]> {
  const consumer = kafka.consumer({ groupId: `gw-fwd-${randomUUID()}`, maxWaitTimeInMs: 100 });
  onTeardown(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const got: { key: string; partition: number }[] = [];
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      got.push({ key: message.key?.toString('utf8') ?? '', partition });
    },
  });
  await expect.poll(() => got.length, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(expected);
  await consumer.disconnect();
  return got;
}

describe('backoff', () => {
  it('is jittered within [backoff/2, backoff]', () => {
    expect(jittered(1000, () => 0)).toBe(500);
    expect(jittered(1000, () => 1)).toBe(1000);
    expect(jittered(1000, () => 0.5)).toBe(750);
  });
});

describe('forwarder replay', () => {
  it('paces the backlog, marks it replayed, sends live devices first and keeps each device in order', { timeout: 90_000 }, async () => {
    const topic = `gw-fwd-replay-${randomUUID().slice(0, 8)}`;
    await createTopic(topic);
    const buffer = tempBuffer();
    // Backlog from "before the restart": two devices, interleaved.
    for (let i = 0; i < 4; i++) buffer.append([rec(topic, 'A', `A-old-${i}`), rec(topic, 'B', `B-old-${i}`)]);
    // One backlog record per second: the backlog takes ≥ 7 s, live records need not wait for it.
    const f = forwarder(buffer, { replayRecordsPerSec: 1 });
    f.once('forwarded', () => {
      buffer.append([rec(topic, 'C', 'C-live-0'), rec(topic, 'A', 'A-live-0'), rec(topic, 'C', 'C-live-1')]);
      f.notify();
    });
    f.start();
    const messages = await consume(topic, 11);
    const order = messages.map(idOf);
    expect(order).toHaveLength(11);

    const backlog = order.filter((id) => id.includes('-old-'));
    expect(backlog).toEqual(['A-old-0', 'B-old-0', 'A-old-1', 'B-old-1', 'A-old-2', 'B-old-2', 'A-old-3', 'B-old-3']);
    // Live-first across devices: C (no backlog) went before the backlog was through.
    expect(order.indexOf('C-live-1')).toBeLessThan(order.indexOf('B-old-3'));
    expect(order.indexOf('C-live-0')).toBeLessThan(order.indexOf('C-live-1'));
    // Per-device order beats live-first: A's live record waited for A's backlog.
    expect(order.indexOf('A-live-0')).toBeGreaterThan(order.indexOf('A-old-3'));
    for (const m of messages) expect(replayed(m)).toBe(idOf(m).includes('-old-'));
    await expect.poll(() => buffer.stats().depth).toBe(0);
    expect(f.replayedTotal()).toBe(8);
    expect(f.forwardedTotal()).toBe(11);
  });

  it('sends a paced backlog in slices of a tenth of a second of its pace, not in whatever trickled in', { timeout: 90_000 }, async () => {
    const topic = `gw-fwd-slices-${randomUUID().slice(0, 8)}`;
    await createTopic(topic);
    const buffer = tempBuffer();
    buffer.append(Array.from({ length: 150 }, (_, i) => rec(topic, `K${i % 3}`, `S-${i}`)));
    // 50 records/s: a full bucket (50) first, then slices of at least 5.
    const f = forwarder(buffer, { replayRecordsPerSec: 50 });
    const sizes: number[] = [];
    f.on('forwarded', ({ replayed }) => sizes.push(replayed));
    f.start();
    await expect.poll(() => buffer.stats().depth, { timeout: 60_000 }).toBe(0);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(150);
    // The last slice may be the backlog's remainder.
    expect(sizes.slice(0, -1).filter((n) => n < 5)).toEqual([]);
    const order = (await consume(topic, 150)).map(idOf);
    expect(order).toEqual(Array.from({ length: 150 }, (_, i) => `S-${i}`));
  });

  it('marks records that waited through an outage as replayed, and later ones as live', { timeout: 90_000 }, async () => {
    // The topic does not exist yet: every send fails, as while Kafka is away.
    const topic = `gw-fwd-outage-${randomUUID().slice(0, 8)}`;
    const buffer = tempBuffer();
    const f = forwarder(buffer, {});
    let failures = 0;
    const errors: Error[] = [];
    const states: KafkaState[] = [];
    f.on('error', (err) => {
      failures++;
      errors.push(err);
    });
    f.on('state', (state) => states.push(state));
    buffer.append([rec(topic, 'D', 'D-0')]);
    f.start();
    await expect.poll(() => failures, { timeout: 60_000 }).toBeGreaterThan(0);
    // What kafkajs says of a missing topic, told apart from a broker that does not answer.
    expect(errors[0]).toMatchObject({ code: 'GW_KAFKA_TOPIC_MISSING', message: expect.stringContaining(topic) });
    expect(isUnknownTopic(errors[0]!.cause)).toBe(true);
    expect(states[0]).toMatchObject({ state: 'topic-missing', topicsMissing: [topic] });
    expect(f.kafkaState().state).toBe('topic-missing');
    buffer.append([rec(topic, 'D', 'D-1')]);
    await createTopic(topic);
    await expect.poll(() => buffer.stats().depth, { timeout: 60_000 }).toBe(0);
    buffer.append([rec(topic, 'D', 'D-2')]);
    f.notify();
    const messages = await consume(topic, 3);
    expect(messages.map((m) => [idOf(m), replayed(m)])).toEqual([
      ['D-0', true],
      ['D-1', true],
      ['D-2', false],
    ]);
    expect(states.at(-1)).toEqual({ state: 'reachable' });
  });

  it('reports an unreachable broker as unreachable, not as a missing topic', async () => {
    const buffer = tempBuffer();
    const f = forwarder(buffer, { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 });
    const errors: Error[] = [];
    f.on('error', (err) => errors.push(err));
    buffer.append([rec('city.vehicle.v1', 'E', 'E-0')]);
    f.start();
    await expect.poll(() => errors.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(errors[0]).toMatchObject({ code: 'GW_KAFKA_SEND' });
    expect(isUnknownTopic(errors[0]!.cause)).toBe(false);
    expect(f.kafkaState()).toMatchObject({ state: 'unreachable', error: expect.stringMatching(/ECONNREFUSED/) });
    expect(buffer.stats().depth).toBe(1);
  });
});

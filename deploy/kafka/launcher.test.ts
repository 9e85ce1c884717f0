import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import kafkajs from 'kafkajs';
import type { Admin, Consumer, Kafka as KafkaClient, KafkaMessage, Producer } from 'kafkajs';
import { describe, expect, inject, it, vi } from 'vitest';
import { CityError, withTimeout } from '@city/protocol';
import { onTeardown } from '../../test/support/teardown.ts';
import { ensureStandardTopics, ensureTopics, fetchKafka, KAFKA_VERSION, kafkaErrors, parseBrokers, standardTopics, startKafka, useKafka } from './index.ts';

const { Kafka, Partitioners, logLevel } = kafkajs;

const brokers = inject('kafkaBrokers');

/** Runs `cleanup` after the test, bounded so a hang fails the test. */
function cleanup(close: () => Promise<unknown>): void {
  onTeardown(() => withTimeout(close(), 15_000, 'cleanup'));
}

function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

function client(clientId: string): KafkaClient {
  // kafkajs logs retriable, expected errors (coordinator loading, …) at ERROR; failures surface as rejections.
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

async function connectedAdmin(): Promise<Admin> {
  const admin = client(uniqueName('test-admin')).admin();
  await admin.connect();
  cleanup(() => admin.disconnect());
  return admin;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ensureTopics', () => {
  it('creates topics with the requested partition counts and configs, and is idempotent', async () => {
    const a = uniqueName('ensure-a');
    const b = uniqueName('ensure-b');
    const specs = [
      { topic: a, numPartitions: 3 },
      { topic: b, numPartitions: 1, configs: { 'cleanup.policy': 'compact' } },
    ];
    await ensureTopics(brokers, specs);
    const admin = await connectedAdmin();
    const partitionCounts = async (): Promise<Record<string, number>> => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [a, b] });
      return Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]));
    };
    expect(await partitionCounts()).toEqual({ [a]: 3, [b]: 1 });
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: b, configNames: ['cleanup.policy'] }],
    });
    expect(resources[0]?.configEntries[0]?.configValue).toBe('compact');

    // Again, and with one new topic among the existing ones.
    const c = uniqueName('ensure-c');
    await ensureTopics(brokers, specs);
    await ensureTopics(brokers, [...specs, { topic: c, numPartitions: 2 }]);
    expect(await partitionCounts()).toEqual({ [a]: 3, [b]: 1 });
    const { topics } = await admin.fetchTopicMetadata({ topics: [c] });
    expect(topics[0]?.partitions).toHaveLength(2);
  });

  it('refuses an existing topic with fewer partitions than asked for, and bad specs', async () => {
    const topic = uniqueName('ensure-short');
    await ensureTopics(brokers, [{ topic, numPartitions: 1 }]);
    await expect(ensureTopics(brokers, [{ topic, numPartitions: 4 }])).rejects.toMatchObject({
      code: 'KAFKA_TOPIC_MISMATCH',
      canRetry: false,
    });
    await expect(ensureTopics(brokers, [{ topic: 'bad name', numPartitions: 1 }])).rejects.toMatchObject({
      code: 'KAFKA_INVALID_OPTION',
    });
    await expect(ensureTopics(brokers, [{ topic: uniqueName('zero'), numPartitions: 0 }])).rejects.toBeInstanceOf(CityError);
  });
});

describe('kafkajs against the broker', () => {
  it('round-trips keyed records with headers through an idempotent producer and a consumer group, and commits offsets', async () => {
    const topic = uniqueName('roundtrip');
    const groupId = uniqueName('group');
    await ensureTopics(brokers, [{ topic, numPartitions: 2 }]);

    const producer: Producer = client(uniqueName('test-producer')).producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    cleanup(() => producer.disconnect());

    const sent = Array.from({ length: 20 }, (_, i) => ({
      key: `sensor-${i % 5}`,
      value: JSON.stringify({ seq: i }),
      headers: { 'content-type': 'application/json', 'x-seq': String(i) },
    }));
    const [first] = await producer.send({ topic, acks: -1, messages: sent.slice(0, 10) });
    expect(first?.errorCode).toBe(0);
    await producer.send({ topic, acks: -1, compression: kafkajs.CompressionTypes.GZIP, messages: sent.slice(10) });

    const consumer: Consumer = client(uniqueName('test-consumer')).consumer({
      groupId,
      // Short fetch waits so disconnect() does not sit out a 5 s long poll.
      maxWaitTimeInMs: 200,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
    await consumer.connect();
    cleanup(() => consumer.disconnect());
    await consumer.subscribe({ topics: [topic], fromBeginning: true });

    const received: { partition: number; message: KafkaMessage }[] = [];
    const allReceived = new Promise<void>((resolveAll, rejectAll) => {
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            received.push({ partition, message });
            await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
            if (received.length === sent.length) resolveAll();
          },
        })
        .catch(rejectAll);
    });
    await withTimeout(allReceived, 30_000, `consuming ${sent.length} records`);

    const bySeq = new Map(received.map((r) => [Number(r.message.headers?.['x-seq']?.toString()), r]));
    expect(bySeq.size).toBe(sent.length);
    const partitionOfKey = new Map<string, number>();
    for (const [i, expected] of sent.entries()) {
      const got = bySeq.get(i);
      expect(got?.message.key?.toString()).toBe(expected.key);
      expect(got?.message.value?.toString()).toBe(expected.value);
      expect(got?.message.headers?.['content-type']?.toString()).toBe('application/json');
      // Same key, same partition.
      const partition = partitionOfKey.get(expected.key) ?? got?.partition;
      expect(got?.partition).toBe(partition);
      if (partition !== undefined) partitionOfKey.set(expected.key, partition);
    }

    await consumer.stop();
    const admin = await connectedAdmin();
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const highWater = await admin.fetchTopicOffsets(topic);
    const committed = Object.fromEntries((offsets?.partitions ?? []).map((p) => [p.partition, p.offset]));
    const expected = Object.fromEntries(highWater.map((p) => [p.partition, p.high]));
    expect(committed).toEqual(expected);
  });
});

describe('launcher', () => {
  it('starts a second, separate broker and stops it idempotently', async () => {
    const libs = await fetchKafka();
    expect(readdirSync(libs)).toContain(`kafka_2.13-${KAFKA_VERSION}.jar`);

    const cluster = await startKafka({ heapMb: 256 });
    cleanup(() => cluster.stop());
    expect(cluster.external).toBe(false);
    expect(cluster.version).toBe(KAFKA_VERSION);
    expect(cluster.brokers).not.toEqual(brokers);
    const pid = cluster.pid;
    const dataDir = cluster.dataDir;
    if (pid === undefined || dataDir === undefined) throw new Error('a started broker has a pid and a data dir');
    expect(isAlive(pid)).toBe(true);

    const admin = new Kafka({ clientId: uniqueName('second'), brokers: cluster.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const description = await admin.describeCluster().finally(() => admin.disconnect());
    expect(description.brokers.map((b) => `${b.host}:${b.port}`)).toEqual(cluster.brokers);

    const stopping = cluster.stop();
    expect(cluster.stop()).toBe(stopping);
    await withTimeout(stopping, 25_000, 'stop()');
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
    await cluster.stop();
  });

  it('uses KAFKA_BROKERS instead of starting a broker', async () => {
    vi.stubEnv('KAFKA_BROKERS', ' kafka-1:9092, kafka-2:19092 ,');
    cleanup(async () => vi.unstubAllEnvs());
    const cluster = await useKafka();
    expect(cluster).toMatchObject({ brokers: ['kafka-1:9092', 'kafka-2:19092'], external: true, version: undefined, pid: undefined });
    await cluster.stop();
    expect(() => parseBrokers('localhost')).toThrow(/host:port/);
    expect(() => parseBrokers(',')).toThrow(CityError);
  });
});

describe('the standard topics and the options', () => {
  it('creates the standard topics with their partition counts once, and says which existed', async () => {
    const suffix = uniqueName('std');
    const first = await ensureStandardTopics(brokers, { suffix });
    const specs = standardTopics(suffix);
    expect(first.created.sort()).toEqual(specs.map((s) => s.topic).sort());
    expect(first.existing).toEqual([]);
    const again = await ensureStandardTopics(brokers, { suffix });
    expect(again).toEqual({ created: [], existing: specs.map((s) => s.topic) });
    const admin = await connectedAdmin();
    const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
    expect(Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]))).toEqual(Object.fromEntries(specs.map((s) => [s.topic, s.numPartitions])));
  });

  it('refuses bad options before starting anything, naming the field', async () => {
    await expect(startKafka({ heapMb: 64 })).rejects.toMatchObject({ code: 'KAFKA_INVALID_OPTION', message: expect.stringMatching(/heapMb/) });
    await expect(startKafka({ port: 70_000 })).rejects.toMatchObject({ code: 'KAFKA_INVALID_OPTION', message: expect.stringMatching(/port/) });
    await expect(fetchKafka({ version: 'latest' })).rejects.toThrow(/version/);
    expect(kafkaErrors.is(kafkaErrors.create('KAFKA_START_TIMEOUT'), 'KAFKA_START_TIMEOUT')).toBe(true);
    expect(kafkaErrors.create('KAFKA_START_TIMEOUT').canRetry).toBe(true);
    expect(kafkaErrors.create('KAFKA_TOPIC_MISMATCH').canRetry).toBe(false);
  });
});

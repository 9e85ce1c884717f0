import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { HEADERS, exampleEvent, kafkaTopicSet, mqttTopic, topicSpecs, type DeadLetter, type KafkaTopicSet } from '@city/protocol';
import { ensureTopics } from '../../test/support/kafka.ts';
import { createGateway, openBuffer, readBufferFile, resolveGatewayOptions, type Gateway, type GatewayOptions } from './index.ts';
import { connectDevice } from '../../test/support/mqtt.ts';
import { onTeardown, tempDir as makeTempDir } from '../../test/support/teardown.ts';

const brokers = inject('kafkaBrokers');
const quiet = () => undefined;
const tempDir = () => makeTempDir('gw-test-');

async function startGateway(options: Partial<GatewayOptions> & { buffer: { path: string } }): Promise<Gateway> {
  const gateway = createGateway(
    { gatewayId: 'gw-test', mqtt: { host: '127.0.0.1', port: 0 }, healthIntervalMs: 0, ...options },
    quiet,
  );
  onTeardown(() => gateway.close());
  await gateway.start();
  return gateway;
}

function bufferRows(path: string): { topic: string; key: string; value: string }[] {
  return readBufferFile(path).map((r) => ({ topic: r.topic, key: r.key, value: r.value.toString() }));
}

/**
 * The first copy of each distinct record, in arrival order, once `expected` distinct ones arrived: a
 * batch resent after a failed send may repeat records (same event id), which later stages drop.
 */
async function consumeAll(topics: string[], expected: number): Promise<(KafkaMessage & { topic: string })[]> {
  const kafka = new Kafka({ clientId: 'gw-test-reader', brokers, logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `gw-test-${randomUUID()}` });
  onTeardown(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  const messages: (KafkaMessage & { topic: string })[] = [];
  const seen = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${messages.length} of ${expected} records arrived`)), 30_000);
    void consumer.run({
      eachMessage: async ({ topic, message }) => {
        const id = `${topic}/${message.value?.toString('base64')}`;
        if (seen.has(id)) return;
        seen.add(id);
        messages.push({ ...message, topic });
        if (messages.length >= expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  return messages;
}

describe('options', () => {
  it('are merged over defaults and rejected with the field named', () => {
    const config = resolveGatewayOptions({ gatewayId: 'gw-1', buffer: { path: '/tmp/x.db' } });
    expect(config.buffer.durability).toBe('power-loss');
    expect(config.topics.events.vehicle).toBe('city.vehicle.v1');
    expect(() => resolveGatewayOptions({ gatewayId: 'gw 1', buffer: { path: '/tmp/x.db' }, mqtt: { port: 70_000 } })).toThrow(
      /\/gatewayId .*pattern.*\/mqtt\/port must be <= 65535/,
    );
    expect(() => resolveGatewayOptions({ gatewayId: 'gw-1', buffer: { path: '/tmp/x.db', durability: 'maybe' as never } })).toThrow(
      /GW_OPTIONS_INVALID|invalid gateway options: \/buffer\/durability/,
    );
  });
});

describe('buffer', () => {
  it('keeps records in arrival order across reopen and removes only acknowledged ones', () => {
    const path = join(tempDir(), 'buffer.db');
    let buffer = openBuffer(path, 'power-loss');
    const record = (n: number) => ({ topic: 't', key: `d${n % 3}`, value: Buffer.from(`v${n}`), receivedAt: 1000 + n, eventId: `e${n}` });
    buffer.append([record(0), record(1), record(2)]);
    buffer.append([record(3)]);
    expect(buffer.nextSequence('health')).toBe(0);
    buffer.close();
    buffer = openBuffer(path, 'process-crash');
    expect(buffer.stats()).toEqual({ depth: 4, bytes: 8, oldestReceivedAt: 1000 });
    const first = buffer.peek(2);
    expect(first.map((r) => r.value.toString())).toEqual(['v0', 'v1']);
    buffer.remove(first[1]!.id);
    expect(buffer.peek(10).map((r) => r.eventId)).toEqual(['e2', 'e3']);
    expect(buffer.nextSequence('health')).toBe(1);
    buffer.close();
  });
});

describe('gateway with Kafka away', () => {
  it('commits each publish to the buffer before the PUBACK, and dead-letters invalid ones with their reason', async () => {
    const path = join(tempDir(), 'buffer.db');
    // Nothing listens on port 1: every record stays in the buffer where we can look at it.
    const gateway = await startGateway({ buffer: { path }, kafka: { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 }, drainOnCloseMs: 0 });
    const client = await connectDevice(gateway, 'ws-1');
    const event = exampleEvent('weather', { deviceId: 'ws-1' });
    await client.publishAsync(mqttTopic('ws-1', 'weather'), JSON.stringify(event), { qos: 1 });
    // The PUBACK has arrived: the record must already be committed and visible to another connection.
    expect(bufferRows(path)).toEqual([{ topic: 'city.weather.v1', key: 'ws-1', value: JSON.stringify(event) }]);

    await client.publishAsync(mqttTopic('ws-1', 'weather'), JSON.stringify({ ...event, temperature: 'warm' }), { qos: 1 });
    await client.publishAsync(mqttTopic('ws-2', 'weather'), JSON.stringify(event), { qos: 1 });
    await client.publishAsync('somewhere/else', 'hello', { qos: 1 });
    const letters = bufferRows(path).slice(1).map((r) => ({ topic: r.topic, key: r.key, letter: JSON.parse(r.value) as DeadLetter }));
    expect(letters.map((l) => [l.topic, l.key])).toEqual([
      ['city.deadletter.v1', 'ws-1'],
      ['city.deadletter.v1', 'ws-2'],
      ['city.deadletter.v1', 'ws-1'],
    ]);
    expect(letters[0]!.letter).toMatchObject({
      stage: 'gateway',
      reason: '/temperature must be number [type]',
      problems: [{ path: '/temperature', rule: 'type' }],
      mqttTopic: 'city/v1/devices/ws-1/weather',
      clientId: 'ws-1',
      deviceId: 'ws-1',
      kind: 'weather',
      eventId: event.eventId,
      gatewayId: 'gw-test',
      payloadEncoding: 'utf8',
    });
    expect(letters[1]!.letter.problems).toEqual([expect.objectContaining({ path: '/deviceId', rule: 'topic' })]);
    expect(letters[2]!.letter).toMatchObject({ problems: [{ rule: 'topic' }], payload: 'hello' });
    expect(gateway.stats()).toMatchObject({ received: 4, accepted: 1, deadLettered: 3, forwarded: 0, bufferDepth: 4 });
  });

  it('reports its health as a valid gateway_health event through the buffer', async () => {
    const path = join(tempDir(), 'buffer.db');
    const gateway = await startGateway({ buffer: { path }, kafka: { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 }, drainOnCloseMs: 0 });
    const first = await gateway.reportHealth();
    const second = await gateway.reportHealth();
    expect(second.seq).toBe(first.seq + 1);
    expect(first).toMatchObject({ kind: 'gateway_health', deviceId: 'gw-test', bufferDepth: 0 });
    expect(second.bufferDepth).toBe(1);
    expect(bufferRows(path).map((r) => r.topic)).toEqual(['city.gateway_health.v1', 'city.gateway_health.v1']);
  });
});

describe('gateway forwarding to Kafka', () => {
  let topics: KafkaTopicSet;
  beforeAll(async () => {
    topics = kafkaTopicSet(`gw${randomUUID().slice(0, 8)}`);
    await ensureTopics(brokers, topicSpecs(topics));
  });

  it('forwards events in order per device, with key and headers, and empties the buffer', async () => {
    const path = join(tempDir(), 'buffer.db');
    const gateway = await startGateway({ buffer: { path }, kafka: { brokers }, topics });
    const devices = ['bus-1', 'bus-2', 'bus-3'];
    const clients = await Promise.all(devices.map((d) => connectDevice(gateway, d)));
    const perDevice = 40;
    await Promise.all(
      clients.map(async (client, i) => {
        const deviceId = devices[i]!;
        for (let seq = 0; seq < perDevice; seq++) {
          const event = exampleEvent('vehicle', { deviceId, seq, eventId: `${deviceId}-${seq}` });
          await client.publishAsync(mqttTopic(deviceId, 'vehicle'), JSON.stringify(event), { qos: 1 });
        }
      }),
    );
    await clients[0]!.publishAsync(mqttTopic('bus-1', 'vehicle'), '{"not json', { qos: 1 });

    const messages = await consumeAll([topics.events.vehicle, topics.deadletter], devices.length * perDevice + 1);
    const events = messages.filter((m) => m.topic === topics.events.vehicle);
    for (const deviceId of devices) {
      const seqs = events.filter((m) => m.key?.toString() === deviceId).map((m) => (JSON.parse(m.value!.toString()) as { seq: number }).seq);
      expect(seqs).toEqual([...Array(perDevice).keys()]);
    }
    const headers = events[0]!.headers!;
    expect(headers[HEADERS.gatewayId]?.toString()).toBe('gw-test');
    expect(Number(headers[HEADERS.receivedAt]?.toString())).toBeGreaterThan(Date.now() - 60_000);
    expect(headers[HEADERS.schemaVersion]?.toString()).toBe('1');
    expect(headers[HEADERS.eventId]?.toString()).toMatch(/^bus-\d-\d+$/);
    const letter = JSON.parse(messages.find((m) => m.topic === topics.deadletter)!.value!.toString()) as DeadLetter;
    expect(letter).toMatchObject({ stage: 'gateway', problems: [{ rule: 'json' }], payload: '{"not json' });

    await expect.poll(() => gateway.stats().bufferDepth).toBe(0);
    expect(gateway.stats().forwarded).toBe(devices.length * perDevice + 1);
  });

  it('keeps what it accepted while Kafka is away and forwards it after a restart', async () => {
    const path = join(tempDir(), 'buffer.db');
    const offline = await startGateway({ buffer: { path }, kafka: { brokers: ['127.0.0.1:1'], requestTimeoutMs: 200 }, topics, drainOnCloseMs: 0 });
    const client = await connectDevice(offline, 'aq-9');
    const ids: string[] = [];
    for (let seq = 0; seq < 25; seq++) {
      const event = exampleEvent('air_quality', { deviceId: 'aq-9', seq, eventId: `aq-9-${randomUUID()}` });
      ids.push(event.eventId);
      await client.publishAsync(mqttTopic('aq-9', 'air_quality'), JSON.stringify(event), { qos: 1 });
    }
    await client.endAsync();
    await offline.close();
    expect(bufferRows(path)).toHaveLength(25);

    const online = await startGateway({ buffer: { path }, kafka: { brokers }, topics });
    const messages = await consumeAll([topics.events.air_quality], 25);
    expect(messages.map((m) => m.headers![HEADERS.eventId]!.toString())).toEqual(ids);
    await expect.poll(() => online.stats().bufferDepth).toBe(0);
  });
});

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import {
  HEADERS,
  exampleEvent,
  headerText,
  kafkaTopicSet,
  mqttTopic,
  topicSpecs,
  waitFor,
  type DeadLetter,
  type KafkaTopicSet,
  type Log,
  type LogLevel,
} from '@city/protocol';
import { ensureTopics } from '../../test/support/kafka.ts';
import { readBufferFile, resolveGatewayOptions, type HealthzBody } from './index.ts';
import { runCli } from '../../test/support/cli.ts';
import { startTestGateway, testGateway } from '../../test/support/gateway.ts';
import { connectDevice } from '../../test/support/mqtt.ts';
import { onTeardown, tempDir as makeTempDir } from '../../test/support/teardown.ts';

const brokers = inject('kafkaBrokers');
const tempDir = () => makeTempDir('gw-test-');
const CLI = join(import.meta.dirname, 'cli.ts');

function bufferRows(path: string): { topic: string; key: string; value: string }[] {
  return readBufferFile(path).map((r) => ({ topic: r.topic, key: r.key, value: r.value.toString() }));
}

/**
 * The first copy of each distinct record, in arrival order, once `expected` distinct ones arrived: a
 * batch resent after a failed send may repeat records (same event id), which later stages drop.
 */
async function consumeAll(topics: string[], expected: number): Promise<(KafkaMessage & { topic: string })[]> {
  const kafka = new Kafka({ clientId: 'gw-test-reader', brokers, logLevel: logLevel.NOTHING });
  // A short fetch wait: disconnecting waits for the fetch in flight.
  const consumer: Consumer = kafka.consumer({ groupId: `gw-test-${randomUUID()}`, maxWaitTimeInMs: 100 });
  onTeardown(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  const messages: (KafkaMessage & { topic: string })[] = [];
  const seen = new Set<string>();
  void consumer.run({
    eachMessage: async ({ topic, message }) => {
      const id = `${topic}/${message.value?.toString('base64')}`;
      if (seen.has(id)) return;
      seen.add(id);
      messages.push({ ...message, topic });
    },
  });
  await waitFor(() => messages.length >= expected, { timeoutMs: 30_000, intervalMs: 50, what: () => `only ${messages.length} of ${expected} records arrived` });
  return messages;
}

interface LogEntry {
  level: LogLevel;
  message: string;
  fields?: Record<string, unknown>;
}

function recordingLog(): { entries: LogEntry[]; log: Log } {
  const entries: LogEntry[] = [];
  return { entries, log: (level, message, fields) => entries.push({ level, message, ...(fields === undefined ? {} : { fields }) }) };
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
    expect(() => resolveGatewayOptions({ gatewayId: 'gw-1', buffer: { path: '/tmp/x.db' }, forward: { minBackoffMs: 5000, maxBackoffMs: 100 } })).toThrow(
      /invalid gateway options: \/forward\/minBackoffMs must not exceed/,
    );
  });
});

describe('lifecycle', () => {
  it('starts once, closes once (the same promise for every caller), and does not start again', async () => {
    const gateway = testGateway();
    const events: string[] = [];
    gateway.on('closed', () => events.push('closed'));
    await gateway.start();
    await expect(gateway.start()).rejects.toMatchObject({ code: 'GW_ALREADY_STARTED' });
    const first = gateway.close();
    expect(gateway.close()).toBe(first);
    await first;
    expect(events).toEqual(['closed']);
    expect(gateway.status().state).toBe('closed');
    await expect(gateway.start()).rejects.toMatchObject({ code: 'GW_CLOSED' });
  });

  it('stops waiting at shutdownTimeoutMs, names the part it waited for, and still closes the rest', async () => {
    const path = join(tempDir(), 'buffer.db');
    // Kafka away and a drain far longer than the deadline: close() is still draining when time is up.
    const gateway = await startTestGateway({ buffer: { path }, drainOnCloseMs: 60_000, shutdownTimeoutMs: 300 });
    const client = await connectDevice(gateway, 'ws-slow');
    await client.publishAsync(mqttTopic('ws-slow', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-slow' })), { qos: 1 });
    await client.endAsync();
    await expect(gateway.close()).rejects.toMatchObject({ code: 'GW_SHUTDOWN_TIMEOUT', message: expect.stringContaining('waiting for forwarder') });
    expect(gateway.status().state).toBe('closed');
    // The buffer was closed all the same, and keeps the record for the next start.
    expect(existsSync(`${path}-wal`)).toBe(false);
    expect(bufferRows(path)).toHaveLength(1);
  });

  it('closes what a failed start had opened', async () => {
    const taken = createServer();
    onTeardown(() => new Promise((resolve) => taken.close(resolve)));
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const path = join(tempDir(), 'buffer.db');
    const gateway = testGateway({ buffer: { path }, mqtt: { host: '127.0.0.1', port: (taken.address() as AddressInfo).port } });
    await expect(gateway.start()).rejects.toThrow(/EADDRINUSE/);
    // The buffer had been opened, and is closed again: SQLite removes the WAL when its last connection closes.
    expect(existsSync(path)).toBe(true);
    expect(existsSync(`${path}-wal`)).toBe(false);
    expect(gateway.status().state).toBe('closed');
    await gateway.close();
  });
});

describe('gateway with Kafka away', () => {
  it('commits each publish to the buffer before the PUBACK, and dead-letters invalid ones with their reason', async () => {
    const path = join(tempDir(), 'buffer.db');
    const gateway = await startTestGateway({ buffer: { path } });
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
    const gateway = await startTestGateway({ buffer: { path } });
    const first = await gateway.reportHealth();
    const second = await gateway.reportHealth();
    expect(second.seq).toBe(first.seq + 1);
    expect(first).toMatchObject({ kind: 'gateway_health', deviceId: 'gw-test', bufferDepth: 0 });
    expect(second.bufferDepth).toBe(1);
    expect(bufferRows(path).map((r) => r.topic)).toEqual(['city.gateway_health.v1', 'city.gateway_health.v1']);
  });

  it('says the brokers are unreachable, in its log and its status', async () => {
    const { entries, log } = recordingLog();
    const gateway = await startTestGateway({}, log);
    const client = await connectDevice(gateway, 'ws-away');
    await client.publishAsync(mqttTopic('ws-away', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-away' })), { qos: 1 });
    await waitFor(() => gateway.status().kafka === 'unreachable', { timeoutMs: 30_000, what: 'kafka unreachable in the status' });
    expect(gateway.status().kafkaTopicsMissing).toBeUndefined();
    expect(gateway.status().kafkaError).toMatch(/ECONNREFUSED/);
    expect(entries).toContainEqual(expect.objectContaining({ level: 'warn', message: 'Kafka unavailable; buffering and retrying with backoff' }));
    expect(gateway.stats().bufferDepth).toBe(1);
  });
});

describe('gateway forwarding to Kafka', () => {
  let topics: KafkaTopicSet;
  beforeAll(async () => {
    topics = kafkaTopicSet(`gw${randomUUID().slice(0, 8)}`);
    await ensureTopics(brokers, topicSpecs(topics));
  });

  it('forwards events in order per device, with key and headers, and empties the buffer', async () => {
    const gateway = await startTestGateway({ kafka: { brokers }, topics, drainOnCloseMs: 2_000 });
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
    const headers = events[0]!.headers;
    expect(headerText(headers, HEADERS.gatewayId)).toBe('gw-test');
    expect(Number(headerText(headers, HEADERS.receivedAt))).toBeGreaterThan(Date.now() - 60_000);
    expect(headerText(headers, HEADERS.schemaVersion)).toBe('1');
    expect(headerText(headers, HEADERS.eventId)).toMatch(/^bus-\d-\d+$/);
    const letter = JSON.parse(messages.find((m) => m.topic === topics.deadletter)!.value!.toString()) as DeadLetter;
    expect(letter).toMatchObject({ stage: 'gateway', problems: [{ rule: 'json' }], payload: '{"not json' });

    await expect.poll(() => gateway.stats().bufferDepth).toBe(0);
    expect(gateway.stats().forwarded).toBe(devices.length * perDevice + 1);
  });

  it('keeps what it accepted while Kafka is away and forwards it after a restart', async () => {
    const path = join(tempDir(), 'buffer.db');
    const offline = await startTestGateway({ buffer: { path }, topics });
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

    const online = await startTestGateway({ buffer: { path }, kafka: { brokers }, topics, drainOnCloseMs: 2_000 });
    const messages = await consumeAll([topics.events.air_quality], 25);
    expect(messages.map((m) => headerText(m.headers, HEADERS.eventId))).toEqual(ids);
    await expect.poll(() => online.stats().bufferDepth).toBe(0);
  });
});

describe('a topic that does not exist yet', () => {
  it('is told apart from an unreachable broker in the log, /healthz, /metrics and gateway status, and the backlog flows once it exists', async () => {
    // A broker that is up, with none of this gateway's topics: as after `kafka start` without topics.
    const topics = kafkaTopicSet(`gwmiss${randomUUID().slice(0, 8)}`);
    const { entries, log } = recordingLog();
    const gateway = await startTestGateway(
      {
        kafka: { brokers, requestTimeoutMs: 5_000 },
        topics,
        http: { enabled: true, host: '127.0.0.1', port: 0 },
        forward: { minBackoffMs: 50, maxBackoffMs: 500 },
      },
      log,
    );
    const client = await connectDevice(gateway, 'bus-miss');
    const ids: string[] = [];
    for (let seq = 0; seq < 3; seq++) {
      const event = exampleEvent('vehicle', { deviceId: 'bus-miss', seq, eventId: `bus-miss-${randomUUID()}` });
      ids.push(event.eventId);
      await client.publishAsync(mqttTopic('bus-miss', 'vehicle'), JSON.stringify(event), { qos: 1 });
    }
    const base = `http://127.0.0.1:${gateway.httpPort()}`;
    const health = await waitFor(
      async () => {
        const body = (await (await fetch(`${base}/healthz`)).json()) as HealthzBody;
        return body.kafka === 'topic-missing' ? body : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'kafka topic-missing in /healthz' },
    );
    expect(health).toMatchObject({
      status: 'ok',
      kafka: 'topic-missing',
      kafkaTopicsMissing: [topics.events.vehicle],
      kafkaError: expect.stringMatching(/does not host this topic-partition/),
    });
    expect(entries).toContainEqual(expect.objectContaining({ level: 'warn', message: `Kafka topic missing: ${topics.events.vehicle}; buffering` }));
    expect(entries.map((e) => e.message)).not.toContain('Kafka unavailable; buffering and retrying with backoff');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^city_gateway_kafka_topics_missing 1$/m);
    expect(metrics).toMatch(/^city_gateway_kafka_reachable 1$/m);
    const status = await runCli(CLI, ['status', '--url', base]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`Kafka TOPIC MISSING: ${topics.events.vehicle}`);
    // Nothing is lost meanwhile.
    expect(gateway.stats()).toMatchObject({ accepted: 3, bufferDepth: 3, forwarded: 0 });

    await ensureTopics(brokers, topicSpecs(topics));
    const messages = await consumeAll([topics.events.vehicle], 3);
    expect(messages.map((m) => headerText(m.headers, HEADERS.eventId))).toEqual(ids);
    await expect.poll(() => gateway.stats().bufferDepth, { timeout: 30_000 }).toBe(0);
    expect(gateway.status()).toMatchObject({ kafka: 'reachable' });
    expect(gateway.status().kafkaTopicsMissing).toBeUndefined();
    expect(entries).toContainEqual(expect.objectContaining({ level: 'info', message: 'Kafka reachable again; forwarding the backlog' }));
  });
});

describe('clock synchronisation on receive stamps', () => {
  it('marks each record with the clock state at receipt (header, buffer), and shows it in /healthz, /metrics, status and gateway_health', async () => {
    const topics = kafkaTopicSet(`gwclk${randomUUID().slice(0, 8)}`);
    await ensureTopics(brokers, topicSpecs(topics));
    // A stand-in for /run/systemd/timesync: timesyncd runs (its directory exists) but has not synchronised.
    const timesync = join(tempDir(), 'timesync');
    mkdirSync(timesync);
    const flag = join(timesync, 'synchronized');
    const { entries, log } = recordingLog();
    const gateway = await startTestGateway(
      { kafka: { brokers }, topics, clock: { syncFlag: flag, checkIntervalMs: 100 }, http: { enabled: true, host: '127.0.0.1', port: 0 } },
      log,
    );
    expect(entries).toContainEqual(expect.objectContaining({ level: 'warn', message: 'clock unsynchronized: receive stamps say so until it is synchronised' }));
    const base = `http://127.0.0.1:${gateway.httpPort()}`;
    expect(((await (await fetch(`${base}/healthz`)).json()) as HealthzBody).clock).toMatchObject({ state: 'unsynchronized', source: 'no-flag' });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^city_gateway_clock_synchronized 0$/m);
    expect((await gateway.reportHealth()).clockSynced).toBe(false);
    const client = await connectDevice(gateway, 'bus-clk');
    const send = (eventId: string) => client.publishAsync(mqttTopic('bus-clk', 'vehicle'), JSON.stringify(exampleEvent('vehicle', { deviceId: 'bus-clk', eventId })), { qos: 1 });
    await send('before-sync');

    writeFileSync(flag, '');
    await expect.poll(() => gateway.status().clock?.state, { timeout: 10_000, interval: 20 }).toBe('synchronized');
    await send('after-sync');
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^city_gateway_clock_synchronized 1$/m);
    const status = await runCli(CLI, ['status', '--url', base]);
    expect(status.stdout).toMatch(/clock {7}synchronized/);

    const messages = await consumeAll([topics.events.vehicle], 2);
    expect(messages.map((m) => [headerText(m.headers, HEADERS.eventId), headerText(m.headers, HEADERS.clockSynced)])).toEqual([
      ['before-sync', '0'],
      ['after-sync', '1'],
    ]);
    const health = await waitFor(
      async () => (await consumeAll([topics.events.gateway_health], 1)).map((m) => JSON.parse(m.value!.toString()) as { clockSynced?: boolean }),
      { timeoutMs: 30_000, intervalMs: 100, what: 'the health event' },
    );
    expect(health[0]!.clockSynced).toBe(false);
  });

  it('leaves the header out when no time service can be asked', async () => {
    const topics = kafkaTopicSet(`gwclk${randomUUID().slice(0, 8)}`);
    await ensureTopics(brokers, topicSpecs(topics));
    const gateway = await startTestGateway({ kafka: { brokers }, topics, clock: { syncFlag: join(tempDir(), 'no-such-dir', 'synchronized') } });
    expect(gateway.status().clock).toMatchObject({ state: 'unknown' });
    const client = await connectDevice(gateway, 'bus-clk2');
    await client.publishAsync(mqttTopic('bus-clk2', 'vehicle'), JSON.stringify(exampleEvent('vehicle', { deviceId: 'bus-clk2', eventId: 'unknown-clock' })), { qos: 1 });
    const [message] = await consumeAll([topics.events.vehicle], 1);
    expect(headerText(message!.headers, HEADERS.eventId)).toBe('unknown-clock');
    expect(headerText(message!.headers, HEADERS.clockSynced)).toBeUndefined();
  });
});

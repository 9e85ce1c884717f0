// Crash anywhere, lose nothing: a gateway child process is killed with SIGKILL in the middle of a
// publish stream, again and again, on the same buffer file. Every event id a device got a PUBACK
// for must reach Kafka; duplicates are allowed only as the same event id.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import { expect, inject, it } from 'vitest';
import { HEADERS, exampleEvent, headerText, kafkaTopicSet, mqttTopic, topicSpecs, type EventKind } from '@city/protocol';
import { ensureTopics } from '../../test/support/kafka.ts';
import { onTeardown, tempDir } from '../../test/support/teardown.ts';

const brokers = inject('kafkaBrokers');

const CHILD = join(import.meta.dirname, '../../test/support/gateway-child.ts');

interface Child {
  proc: ChildProcess;
  port: number;
  exited: Promise<void>;
}

async function startChild(optionsFile: string): Promise<Child> {
  const proc = spawn(process.execPath, [CHILD, optionsFile], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  onTeardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`gateway child exited (${code}) before listening`)));
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return { proc, port, exited };
}

interface Ledger {
  attempted: Set<string>;
  acked: Set<string>;
}

/** Publishes QoS 1 from one device with several messages in flight until the connection dies. */
async function publishUntilGone(port: number, deviceId: string, kind: EventKind, ledger: Ledger, round: number): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `${deviceId}-${round}-${randomUUID().slice(0, 6)}`, reconnectPeriod: 0 });
  let seq = 0;
  const worker = async () => {
    while (client.connected) {
      const eventId = `${deviceId}-r${round}-${seq}`;
      const event = exampleEvent(kind, { deviceId, eventId, seq: seq++ });
      ledger.attempted.add(eventId);
      try {
        await client.publishAsync(mqttTopic(deviceId, kind), JSON.stringify(event), { qos: 1 });
        ledger.acked.add(eventId);
      } catch {
        return; // not acknowledged: the device would resend it; the ledger does not count it
      }
    }
  };
  for (let i = 0; i < 10; i++) void worker();
  return client;
}

it('loses no acknowledged event when the gateway is killed -9 mid-stream, round after round', { timeout: 240_000 }, async () => {
  const dir = tempDir('gw-crash-');
  const topics = kafkaTopicSet(`crash${randomUUID().slice(0, 8)}`);
  await ensureTopics(brokers, topicSpecs(topics));
  const optionsFile = join(dir, 'options.json');
  writeFileSync(
    optionsFile,
    JSON.stringify({
      gatewayId: 'gw-crash',
      mqtt: { host: '127.0.0.1', port: 0 },
      buffer: { path: join(dir, 'buffer.db'), durability: 'power-loss' },
      kafka: { brokers },
      topics,
      healthIntervalMs: 0,
      drainOnCloseMs: 0,
    }),
  );

  const ledger: Ledger = { attempted: new Set(), acked: new Set() };
  const devices: [string, EventKind][] = [
    ['bus-crash-1', 'vehicle'],
    ['bus-crash-2', 'vehicle'],
    ['amb-crash-1', 'emergency'],
  ];
  // Kill after this many new acknowledgements in each round: always while publishers are mid-stream.
  const killAfter = [50, 300, 120, 600, 200];
  for (const [round, target] of killAfter.entries()) {
    const child = await startChild(optionsFile);
    const before = ledger.acked.size;
    const clients = await Promise.all(devices.map(([id, kind]) => publishUntilGone(child.port, id, kind, ledger, round)));
    await expect.poll(() => ledger.acked.size - before, { timeout: 60_000, interval: 5 }).toBeGreaterThanOrEqual(target);
    child.proc.kill('SIGKILL');
    await child.exited;
    // Flushes the publishes still waiting for a PUBACK as failures.
    await Promise.all(clients.map((c) => c.endAsync(true)));
  }
  expect(ledger.acked.size).toBeGreaterThanOrEqual(killAfter.reduce((a, b) => a + b, 0));

  // One last, undisturbed start forwards whatever the killed ones left in the buffer.
  const last = await startChild(optionsFile);
  const kafka = new Kafka({ clientId: 'gw-crash-reader', brokers, logLevel: logLevel.NOTHING });
  // A short fetch wait: disconnecting waits for the fetch in flight.
  const consumer: Consumer = kafka.consumer({ groupId: `gw-crash-${randomUUID()}`, maxWaitTimeInMs: 100 });
  onTeardown(() => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.events.vehicle, topics.events.emergency], fromBeginning: true });
  const seen = new Map<string, number>();
  const mismatched: string[] = [];
  const missing = () => [...ledger.acked].filter((id) => !seen.has(id));
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headerId = headerText(message.headers, HEADERS.eventId) ?? '';
      const bodyId = (JSON.parse(message.value!.toString()) as { eventId: string }).eventId;
      if (headerId !== bodyId || !ledger.attempted.has(bodyId)) mismatched.push(`${headerId}/${bodyId}`);
      seen.set(bodyId, (seen.get(bodyId) ?? 0) + 1);
    },
  });
  await expect.poll(() => missing().length, { timeout: 120_000, interval: 250 }).toBe(0);
  last.proc.kill('SIGTERM');
  await last.exited;

  const records = [...seen.values()].reduce((a, b) => a + b, 0);
  const duplicates = records - seen.size;
  console.log(
    `crash test: ${killAfter.length} kill -9 rounds, ${ledger.attempted.size} published, ${ledger.acked.size} acknowledged, ` +
      `${seen.size} distinct in Kafka (${seen.size - ledger.acked.size} unacknowledged but stored), ${duplicates} duplicate records`,
  );
  expect(missing()).toEqual([]);
  // Duplicates only as the same event id, with header and body agreeing, and only of ids we published.
  expect(mismatched).toEqual([]);
});

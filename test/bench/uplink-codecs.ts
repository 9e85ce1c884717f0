// Benchmark (not a test): bytes on the wire per event for each uplink codec. Simulated devices publish
// at a steady rate through the gateway, once per codec with the same seed, so every run carries the
// same events, in two ways: live (the default batching, linger 20 ms: batch sizes follow the timing of
// the run) and as a backlog after an outage (published with Kafka away, then sent by a restarted
// gateway in full batches of up to 2,000: the same batches for every codec). The record batches a producer
// sends are what the broker appends to its log (compressed batches are stored as received), so the
// size of each codec's log segments is its produce payload; the reference is the events' own JSON
// bytes, read back from the uncompressed run. Its own broker, so the log directories are ours to read.
//   node test/bench/uplink-codecs.ts [--devices 200] [--rate 5] [--seconds 10]
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { kafkaTopicSet, silentLog, type KafkaTopicSet } from '@city/protocol';
import { createGateway } from '@city/gateway';
import { createFleet } from '@city/device-sim';
import { ensureStandardTopics, startKafka } from '@city/deploy/kafka';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '200' }, rate: { type: 'string', default: '5' }, seconds: { type: 'string', default: '10' } } });
const devices = Number(values.devices);
const rate = Number(values.rate);
const perDevice = Math.round(rate * Number(values.seconds));
const CODECS = ['none', 'gzip', 'lz4', 'zstd'] as const;
const dir = mkdtempSync(join(tmpdir(), 'uplink-codecs-'));
const kafka = await startKafka();
const run = `uc${Date.now()}`;

function logBytes(topics: KafkaTopicSet): number {
  const logDirs = join(kafka.dataDir as string, 'kraft-logs');
  const names = new Set([...Object.values(topics.events), topics.deadletter]);
  let bytes = 0;
  for (const entry of readdirSync(logDirs)) {
    if (!names.has(entry.replace(/-\d+$/, ''))) continue;
    for (const file of readdirSync(join(logDirs, entry))) if (file.endsWith('.log')) bytes += statSync(join(logDirs, entry, file)).size;
  }
  return bytes;
}

async function payloadBytes(topics: KafkaTopicSet, expected: number): Promise<number> {
  const consumer = new kafkajs.Kafka({ clientId: 'uplink-bench', brokers: kafka.brokers, logLevel: kafkajs.logLevel.NOTHING }).consumer({ groupId: `${run}-read`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: Object.values(topics.events), fromBeginning: true });
  let bytes = 0;
  let seen = 0;
  await consumer.run({
    eachMessage: async ({ message }) => {
      bytes += message.value?.length ?? 0;
      seen++;
    },
  });
  while (seen < expected) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  return bytes;
}

const rows: { codec: string; mode: string; events: number; batches: number; bytes: number }[] = [];
let payload = 0;

async function publishThrough(codec: string, mode: 'live' | 'backlog', topics: KafkaTopicSet): Promise<{ events: number; batches: number }> {
  const buffer = { path: join(dir, `${codec}-${mode}.db`) };
  const gatewayOn = (brokers: string[]) =>
    createGateway(
      { gatewayId: 'gw-bench', mqtt: { host: '127.0.0.1', port: 0 }, buffer, kafka: { brokers, compression: codec as (typeof CODECS)[number], requestTimeoutMs: 1000 }, topics, healthIntervalMs: 0, auth: { mode: 'none' }, drainOnCloseMs: 0 },
      silentLog,
    );
  // Kafka away while the backlog is made: nothing listens on port 1.
  let gateway = gatewayOn(mode === 'live' ? kafka.brokers : ['127.0.0.1:1']);
  let batches = 0;
  gateway.on('forwarded', () => batches++);
  await gateway.start();
  const fleet = createFleet({
    url: `mqtt://127.0.0.1:${gateway.port()}`,
    seed: 11,
    deviceIdPrefix: 'bench',
    devices: { vehicle: devices / 4, gps: devices / 4, weather: devices / 4, air_quality: devices / 4 },
    eventsPerDevice: perDevice,
    ratePerDevice: rate,
  });
  await fleet.start();
  const { acknowledged } = await fleet.done();
  await fleet.stop();
  if (mode === 'backlog') {
    await gateway.close();
    gateway = gatewayOn(kafka.brokers);
    gateway.on('forwarded', () => batches++);
    await gateway.start();
  }
  while (gateway.stats().bufferDepth > 0) await new Promise((r) => setTimeout(r, 100));
  await gateway.close();
  return { events: acknowledged, batches };
}

try {
  for (const mode of ['live', 'backlog'] as const) {
    for (const codec of CODECS) {
      const suffix = `${run}${mode}${codec}`;
      const topics = kafkaTopicSet(suffix);
      await ensureStandardTopics(kafka.brokers, { suffix });
      const { events, batches } = await publishThrough(codec, mode, topics);
      if (payload === 0) payload = await payloadBytes(topics, events);
      rows.push({ codec, mode, events, batches, bytes: logBytes(topics) });
    }
  }
} finally {
  await kafka.stop();
  rmSync(dir, { recursive: true, force: true });
}

const perEventPayload = payload / (rows[0]?.events ?? 1);
process.stdout.write(`uplink bytes per event, ${devices} devices × ${rate} msg/s, ${perDevice} events each; payload ${perEventPayload.toFixed(1)} B/event (JSON)\n`);
process.stdout.write('mode     codec  events  records/send  batch bytes/event  ÷ payload  ÷ none\n');
for (const r of rows) {
  const reference = rows.find((x) => x.mode === r.mode && x.codec === 'none')!;
  const none = reference.bytes / reference.events;
  const perEvent = r.bytes / r.events;
  process.stdout.write(
    `${r.mode.padEnd(7)}  ${r.codec.padEnd(5)}  ${String(r.events).padStart(6)}  ${(r.events / Math.max(1, r.batches)).toFixed(1).padStart(13)}  ${perEvent.toFixed(1).padStart(17)}  ${(perEvent / perEventPayload).toFixed(2).padStart(9)}  ${(perEvent / none).toFixed(2).padStart(6)}\n`,
  );
}

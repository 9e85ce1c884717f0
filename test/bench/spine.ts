// Benchmark (not a test): events per second through the whole spine — simulated devices → MQTT →
// gateway (SQLite, power-loss durability) → Kafka → sink → Parquet — next to Kafka's own producer
// perf tool writing the same number of records of the same size to the same broker, in the same run.
//   node test/bench/spine.ts [--events 100000] [--devices 200]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { kafkaTopicSet, silentLog, sleep } from '@city/protocol';
import { createGateway } from '@city/gateway';
import { createSink } from '@city/cloud';
import { createDevice, createFleet, SIM_KINDS } from '@city/device-sim';
import { ensureStandardTopics, fetchKafka, useKafka, KAFKA_VERSION } from '@city/deploy/kafka';

const { values } = parseArgs({ options: { events: { type: 'string' }, devices: { type: 'string' } } });
const devicesTotal = Number(values.devices ?? 210);
const perDevice = Math.ceil(Number(values.events ?? 100_000) / devicesTotal);
const perKind = Math.ceil(devicesTotal / SIM_KINDS.length);
const total = perKind * SIM_KINDS.length * perDevice;

const dir = mkdtempSync(join(tmpdir(), 'spine-bench-'));
const kafka = await useKafka();
const suffix = `bench${Date.now()}`;
const topics = kafkaTopicSet(suffix);
await ensureStandardTopics(kafka.brokers, { suffix });

const gateway = createGateway(
  { gatewayId: 'gw-bench', mqtt: { host: '127.0.0.1', port: 0 }, buffer: { path: join(dir, 'buffer.db') }, kafka: { brokers: kafka.brokers }, topics, healthIntervalMs: 0 },
  silentLog,
);
await gateway.start();
const sink = createSink({ brokers: kafka.brokers, lakeDir: join(dir, 'lake'), topics, groupId: 'bench', maxSpanMs: 1000, maxAgeMs: 1000, log: silentLog });
await sink.start();
const fleet = createFleet({
  url: `mqtt://127.0.0.1:${gateway.port()}`,
  seed: 7,
  devices: Object.fromEntries(SIM_KINDS.map((k) => [k, perKind])),
  eventsPerDevice: perDevice,
  ratePerDevice: 0,
  startTime: Date.UTC(2026, 10, 29, 6),
  deviceIdPrefix: 'bench',
});
await fleet.start();

const t0 = performance.now();
const marks: Record<string, number> = {};
// Curated rows only: the raw zone holds a second copy of each event.
const lakeRows = () => Object.entries(sink.stats().rows).reduce((n, [t, rows]) => (t.startsWith('raw_') ? n : n + (rows ?? 0)), 0);
while (lakeRows() < total) {
  const g = gateway.stats();
  if (marks.acknowledged === undefined && fleet.stats().done) marks.acknowledged = performance.now() - t0;
  if (marks.forwarded === undefined && g.forwarded >= total) marks.forwarded = performance.now() - t0;
  await sleep(20);
}
marks.lake = performance.now() - t0;
marks.acknowledged ??= marks.lake;
marks.forwarded ??= marks.lake;
const rss = process.memoryUsage().rss;
await fleet.stop();
await gateway.close();
await sink.close();

// Reference: Kafka's own producer perf tool, acks=all and idempotent like the gateway, same records.
const libs = await fetchKafka();
// Same record size as the fleet's events: the mean JSON size of a sample of each kind.
const sample = SIM_KINDS.flatMap((kind) => Array.from({ length: 50 }, (_, i) => createDevice(kind, i, { seed: 7 }).next()));
const bytes = Math.round(sample.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0) / sample.length);
const { stdout } = await promisify(execFile)(
  'java',
  [
    '-Xmx512m', '-cp', `${libs}/*`, 'org.apache.kafka.tools.ProducerPerformance',
    '--topic', topics.events.vehicle, '--num-records', String(total), '--record-size', String(bytes), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${kafka.brokers.join(',')}`, 'acks=all', 'enable.idempotence=true',
  ],
  { maxBuffer: 16 * 1024 * 1024 },
);
const summary = stdout.trim().split('\n').pop() ?? '';
const perfRate = Number(/([\d.]+) records\/sec/.exec(summary)?.[1] ?? NaN);
await kafka.stop();
rmSync(dir, { recursive: true, force: true });

const rate = (ms: number) => Math.round(total / (ms / 1000));
console.log(`Kafka ${KAFKA_VERSION}; ${total} events from ${perKind * SIM_KINDS.length} devices (QoS 1), one Node process, 2 cores`);
console.log(`  all PUBACKs (durable in SQLite)   ${(marks.acknowledged / 1000).toFixed(2)} s  ${rate(marks.acknowledged)} events/s`);
console.log(`  all acknowledged by Kafka         ${(marks.forwarded / 1000).toFixed(2)} s  ${rate(marks.forwarded)} events/s`);
console.log(`  all in Parquet (spine end to end) ${(marks.lake / 1000).toFixed(2)} s  ${rate(marks.lake)} events/s`);
console.log(`  process RSS at the end            ${Math.round(rss / 1048576)} MiB`);
console.log(`reference: kafka ProducerPerformance, ${bytes}-byte records, acks=all, idempotent: ${summary}`);
console.log(`ratio spine / Kafka producer alone: ${(rate(marks.lake) / perfRate).toFixed(3)}`);

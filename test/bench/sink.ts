// Benchmark (not a test): sink throughput from Kafka to Parquet, per core of CPU time, to a local folder
// and to an S3-protocol server (s3rver in a child process, so its CPU is not counted as the sink's), next
// to the same rows decoded and written straight through DuckDB in the same run (the reference).
//   node test/bench/sink.ts [--events 200000] [--max-rows 50000] [--skip-s3] [--without-raw] [--profile FILE.cpuprofile] [--heap-profile FILE.heapprofile]
// --profile writes a V8 CPU profile of the local sink phase only (open it in Chrome DevTools); --heap-profile
// a sampling profile of every allocation in it, collected or not (where the garbage comes from).
// --without-raw also runs the local sink with the raw zone off, to price the raw zone in the same run.
// kafkajs alone (the client's own cost) is measured in this process, where it decodes records with the
// sink's decoder, and in processes of its own: as kafkajs ships, and with that decoder.
// Events are valid sample events of every kind, all in one event hour (live traffic), pre-produced with
// an idempotent, batched kafkajs producer before the sink starts, so the sink phase measures the sink only.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CompressionTypes, Kafka, logLevel, Partitioners, type Message } from 'kafkajs';
import { EVENT_KINDS, kafkaTopicSet, recordHeaders, silentLog, sleep, topicSpecs, type CellValue } from '@city/protocol';
import {
  createParquetWriter,
  createRecordDecoder,
  createS3Store,
  createSink,
  queryLake,
  tableSchema,
  type KafkaRecord,
  type LakeTable,
  type ObjectStore,
} from '@city/cloud';
import { ensureTopics, useKafka, KAFKA_VERSION } from '@city/deploy/kafka';
import { leanRecordDecoder } from '@city/cloud/kafkajs-records';
import { sampleEvent } from '../support/lake.ts';
import { consumeAlone } from './kafkajs-alone.ts';
import { readStat, USER_HZ } from '../support/proc.ts';

const { values } = parseArgs({
  options: { events: { type: 'string' }, 'max-rows': { type: 'string' }, 'skip-s3': { type: 'boolean' }, 'without-raw': { type: 'boolean' }, profile: { type: 'string' }, 'heap-profile': { type: 'string' } },
});
const total = Number(values.events ?? 200_000);
const maxRows = Number(values['max-rows'] ?? 50_000);
const HOUR_START = Date.UTC(2026, 10, 29, 6);

const dir = mkdtempSync(join(tmpdir(), 'sink-bench-'));
const kafka = await useKafka();
const runId = `sinkbench${Date.now()}`;
const topics = kafkaTopicSet(runId);
await ensureTopics(kafka.brokers, topicSpecs(topics));

// ---- input: valid events of every kind, as the gateway forwards them
/** Event i as the gateway forwards it; the same for the producer now and for the reference after the sink ran. */
function input(i: number): { topic: string; key: string; value: string; headers: Record<string, string> } {
  const kind = EVENT_KINDS[i % EVENT_KINDS.length] as (typeof EVENT_KINDS)[number];
  const event = sampleEvent(kind, i, { idPrefix: runId, dateObserved: HOUR_START + (i % 3600) * 1000 });
  const headers = recordHeaders({ gatewayId: 'gw-bench', receivedAt: HOUR_START + 3_600_000, eventId: event.eventId });
  return { topic: topics.events[kind], key: event.deviceId, value: JSON.stringify(event), headers };
}
const byTopic = new Map<string, Message[]>();
let payloadBytes = 0;
for (let i = 0; i < total; i++) {
  const { topic, key, value, headers } = input(i);
  payloadBytes += value.length;
  let list = byTopic.get(topic);
  if (list === undefined) byTopic.set(topic, (list = []));
  list.push({ key, value, headers });
}

const client = new Kafka({ clientId: 'sink-bench', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
await producer.connect();
const p0 = performance.now();
const BATCH = 2_000;
for (let start = 0; ; start += BATCH) {
  const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages: messages.slice(start, start + BATCH) })).filter((t) => t.messages.length > 0);
  if (topicMessages.length === 0) break;
  await producer.sendBatch({ topicMessages, acks: -1, compression: CompressionTypes.None });
}
const produceMs = performance.now() - p0;
await producer.disconnect();
// The consumers run with a heap like a sink process's: the bench's own copies of the input, kept while
// they run, made every collection of theirs mark them too (the reference input is built afterwards).
const topicNames = [...byTopic.keys()];
byTopic.clear();
// Each measured phase starts from a collected heap, so none pays for the garbage of the one before.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

// ---- the sink, Kafka → Parquet
/** CPU ms of this process's threads by name (the main thread apart), from /proc: which thread the time went to. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: { name: string; ticks: number };
    try {
      stat = readStat(`/proc/self/task/${tid}/stat`);
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = Number(tid) === process.pid ? 'main (JavaScript)' : stat.name.replace(/\d+$/, '');
    out.set(name, (out.get(name) ?? 0) + (stat.ticks * 1000) / USER_HZ);
  }
  return out;
}

function threadSplit(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, ms] of after) out.set(name, ms - (before.get(name) ?? 0));
  return out;
}

interface Run {
  /** Rows also written to the raw zone, if the sink keeps one. */
  raw: number;
  /** CPU ms by thread name over the run. */
  threads?: Map<string, number>;
  wallMs: number;
  cpuMs: number;
  files: number;
  flushes: number;
}

async function runSink(name: string, store: ObjectStore | undefined, rawZone = true): Promise<Run> {
  const sink = createSink({
    rawZone,
    brokers: kafka.brokers,
    lakeDir: join(dir, name),
    topics,
    groupId: `${runId}-${name}`,
    maxRows,
    maxBufferedRows: Math.max(200_000, maxRows),
    maxAgeMs: 1_000,
    log: silentLog,
    store,
  });
  collect();
  const threads0 = threadCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sink.start();
  // Curated rows only: the sink may also keep every record in a raw zone (raw_<kind> tables).
  const written = () => EVENT_KINDS.reduce((a, k) => a + (sink.stats().rows[k] ?? 0), 0);
  const rawRows = () => Object.entries(sink.stats().rows).reduce((a, [t, n]) => a + (t.startsWith('raw_') ? (n ?? 0) : 0), 0);
  while (written() < total) await sleep(20);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const threads = threadSplit(threads0, threadCpu());
  const stats = sink.stats();
  await sink.close();
  if (written() !== total || stats.rejected !== 0 || rawRows() !== (rawZone ? total : 0)) throw new Error(`${name}: ${written()} rows written (${rawRows()} raw), ${stats.rejected} rejected, expected ${total}`);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, files: stats.files, flushes: stats.flushes, raw: rawRows(), threads };
}

/** kafkajs alone: the same records consumed by a group that only counts them (the client's own cost). */
async function consumeOnly(): Promise<Run> {
  collect();
  const run = await consumeAlone(client, topicNames, total, `${runId}-consume-only`);
  return { ...run, files: 0, flushes: 0, raw: 0 };
}
const kafkajsOnly = await consumeOnly();

/** kafkajs alone in a process of its own (test/bench/kafkajs-alone.ts): as it ships, or with the sink's record decoder. */
async function consumeElsewhere(lean: boolean): Promise<{ cpuMs: number; lean: boolean }> {
  const args = [join(import.meta.dirname, 'kafkajs-alone.ts'), '--brokers', kafka.brokers.join(','), '--topics', topicNames.join(','), '--total', String(total), '--group', `${runId}-alone-${lean ? 'lean' : 'shipped'}`];
  const child = spawn(process.execPath, lean ? [...args, '--lean'] : args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`kafkajs-alone.ts exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { cpuMs: number; lean: boolean };
}

const session = values.profile === undefined && values['heap-profile'] === undefined ? undefined : new Session();
if (session !== undefined) {
  session.connect();
  if (values.profile !== undefined) {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  if (values['heap-profile'] !== undefined) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
}
const local = await runSink('local', undefined);
if (session !== undefined) {
  if (values.profile !== undefined) writeFileSync(values.profile, JSON.stringify((await session.post('Profiler.stop')).profile));
  if (values['heap-profile'] !== undefined) writeFileSync(values['heap-profile'], JSON.stringify((await session.post('HeapProfiler.stopSampling')).profile));
  session.disconnect();
}
const withoutRaw = values['without-raw'] === true ? await runSink('local-without-raw', undefined, false) : undefined;
const check = await queryLake(
  join(dir, 'local'),
  `SELECT ${EVENT_KINDS.map((k) => `(SELECT count(*) FROM ${k})`).join(' + ')} AS n, ${EVENT_KINDS.map((k) => `(SELECT count(DISTINCT event_id) FROM ${k})`).join(' + ')} AS d`,
);
const lakeRows = Number(check.rows[0]?.n);
const lakeIds = Number(check.rows[0]?.d);
if (lakeRows !== total || lakeIds !== total) throw new Error(`local lake holds ${lakeRows} rows, ${lakeIds} distinct ids; expected ${total}`);

// After the sinks, so their phases follow the same work as before these were added.
const kafkajsShipped = await consumeElsewhere(false);
const kafkajsLean = await consumeElsewhere(true);

let s3: Run | undefined;
if (values['skip-s3'] !== true) {
  // s3rver in its own process: the sink's CPU figure must not include the server's.
  const server = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { startS3 } = await import(${JSON.stringify(new URL('../support/s3.ts', import.meta.url).href)});
       const s3 = await startS3();
       console.log(JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, credentials: s3.credentials }));
       process.stdin.on('close', () => s3.stop().then(() => process.exit(0)));
       process.stdin.resume();`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    const first = await createInterface({ input: server.stdout })[Symbol.asyncIterator]().next();
    const conn = JSON.parse(String(first.value)) as { endpoint: string; bucket: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
    s3 = await runSink('s3', createS3Store({ bucket: conn.bucket, endpoint: conn.endpoint, region: conn.region, credentials: conn.credentials, prefix: 'lake' }));
  } finally {
    server.stdin?.end();
    await new Promise((r) => server.once('exit', r));
  }
}

// ---- reference, same process, same rows: decode, then DuckDB writes the Parquet files directly
const records: { topic: string; record: KafkaRecord }[] = [];
for (let i = 0; i < total; i++) {
  const { topic, key, value, headers } = input(i);
  records.push({
    topic,
    record: {
      key: Buffer.from(key),
      value: Buffer.from(value),
      timestamp: String(Date.now()),
      offset: String(i),
      headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
    },
  });
}
const decode = createRecordDecoder(topics);
let c0 = process.cpuUsage();
const groups = new Map<string, { table: LakeTable; rows: CellValue[][] }>();
for (const { topic, record } of records) {
  const row = decode(topic, record);
  const key = `${topic}/${row.table}/${row.partition.event_date}/${row.partition.event_hour}`;
  let g = groups.get(key);
  if (g === undefined) groups.set(key, (g = { table: row.table, rows: [] }));
  g.rows.push(row.row);
}
const decodeCpuMs = cpuMs(process.cpuUsage(c0));
const writer = await createParquetWriter();
c0 = process.cpuUsage();
const w0 = performance.now();
let refFiles = 0;
for (const g of groups.values()) {
  for (let s = 0; s < g.rows.length; s += maxRows) {
    await writer.write(tableSchema(g.table), g.rows.slice(s, s + maxRows), join(dir, `ref-${refFiles++}.parquet`));
  }
}
const writeCpuMs = cpuMs(process.cpuUsage(c0));
const writeWallMs = performance.now() - w0;
writer.close();

await kafka.stop();
rmSync(dir, { recursive: true, force: true });

function cpuMs(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000;
}
const perCore = (ms: number) => Math.round(total / (ms / 1000));
const line = (label: string, r: Run) =>
  `  ${label.padEnd(34)} ${perCore(r.cpuMs).toString().padStart(8)} events/s per core   (${perCore(r.wallMs)} events/s wall, ${(r.cpuMs / r.wallMs).toFixed(2)} cores busy, ${r.files} files in ${r.flushes} flushes, ${r.raw} raw-zone rows too)`;
console.log(`Kafka ${KAFKA_VERSION}; ${total} valid events of ${EVENT_KINDS.length} kinds (${Math.round(payloadBytes / total)} B JSON each), ${topicSpecs(topics).length} topics, one event hour, maxRows ${maxRows}; 2 cores shared`);
console.log(`  pre-produced (idempotent, batched)  ${perCore(produceMs)} events/s wall`);
console.log(line('sink Kafka → Parquet, local folder', local));
if (withoutRaw !== undefined) console.log(line('sink local, raw zone off', withoutRaw));
if (s3 !== undefined) console.log(line('sink Kafka → Parquet, S3 (s3rver)', s3));
console.log(`reference, same rows, same process:`);
console.log(`  kafkajs consume only (no sink)      ${perCore(kafkajsOnly.cpuMs).toString().padStart(8)} events/s per core  (${(kafkajsOnly.cpuMs * 1000 / total).toFixed(2)} µs/event; the sink's record decoder: ${leanRecordDecoder() ? 'yes' : 'no'})`);
console.log(`    the same in a process of its own: ${(kafkajsShipped.cpuMs * 1000 / total).toFixed(2)} µs/event as kafkajs ships, ${(kafkajsLean.cpuMs * 1000 / total).toFixed(2)} with the sink's record decoder (${kafkajsLean.lean ? 'loaded' : 'NOT loaded'})`);
console.log(`  sink local, per event               ${(local.cpuMs * 1000 / total).toFixed(2).padStart(8)} µs CPU`);
const split = (r: Run) =>
  [...(r.threads ?? [])].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]).map(([name, ms]) => `${name} ${((ms * 1000) / total).toFixed(2)}`).join(', ');
console.log(`  by thread, µs per event (/proc)     ${split(local)}`);
if (withoutRaw !== undefined) console.log(`  by thread, raw zone off             ${split(withoutRaw)}`);
if (withoutRaw !== undefined) console.log(`  of it the raw zone                  ${((local.cpuMs - withoutRaw.cpuMs) * 1000 / total).toFixed(2).padStart(8)} µs CPU (sink with it off: ${(withoutRaw.cpuMs * 1000 / total).toFixed(2)} µs)`);
console.log(`  decode + validate only              ${perCore(decodeCpuMs).toString().padStart(8)} events/s per core  (${(decodeCpuMs * 1000 / total).toFixed(2)} µs/event)`);
console.log(`  DuckDB writes the rows directly     ${perCore(writeCpuMs).toString().padStart(8)} events/s per core  (${(writeCpuMs * 1000 / total).toFixed(2)} µs/row CPU, ${perCore(writeWallMs)} rows/s wall, ${refFiles} files)`);
console.log(`  decode + DuckDB write               ${perCore(decodeCpuMs + writeCpuMs).toString().padStart(8)} events/s per core`);
console.log(`ratio sink local / (decode + DuckDB write): ${(perCore(local.cpuMs) / perCore(decodeCpuMs + writeCpuMs)).toFixed(3)}`);
console.log(`ratio sink local / DuckDB write alone:      ${(perCore(local.cpuMs) / perCore(writeCpuMs)).toFixed(3)}`);
console.log(`goal ≥ 100000 events/s per core Kafka → local Parquet: ${perCore(local.cpuMs) >= 100_000 ? 'met' : 'missed'}`);
// Issue 12's goals: the sink with the raw zone on, per core, and against its client alone in this run.
const vsClient = local.cpuMs / kafkajsOnly.cpuMs;
console.log(`ratio sink local / kafkajs consume only (CPU per record): ${vsClient.toFixed(2)}×; / kafkajs as it ships (own process): ${(local.cpuMs / kafkajsShipped.cpuMs).toFixed(2)}×`);
console.log(`goal ≥ 50000 events/s per core with the raw zone: ${perCore(local.cpuMs) >= 50_000 && local.raw === total ? 'met' : 'missed'}; goal CPU per record ≤ 2.5× kafkajs alone: ${vsClient <= 2.5 ? 'met' : 'missed'}`);
console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on this machine inflates CPU figures; the ratios are from the same run)`);
process.exit(0);

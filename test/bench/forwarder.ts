// Benchmark (not a test): the gateway's forwarder alone — CPU per record and uplink bytes per event for
// each codec — draining a buffer of N realistic city records to a real broker, beside two references in
// the same run: the @platformatic/kafka producer alone sending the same records (same batches, one
// request in flight, idempotent, acks=all, same codec) — fed as a client is usually fed (string key and
// headers, its serializers and a partitioner) and fed as the forwarder feeds it (shared Buffers, each
// record's partition given: gateway/src/forward/messages.ts) — and Kafka's own producer perf tool
// sending the same payloads.
//
// The buffer is filled once: the gateway CLI (as it ships, power-loss durability) takes simulated
// devices of every kind in burst while Kafka is cut off (a TCP proxy in front of the broker drops every
// connection). Each run then starts the gateway CLI on a copy of that buffer with no device connected,
// waits until it is idle, opens the proxy and waits until the buffer is empty: CPU per record is the
// process's utime + stime (/proc) over that window ÷ records. The producer alone runs in a process of
// its own (messages built before its clock starts, connection included); the perf tool's figure is its
// JVM's CPU over N records minus its CPU over a short run (start-up and JIT out), ÷ the difference.
// Bytes: the growth of the topics' log segments (Kafka stores a produce request's record batches as
// received, so this is what crossed the uplink, less the request framing), ÷ events; the reference is
// the events' own bytes (the JSON payloads).
// The buffer's records are backlog to the forwarder, so they go at its replay pace (20,000 records/s by
// default: batches are what the token bucket allows, often under 2,000); --unpaced turns the pace off.
//   node test/bench/forwarder.ts [--records 200000] [--rounds 2] [--codecs none,gzip,lz4,zstd] [--unpaced] [--cpu-prof DIR]
//     [--gateway-flags=--max-semi-space-size=16]   (node flags after the service's own, for the forwarding gateway)
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { compatibilityPartitioner, ProduceAcks, Producer, stringSerializer, type MessageToProduce, type Partitioner } from '@platformatic/kafka';
import { kafkaTopicSet, recordHeaders, sleep, topicSpecs, waitFor } from '@city/protocol';
import { GATEWAY_NODE_FLAGS, createMessageEncoder, readBufferFile } from '@city/gateway';
import { createFleet, SIM_KINDS } from '@city/device-sim';
import { ensureTopics, fetchKafka, startKafka, KAFKA_VERSION, type KafkaCluster } from '@city/deploy/kafka';
import { createTcpProxy } from '../support/tcp-proxy.ts';
import { freePort } from '../support/net.ts';
import { cpuTicksOf } from '../support/proc.ts';
import { gatewayProcess, type GatewayProcess } from '../soak/gateway-process.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '2' },
    codecs: { type: 'string', default: 'none,gzip,lz4,zstd' },
    'cpu-prof': { type: 'string' },
    unpaced: { type: 'boolean', default: false },
    'gateway-flags': { type: 'string', default: '' },
    'producer-child': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node test/bench/forwarder.ts [--records 200000] [--rounds 2] [--codecs none,gzip,lz4,zstd] [--unpaced] [--gateway-flags="NODE FLAGS"] [--cpu-prof DIR]\n');
  process.exit(0);
}

const BATCH = 2000; // the forwarder's default batch size
const TICKS_PER_S = 100; // USER_HZ on Linux
type Codec = 'none' | 'gzip' | 'lz4' | 'zstd';

interface ChildJob {
  buffer: string;
  brokers: string[];
  compression: Codec;
  /** strings: key and headers as strings through the client's serializers; buffers: as the forwarder sends them. */
  feed: 'strings' | 'buffers';
}

/** The producer alone: the buffer's records as the forwarder sends them, batch after batch, one request in flight. */
async function producerChild(job: ChildJob): Promise<void> {
  const records = readBufferFile(job.buffer);
  if (job.feed === 'buffers') {
    const encode = createMessageEncoder('gw-producer-alone');
    const batches = [];
    for (let i = 0; i < records.length; i += BATCH) batches.push(records.slice(i, i + BATCH).map((r) => encode(r, true)));
    const before = process.cpuUsage();
    const producer = new Producer({ clientId: 'producer-alone', bootstrapBrokers: job.brokers, idempotent: true, acks: ProduceAcks.ALL, retries: 3, compression: job.compression, autocreateTopics: false });
    for (const messages of batches) await producer.send({ messages });
    const cpu = process.cpuUsage(before);
    await producer.close();
    process.stdout.write(`${JSON.stringify({ records: records.length, cpuUs: cpu.user + cpu.system })}\n`);
    return;
  }
  const batches: MessageToProduce<string, Buffer, string, string>[][] = [];
  for (let i = 0; i < records.length; i += BATCH) {
    batches.push(
      records.slice(i, i + BATCH).map((r) => ({
        topic: r.topic,
        key: r.key,
        value: r.value,
        headers: recordHeaders({ gatewayId: 'gw-producer-alone', receivedAt: r.receivedAt, eventId: r.eventId, replayed: true, ...(r.clockSynced === undefined ? {} : { clockSynced: r.clockSynced }) }),
        timestamp: BigInt(r.receivedAt),
      })),
    );
  }
  // The forwarder's partitioner: Java-compatible murmur2, remembered per key.
  const known = new Map<string, number>();
  const partitioner: Partitioner<string, Buffer, string, string> = (message, key) => {
    let hash = known.get(message.key as string);
    if (hash === undefined) known.set(message.key as string, (hash = compatibilityPartitioner(message, key)));
    return hash;
  };
  const before = process.cpuUsage();
  const producer = new Producer<string, Buffer, string, string>({
    clientId: 'producer-alone',
    bootstrapBrokers: job.brokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: 3,
    compression: job.compression,
    autocreateTopics: false,
    partitioner,
    serializers: { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer },
  });
  for (const messages of batches) await producer.send({ messages });
  const cpu = process.cpuUsage(before);
  await producer.close();
  process.stdout.write(`${JSON.stringify({ records: records.length, cpuUs: cpu.user + cpu.system })}\n`);
}

if (values['producer-child'] !== undefined) {
  await producerChild(JSON.parse(values['producer-child']) as ChildJob);
  process.exit(0);
}

const recordsWanted = Number(values.records);
const rounds = Number(values.rounds);
const codecs = values.codecs.split(',').filter(Boolean) as Codec[];
for (const c of codecs) if (!['none', 'gzip', 'lz4', 'zstd'].includes(c)) throw new Error(`--codecs: unknown codec "${c}" (none, gzip, lz4, zstd)`);
const cpuProfDir = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);
const run = `fw${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'forwarder-bench-'));
const log = createWriteStream(join(dir, 'processes.log'));
log.setMaxListeners(0);
const topics = kafkaTopicSet(run);
const perfTopic = `${run}.perf`;

const cpuTicks = cpuTicksOf;

/** Bytes in the .log segments of the given topics (record batches as the broker stored them). */
function logBytes(kafka: KafkaCluster, names: ReadonlySet<string>): number {
  const logDirs = join(kafka.dataDir as string, 'kraft-logs');
  let bytes = 0;
  for (const entry of readdirSync(logDirs)) {
    if (!names.has(entry.replace(/-\d+$/, ''))) continue;
    for (const file of readdirSync(join(logDirs, entry))) if (file.endsWith('.log')) bytes += statSync(join(logDirs, entry, file)).size;
  }
  return bytes;
}
const eventTopics = new Set([...Object.values(topics.events), topics.deadletter]);

async function healthz(httpPort: number): Promise<Record<string, unknown> | undefined> {
  try {
    const body = (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(2_000) })).json()) as { stats: Record<string, unknown> };
    return body.stats;
  } catch {
    return undefined;
  }
}

async function startGatewayOn(buffer: string, brokers: string[], compression: Codec, nodeArgs: string[] = []): Promise<{ gw: GatewayProcess; port: number; httpPort: number }> {
  const port = await freePort();
  const httpPort = await freePort();
  const config = join(dir, `gw-${compression}.json`);
  // Retries at most a second apart once the proxy opens; nothing waits on close with Kafka away.
  writeFileSync(config, JSON.stringify({ topics, auth: { mode: 'none' }, drainOnCloseMs: 0, kafka: { requestTimeoutMs: 5_000 }, forward: { maxBackoffMs: 1_000, ...(values.unpaced ? { replayRecordsPerSec: 0 } : {}) } }));
  const gw = gatewayProcess({
    args: ['--config', config, '--id', 'gw-bench', '--host', '127.0.0.1', '--port', String(port), '--buffer', buffer, '--brokers', brokers.join(','), '--compression', compression, '--health-interval', '0', '--http', `127.0.0.1:${httpPort}`],
    port,
    log,
    nodeArgs,
  });
  await gw.start();
  return { gw, port, httpPort };
}

function copyBuffer(from: string, to: string): void {
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
}

const execFileP = promisify(execFile);

/** The perf tool's JVM CPU seconds (bash's `times`: its children's user + system). */
async function perfTool(libs: string, brokers: string[], payloadFile: string, records: number, codec: Codec): Promise<{ cpuS: number; summary: string }> {
  const java = [
    'java', '-Xmx512m', '-cp', `'${libs}/*'`, 'org.apache.kafka.tools.ProducerPerformance',
    '--topic', perfTopic, '--num-records', String(records), '--payload-file', payloadFile, '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${brokers.join(',')}`, 'acks=all', 'enable.idempotence=true', `compression.type=${codec}`,
    // Batches as large as the forwarder's requests carry per partition, and the same linger.
    'batch.size=262144', 'linger.ms=20',
  ].join(' ');
  const { stdout } = await execFileP('bash', ['-c', `${java} > ${join(dir, 'perf.out')} 2>&1; times`], { maxBuffer: 16 * 1024 * 1024 });
  const children = stdout.trim().split('\n').at(-1) ?? '';
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const summary = readFileSync(join(dir, 'perf.out'), 'utf8').trim().split('\n').filter((l) => /records sent/.test(l)).at(-1) ?? '';
  return { cpuS: (secs[0] ?? NaN) + (secs[1] ?? NaN), summary };
}

interface Row {
  codec: Codec;
  round: number;
  forwarderUs: number;
  forwarderS: number;
  producerUs: number;
  producerBufUs: number;
  perfUs: number;
  forwarderBytes: number;
  producerBytes: number;
  perfBytes: number;
}

let kafka: KafkaCluster | undefined;
const gateways: GatewayProcess[] = [];
const [kafkaPort, proxyPort] = [await freePort(), await freePort()];
const proxy = createTcpProxy({ targetHost: '127.0.0.1', targetPort: kafkaPort, port: proxyPort });
const rows: Row[] = [];
let payloadPerEvent = NaN;
let recordCount = 0;
try {
  await proxy.start();
  kafka = await startKafka({ port: kafkaPort, advertisedPort: proxyPort, heapMb: 512 });
  const brokers = [`127.0.0.1:${proxyPort}`];
  await ensureTopics(brokers, [...topicSpecs(topics), { topic: perfTopic, numPartitions: topicSpecs(topics)[0]!.numPartitions }]);
  const libs = await fetchKafka();

  // 1. The buffer: every kind of device in burst, 1 % invalid (dead letters travel too), Kafka cut off.
  proxy.setMode('drop');
  const source = join(dir, 'source.db');
  const fill = await startGatewayOn(source, brokers, 'none');
  gateways.push(fill.gw);
  const perKind = Math.ceil(210 / SIM_KINDS.length);
  const perDevice = Math.ceil(recordsWanted / (perKind * SIM_KINDS.length));
  const fleet = createFleet({
    url: `mqtt://127.0.0.1:${fill.port}`,
    seed: 5,
    devices: Object.fromEntries(SIM_KINDS.map((k) => [k, perKind])),
    eventsPerDevice: perDevice,
    ratePerDevice: 0,
    startTime: Date.UTC(2026, 10, 30, 7),
    deviceIdPrefix: 'fwd',
    invalid: { rate: 0.01 },
  });
  await fleet.start();
  await fleet.done();
  await fleet.stop();
  await fill.gw.stop();
  const records = readBufferFile(source);
  recordCount = records.length;
  const payload = records.reduce((n, r) => n + r.value.length, 0);
  payloadPerEvent = payload / recordCount;
  // The perf tool draws payloads from this file, one per line.
  const payloadFile = join(dir, 'payloads.txt');
  writeFileSync(payloadFile, records.map((r) => r.value.toString('utf8')).filter((v) => !v.includes('\n')).join('\n'));
  process.stdout.write(
    `forwarder bench: ${recordCount} records in the buffer (${SIM_KINDS.length} kinds, ${perKind * SIM_KINDS.length} devices, ~1 % dead letters), payload ${payloadPerEvent.toFixed(1)} B/event; ` +
      `Kafka ${KAFKA_VERSION} behind a TCP proxy; node ${process.version}; replay ${values.unpaced ? 'unpaced' : 'paced as configured by default'}; gateway node flags ${GATEWAY_NODE_FLAGS.join(' ')} ${values['gateway-flags']}; ${rounds} round(s) × ${codecs.join(', ')}\n` +
      `(shared machine: other work runs meanwhile; compare the same-run ratios, not the absolute figures)\n`,
  );

  const perfShort = Math.min(10_000, Math.floor(recordCount / 10));
  for (let round = 0; round < rounds; round++) {
    for (const codec of codecs) {
      // 2. The forwarder: the gateway CLI on a copy of the buffer, idle until the proxy opens.
      proxy.setMode('drop');
      const copy = join(dir, `run-${round}-${codec}.db`);
      copyBuffer(source, copy);
      const prof = [...values['gateway-flags'].split(' ').filter(Boolean), ...(cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, `${run}-${codec}-${round}`)}`])];
      const { gw, httpPort } = await startGatewayOn(copy, brokers, codec, prof);
      gateways.push(gw);
      await sleep(2_000);
      const bytes0 = logBytes(kafka, eventTopics);
      const t0 = performance.now();
      const c0 = cpuTicks(gw.pid()!);
      proxy.setMode('forward');
      await waitFor(async () => (await healthz(httpPort))?.bufferDepth === 0, { timeoutMs: 600_000, intervalMs: 100, what: `the ${codec} forwarder draining ${recordCount} records` });
      const c1 = cpuTicks(gw.pid()!);
      const forwarderS = (performance.now() - t0) / 1000;
      const forwarderBytes = logBytes(kafka, eventTopics) - bytes0;
      await gw.stop();

      // 3. The producer alone, same records, same broker, same codec: fed strings, then Buffers.
      const aloneRun = async (feed: ChildJob['feed']) => {
        const child = spawn(process.execPath, [import.meta.filename, '--producer-child', JSON.stringify({ buffer: source, brokers, compression: codec, feed } satisfies ChildJob)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.pipe(log, { end: false });
        const [code] = (await once(child, 'exit')) as [number | null];
        if (code !== 0) throw new Error(`the producer-alone process exited with ${code}; see ${join(dir, 'processes.log')}`);
        return JSON.parse(out.trim().split('\n').at(-1)!) as { records: number; cpuUs: number };
      };
      const p0 = logBytes(kafka, eventTopics);
      const alone = await aloneRun('strings');
      const producerBytes = logBytes(kafka, eventTopics) - p0;
      const aloneBuf = await aloneRun('buffers');

      // 4. Kafka's perf tool: the same payloads, N records and a short run (its start-up and JIT).
      const perfSet = new Set([perfTopic]);
      const q0 = logBytes(kafka, perfSet);
      const long = await perfTool(libs, brokers, payloadFile, recordCount, codec);
      const perfBytes = logBytes(kafka, perfSet) - q0;
      const short = await perfTool(libs, brokers, payloadFile, perfShort, codec);

      const row: Row = {
        codec,
        round,
        forwarderUs: (((c1 - c0) / TICKS_PER_S) * 1e6) / recordCount,
        forwarderS,
        producerUs: alone.cpuUs / alone.records,
        producerBufUs: aloneBuf.cpuUs / aloneBuf.records,
        perfUs: ((long.cpuS - short.cpuS) * 1e6) / (recordCount - perfShort),
        forwarderBytes: forwarderBytes / recordCount,
        producerBytes: producerBytes / alone.records,
        perfBytes: perfBytes / recordCount,
      };
      rows.push(row);
      process.stdout.write(
        `  round ${round + 1} ${codec.padEnd(4)}  CPU-µs/record: forwarder ${row.forwarderUs.toFixed(2)} (drained in ${forwarderS.toFixed(1)} s, ${Math.round(recordCount / forwarderS)} records/s), ` +
          `producer alone ${row.producerUs.toFixed(2)} (fed Buffers ${row.producerBufUs.toFixed(2)}), perf tool ${row.perfUs.toFixed(2)} (JVM ${long.cpuS.toFixed(2)} s over ${recordCount}, ${short.cpuS.toFixed(2)} s over ${perfShort})  ` +
          `bytes/event: forwarder ${row.forwarderBytes.toFixed(1)}, producer alone ${row.producerBytes.toFixed(1)}, perf tool ${row.perfBytes.toFixed(1)} (no key, no headers)\n`,
      );
      if (cpuProfDir !== undefined) process.stdout.write(`    CPU profile of the forwarding gateway: ${join(cpuProfDir, `${run}-${codec}-${round}`)} (node test/bench/cpu-profile.ts FILE)\n`);
    }
  }
} finally {
  for (const gw of gateways) await gw.stop();
  await proxy.close();
  await kafka?.stop();
  log.end();
  if (process.env.BENCH_KEEP) process.stdout.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
process.stdout.write(`medians over ${rounds} round(s), ${recordCount} records, payload ${payloadPerEvent.toFixed(1)} B/event:\n`);
process.stdout.write('codec  forwarder µs  producer alone µs  alone fed Buffers µs  perf tool µs  fwd ÷ alone  fwd ÷ alone fed Buffers  fwd ÷ perf  (goal fwd ≤ 10 µs)   bytes/event fwd  ÷ payload  alone  perf tool  (goal zstd ≤ 0.3× payload)\n');
for (const codec of codecs) {
  const r = rows.filter((x) => x.codec === codec);
  const m = (f: (x: Row) => number) => median(r.map(f));
  const fwd = m((x) => x.forwarderUs);
  process.stdout.write(
    `${codec.padEnd(5)}  ${fwd.toFixed(2).padStart(12)}  ${m((x) => x.producerUs).toFixed(2).padStart(17)}  ${m((x) => x.producerBufUs).toFixed(2).padStart(20)}  ${m((x) => x.perfUs).toFixed(2).padStart(12)}  ${(fwd / m((x) => x.producerUs)).toFixed(2).padStart(10)}×  ${(fwd / m((x) => x.producerBufUs)).toFixed(2).padStart(22)}×  ${(fwd / m((x) => x.perfUs)).toFixed(2).padStart(9)}×` +
      `  ${''.padStart(19)}  ${m((x) => x.forwarderBytes).toFixed(1).padStart(15)}  ${(m((x) => x.forwarderBytes) / payloadPerEvent).toFixed(2).padStart(8)}×  ${m((x) => x.producerBytes).toFixed(1).padStart(5)}  ${m((x) => x.perfBytes).toFixed(1).padStart(9)}\n`,
  );
}

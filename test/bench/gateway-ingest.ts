// Benchmark (not a test): the gateway as a child process (its CLI), driven by the raw-MQTT load
// generator of gateway-load.ts, next to Mosquitto on 127.0.0.1:1883 driven by the same generator in
// the same run.
//   npm run bench:gateway -- [--seconds 10] [--connections 20] [--inflight 100] [--workers 2] [--cpu-prof DIR] [--only a,b,d]
// (a) durable ingest, Kafka away: QoS 1 rate and PUBACK latency p50/p99, power-loss durability, plus
//     bytes written to disk per message (/proc/<pid>/io write_bytes of the gateway child) — that is (e);
// (b) sustained ingest while forwarding to a real Kafka broker: ingest rate and the rate records
//     reached Kafka (sum of the topics' high watermarks);
// (d) RSS and CPU of the gateway child at 1,000 connected devices × 5 msg/s, forwarding.
// Backlog drain (c) is gateway-drain.ts.
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { kafkaTopicSet, sleep, topicSpecs, type KafkaTopicSet } from '@city/protocol';
import { ensureTopics, useKafka, type KafkaCluster } from '@city/deploy/kafka';
import { gatewayProcess, type GatewayProcess } from '../soak/gateway-process.ts';
import { freePort } from '../support/net.ts';
import { cpuTicksOf } from '../support/proc.ts';
import { runLoad, type LoadOptions, type LoadResult } from './gateway-load.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '20' },
    inflight: { type: 'string', default: '100' },
    workers: { type: 'string', default: '2' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string', default: 'a,b,d' },
  },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const inflight = Number(values.inflight);
const workers = Number(values.workers);
const only = new Set(values.only.split(','));
const cpuProfDir = values['cpu-prof'];
const run = `gb${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gateway-bench-'));
const logStream: WriteStream = createWriteStream(join(dir, 'gateway.log'));

const load = (port: number, extra: Partial<LoadOptions> = {}): Promise<LoadResult> =>
  runLoad({
    host: '127.0.0.1',
    port,
    connections,
    inflight,
    ratePerConnection: 0,
    warmupMs: 2_000,
    durationMs: seconds * 1000,
    workers,
    prefix: `${run}-${port}`,
    ...extra,
  });

const fmt = (r: LoadResult) =>
  `${Math.round(r.rate).toLocaleString('en-US').padStart(8)} msg/s   PUBACK p50 ${r.p50Ms.toFixed(1)} ms  p99 ${r.p99Ms.toFixed(1)} ms  max ${r.maxMs.toFixed(0)} ms` +
  (r.errors.length > 0 ? `   errors: ${r.errors.slice(0, 3).join('; ')}` : '');

interface ProcSample {
  cpuTicks: number;
  rssKb: number;
  hwmKb: number;
  writeBytes: number;
}

function procSample(pid: number): ProcSample {
  const cpuTicks = cpuTicksOf(pid);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const writeBytes = Number(/^write_bytes:\s+(\d+)/m.exec(io)?.[1] ?? NaN);
  return { cpuTicks, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), writeBytes };
}
const TICKS_PER_S = 100; // USER_HZ on Linux

/** One sample of the gateway's /metrics: value of `name` (with `labels`, e.g. 'kind="used"'). */
async function metrics(httpPort: number): Promise<(name: string, labels?: string) => number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return (name, labels) => {
    const line = text.split('\n').find((l) => l.startsWith(`city_gateway_${name}${labels === undefined ? ' ' : `{${labels}} `}`));
    return Number(line?.slice(line.lastIndexOf(' ') + 1) ?? NaN);
  };
}

/** Records per group commit so far, from one /metrics sample. */
function recordsPerCommit(metric: (name: string) => number): number {
  return (metric('accepted_total') + metric('dead_lettered_total')) / metric('group_commits_total');
}

async function startGateway(name: string, brokers: string, topics: KafkaTopicSet | undefined): Promise<{ gw: GatewayProcess; port: number; httpPort: number }> {
  const port = await freePort();
  const httpPort = await freePort();
  const configPath = join(dir, `${name}.json`);
  // No device registry: the figures are for ingest, not for authentication.
  // BENCH_GATEWAY_CONFIG: JSON merged into the gateway's config file, e.g. '{"buffer":{"commitWindowMs":5}}'.
  const extra = JSON.parse(process.env.BENCH_GATEWAY_CONFIG ?? '{}') as Record<string, unknown>;
  writeFileSync(configPath, JSON.stringify({ ...(topics === undefined ? {} : { topics }), auth: { mode: 'none' }, ...extra }));
  const gw = gatewayProcess({
    args: ['--config', configPath, '--id', `gw-${name}`, '--host', '127.0.0.1', '--port', String(port), '--buffer', join(dir, `${name}.db`), '--durability', 'power-loss', '--brokers', brokers, '--health-interval', '0', '--http', `127.0.0.1:${httpPort}`],
    port,
    log: logStream,
    // BENCH_GATEWAY_NODE_ARGS: V8 flags for the gateway child, e.g. the heap limits a small board would get.
    nodeArgs: [
      ...(process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...(cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`]),
    ],
  });
  await gw.start();
  return { gw, port, httpPort };
}

async function kafkaRecordCount(admin: kafkajs.Admin, topics: KafkaTopicSet): Promise<number> {
  let n = 0;
  for (const topic of [...Object.values(topics.events), topics.deadletter]) {
    for (const p of await admin.fetchTopicOffsets(topic)) n += Number(p.high);
  }
  return n;
}

let kafka: KafkaCluster | undefined;
const gateways: GatewayProcess[] = [];
try {
  process.stdout.write(`gateway benchmarks: ${connections} connections × ${inflight} in flight, ${workers} load workers, ${seconds} s measured after 2 s warm-up\n`);

  if (only.has('a')) {
    const mosquitto = await load(1883);
    process.stdout.write(`(a) Mosquitto 127.0.0.1:1883 (reference)     ${fmt(mosquitto)}\n`);
    // Kafka away: a port nobody listens on, so every accepted message stays in the buffer.
    const deadPort = await freePort();
    const { gw, port, httpPort } = await startGateway('ingest', `127.0.0.1:${deadPort}`, undefined);
    gateways.push(gw);
    const before = procSample(gw.pid()!);
    const gateway = await load(port);
    const after = procSample(gw.pid()!);
    const perCommit = recordsPerCommit(await metrics(httpPort));
    await gw.stop();
    process.stdout.write(`(a) gateway, power-loss, Kafka away            ${fmt(gateway)}   ${perCommit.toFixed(0)} records per group commit\n`);
    process.stdout.write(`    ratio gateway / Mosquitto: ${(gateway.rate / mosquitto.rate).toFixed(2)}× (goal ≥ 1.0× and ≥ 75,000 msg/s)\n`);
    // (e) bytes the kernel wrote for the gateway (SQLite WAL + checkpoints) over everything acknowledged.
    process.stdout.write(
      `(e) disk writes: ${((after.writeBytes - before.writeBytes) / gateway.acked).toFixed(0)} bytes/message = ` +
        `${((after.writeBytes - before.writeBytes) / gateway.acked / gateway.payloadBytes).toFixed(2)}× the ${gateway.payloadBytes.toFixed(0)}-byte mean payload (goal ≤ 2×) over ${gateway.acked} acknowledged ` +
        `(${((after.writeBytes - before.writeBytes) / 1e6).toFixed(1)} MB; /proc/<pid>/io write_bytes); gateway CPU ${(((after.cpuTicks - before.cpuTicks) / TICKS_PER_S) * 100 / (seconds + 2)).toFixed(0)}% of one core\n`,
    );
  }

  if (only.has('b') || only.has('d')) {
    kafka = await useKafka();
    const admin = new kafkajs.Kafka({ clientId: `${run}-admin`, brokers: kafka.brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      if (only.has('b')) {
        const topics = kafkaTopicSet(`${run}b`);
        await ensureTopics(kafka.brokers, topicSpecs(topics));
        const { gw, port } = await startGateway('forward', kafka.brokers.join(','), topics);
        gateways.push(gw);
        const t0 = Date.now();
        const k0 = await kafkaRecordCount(admin, topics);
        const r = await load(port);
        const tLoad = Date.now();
        const kLoad = await kafkaRecordCount(admin, topics);
        // Then: how long until Kafka holds everything that was acknowledged.
        let kNow = kLoad;
        while (kNow < r.acked && Date.now() - tLoad < 120_000) {
          await sleep(250);
          kNow = await kafkaRecordCount(admin, topics);
        }
        const tDone = Date.now();
        await gw.stop();
        process.stdout.write(`(b) gateway, power-loss, forwarding to Kafka   ${fmt(r)}   (goal ≥ 50,000 msg/s)\n`);
        process.stdout.write(
          `    forwarded during the load: ${Math.round((kLoad - k0) / ((tLoad - t0) / 1000)).toLocaleString('en-US')} records/s; ` +
            `all ${r.acked} acknowledged in Kafka ${kNow >= r.acked ? `${((tDone - tLoad) / 1000).toFixed(1)} s after the load ended` : `NOT within 120 s (${kNow})`}\n`,
        );
      }
      if (only.has('d')) {
        const fleetLoad = { connections: 1000, inflight: 10, ratePerConnection: 5, warmupMs: 15_000, durationMs: Math.max(30, seconds) * 1000 };
        // Reference: the same paced load against Mosquitto shows what the generator delivers.
        const ref = await load(1883, fleetLoad);
        process.stdout.write(`(d) Mosquitto, 1,000 devices × 5 msg/s (reference): ${Math.round(ref.rate)} msg/s acknowledged, PUBACK p50 ${ref.p50Ms.toFixed(1)} ms p99 ${ref.p99Ms.toFixed(1)} ms\n`);
        const topics = kafkaTopicSet(`${run}d`);
        await ensureTopics(kafka.brokers, topicSpecs(topics));
        const { gw, port, httpPort } = await startGateway('fleet', kafka.brokers.join(','), topics);
        gateways.push(gw);
        const pid = gw.pid()!;
        let rssMax = 0;
        let first: (ProcSample & { at: number }) | undefined;
        let last: (ProcSample & { at: number }) | undefined;
        const measureFrom = Date.now() + 15_000;
        const sampler = setInterval(() => {
          const s = { ...procSample(pid), at: Date.now() };
          if (s.at >= measureFrom) {
            first ??= s;
            last = s;
            rssMax = Math.max(rssMax, s.rssKb);
          }
        }, 1_000);
        const r = await load(port, fleetLoad);
        clearInterval(sampler);
        const hwm = procSample(pid).hwmKb;
        const metric = await metrics(httpPort);
        const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
        const memory = `V8 heap ${mb(metric('process_heap_bytes', 'kind="used"'))} used of ${mb(metric('process_heap_bytes', 'kind="total"'))}, external ${mb(metric('process_external_memory_bytes'))}`;
        const perCommit = recordsPerCommit(metric);
        await gw.stop();
        const cpu = first && last ? ((last.cpuTicks - first.cpuTicks) / TICKS_PER_S / Math.max(30, seconds)) * 100 : NaN;
        // (e) at this load: bytes the kernel wrote for the gateway per message acknowledged meanwhile.
        const diskPerMessage = first && last ? (last.writeBytes - first.writeBytes) / (r.rate * ((last.at - first.at) / 1000)) : NaN;
        process.stdout.write(
          `(d) 1,000 devices × 5 msg/s: ${Math.round(r.rate)} msg/s acknowledged, PUBACK p50 ${r.p50Ms.toFixed(1)} ms p99 ${r.p99Ms.toFixed(1)} ms; ` +
            `gateway RSS max ${(rssMax / 1024).toFixed(0)} MB (peak VmHWM ${(hwm / 1024).toFixed(0)} MB; goal ≤ 150 MB; at the end ${memory}), ` +
            `CPU ${cpu.toFixed(0)}% of one core, ${perCommit.toFixed(1)} records per group commit, disk writes ${diskPerMessage.toFixed(0)} bytes/message (${(diskPerMessage / r.payloadBytes).toFixed(2)}× payload)` +
            (r.errors.length > 0 ? `; errors: ${r.errors.slice(0, 3).join('; ')}` : '') +
            '\n',
        );
      }
    } finally {
      await admin.disconnect();
    }
  }
  if (cpuProfDir !== undefined) process.stdout.write(`CPU profiles of the gateway children in ${cpuProfDir}\n`);
} finally {
  for (const gw of gateways) await gw.stop();
  await kafka?.stop();
  logStream.end();
  rmSync(dir, { recursive: true, force: true });
}

// Benchmark (not a test): (c) backlog drain rate after a Kafka outage while live traffic continues.
// The gateway (child process, power-loss durability) forwards through a TCP proxy to a broker of its
// own that advertises the proxy's address; live load runs at a fixed rate the whole time; the proxy
// drops all connections for --outage seconds, then heals. Drain rate = records forwarded per second
// from the heal until the buffer is back to its live level; the reference is the live rate itself.
//   node test/bench/gateway-drain.ts [--rate 5000] [--outage 20] [--connections 100]
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { kafkaTopicSet, sleep, topicSpecs, type KafkaTopicSet } from '@city/protocol';
import { ensureTopics, startKafka, type KafkaCluster } from '@city/deploy/kafka';
import { createTcpProxy } from '../support/tcp-proxy.ts';
import { gatewayProcess, type GatewayProcess } from '../soak/gateway-process.ts';
import { freePort } from '../support/net.ts';
import { runLoad } from './gateway-load.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '5000' },
    outage: { type: 'string', default: '20' },
    connections: { type: 'string', default: '100' },
  },
});
const liveRate = Number(values.rate);
const outageS = Number(values.outage);
const connections = Number(values.connections);
const run = `gd${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gateway-drain-'));
const logStream = createWriteStream(join(dir, 'gateway.log'));

async function metric(url: string, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).text();
    // Summed over labels: buffer_depth comes per lane.
    const lines = text.split('\n').filter((l) => new RegExp(`^[a-z_]*${name}(\\{[^}]*\\})?\\s`).test(l));
    return lines.length === 0 ? undefined : lines.reduce((n, l) => n + Number(l.trim().split(/\s+/).at(-1)), 0);
  } catch {
    return undefined;
  }
}

async function kafkaCount(admin: kafkajs.Admin, topics: KafkaTopicSet): Promise<number> {
  let n = 0;
  for (const topic of [...Object.values(topics.events), topics.deadletter]) for (const p of await admin.fetchTopicOffsets(topic)) n += Number(p.high);
  return n;
}

let kafka: KafkaCluster | undefined;
let gw: GatewayProcess | undefined;
const [kafkaPort, proxyPort, mqttPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const proxy = createTcpProxy({ targetHost: '127.0.0.1', targetPort: kafkaPort, port: proxyPort });
try {
  await proxy.start();
  kafka = await startKafka({ port: kafkaPort, advertisedPort: proxyPort, heapMb: 384 });
  const brokers = [`127.0.0.1:${proxyPort}`];
  const topics = kafkaTopicSet(run);
  await ensureTopics(brokers, topicSpecs(topics));
  const config = join(dir, 'gw.json');
  writeFileSync(config, JSON.stringify({ topics, auth: { mode: 'none' }, kafka: { requestTimeoutMs: 5_000 }, forward: { maxBackoffMs: 1_000 } }));
  gw = gatewayProcess({
    args: ['--config', config, '--id', `gw-${run}`, '--host', '127.0.0.1', '--port', String(mqttPort), '--buffer', join(dir, 'b.db'), '--brokers', brokers.join(','), '--health-interval', '0', '--http', `127.0.0.1:${httpPort}`],
    port: mqttPort,
    log: logStream,
  });
  await gw.start();
  const metricsUrl = `http://127.0.0.1:${httpPort}/metrics`;
  const admin = new kafkajs.Kafka({ clientId: `${run}-admin`, brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();

  const totalS = 10 + outageS + 120;
  const loadDone = runLoad({
    host: '127.0.0.1',
    port: mqttPort,
    connections,
    inflight: 50,
    ratePerConnection: liveRate / connections,
    warmupMs: 0,
    durationMs: totalS * 1000,
    workers: 1,
    prefix: run,
  });
  await sleep(10_000);
  const liveStart = await kafkaCount(admin, topics);
  const t0 = Date.now();
  await sleep(5_000);
  const measuredLive = ((await kafkaCount(admin, topics)) - liveStart) / ((Date.now() - t0) / 1000);
  await admin.disconnect();

  proxy.setMode('drop');
  await sleep(outageS * 1000);
  const backlog = (await metric(metricsUrl, 'buffer_depth')) ?? NaN;
  proxy.setMode('forward');
  const healedAt = Date.now();
  const admin2 = new kafkajs.Kafka({ clientId: `${run}-admin2`, brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin2.connect();
  const k0 = await kafkaCount(admin2, topics);
  // Drained when the buffer is back to what one second of live traffic keeps in it.
  let depth = backlog;
  while (Date.now() - healedAt < 110_000) {
    depth = (await metric(metricsUrl, 'buffer_depth')) ?? depth;
    if (depth <= Math.max(liveRate, 1)) break;
    await sleep(200);
  }
  const drainS = (Date.now() - healedAt) / 1000;
  const k1 = await kafkaCount(admin2, topics);
  await admin2.disconnect();
  const drainRate = (k1 - k0) / drainS;
  process.stdout.write(
    `(c) live ${Math.round(measuredLive)} records/s reaching Kafka (asked ${liveRate} msg/s); outage ${outageS} s (drop) left ${backlog} records buffered\n` +
      `    drained in ${drainS.toFixed(1)} s at ${Math.round(drainRate)} records/s forwarded = ${(drainRate / measuredLive).toFixed(2)}× the live rate (goal ≥ 2×)` +
      `${depth > Math.max(liveRate, 1) ? ` — NOT drained within 110 s (depth ${depth})` : ''}\n`,
  );
  await gw.stop();
  const r = await loadDone;
  process.stdout.write(`    load: ${r.acked} acknowledged, PUBACK p50 ${r.p50Ms.toFixed(1)} ms p99 ${r.p99Ms.toFixed(1)} ms${r.errors.length ? `; ${r.errors.slice(0, 2).join('; ')}` : ''}\n`);
} finally {
  await gw?.stop();
  await proxy.close();
  await kafka?.stop();
  logStream.end();
  if (process.env.BENCH_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

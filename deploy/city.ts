// `npm run city`: the whole city on one machine — Kafka (KRaft), a gateway, the sink and a simulated
// fleet — with live counts. State lives in ./.city so a second run carries on where the first stopped.
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { textLog, topicSpecs } from '@city/protocol';
import { createGateway, type Gateway } from '@city/gateway';
import { createSink, jsonLog, type Sink } from '@city/cloud';
import { createFleet, DEFAULT_FLEET, type Fleet } from '@city/device-sim';
import { ensureTopics, useKafka, type KafkaCluster } from './kafka/launcher.ts';

const USAGE = `usage: npm run city -- [--dir D] [--port P] [--seed N] [--rate R] [--scale K] [--invalid-rate F]
  --dir D           state folder: Kafka data, gateway buffer, lake (default ./.city)
  --port P          gateway MQTT port (default 1884; a free one if taken)
  --seed N          simulator seed (default 1)
  --rate R          events per second per device (default 1)
  --scale K         fleet size multiplier over the default small city of 100 devices (default 1)
  --invalid-rate F  fraction of deliberately invalid publishes (default 0.01)`;

function fail(message: string): never {
  process.stderr.write(`city: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function numberFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a non-negative number, got "${value}"`);
  return n;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => done(true)));
  });
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        dir: { type: 'string' },
        port: { type: 'string' },
        seed: { type: 'string' },
        rate: { type: 'string' },
        scale: { type: 'string' },
        'invalid-rate': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    say(USAGE);
    return;
  }
  const dir = resolve(values.dir ?? '.city');
  const wantedPort = numberFlag('port', values.port, 1884);
  const seed = numberFlag('seed', values.seed, 1);
  const rate = numberFlag('rate', values.rate, 1);
  const scale = numberFlag('scale', values.scale, 1);
  const invalidRate = numberFlag('invalid-rate', values['invalid-rate'], 0.01);
  if (invalidRate > 1) fail('--invalid-rate is a fraction between 0 and 1');
  mkdirSync(dir, { recursive: true });
  const lakeDir = join(dir, 'lake');
  const log = jsonLog('warn');

  let kafka: KafkaCluster | undefined;
  let gateway: Gateway | undefined;
  let sink: Sink | undefined;
  let fleet: Fleet | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;

  // Reverse order of start: devices stop, the gateway forwards what it holds, the sink flushes and commits.
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(ticker);
      say('\nstopping the city…');
      await fleet?.stop().catch((e: Error) => say(`fleet: ${e.message}`));
      await gateway?.close().catch((e: Error) => say(`gateway: ${e.message}`));
      await sink?.close().catch((e: Error) => say(`sink: ${e.message}`));
      await kafka?.stop().catch((e: Error) => say(`kafka: ${e.message}`));
      say(`stopped. The lake stays in ${lakeDir}; query it with: npm run query -- --lake ${lakeDir}`);
    })());
  // `on`, not `once`: the handler must stay registered so the Kafka launcher leaves shutdown to us.
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    void stop().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    say(process.env.KAFKA_BROKERS ? `using Kafka at ${process.env.KAFKA_BROKERS}` : 'starting Kafka (KRaft, single node)…');
    kafka = await useKafka({ dataDir: join(dir, 'kafka'), log: textLog('kafka', 'info', process.stdout) });
    await ensureTopics(kafka.brokers, topicSpecs());

    const port = (await portIsFree(wantedPort)) ? wantedPort : 0;
    gateway = createGateway(
      { gatewayId: 'gw-local-01', mqtt: { host: '127.0.0.1', port }, buffer: { path: join(dir, 'gateway-buffer.db') }, kafka: { brokers: kafka.brokers }, healthIntervalMs: 10_000 },
      (level, message, fields) => level !== 'info' && log(level, message, fields),
    );
    await gateway.start();

    // Files cut every 5 s of record time even under steady load, so the lake visibly grows.
    sink = createSink({ brokers: kafka.brokers, lakeDir, maxSpanMs: 5_000, maxAgeMs: 5_000, log });
    await sink.start();

    const devices = Object.fromEntries(
      Object.entries(DEFAULT_FLEET).map(
        ([kind, n]) => [kind, Math.max(1, Math.round(n * scale))],
      ),
    );
    fleet = createFleet({ url: `mqtt://127.0.0.1:${gateway.port()}`, seed, ratePerDevice: rate, devices, invalid: { rate: invalidRate } });
    await fleet.start();
    if (stopping) return;
  } catch (err) {
    say(`city failed to start: ${(err as Error).message}`);
    await stop();
    process.exitCode = 1;
    return;
  }

  say(`
The city is running: Kafka ${kafka.brokers.join(',')}, gateway mqtt://127.0.0.1:${gateway.port()}, lake ${lakeDir}
Try, in another terminal (files appear within ~5 s):
  npm run query -- --lake ${lakeDir}
  npm run query -- --lake ${lakeDir} "SELECT vehicle_type, count(*) AS n, round(avg(speed) * 3.6, 1) AS avg_kmh FROM vehicle GROUP BY 1 ORDER BY n DESC"
  npm run query -- --lake ${lakeDir} "SELECT reason, count(*) AS n FROM deadletter GROUP BY 1 ORDER BY n DESC"
Ctrl-C stops everything cleanly.
`);
  const started = Date.now();
  ticker = setInterval(() => {
    const f = fleet!.stats();
    const g = gateway!.stats();
    const s = sink!.stats();
    // Curated event rows and dead letters; the raw zone holds a second copy of each event.
    const lakeRows = Object.entries(s.rows).reduce((n, [table, rows]) => (table.startsWith('raw_') ? n : n + (rows ?? 0)), 0);
    say(
      `[${Math.round((Date.now() - started) / 1000)}s] devices ${f.connected}/${f.devices}  published ${f.published + f.invalidPublished}` +
        `  gateway accepted ${g.accepted} dead-lettered ${g.deadLettered} buffered ${g.bufferDepth} forwarded ${g.forwarded}` +
        `  lake rows ${lakeRows} in ${s.files} files`,
    );
  }, 5_000);
}

await main();

// `npm run city`: the whole city on one machine — Kafka (KRaft), the sink, a gateway and a simulated
// fleet — with live counts. State lives in ./.city so a second run carries on where the first stopped.
// The first SIGINT/SIGTERM closes every part in reverse order of start; a second one exits at once.
import { closeOnSignals, parseCommandLine, runMain, textLog } from '@city/protocol';
import { createCity } from './city/index.ts';
import { cityErrors } from './city/errors.ts';
import { availableParallelism, loadavg } from 'node:os';
import type { CityGatewayFigures, CityStats, ProcessFigures } from './city/index.ts';

const USAGE = `usage: npm run city -- [--dir D] [--port P] [--dashboard-port P] [--seed N] [--rate R] [--scale K] [--invalid-rate F] [--topic-suffix S] [--gateways N] [--devices N] [--roll-ms MS]
  --dir D           state folder: Kafka data, gateway buffer, lake (default ./.city)
  --port P          gateway MQTT port (default 1884; a free one if taken)
  --dashboard-port P  operations dashboard on 127.0.0.1 (default 8080; a free one if taken)
  --seed N          simulator seed (default 1)
  --rate R          events per second per device (default 1)
  --scale K         fleet size multiplier over the default small city of 100 devices (default 1)
  --invalid-rate F  fraction of deliberately invalid publishes, 0 to 0.9 (default 0.01)
  --topic-suffix S  use the topics named <standard>.<S> (a second city on the same Kafka)
  --gateways N      run N gateways as processes of their own (the gateway CLI; ports P, P+1, …), each with
                    its share of the devices in a process of its own; figures per gateway every 5 s
                    (default: one gateway inside the city's process)
  --devices N       simulated devices in all, spread over the kinds like the default fleet (wins over --scale)
  --roll-ms MS      the sink cuts lake files after MS of record time and of wall time (default 5000); a longer roll
                    writes fewer, larger files per event
KAFKA_BROKERS=host:port,… uses that cluster instead of starting a broker.`;

const TICK_MS = 5_000;

const say = (line: string) => process.stdout.write(`${line}\n`);

function numberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw cityErrors.create('CITY_USAGE', `--${name} must be a number, got "${value}"`);
  return n;
}

async function main(): Promise<number> {
  const args = parseCommandLine(
    process.argv.slice(2),
    {
      dir: { type: 'string' },
      port: { type: 'string' },
      'dashboard-port': { type: 'string' },
      seed: { type: 'string' },
      rate: { type: 'string' },
      scale: { type: 'string' },
      'invalid-rate': { type: 'string' },
      'topic-suffix': { type: 'string' },
      gateways: { type: 'string' },
      devices: { type: 'string' },
      'roll-ms': { type: 'string' },
    },
    { usage: USAGE, usageError: (detail) => cityErrors.create('CITY_USAGE', detail) },
  );
  if (!args) return 0;
  const { values } = args;
  const city = createCity({
    dir: values.dir,
    port: numberFlag('port', values.port),
    dashboardPort: numberFlag('dashboard-port', values['dashboard-port']),
    seed: numberFlag('seed', values.seed),
    rate: numberFlag('rate', values.rate),
    scale: numberFlag('scale', values.scale),
    invalidRate: numberFlag('invalid-rate', values['invalid-rate']),
    topicSuffix: values['topic-suffix'],
    gateways: numberFlag('gateways', values.gateways),
    devices: numberFlag('devices', values.devices),
    rollMs: numberFlag('roll-ms', values['roll-ms']),
    kafkaLog: textLog('kafka', 'info', process.stdout),
  });
  let ticker: NodeJS.Timeout | undefined;
  const samples: { at: number; stats: CityStats }[] = [];
  const stopped = closeOnSignals(
    () => {
      clearInterval(ticker);
      summary(samples);
      say('\nstopping the city…');
      return city.close();
    },
    (message, fields) => {
      if (message !== 'shutting down') say(`${message}${fields?.['error'] === undefined ? '' : `: ${String(fields['error'])}`}`);
    },
  );

  say(process.env['KAFKA_BROKERS'] ? `using Kafka at ${process.env['KAFKA_BROKERS']}` : 'starting Kafka (KRaft, single node)…');
  try {
    await city.start();
  } catch (err) {
    // A stop by signal while starting is not a failure; the lifecycle has closed what was started.
    if (cityErrors.is(err, 'CITY_CLOSED')) return stopped;
    throw err;
  }
  const lake = city.lakeDir;
  say(`
The city is running: Kafka ${city.brokers().join(',')}, ${city.gatewayPorts().length > 1 ? `${city.gatewayPorts().length} gateways at mqtt://127.0.0.1:${city.gatewayPorts().join(',')}` : `gateway mqtt://127.0.0.1:${city.gatewayPort()}`}, lake ${lake}
Watch it live: ${city.dashboardUrl()}
Try, in another terminal (files appear within ~5 s):
  npm run query -- --lake ${lake}
  npm run query -- --lake ${lake} "SELECT vehicle_type, count(*) AS n, round(avg(speed) * 3.6, 1) AS avg_kmh FROM vehicle GROUP BY 1 ORDER BY n DESC"
  npm run query -- --lake ${lake} "SELECT reason, count(*) AS n FROM deadletter GROUP BY 1 ORDER BY n DESC"
  npm run query -- --lake ${lake} --named alerts --param open=true
  npm run sink -- warehouse status --lake ${lake} --pglite-dir ${city.warehouseDir}   (after Ctrl-C: PGlite has one user at a time)
Ctrl-C stops everything cleanly.
`);
  const began = Date.now();
  samples.push({ at: performance.now(), stats: city.stats() });
  ticker = setInterval(() => {
    const s = city.stats();
    say(
      `[${Math.round((Date.now() - began) / 1000)}s] devices ${s.connected}/${s.devices}  published ${s.published}` +
        `  gateway accepted ${s.accepted} dead-lettered ${s.deadLettered} buffered ${s.buffered} forwarded ${s.forwarded}` +
        `  lake rows ${s.lakeRows} in ${s.lakeFiles} files (+${s.liveRows} KPI/alert rows)  warehouse rows ${s.warehouseRows} (processed ${s.warehouseProcessedRows})`,
    );
    const previous = samples.at(-1)!;
    samples.push({ at: performance.now(), stats: s });
    for (const l of rateLines(previous, samples.at(-1)!)) say(l);
  }, TICK_MS);
  const code = await stopped;
  const end = city.stats().gateways;
  if (end !== undefined) say(`left in the gateway buffers after closing: ${end.map((g) => `${g.id} ${g.buffered}`).join(', ')}`);
  if (code === 0) say(`stopped. The lake stays in ${lake}; query it with: npm run query -- --lake ${lake}`);
  return code;
}

type Sample = { at: number; stats: CityStats };
const perS = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : 0);
const pct = (cpuS: number, ms: number) => (ms > 0 ? (cpuS * 100_000) / ms : NaN);
const r0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toString() : '?');

/** CPU (% of one core) of one process of every gateway, summed. */
function sumCpu(x: CityStats, y: CityStats, ms: number, f: (g: CityGatewayFigures) => ProcessFigures): number {
  let cpuS = 0;
  for (const g of y.gateways ?? []) {
    const h = x.gateways?.find((p) => p.id === g.id);
    if (h !== undefined) cpuS += f(g).cpuSeconds - f(h).cpuSeconds;
  }
  return pct(cpuS, ms);
}

/** Rates between two samples: the city's flow, then per gateway (its process and its devices' process). */
function rateLines(a: Sample, b: Sample): string[] {
  const ms = b.at - a.at;
  const x = a.stats;
  const y = b.stats;
  const acked = (s: CityStats) => s.accepted + s.deadLettered;
  const cpu = (f: (s: CityStats) => number) => r0(pct(f(y) - f(x), ms));
  const part = (name: string, f: (s: CityStats) => ProcessFigures | undefined) => {
    const now = f(y);
    if (now === undefined) return '';
    return `  ${name} CPU ${r0(pct(now.cpuSeconds - (f(x)?.cpuSeconds ?? NaN), ms))}% RSS ${r0(now.rssMb)} MB`;
  };
  const lines = [
    `    flow: published ${r0(perS(y.published - x.published, ms))}/s  acknowledged ${r0(perS(acked(y) - acked(x), ms))}/s  forwarded ${r0(perS(y.forwarded - x.forwarded, ms))}/s  lake ${r0(perS(y.lakeRows - x.lakeRows, ms))} rows/s` +
      `  behind: ${y.buffered} at gateways, ${y.forwarded - y.lakeRows} in Kafka not yet in the lake (sink holds ${y.sink.buffered}, ${y.sink.flushes - x.sink.flushes} flushes)  load ${loadavg()[0]!.toFixed(1)}`,
    `    processes: city CPU ${cpu((s) => s.process.cpuSeconds)}% RSS ${r0(y.process.rssMb)} MB (event-loop delay p99 ${r0(y.loopDelayMs.p99)} ms)` +
      part('sink', (s) => s.parts.sink) +
      part('live', (s) => s.parts.live) +
      part('warehouse', (s) => s.parts.warehouse) +
      part('Kafka', (s) => s.parts.kafka) +
      (y.gateways === undefined ? '' : `  gateways CPU ${r0(sumCpu(x, y, ms, (g) => g.gateway))}%  devices CPU ${r0(sumCpu(x, y, ms, (g) => g.fleet))}%`),
  ];
  for (const g of y.gateways ?? []) {
    const h = x.gateways?.find((p) => p.id === g.id);
    if (h === undefined) continue;
    lines.push(
      `    ${g.id} :${g.port}  devices ${g.connected}/${g.devices}  acknowledged ${r0(perS(g.accepted + g.deadLettered - h.accepted - h.deadLettered, ms))}/s  forwarded ${r0(perS(g.forwarded - h.forwarded, ms))}/s` +
        `  buffered ${g.buffered} (oldest ${(g.oldestUnsentAgeMs / 1000).toFixed(1)} s)  Kafka ${g.kafka}` +
        `  gateway CPU ${r0(pct(g.gateway.cpuSeconds - h.gateway.cpuSeconds, ms))}% RSS ${r0(g.gateway.rssMb)} MB  devices CPU ${r0(pct(g.fleet.cpuSeconds - h.fleet.cpuSeconds, ms))}% RSS ${r0(g.fleet.rssMb)} MB`,
    );
  }
  return lines;
}

/** What the city sustained from the first to the last sample, per gateway and in all (CPU in % of one core). */
function summary(all: readonly Sample[]): void {
  const first = all[0];
  const last = all.at(-1);
  if (first === undefined || last === undefined || last === first) return;
  const ms = last.at - first.at;
  const max = (f: (s: CityStats) => number) => Math.max(...all.map((s) => f(s.stats)));
  say(`\nsummary over ${(ms / 1000).toFixed(0)} s (the machine is shared: other work runs meanwhile):`);
  for (const l of rateLines(first, last)) say(l.replace(/ RSS \d+ MB/g, ''));
  say(`    RSS max: city process ${r0(max((s) => s.process.rssMb))} MB; ` + (last.stats.gateways ?? []).map((g) => `${g.id} ${r0(max((s) => s.gateways?.find((x) => x.id === g.id)?.gateway.rssMb ?? 0))} MB (its devices ${r0(max((s) => s.gateways?.find((x) => x.id === g.id)?.fleet.rssMb ?? 0))} MB)`).join(', '));
  // Per acknowledged event, each kind of process: CPU time is what the shared machine does not distort much.
  const kinds: [string, (s: CityStats) => ({ cpuSeconds: number } | undefined)[]][] = [
    ['devices', (s) => (s.gateways ?? []).map((g) => g.fleet)],
    ['gateways', (s) => (s.gateways ?? []).map((g) => g.gateway)],
    ['Kafka', (s) => [s.parts.kafka]],
    ['sink', (s) => [s.parts.sink]],
    ['live engine', (s) => [s.parts.live]],
    ['warehouse', (s) => [s.parts.warehouse]],
    [first.stats.gateways !== undefined ? 'city (dashboard)' : 'city (dashboard, gateway, devices)', (s) => [s.process]],
  ];
  const cpuOf = (s: CityStats, f: (s: CityStats) => ({ cpuSeconds: number } | undefined)[]) => f(s).reduce((n, p) => n + (p !== undefined && Number.isFinite(p.cpuSeconds) ? p.cpuSeconds : 0), 0);
  const acked = last.stats.accepted + last.stats.deadLettered - first.stats.accepted - first.stats.deadLettered;
  const costs = kinds.map(([name, f]) => ({ name, us: acked > 0 ? ((cpuOf(last.stats, f) - cpuOf(first.stats, f)) * 1e6) / acked : NaN }));
  const perEvent = costs.reduce((n, c) => n + c.us, 0) / 1e6;
  const cores = availableParallelism();
  say(`    CPU-µs per acknowledged event: ${costs.map((c) => `${c.name} ${r0(c.us)}`).join(', ')}; all ${r0(perEvent * 1e6)}`);
  say(`    at that cost ${cores} cores carry at most ${r0(cores / perEvent)} events/s with nothing else running (load average now ${loadavg()[0]!.toFixed(1)})`);
  say(`    lag max: not yet in the lake ${max((s) => s.forwarded - s.lakeRows)} records; buffered at a gateway ${max((s) => s.buffered)} records, oldest unsent ${(max((s) => Math.max(0, ...(s.gateways ?? []).map((g) => g.oldestUnsentAgeMs))) / 1000).toFixed(1)} s`);
}

const code = await runMain('city', main, USAGE);
// Straight out once closed: nothing of the city is left to wait for.
process.exit(code);

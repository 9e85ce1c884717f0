// `npm run city`: the whole city on one machine — Kafka (KRaft), the sink, a gateway and a simulated
// fleet — with live counts. State lives in ./.city so a second run carries on where the first stopped.
// The first SIGINT/SIGTERM closes every part in reverse order of start; a second one exits at once.
import { closeOnSignals, parseCommandLine, runMain, textLog } from '@city/protocol';
import { createCity } from './city/index.ts';
import { cityErrors } from './city/errors.ts';

const USAGE = `usage: npm run city -- [--dir D] [--port P] [--dashboard-port P] [--seed N] [--rate R] [--scale K] [--invalid-rate F] [--topic-suffix S]
  --dir D           state folder: Kafka data, gateway buffer, lake (default ./.city)
  --port P          gateway MQTT port (default 1884; a free one if taken)
  --dashboard-port P  operations dashboard on 127.0.0.1 (default 8080; a free one if taken)
  --seed N          simulator seed (default 1)
  --rate R          events per second per device (default 1)
  --scale K         fleet size multiplier over the default small city of 100 devices (default 1)
  --invalid-rate F  fraction of deliberately invalid publishes, 0 to 0.9 (default 0.01)
  --topic-suffix S  use the topics named <standard>.<S> (a second city on the same Kafka)
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
    kafkaLog: textLog('kafka', 'info', process.stdout),
  });
  let ticker: NodeJS.Timeout | undefined;
  const stopped = closeOnSignals(
    () => {
      clearInterval(ticker);
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
The city is running: Kafka ${city.brokers().join(',')}, gateway mqtt://127.0.0.1:${city.gatewayPort()}, lake ${lake}
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
  ticker = setInterval(() => {
    const s = city.stats();
    say(
      `[${Math.round((Date.now() - began) / 1000)}s] devices ${s.connected}/${s.devices}  published ${s.published}` +
        `  gateway accepted ${s.accepted} dead-lettered ${s.deadLettered} buffered ${s.buffered} forwarded ${s.forwarded}` +
        `  lake rows ${s.lakeRows} in ${s.lakeFiles} files (+${s.liveRows} KPI/alert rows)  warehouse rows ${s.warehouseRows} (processed ${s.warehouseProcessedRows})`,
    );
  }, TICK_MS);
  const code = await stopped;
  if (code === 0) say(`stopped. The lake stays in ${lake}; query it with: npm run query -- --lake ${lake}`);
  return code;
}

const code = await runMain('city', main, USAGE);
// Straight out once closed: nothing of the city is left to wait for.
process.exit(code);

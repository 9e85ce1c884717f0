// Process entry: `npm run sim -- --devices 500 --rate 2`. Prints progress; the first SIGINT/SIGTERM stops
// the fleet (outstanding PUBACKs get stopTimeoutMs), a second one exits at once.
import { CityError, closeOnSignals, runMain } from '@city/protocol';
import { parseCliArgs, USAGE } from './cli-options.ts';
import { createFleet, type FleetStats } from './fleet.ts';

function line(stats: FleetStats, ratePerSecond: number): string {
  const secs = Math.round(stats.elapsedMs / 1000);
  return (
    `[${String(secs).padStart(5)}s] connected ${stats.connected}/${stats.devices}` +
    ` | valid ${stats.published} sent, ${stats.acknowledged} acked (${ratePerSecond.toFixed(1)}/s)` +
    ` | invalid ${stats.invalidPublished} sent, ${stats.invalidAcknowledged} acked` +
    ` | in flight ${stats.inFlight} | errors ${stats.errors} | reconnects ${stats.reconnects}` +
    (stats.lastError !== undefined && stats.errors > 0 ? ` | last error: ${stats.lastError}` : '')
  );
}

async function main(): Promise<number> {
  const parsed = parseCliArgs(process.argv.slice(2));
  if (parsed.help) return 0;
  const { options, statsIntervalMs, json } = parsed;
  const log = (text: string) => (json ? process.stderr : process.stdout).write(`${text}\n`);
  const fleet = createFleet(options);
  fleet.on('deviceError', ({ deviceId, error }) => log(`device ${deviceId}: ${error.message}`));
  fleet.on('publishError', ({ error }) => log(`${error instanceof CityError ? `${error.code}: ` : ''}${error.message}`));

  let lastAcked = 0;
  let lastAt = Date.now();
  const progress = () => {
    const stats = fleet.stats();
    const now = Date.now();
    const acked = stats.acknowledged + stats.invalidAcknowledged;
    log(line(stats, ((acked - lastAcked) * 1000) / Math.max(1, now - lastAt)));
    lastAcked = acked;
    lastAt = now;
  };
  const ticker = statsIntervalMs > 0 ? setInterval(progress, statsIntervalMs) : undefined;

  let signalled = false;
  const stopped = closeOnSignals(
    () => {
      signalled = true;
      return fleet.stop();
    },
    (message, fields) => log(`${message}${fields?.['signal'] === undefined ? '' : ` (${String(fields['signal'])})`}`),
  );

  let code = 0;
  try {
    const o = fleet.options;
    log(`${fleet.devices.length} devices → ${o.url} (seed ${o.seed}, ${o.rate > 0 ? `${o.rate}/s per device` : 'burst'}` +
      `${o.eventsPerDevice === undefined ? '' : `, ${o.eventsPerDevice} events each`})`);
    await Promise.race([fleet.start(), stopped]);
    if (!signalled) {
      log(`all ${fleet.devices.length} devices connected`);
      await Promise.race([options.eventsPerDevice === undefined ? stopped : fleet.done(), stopped]);
    }
  } catch (err) {
    // Starting or finishing failed; a stop by signal ending start() or done() is not a failure.
    if (!signalled) {
      log(`device-sim: ${err instanceof CityError ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}`);
      code = 1;
    }
  }
  if (ticker !== undefined) clearInterval(ticker);
  // A hung broker must not keep the process: stop() has its own deadlines, this is the last resort.
  const deadline = setTimeout(() => {
    log('stop did not finish in time');
    process.exit(1);
  }, fleet.options.stopTimeoutMs + 10_000);
  deadline.unref();
  await fleet.stop();
  if (signalled && (await stopped) !== 0) code = 1;
  const stats = fleet.stats();
  progress();
  if (json) process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
  if (code === 0 && options.eventsPerDevice !== undefined && !signalled && !stats.done) code = 1;
  return code;
}

await runMain('device-sim', main, USAGE);

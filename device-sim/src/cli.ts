// Process entry: `npm run sim -- --devices 500 --rate 2`. Prints progress, stops cleanly on SIGINT/SIGTERM.
import { CityError } from '@city/protocol';
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
  let parsed;
  try {
    parsed = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`device-sim: ${(err as Error).message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { options, statsIntervalMs, json } = parsed;
  const log = (text: string) => (json ? process.stderr : process.stdout).write(`${text}\n`);
  const fleet = createFleet(options);
  fleet.on('deviceError', ({ deviceId, error }) => log(`device ${deviceId}: ${error.message}`));

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
  const stopped = new Promise<string>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log(`${signal} again: exiting without waiting`);
        process.exit(130);
      }
      signalled = true;
      log(`${signal}: stopping…`);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  let code = 0;
  try {
    const o = fleet.options;
    log(`${fleet.devices.length} devices → ${o.url} (seed ${o.seed}, ${o.rate > 0 ? `${o.rate}/s per device` : 'burst'}` +
      `${o.eventsPerDevice === undefined ? '' : `, ${o.eventsPerDevice} events each`})`);
    await Promise.race([fleet.start(), stopped]);
    if (!signalled) {
      log(`all ${fleet.devices.length} devices connected`);
      await Promise.race([options.eventsPerDevice === undefined ? new Promise<never>(() => {}) : fleet.done(), stopped]);
    }
  } catch (err) {
    const e = err as Error;
    log(`device-sim: ${e instanceof CityError ? `${e.code}: ` : ''}${e.message}`);
    code = 1;
  }
  if (ticker !== undefined) clearInterval(ticker);
  // A hung broker must not keep the process: stop() has its own deadlines, this is the last resort.
  const deadline = setTimeout(() => {
    log('stop did not finish in time');
    process.exit(1);
  }, fleet.options.stopTimeoutMs + 10_000);
  deadline.unref();
  await fleet.stop();
  const stats = fleet.stats();
  progress();
  if (json) process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
  if (code === 0 && options.eventsPerDevice !== undefined && !signalled && !stats.done) code = 1;
  return code;
}

process.exitCode = await main();

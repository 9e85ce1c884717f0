// One gateway's share of the city's devices in a process of its own (a city of several gateways runs
// one per gateway, so the simulators spread over the machine's cores as the gateways do). Options come
// as one JSON argument; the fleet's stats go to stdout as one JSON line a second, and once more, final,
// after SIGTERM/SIGINT has stopped the fleet (outstanding PUBACKs awaited). Started with an IPC channel,
// it also stops when its parent goes away (the parent dying by kill -9 leaves no devices behind).
//   node deploy/city/fleet-child.ts '{"url":"mqtt://127.0.0.1:1884", …FleetOptions}'
import { closeOnSignals, runMain } from '@city/protocol';
import { createFleet, type FleetOptions } from '@city/device-sim';
import { cityErrors } from './errors.ts';

const STATS_EVERY_MS = 1_000;

async function main(): Promise<number> {
  const text = process.argv[2];
  if (text === undefined) throw cityErrors.create('CITY_USAGE', 'fleet-child.ts needs the fleet options as one JSON argument');
  let options: FleetOptions;
  try {
    options = JSON.parse(text) as FleetOptions;
  } catch (err) {
    throw cityErrors.create('CITY_INVALID_OPTIONS', `fleet options are not JSON: ${(err as Error).message}`);
  }
  const fleet = createFleet(options);
  const report = (final: boolean) => {
    const s = fleet.stats();
    const line = {
      final,
      devices: s.devices,
      connected: s.connected,
      published: s.published,
      acknowledged: s.acknowledged,
      invalidPublished: s.invalidPublished,
      invalidAcknowledged: s.invalidAcknowledged,
      inFlight: s.inFlight,
      errors: s.errors,
      reconnects: s.reconnects,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const ticker = setInterval(() => report(false), STATS_EVERY_MS);
  let stopping = false;
  const stop = async () => {
    stopping = true;
    clearInterval(ticker);
    await fleet.stop();
    report(true);
  };
  const stopped = closeOnSignals(stop, () => undefined);
  const orphaned = new Promise<number>((done) =>
    process.once('disconnect', () => {
      if (!stopping) stop().then(() => done(0), () => done(1));
    }),
  );
  try {
    await fleet.start();
  } catch (err) {
    // Devices still connecting when a stop came: the stop is what counts.
    if (!stopping) throw err;
  }
  return Promise.race([stopped, orphaned]);
}

const code = await runMain('city fleet', main, 'usage: node deploy/city/fleet-child.ts OPTIONS-JSON');
process.exit(code);

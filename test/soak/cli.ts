// `npm run soak -- --minutes 10 --devices 500 [--rate 1] [--seed N]`: the long offline-buffer soak.
// Exits 1 when an acknowledged event is missing from Kafka, 2 for a bad flag.
import { defineErrors, parseCommandLine, runMain } from '@city/protocol';
import { formatReport, runSoak } from './harness.ts';

const USAGE = `usage: npm run soak -- [--minutes M] [--devices N] [--rate R] [--seed S]
  Kafka outages (drop and blackhole) and kill -9 of the gateway under a device fleet; every acknowledged
  event must reach Kafka (exit 1 if one is lost)
  --minutes M   length of the fault phase (default 10, at least 0.5)
  --devices N   simulated devices (default 500, at least 7)
  --rate R      events per second per device (default 1)
  --seed S      replays a fault schedule and fleet (default: the clock; printed at the start)`;

// A test tool's only error of its own: a bad flag (exit 2).
const soakErrors = defineErrors('SOAK', {
  SOAK_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: 'see npm run soak -- --help' },
});
const usageError = (detail: string) => soakErrors.create('SOAK_USAGE', detail);

function number(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n < min) throw usageError(`--${name} must be a number ≥ ${min}, got "${String(value)}"`);
  return n;
}

async function main(): Promise<number> {
  const args = parseCommandLine(
    process.argv.slice(2),
    {
      minutes: { type: 'string', default: '10' },
      devices: { type: 'string', default: '500' },
      rate: { type: 'string', default: '1' },
      seed: { type: 'string' },
    },
    { usage: USAGE, usageError },
  );
  if (!args) return 0;
  const { values } = args;
  const seed = values.seed === undefined ? Date.now() : number('seed', values.seed, 0);
  const options = { minutes: number('minutes', values.minutes, 0.5), devices: number('devices', values.devices, 7), ratePerDevice: number('rate', values.rate, 0.01), seed };
  process.stderr.write(`[soak] seed ${seed}\n`);
  const report = await runSoak(options);
  process.stdout.write(`${formatReport(report)}\n`);
  return report.lost === 0 ? 0 : 1;
}

const code = await runMain('soak', main, USAGE);
// Straight out: a broker or gateway left behind by a failed run must not hold the process.
process.exit(code);

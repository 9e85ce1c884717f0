// `npm run soak -- --minutes 10 --devices 500 [--rate 1] [--seed N]`: the long offline-buffer soak.
// Exits 1 when an acknowledged event is missing from Kafka.
import { parseArgs } from 'node:util';
import { formatReport, runSoak } from './harness.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    devices: { type: 'string', default: '500' },
    rate: { type: 'string', default: '1' },
    seed: { type: 'string' },
  },
});
const number = (name: string, value: string | undefined, min: number): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`soak: --${name} must be a number ≥ ${min}, got "${String(value)}"\n`);
    process.exit(2);
  }
  return n;
};
const seed = values.seed === undefined ? Date.now() : number('seed', values.seed, 0);
process.stderr.write(`[soak] seed ${seed}\n`);
const report = await runSoak({
  minutes: number('minutes', values.minutes, 0.5),
  devices: number('devices', values.devices, 7),
  ratePerDevice: number('rate', values.rate, 0.01),
  seed,
});
process.stdout.write(`${formatReport(report)}\n`);
process.exit(report.lost === 0 ? 0 : 1);

// Command-line flags of the simulator, parsed into FleetOptions (kept apart from cli.ts so it can be
// tested without starting a process).
import { parseCommandLine, parseEventTime } from '@city/protocol';
import { SIM_KINDS, type SimKind } from './device.ts';
import { simErrors } from './errors.ts';
import { DEFAULT_FLEET, resolveFleetOptions, type FleetOptions } from './fleet-options.ts';
import { isInvalidDefect, INVALID_DEFECTS, type InvalidDefect } from './invalid.ts';

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883';

/** --air-quality for air_quality, and so on. */
const kindFlag = (kind: SimKind) => kind.replaceAll('_', '-');

export const USAGE = `Usage: npm run sim -- [flags]

Simulated city devices publishing to an MQTT broker (QoS 1, one client per device).

  --url URL                 broker (default ${DEFAULT_URL})
  --seed N                  same seed, same events (default 1)
  --devices N               fleet size, spread over all kinds (default ${Object.values(DEFAULT_FLEET).reduce((a, b) => a + b, 0)})
${SIM_KINDS.map((k) => `  --${kindFlag(k)} N`.padEnd(28) + `devices of kind ${k} (overrides --devices for it)`).join('\n')}
  --rate R                  events per second per device (default 1; 0 = as fast as acknowledged)
  --events-per-device N     stop each device after N valid events, then exit
  --invalid-rate F          fraction of publishes that are deliberately invalid (0..0.9)
  --invalid-count N         exactly N invalid payloads across the fleet
  --defects LIST            comma-separated, from: ${INVALID_DEFECTS.join(', ')}
  --start-time TIME         simulate event times from TIME (RFC 3339 with offset, or epoch ms)
  --prefix STR              device id prefix (default sim)
  --concurrency N           devices connecting at once (default 50)
  --max-inflight N          unacknowledged publishes per device (default 10)
  --username U, --password P
  --stats-interval S        seconds between progress lines, 0 for none (default 5)
  --json                    print the final stats as JSON
  -h, --help
`;

export interface CliConfig {
  options: FleetOptions;
  statsIntervalMs: number;
  json: boolean;
}

/** `{ help: true }` when --help was given (the usage is already printed). */
export type CliParse = { help: true } | ({ help: false } & CliConfig);

function bad(message: string): never {
  throw simErrors.create('SIM_BAD_FLAG', message);
}

function num(flag: string, value: string | undefined, { min, max, int }: { min: number; max: number; int: boolean }): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) bad(`--${flag} must be a number, got "${value}"`);
  if (int && !Number.isInteger(n)) bad(`--${flag} must be a whole number, got "${value}"`);
  if (n < min || n > max) bad(`--${flag} must be between ${min} and ${max}, got ${value}`);
  return n;
}

/** Spreads `total` devices over the kinds in the default fleet's proportions, at least one each when possible. */
export function spreadDevices(total: number): Record<SimKind, number> {
  const out = Object.fromEntries(SIM_KINDS.map((k) => [k, 0])) as Record<SimKind, number>;
  let left = total;
  if (total >= SIM_KINDS.length) {
    for (const k of SIM_KINDS) out[k] = 1;
    left -= SIM_KINDS.length;
  }
  const weight = SIM_KINDS.reduce((n, k) => n + DEFAULT_FLEET[k], 0);
  const shares = SIM_KINDS.map((k) => ({ k, exact: (left * DEFAULT_FLEET[k]) / weight }));
  let given = 0;
  for (const s of shares) {
    out[s.k] += Math.floor(s.exact);
    given += Math.floor(s.exact);
  }
  // Largest remainders take what rounding left over.
  shares.sort((a, b) => b.exact - Math.floor(b.exact) - (a.exact - Math.floor(a.exact)));
  for (let i = 0; i < left - given; i++) out[(shares[i] as { k: SimKind }).k]++;
  return out;
}

/** Parses the simulator's flags; `out` receives the usage for --help (stdout by default). */
export function parseCliArgs(argv: readonly string[], out?: (text: string) => void): CliParse {
  const kindOptions = Object.fromEntries(SIM_KINDS.map((k) => [kindFlag(k), { type: 'string' as const }]));
  // parseArgs explains unknown flags and missing values well; its words become SIM_BAD_FLAG.
  const parsed = parseCommandLine(
    argv,
    {
      url: { type: 'string' },
      seed: { type: 'string' },
      devices: { type: 'string' },
      ...kindOptions,
      rate: { type: 'string' },
      'events-per-device': { type: 'string' },
      'invalid-rate': { type: 'string' },
      'invalid-count': { type: 'string' },
      defects: { type: 'string' },
      'start-time': { type: 'string' },
      prefix: { type: 'string' },
      concurrency: { type: 'string' },
      'max-inflight': { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      'stats-interval': { type: 'string' },
      json: { type: 'boolean' },
    },
    { usage: USAGE, usageError: (detail) => simErrors.create('SIM_BAD_FLAG', detail), ...(out === undefined ? {} : { out }) },
  );
  if (parsed === undefined) return { help: true };
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const str = (name: string) => values[name] as string | undefined;

  const total = num('devices', str('devices'), { min: 0, max: 100_000, int: true });
  let devices: Partial<Record<SimKind, number>> | undefined = total === undefined ? undefined : spreadDevices(total);
  for (const kind of SIM_KINDS) {
    const n = num(kindFlag(kind), str(kindFlag(kind)), { min: 0, max: 100_000, int: true });
    if (n !== undefined) devices = { ...(devices ?? { ...DEFAULT_FLEET }), [kind]: n };
  }

  const invalidRate = num('invalid-rate', str('invalid-rate'), { min: 0, max: 0.9, int: false });
  const invalidCount = num('invalid-count', str('invalid-count'), { min: 0, max: Number.MAX_SAFE_INTEGER, int: true });
  if (invalidRate !== undefined && invalidCount !== undefined) bad('give --invalid-rate or --invalid-count, not both');
  let defects: InvalidDefect[] | undefined;
  const defectList = str('defects');
  if (defectList !== undefined) {
    defects = [];
    for (const d of defectList.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
      if (!isInvalidDefect(d)) bad(`--defects: unknown defect "${d}"; known: ${INVALID_DEFECTS.join(', ')}`);
      if (!defects.includes(d)) defects.push(d);
    }
    if (defects.length === 0) bad('--defects needs at least one defect');
  }

  let startTime: number | undefined;
  const start = str('start-time');
  if (start !== undefined) {
    const parsed = parseEventTime(/^\d+$/.test(start) ? Number(start) : start);
    if ('error' in parsed) bad(`--start-time "${start}" ${parsed.error}`);
    startTime = parsed.ms;
  }

  const options: FleetOptions = {
    url: str('url') ?? DEFAULT_URL,
    ...opt('seed', num('seed', str('seed'), { min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, int: true })),
    ...opt('devices', devices),
    ...opt('ratePerDevice', num('rate', str('rate'), { min: 0, max: 10_000, int: false })),
    ...opt('eventsPerDevice', num('events-per-device', str('events-per-device'), { min: 0, max: Number.MAX_SAFE_INTEGER, int: true })),
    ...(invalidRate === undefined && invalidCount === undefined && defects === undefined
      ? {}
      : { invalid: { ...opt('rate', invalidRate), ...opt('count', invalidCount), ...opt('defects', defects) } }),
    ...opt('startTime', startTime),
    ...opt('deviceIdPrefix', str('prefix')),
    ...opt('connectConcurrency', num('concurrency', str('concurrency'), { min: 1, max: 100_000, int: true })),
    ...opt('maxInflightPerDevice', num('max-inflight', str('max-inflight'), { min: 1, max: 65_535, int: true })),
    ...opt('username', str('username')),
    ...opt('password', str('password')),
  };
  // Same checks as the fleet applies, reported as a flag problem.
  try {
    resolveFleetOptions(options);
  } catch (err) {
    bad((err as Error).message);
  }
  const statsInterval = num('stats-interval', str('stats-interval'), { min: 0, max: 86_400, int: false }) ?? 5;
  return { help: false, options, statsIntervalMs: statsInterval * 1000, json: values.json === true };
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

// Process entry of the sink: `run` consumes Kafka into the lake until SIGINT/SIGTERM, `query` runs SQL
// over the lake. The library API lives in index.ts; this file only wires arguments, output and signals.
import { parseArgs } from 'node:util';
import { CityError, kafkaTopicSet } from '@city/protocol';
import { cloudErrors, errorMessage } from './errors.ts';
import { jsonLog, type LogLevel } from './log.ts';
import { openLake, type LakeValue, type QueryResult } from './query.ts';
import { createSink } from './sink.ts';

const USAGE = `usage:
  sink run --brokers HOST:PORT[,HOST:PORT…] --lake DIR [--group G] [--client-id ID]
           [--topic-suffix S] [--max-rows N] [--max-age-ms MS] [--session-timeout-ms MS] [--close-timeout-ms MS]
           [--log-level debug|info|warn|error]
      brokers default to $KAFKA_BROKERS; --topic-suffix reads the topics named <standard>.<S>
  sink query --lake DIR ["SQL"]
      without SQL: row counts per table
      tables: vehicle, gps, weather, air_quality, traffic_camera, emergency, phone, gateway_health, deadletter`;

const EXIT_USAGE = 2;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest);
      case 'query':
        return await queryCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? EXIT_USAGE : 0;
      default:
        throw cloudErrors.create('CLD_USAGE', `unknown command "${command}"`);
    }
  } catch (err) {
    const code = err instanceof CityError ? err.code : 'ERROR';
    process.stderr.write(`error ${code}: ${errorMessage(err)}\n`);
    if (code === 'CLD_USAGE') {
      process.stderr.write(`${USAGE}\n`);
      return EXIT_USAGE;
    }
    return 1;
  }
}

/** Runs node's parseArgs, turning its errors (unknown flag, missing value) into usage errors. */
function parse<T>(parser: () => T): T {
  try {
    return parser();
  } catch (err) {
    throw cloudErrors.create('CLD_USAGE', errorMessage(err));
  }
}

function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw cloudErrors.create('CLD_USAGE', `--${flag} must be a positive integer`);
  return Number(value);
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

async function runCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(() =>
    parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        brokers: { type: 'string' },
        lake: { type: 'string' },
        group: { type: 'string' },
        'client-id': { type: 'string' },
        'topic-suffix': { type: 'string' },
        'max-rows': { type: 'string' },
        'max-age-ms': { type: 'string' },
        'session-timeout-ms': { type: 'string' },
        'close-timeout-ms': { type: 'string' },
        'log-level': { type: 'string' },
      },
    }),
  );
  if (positionals.length > 0) throw cloudErrors.create('CLD_USAGE', `unexpected argument "${positionals[0]}"`);
  const brokersText = values.brokers ?? process.env.KAFKA_BROKERS;
  if (brokersText === undefined || brokersText.trim() === '') {
    throw cloudErrors.create('CLD_USAGE', '--brokers is required (or set KAFKA_BROKERS)');
  }
  const lakeDir = values.lake;
  if (lakeDir === undefined) throw cloudErrors.create('CLD_USAGE', '--lake is required');
  const level = values['log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(level as LogLevel)) throw cloudErrors.create('CLD_USAGE', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const log = jsonLog(level as LogLevel);

  let sink;
  try {
    sink = createSink({
      brokers: brokersText.split(',').map((b) => b.trim()).filter((b) => b !== ''),
      lakeDir,
      groupId: values.group,
      clientId: values['client-id'],
      topics: values['topic-suffix'] === undefined ? undefined : kafkaTopicSet(values['topic-suffix']),
      maxRows: integerFlag(values['max-rows'], 'max-rows'),
      maxAgeMs: integerFlag(values['max-age-ms'], 'max-age-ms'),
      sessionTimeoutMs: integerFlag(values['session-timeout-ms'], 'session-timeout-ms'),
      closeTimeoutMs: integerFlag(values['close-timeout-ms'], 'close-timeout-ms'),
      log,
    });
  } catch (err) {
    // Bad option values are a usage problem at the command line.
    if (err instanceof CityError && err.code === 'CLD_INVALID_OPTIONS') throw cloudErrors.create('CLD_USAGE', err.message);
    throw err;
  }

  const stopped = new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        // A second signal means "now": uncommitted records are read again next time.
        log('warn', 'second signal, exiting without waiting', { signal });
        process.exit(130);
      }
      log('info', 'stopping', { signal });
      sink.close().then(
        () => resolve(0),
        (err: unknown) => {
          log('error', 'close failed', { error: err });
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    sink.on('crash', ({ restart }) => {
      if (!restart) {
        log('error', 'consumer will not restart, shutting down');
        sink.close().then(() => resolve(1), () => resolve(1));
      }
    });
  });
  await sink.start();
  return stopped;
}

async function queryCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(() =>
    parseArgs({ args: [...args], allowPositionals: true, strict: true, options: { lake: { type: 'string' } } }),
  );
  const lakeDir = values.lake;
  if (lakeDir === undefined) throw cloudErrors.create('CLD_USAGE', '--lake is required');
  if (positionals.length > 1) throw cloudErrors.create('CLD_USAGE', 'give the SQL as one argument (quote it)');
  const sql = positionals[0];
  const lake = await openLake(lakeDir);
  try {
    if (sql === undefined || sql.trim() === '') {
      const counts = await lake.counts();
      process.stdout.write(formatTable({ columns: ['table', 'rows'], rows: counts.map((c) => ({ table: c.table, rows: c.rows })) }));
    } else {
      process.stdout.write(formatTable(await lake.query(sql)));
    }
    return 0;
  } finally {
    lake.close();
  }
}

/** An aligned text table; numbers right-aligned, NULL shown as NULL. */
export function formatTable(result: QueryResult): string {
  const cell = (v: LakeValue | undefined): string =>
    v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const cells = result.rows.map((row) => result.columns.map((c) => cell(row[c]).replace(/[\r\n\t]/g, ' ')));
  const numeric = result.columns.map(
    (c) => result.rows.some((r) => typeof r[c] === 'number') && result.rows.every((r) => typeof r[c] === 'number' || r[c] === null),
  );
  const widths = result.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number)))
      .join(' | ')
      .trimEnd();
  const out = [line(result.columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line)];
  out.push(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})`);
  return `${out.join('\n')}\n`;
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
}

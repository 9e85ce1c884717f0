// Process entry of the sink: `run` consumes Kafka into the lake until SIGINT/SIGTERM, `query` runs SQL
// over the lake. The library API lives in index.ts; this file only wires arguments, output and signals.
import { parseArgs } from 'node:util';
import { CityError, kafkaTopicSet } from '@city/protocol';
import { COMPACT_USAGE, compactCommand } from './cli-compact.ts';
import { cloudErrors, errorMessage } from './errors.ts';
import { jsonLog, type LogLevel } from './log.ts';
import { createAthenaEngine } from './athena.ts';
import { createCatalog, type CatalogPort } from './catalog.ts';
import { NAMED_QUERIES, namedQuerySql, type QueryEngineName } from './queries.ts';
import { objectSource, openLake, syncLakeCache, type LakeValue, type QueryResult } from './query.ts';
import { createS3Store } from './s3-store.ts';
import { createSink } from './sink.ts';
import type { ObjectStore } from './store.ts';

const USAGE = `usage:
  sink run --brokers HOST:PORT[,HOST:PORT…] --lake DIR [--group G] [--client-id ID]
           [--topic-suffix S] [--max-rows N] [--max-age-ms MS] [--session-timeout-ms MS] [--close-timeout-ms MS]
           [--log-level debug|info|warn|error] [--max-bytes N] [--max-span-ms MS] [--no-raw]
           [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL]]
      brokers default to $KAFKA_BROKERS; --topic-suffix reads the topics named <standard>.<S>
      with --s3-bucket the lake is written to S3 (--lake not needed); credentials come from the AWS
      SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, instance role);
      --s3-endpoint names an S3-compatible store; --no-raw writes only the curated and dead-letter zones
           [--catalog local|glue [--glue-database DB] [--glue-region R] [--glue-projection-from YYYY-MM-DD]]
      --catalog registers tables and partitions before offsets are committed: local writes
      DIR/_catalog/catalog.json, glue (lake on S3) the Glue database DB (projection: Athena partition projection)
  sink query --lake DIR ["SQL"]
      without SQL: row counts per table
      [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL]]: query the S3 lake through
      DIR as a local cache (objects mirrored first; DuckDB here cannot read s3:// itself)
      tables: vehicle, gps, weather, air_quality, traffic_camera, emergency, phone, gateway_health, deadletter
  sink query --list
  sink query --named NAME [--param K=V]… [--engine duckdb|athena] [--lake DIR] [--print-sql]
      athena: --workgroup WG --database DB [--region R] [--output-location s3://…]
      (or $ATHENA_WORKGROUP, $ATHENA_DATABASE); credentials from the AWS SDK's default chain
${COMPACT_USAGE}`;

const EXIT_USAGE = 2;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await runCommand(rest);
      case 'query':
        return await queryCommand(rest);
      case 'compact':
        return await compactCommand(rest);
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

/** The --s3-* flags of `run` and `query`. */
const S3_FLAGS = {
  's3-bucket': { type: 'string' },
  's3-prefix': { type: 'string' },
  's3-region': { type: 'string' },
  's3-endpoint': { type: 'string' },
} as const;

type S3FlagValues = { 's3-bucket'?: string; 's3-prefix'?: string; 's3-region'?: string; 's3-endpoint'?: string };

/** The S3 store the flags name, or undefined without --s3-bucket; bad flags are usage errors. */
function s3StoreFromFlags(values: S3FlagValues): ObjectStore | undefined {
  const bucket = values['s3-bucket'];
  if (bucket === undefined) {
    if ((values['s3-prefix'] ?? values['s3-region'] ?? values['s3-endpoint']) !== undefined) {
      throw cloudErrors.create('CLD_USAGE', '--s3-prefix, --s3-region and --s3-endpoint need --s3-bucket');
    }
    return undefined;
  }
  try {
    return createS3Store({ bucket, prefix: values['s3-prefix'], region: values['s3-region'], endpoint: values['s3-endpoint'] });
  } catch (err) {
    if (err instanceof CityError && err.code === 'CLD_INVALID_OPTIONS') throw cloudErrors.create('CLD_USAGE', err.message);
    throw err;
  }
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
        'max-bytes': { type: 'string' },
        'max-span-ms': { type: 'string' },
        'no-raw': { type: 'boolean' },
        ...S3_FLAGS,
        catalog: { type: 'string' },
        'glue-database': { type: 'string' },
        'glue-region': { type: 'string' },
        'glue-projection-from': { type: 'string' },
      },
    }),
  );
  if (positionals.length > 0) throw cloudErrors.create('CLD_USAGE', `unexpected argument "${positionals[0]}"`);
  const bucket = values['s3-bucket'];
  const s3 = s3StoreFromFlags(values);
  const brokersText = values.brokers ?? process.env.KAFKA_BROKERS;
  if (brokersText === undefined || brokersText.trim() === '') {
    throw cloudErrors.create('CLD_USAGE', '--brokers is required (or set KAFKA_BROKERS)');
  }
  const lakeDir = values.lake ?? (bucket === undefined ? undefined : `s3://${bucket}/${values['s3-prefix'] ?? ''}`);
  if (lakeDir === undefined) throw cloudErrors.create('CLD_USAGE', '--lake (or --s3-bucket) is required');
  const level = values['log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(level as LogLevel)) throw cloudErrors.create('CLD_USAGE', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const log = jsonLog(level as LogLevel);

  let sink;
  let catalog: CatalogPort | undefined;
  try {
    catalog = catalogFromFlags(values, lakeDir, bucket);
    sink = createSink({
      store: s3,
      catalog,
      maxBytes: integerFlag(values['max-bytes'], 'max-bytes'),
      maxSpanMs: integerFlag(values['max-span-ms'], 'max-span-ms'),
      rawZone: values['no-raw'] === true ? false : undefined,
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
  try {
    await sink.start();
    return await stopped;
  } finally {
    // The sink does not own the catalog: close it once the sink is done with it.
    await catalog?.close();
  }
}

/** `--catalog local|glue` for `run`: where the sink registers tables and partitions (none without it). */
function catalogFromFlags(
  values: { catalog?: string; 'glue-database'?: string; 'glue-region'?: string; 'glue-projection-from'?: string; 's3-prefix'?: string; 's3-region'?: string },
  lakeDir: string,
  bucket: string | undefined,
): CatalogPort | undefined {
  const glueFlags = values['glue-database'] ?? values['glue-region'] ?? values['glue-projection-from'];
  if (values.catalog === undefined) {
    if (glueFlags !== undefined) throw cloudErrors.create('CLD_USAGE', '--glue-* flags need --catalog glue');
    return undefined;
  }
  if (values.catalog === 'local') {
    if (bucket !== undefined) throw cloudErrors.create('CLD_USAGE', '--catalog local keeps the catalog beside a local lake; with --s3-bucket use --catalog glue');
    if (glueFlags !== undefined) throw cloudErrors.create('CLD_USAGE', '--glue-* flags need --catalog glue');
    return createCatalog({ type: 'local', lakeDir });
  }
  if (values.catalog !== 'glue') throw cloudErrors.create('CLD_USAGE', '--catalog must be local or glue');
  if (bucket === undefined) throw cloudErrors.create('CLD_USAGE', '--catalog glue needs the lake on S3 (--s3-bucket)');
  const database = values['glue-database'];
  if (database === undefined) throw cloudErrors.create('CLD_USAGE', '--catalog glue needs --glue-database');
  const from = values['glue-projection-from'];
  if (from !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(from)) throw cloudErrors.create('CLD_USAGE', '--glue-projection-from must be YYYY-MM-DD');
  const prefix = values['s3-prefix'] ?? '';
  return createCatalog({
    type: 'glue',
    database,
    s3Root: `s3://${bucket}/${prefix === '' ? '' : `${prefix}/`}`,
    region: values['glue-region'] ?? values['s3-region'],
    projection: from === undefined ? undefined : { enabled: true, dateRange: `${from},NOW` },
  });
}

async function queryCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(() =>
    parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        lake: { type: 'string' },
        list: { type: 'boolean' },
        named: { type: 'string' },
        param: { type: 'string', multiple: true },
        engine: { type: 'string' },
        'print-sql': { type: 'boolean' },
        ...S3_FLAGS,
        workgroup: { type: 'string' },
        database: { type: 'string' },
        region: { type: 'string' },
        'output-location': { type: 'string' },
      },
    }),
  );
  if (values.list === true) {
    const rows = NAMED_QUERIES.map((q) => ({
      name: q.name,
      params: q.params.map((p) => `${p.name} (${p.description}, default ${p.default})`).join('; '),
      description: q.description,
    }));
    process.stdout.write(formatTable({ columns: ['name', 'description', 'params'], rows }));
    return 0;
  }
  const engine = values.engine ?? 'duckdb';
  if (engine !== 'duckdb' && engine !== 'athena') throw cloudErrors.create('CLD_USAGE', '--engine must be duckdb or athena');
  if (positionals.length > 1) throw cloudErrors.create('CLD_USAGE', 'give the SQL as one argument (quote it)');
  if (values.named !== undefined && positionals.length > 0) throw cloudErrors.create('CLD_USAGE', 'give either --named or SQL, not both');
  if (values.named === undefined && (values.param !== undefined || values['print-sql'] === true)) {
    throw cloudErrors.create('CLD_USAGE', '--param and --print-sql go with --named');
  }
  const params: Record<string, string> = {};
  for (const pair of values.param ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw cloudErrors.create('CLD_USAGE', `--param ${pair}: expected NAME=VALUE`);
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let sql = positionals[0];
  if (values.named !== undefined) {
    try {
      sql = namedQuerySql(values.named, engine as QueryEngineName, params);
    } catch (err) {
      // An unknown name or a bad --param is a usage problem at the command line.
      if (err instanceof CityError && err.code === 'CLD_NAMED_QUERY') throw cloudErrors.create('CLD_USAGE', err.message);
      throw err;
    }
    if (values['print-sql'] === true) {
      process.stdout.write(`${sql}\n`);
      return 0;
    }
  }
  if (engine === 'athena') return athenaQuery(sql, values);

  const lakeDir = values.lake;
  if (lakeDir === undefined) throw cloudErrors.create('CLD_USAGE', '--lake is required');
  const store = s3StoreFromFlags(values);
  if (store !== undefined) {
    // DuckDB here has no httpfs: mirror the S3 lake into the --lake folder, then query the copy.
    try {
      const sync = await syncLakeCache(objectSource(store), lakeDir);
      process.stderr.write(`cache ${lakeDir}: ${sync.downloaded} downloaded, ${sync.kept} kept, ${sync.removed} removed\n`);
    } finally {
      await store.close();
    }
  }
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

async function athenaQuery(
  sql: string | undefined,
  values: { workgroup?: string; database?: string; region?: string; 'output-location'?: string },
): Promise<number> {
  if (sql === undefined || sql.trim() === '') throw cloudErrors.create('CLD_USAGE', 'athena needs --named NAME or SQL');
  const workGroup = values.workgroup ?? process.env.ATHENA_WORKGROUP;
  const database = values.database ?? process.env.ATHENA_DATABASE;
  if (workGroup === undefined || database === undefined) {
    throw cloudErrors.create('CLD_USAGE', '--engine athena needs --workgroup and --database (or $ATHENA_WORKGROUP, $ATHENA_DATABASE)');
  }
  let athena;
  try {
    athena = createAthenaEngine({ workGroup, database, region: values.region, outputLocation: values['output-location'] });
  } catch (err) {
    if (err instanceof CityError && err.code === 'CLD_INVALID_OPTIONS') throw cloudErrors.create('CLD_USAGE', err.message);
    throw err;
  }
  try {
    const result = await athena.query(sql);
    process.stdout.write(formatTable(result));
    process.stderr.write(`athena query ${result.queryExecutionId}: ${result.dataScannedBytes} bytes scanned\n`);
    return 0;
  } finally {
    await athena.close();
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

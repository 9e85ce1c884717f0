// `sink run`: consumes Kafka into the lake until SIGINT/SIGTERM (or a consumer crash it cannot recover from).
import { closeOnSignals, kafkaSecurityFromEnv, kafkaTopicSet, liveTopicSet } from '@city/protocol';
import { createCatalog, type CatalogPort } from '../ports/catalog/index.ts';
import { createSinkHealthServer } from '../sink/health.ts';
import { createSink } from '../sink/index.ts';
import { brokersFlag, integerFlag, logFlag, parse, reporter, S3_FLAGS, s3StoreFromFlags, usageError } from './flags.ts';
import { RUN_USAGE } from './usage.ts';

export async function runCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
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
      'compact-every-ms': { type: 'string' },
      'compact-target-bytes': { type: 'string' },
      'process-every-ms': { type: 'string' },
      ...S3_FLAGS,
      catalog: { type: 'string' },
      'glue-database': { type: 'string' },
      'glue-region': { type: 'string' },
      'glue-projection-from': { type: 'string' },
      http: { type: 'string' },
      'live-tables': { type: 'boolean' },
    },
    RUN_USAGE,
    true,
  );
  if (parsed === undefined) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
  const bucket = values['s3-bucket'];
  const brokers = brokersFlag(values.brokers);
  const lakeDir = values.lake ?? (bucket === undefined ? undefined : `s3://${bucket}/${values['s3-prefix'] ?? ''}`);
  if (lakeDir === undefined) throw usageError('--lake (or --s3-bucket) is required');
  const log = logFlag(values['log-level']);
  const http = httpFlag(values.http);

  const store = await s3StoreFromFlags(values);
  const catalog = catalogFromFlags(values, lakeDir, bucket);
  try {
    const sink = createSink({
      store,
      catalog,
      brokers,
      security: kafkaSecurityFromEnv(process.env),
      lakeDir,
      groupId: values.group,
      clientId: values['client-id'],
      topics: values['topic-suffix'] === undefined ? undefined : kafkaTopicSet(values['topic-suffix']),
      maxRows: integerFlag(values['max-rows'], 'max-rows'),
      maxBytes: integerFlag(values['max-bytes'], 'max-bytes'),
      maxSpanMs: integerFlag(values['max-span-ms'], 'max-span-ms'),
      maxAgeMs: integerFlag(values['max-age-ms'], 'max-age-ms'),
      sessionTimeoutMs: integerFlag(values['session-timeout-ms'], 'session-timeout-ms'),
      closeTimeoutMs: integerFlag(values['close-timeout-ms'], 'close-timeout-ms'),
      compactEveryMs: integerFlag(values['compact-every-ms'], 'compact-every-ms'),
      compactTargetBytes: integerFlag(values['compact-target-bytes'], 'compact-target-bytes'),
      rawZone: values['no-raw'] === true ? false : undefined,
      ...(values['live-tables'] === true ? { liveTopics: liveSinkTopics(values['topic-suffix']) } : {}),
      log,
    });
    const processEvery = integerFlag(values['process-every-ms'], 'process-every-ms');
    if (processEvery !== undefined && processEvery > 0 && bucket !== undefined) throw usageError('--process-every-ms builds a local lake; on S3 run sink process --engine athena');
    const schedule =
      processEvery === undefined || processEvery === 0
        ? undefined
        : (await import('../processing/schedule.ts')).createProcessingSchedule({ lakeDir, everyMs: processEvery, log });
    // Listening before the start, so a health check sees "starting" rather than nothing.
    const health = http === undefined ? undefined : createSinkHealthServer({ ...http, sink });
    const close = async () => {
      await schedule?.close();
      await sink.close().finally(() => health?.close());
    };
    const crashed = new Promise<number>((resolve) => {
      sink.on('crash', ({ restart }) => {
        if (restart) return;
        log('error', 'consumer will not restart, shutting down');
        close().then(
          () => resolve(1),
          () => resolve(1),
        );
      });
    });
    if (health !== undefined) log('info', 'health listening', await health.start());
    const stopped = closeOnSignals(close, reporter(log));
    await sink.start().catch(async (err: unknown) => {
      await health?.close();
      throw err;
    });
    schedule?.start();
    return await Promise.race([stopped, crashed]);
  } finally {
    // The sink does not own the catalog: close it once the sink is done with it.
    await catalog?.close();
  }
}

/** `--http [HOST:]PORT`: where /healthz listens (none without it; the host defaults to 127.0.0.1). */
function httpFlag(value: string | undefined): { host: string; port: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw usageError(`--http must be [HOST:]PORT, got "${value}"`);
  return { host: m[1]?.replace(/^\[(.*)\]$/, '$1') ?? '127.0.0.1', port };
}

/** `--catalog local|glue` for `run`: where the sink registers tables and partitions (none without it). */
function catalogFromFlags(
  values: { catalog?: string | undefined; 'glue-database'?: string | undefined; 'glue-region'?: string | undefined; 'glue-projection-from'?: string | undefined; 's3-prefix'?: string | undefined; 's3-region'?: string | undefined },
  lakeDir: string,
  bucket: string | undefined,
): CatalogPort | undefined {
  const glueFlags = values['glue-database'] ?? values['glue-region'] ?? values['glue-projection-from'];
  if (values.catalog === undefined) {
    if (glueFlags !== undefined) throw usageError('--glue-* flags need --catalog glue');
    return undefined;
  }
  if (values.catalog === 'local') {
    if (bucket !== undefined) throw usageError('--catalog local keeps the catalog beside a local lake; with --s3-bucket use --catalog glue');
    if (glueFlags !== undefined) throw usageError('--glue-* flags need --catalog glue');
    return createCatalog({ type: 'local', lakeDir });
  }
  if (values.catalog !== 'glue') throw usageError('--catalog must be local or glue');
  if (bucket === undefined) throw usageError('--catalog glue needs the lake on S3 (--s3-bucket)');
  const database = values['glue-database'];
  if (database === undefined) throw usageError('--catalog glue needs --glue-database');
  const from = values['glue-projection-from'];
  if (from !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(from)) throw usageError('--glue-projection-from must be YYYY-MM-DD');
  const prefix = values['s3-prefix'] ?? '';
  return createCatalog({
    type: 'glue',
    database,
    s3Root: `s3://${bucket}/${prefix === '' ? '' : `${prefix}/`}`,
    region: values['glue-region'] ?? values['s3-region'],
    projection: from === undefined ? undefined : { enabled: true, dateRange: `${from},NOW` },
  });
}

/** The live engine's KPI and alert topics (not its internal partials). */
function liveSinkTopics(suffix: string | undefined): { kpi: string; alerts: string } {
  const { kpi, alerts } = liveTopicSet(suffix);
  return { kpi, alerts };
}

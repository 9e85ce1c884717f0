// `sink process`: builds the processed zone once (all tables, one, a date range, or everything again
// with --rebuild). Locally DuckDB over the lake with the local catalog; with --engine athena the same
// SQL runs as Athena UNLOADs and partitions are switched in Glue. One line per partition built.
import { jsonLog } from '@city/protocol';
import { PROCESSED_TABLES, type ProcessedTableName } from '../processing/definitions.ts';
import { integerFlag, parse, S3_FLAGS, s3StoreFromFlags, usageError } from './flags.ts';
import { PROCESS_USAGE } from './usage.ts';

export async function processCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      lake: { type: 'string' },
      table: { type: 'string', multiple: true },
      from: { type: 'string' },
      to: { type: 'string' },
      rebuild: { type: 'boolean' },
      'grace-ms': { type: 'string' },
      'every-ms': { type: 'string' },
      engine: { type: 'string' },
      ...S3_FLAGS,
      workgroup: { type: 'string' },
      database: { type: 'string' },
      'glue-database': { type: 'string' },
      region: { type: 'string' },
      'output-location': { type: 'string' },
    },
    PROCESS_USAGE,
  );
  if (parsed === undefined) return 0;
  const { values } = parsed;
  const tables: ProcessedTableName[] = [];
  for (const t of values.table ?? []) {
    const known = PROCESSED_TABLES.find((p) => p.name === t);
    if (known === undefined) throw usageError(`--table: unknown processed table "${t}"; known: ${PROCESSED_TABLES.map((p) => p.name).join(', ')}`);
    tables.push(known.name);
  }
  for (const flag of ['from', 'to'] as const) {
    const v = values[flag];
    if (v !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(v)) throw usageError(`--${flag} must be YYYY-MM-DD`);
  }
  const graceMs = integerFlag(values['grace-ms'], 'grace-ms');
  const engineName = values.engine ?? 'duckdb';
  if (engineName !== 'duckdb' && engineName !== 'athena') throw usageError('--engine must be duckdb or athena');

  const everyMs = integerFlag(values['every-ms'], 'every-ms');
  if (everyMs !== undefined) {
    if (engineName !== 'duckdb' || values.lake === undefined) throw usageError('--every-ms builds a local lake: it needs --lake (run it on a schedule with --engine athena from outside)');
    if (values.rebuild === true) throw usageError('--every-ms and --rebuild do not go together: a rebuild is one run');
    return processEvery(values.lake, everyMs, { tables: tables.length > 0 ? tables : undefined, from: values.from, to: values.to, graceMs });
  }

  const { runProcessing } = await import('../processing/job.ts');
  const engines = await import('../processing/engine.ts');
  const log = jsonLog('warn');
  let store;
  let catalog;
  let engine;
  if (engineName === 'duckdb') {
    if (values.lake === undefined) throw usageError('--lake is required');
    const { createLocalFolderStore } = await import('../ports/store/local.ts');
    const { createLocalCatalog } = await import('../ports/catalog/local.ts');
    store = createLocalFolderStore(values.lake);
    catalog = createLocalCatalog(values.lake);
    engine = await engines.createDuckDBProcessing(values.lake, store, catalog);
  } else {
    const bucket = values['s3-bucket'];
    const workGroup = values.workgroup ?? process.env['ATHENA_WORKGROUP'];
    const database = values.database ?? values['glue-database'] ?? process.env['ATHENA_DATABASE'];
    if (bucket === undefined || workGroup === undefined || database === undefined) {
      throw usageError('--engine athena needs --s3-bucket, --workgroup and --database (or $ATHENA_WORKGROUP, $ATHENA_DATABASE)');
    }
    store = await s3StoreFromFlags(values);
    const prefix = values['s3-prefix'] ?? '';
    const s3Root = `s3://${bucket}/${prefix === '' ? '' : `${prefix.replace(/\/$/, '')}/`}`;
    const { createGlueCatalog } = await import('../ports/catalog/glue.ts');
    const { createAthenaEngine } = await import('../ports/query/athena.ts');
    catalog = createGlueCatalog({ database, s3Root, region: values.region ?? values['s3-region'] });
    engine = engines.createAthenaProcessing(
      createAthenaEngine({ workGroup, database, region: values.region ?? values['s3-region'], outputLocation: values['output-location'] }),
      s3Root,
    );
  }
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await runProcessing({
      store: store as NonNullable<typeof store>,
      catalog,
      engine,
      tables: tables.length > 0 ? tables : undefined,
      from: values.from,
      to: values.to,
      rebuild: values.rebuild === true,
      graceMs,
      signal: abort.signal,
      log,
    });
    for (const b of report.built) {
      process.stdout.write(
        `${b.action} ${b.table} ${b.partition.event_date}/${b.partition.event_hour} ${b.final ? 'final' : 'open'} ${b.rows ?? '?'} rows` +
          `${b.lateRows > 0 ? ` (${b.lateRows} late source rows)` : ''} → ${b.location}\n`,
      );
    }
    process.stdout.write(
      `build ${report.build}: ${report.built.length} partitions built, ${report.unchanged} unchanged, ${report.late.partitions} rebuilt for ${report.late.rows} late rows, ` +
        `${report.retired.locations} replaced locations deleted (${report.retired.files} files), ${report.retired.orphans} orphan files deleted` +
        `${abort.signal.aborted ? ', stopped early by a signal' : ''}\n`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await engine.close();
    await catalog.close();
    await store?.close();
  }
}

/** Rounds until SIGINT/SIGTERM, one DuckDB engine kept open across them (processing/schedule.ts); a line per round. */
async function processEvery(
  lake: string,
  everyMs: number,
  scope: { tables: ProcessedTableName[] | undefined; from: string | undefined; to: string | undefined; graceMs: number | undefined },
): Promise<number> {
  const { createProcessingSchedule } = await import('../processing/schedule.ts');
  const schedule = createProcessingSchedule({
    lakeDir: lake,
    everyMs,
    ...(scope.tables === undefined ? {} : { tables: scope.tables }),
    ...(scope.from === undefined ? {} : { from: scope.from }),
    ...(scope.to === undefined ? {} : { to: scope.to }),
    ...(scope.graceMs === undefined ? {} : { graceMs: scope.graceMs }),
    log: jsonLog('warn'),
    processed: (report) => {
      process.stdout.write(
        `${new Date().toISOString()} build ${report.build}: ${report.built.length} partitions built, ${report.unchanged} unchanged, ` +
          `${report.late.partitions} rebuilt for ${report.late.rows} late rows, ${report.retired.locations} replaced locations deleted\n`,
      );
    },
  });
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  // The schedule's timer is unref'd: this keeps the process up until a signal.
  const alive = setInterval(() => undefined, 1 << 30);
  try {
    await schedule.round();
    schedule.start();
    await stopped;
  } finally {
    clearInterval(alive);
    await schedule.close();
  }
  return schedule.stats().errors > 0 && schedule.stats().rounds === 0 ? 1 : 0;
}

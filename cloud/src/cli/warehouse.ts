// `sink warehouse init | load | query | status`: the warehouse beside the lake: PGlite (a folder, the
// default), a PostgreSQL server, or Amazon Redshift through the Data API.
import { isEventKind, sleep, type EventKind } from '@city/protocol';
import type { ObjectStore } from '../ports/store/port.ts';
import type { Warehouse } from '../warehouse/port.ts';
import type { CatalogPartition, CatalogPort } from '../ports/catalog/port.ts';
import { PROCESSED_TABLES, type ProcessedTableName } from '../processing/definitions.ts';
import { integerFlag, logFlag, parse, S3_FLAGS, s3StoreFromFlags, usageError } from './flags.ts';
import { formatTable } from './table.ts';
import { WAREHOUSE_USAGE } from './usage.ts';
import { WAREHOUSE_FLAGS } from './warehouse-flags.ts';

export type WarehouseFlagValues = { [K in keyof typeof WAREHOUSE_FLAGS]?: string | undefined } & { lake?: string | undefined };

/** Opens the warehouse the flags name (PGlite in DIR/_warehouse/pglite by default). */
export async function warehouseFromFlags(values: WarehouseFlagValues): Promise<Warehouse> {
  const type = values.warehouse ?? process.env['WAREHOUSE'] ?? 'pglite';
  const schema = values.schema;
  switch (type) {
    case 'pglite': {
      const dir = values['pglite-dir'] ?? (values.lake === undefined ? undefined : `${values.lake}/_warehouse/pglite`);
      if (dir === undefined) throw usageError('--warehouse pglite needs --pglite-dir or --lake');
      const { createPgliteWarehouse } = await import('../warehouse/pglite.ts');
      return createPgliteWarehouse({ dataDir: dir, ...(schema === undefined ? {} : { schema }) });
    }
    case 'postgres': {
      const url = values['postgres-url'] ?? process.env['WAREHOUSE_POSTGRES_URL'];
      if (url === undefined) throw usageError('--warehouse postgres needs --postgres-url (or $WAREHOUSE_POSTGRES_URL)');
      const { createPostgresWarehouse } = await import('../warehouse/postgres.ts');
      return createPostgresWarehouse({ connectionString: url, ...(schema === undefined ? {} : { schema }) });
    }
    case 'redshift': {
      const database = values.database ?? process.env['REDSHIFT_DATABASE'];
      if (database === undefined) throw usageError('--warehouse redshift needs --database (or $REDSHIFT_DATABASE)');
      const { createRedshiftWarehouse } = await import('../warehouse/redshift.ts');
      return createRedshiftWarehouse({
        database,
        workgroupName: values.workgroup ?? process.env['REDSHIFT_WORKGROUP'],
        clusterIdentifier: values.cluster ?? process.env['REDSHIFT_CLUSTER'],
        secretArn: values['secret-arn'] ?? process.env['REDSHIFT_SECRET_ARN'],
        dbUser: values['db-user'],
        region: values.region,
        ...(schema === undefined ? {} : { schema }),
      });
    }
    default:
      throw usageError('--warehouse must be pglite, postgres or redshift');
  }
}

async function lakeStore(values: WarehouseFlagValues & { 's3-bucket'?: string | undefined }): Promise<ObjectStore> {
  const s3 = await s3StoreFromFlags(values);
  if (s3 !== undefined) return s3;
  if (values.lake === undefined) throw usageError('--lake (or --s3-bucket) is required');
  const { createLocalFolderStore } = await import('../ports/store/local.ts');
  return createLocalFolderStore(values.lake);
}

/** `sink query --engine warehouse`: SQL or a named query on the warehouse. */
export async function warehouseQuery(sql: string | undefined, named: { name: string; params: Record<string, string> } | undefined, values: WarehouseFlagValues): Promise<number> {
  const warehouse = await warehouseFromFlags(values);
  try {
    if (named !== undefined) {
      const { warehouseNamedQuery } = await import('../warehouse/queries.ts');
      process.stdout.write(formatTable(await warehouseNamedQuery(warehouse, named.name, named.params)));
    } else {
      if (sql === undefined || sql.trim() === '') throw usageError('give --named NAME or SQL');
      process.stdout.write(formatTable(await warehouse.query(sql)));
    }
    return 0;
  } finally {
    await warehouse.close();
  }
}

function parseParams(pairs: readonly string[] | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--param ${pair}: expected NAME=VALUE`);
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return params;
}

export async function warehouseCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      lake: { type: 'string' },
      ...S3_FLAGS,
      ...WAREHOUSE_FLAGS,
      'iam-role': { type: 'string' },
      'glue-database': { type: 'string' },
      'no-processed': { type: 'boolean' },
      spectrum: { type: 'boolean' },
      'spectrum-schema': { type: 'string' },
      table: { type: 'string', multiple: true },
      batch: { type: 'string' },
      'every-ms': { type: 'string' },
      'live-tables': { type: 'boolean' },
      named: { type: 'string' },
      param: { type: 'string', multiple: true },
      'log-level': { type: 'string' },
    },
    WAREHOUSE_USAGE,
    true,
  );
  if (parsed === undefined) return 0;
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (action === undefined) throw usageError('an action is required: init, load, query or status');
  if (!['init', 'load', 'query', 'status'].includes(action)) throw usageError(`unknown action "${action}"`);
  if (action !== 'query' && rest.length > 0) throw usageError(`unexpected argument "${rest[0]}"`);
  if (action === 'query') {
    if (rest.length > 1) throw usageError('give the SQL as one argument (quote it)');
    if (values.named !== undefined && rest.length > 0) throw usageError('give either --named or SQL, not both');
    return warehouseQuery(rest[0], values.named === undefined ? undefined : { name: values.named, params: parseParams(values.param) }, values);
  }
  const tables: EventKind[] = [];
  const processedTables: ProcessedTableName[] = [];
  for (const t of values.table ?? []) {
    const processed = PROCESSED_TABLES.find((p) => p.name === t);
    if (processed !== undefined) processedTables.push(processed.name);
    else if (isEventKind(t)) tables.push(t);
    else throw usageError(`--table: "${t}" is neither an event kind nor a processed table (${PROCESSED_TABLES.map((p) => p.name).join(', ')})`);
  }
  const batch = integerFlag(values.batch, 'batch');
  const everyMs = integerFlag(values['every-ms'], 'every-ms');
  const log = logFlag(values['log-level']);
  const iamRole = values['iam-role'] ?? process.env['REDSHIFT_IAM_ROLE'];
  if (values.spectrum === true && action !== 'init') throw usageError('--spectrum goes with init');
  if (values.spectrum === true && (values.warehouse ?? process.env['WAREHOUSE']) !== 'redshift') throw usageError('--spectrum needs --warehouse redshift');
  const spectrumDatabase = values['glue-database'] ?? process.env['GLUE_DATABASE'];
  if (values.spectrum === true && spectrumDatabase === undefined) throw usageError('--spectrum needs --glue-database (or $GLUE_DATABASE): the Glue database of the lake');

  const store = await lakeStore(values);
  const warehouse = await warehouseFromFlags(values);
  const { createWarehouseLoader } = await import('../warehouse/loader.ts');
  // The processed zone's partitions are where the catalog says: the local one beside a local lake, Glue for S3.
  const catalog = values['no-processed'] === true ? undefined : await processedCatalog(values);
  const onlyProcessed = tables.length === 0 && processedTables.length > 0;
  const loader = createWarehouseLoader({
    warehouse,
    store,
    ...(tables.length > 0 || onlyProcessed ? { tables } : {}),
    ...(catalog === undefined || (processedTables.length === 0 && tables.length > 0) ? {} : { processed: { catalog, ...(processedTables.length > 0 ? { tables: processedTables } : {}) } }),
    ...(batch === undefined ? {} : { maxObjectsPerBatch: batch }),
    ...(values['live-tables'] === true ? { liveTables: true } : {}),
    ...(warehouse.engine === 'redshift' ? { redshift: { iamRole: iamRole ?? 'default' } } : {}),
    log,
  });
  try {
    if (action === 'init') {
      const plan = await loader.init();
      process.stdout.write(
        `warehouse ${warehouse.engine} schema ${warehouse.schema}: ${plan.created.length} tables created, ` +
          `${plan.added.length} columns added${plan.added.length > 0 ? ` (${plan.added.join(', ')})` : ''}, ${plan.widened.length} widened\n`,
      );
      if (values.spectrum === true) {
        const { spectrumSchemaSql } = await import('../warehouse/spectrum.ts');
        const externalSchema = values['spectrum-schema'] ?? 'lake';
        await warehouse.transaction([{ sql: spectrumSchemaSql({ externalSchema, glueDatabase: spectrumDatabase as string, iamRole: iamRole ?? 'default', ...(values.region === undefined ? {} : { region: values.region }) }) }]);
        process.stdout.write(`external schema ${externalSchema} over the Glue database ${spectrumDatabase as string} (Redshift Spectrum)\n`);
      }
      return 0;
    }
    if (action === 'status') {
      const status = await loader.status();
      process.stdout.write(
        formatTable({
          columns: ['table', 'objects_loaded', 'objects_covered', 'objects_pending', 'rows_loaded', 'warehouse_rows', 'lake_newest', 'loaded_newest', 'lag_hours'],
          rows: status.map((s) => ({
            table: s.table,
            objects_loaded: s.objectsLoaded,
            objects_covered: s.objectsCovered,
            objects_pending: s.objectsPending,
            rows_loaded: s.rowsLoaded,
            warehouse_rows: s.warehouseRows,
            lake_newest: s.lakeNewest,
            loaded_newest: s.loadedNewest,
            lag_hours: s.lagHours,
          })),
        }),
      );
      return 0;
    }
    // load: once, or every --every-ms until a signal; a signal stops after the batch under way.
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      for (;;) {
        const result = await loader.load({ signal: abort.signal });
        for (const s of result.skipped) process.stderr.write(`skipped ${s.key}: ${s.reason}\n`);
        process.stdout.write(
          `loaded ${result.objects} objects (${result.rows} rows) in ${result.batches} batches, ${result.covered} covered by loaded objects, ${result.skipped.length} skipped` +
            (result.processed === undefined ? '' : `; ${result.processed.partitions} processed partitions replaced (${result.processed.rows} rows)`) +
            '\n',
        );
        if (everyMs === undefined || abort.signal.aborted) return 0;
        await Promise.race([sleep(everyMs), new Promise((resolve) => abort.signal.addEventListener('abort', resolve, { once: true }))]);
        if (abort.signal.aborted) return 0;
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    await loader.close();
    await warehouse.close();
    await catalog?.close();
    await store.close();
  }
}

async function processedCatalog(values: WarehouseFlagValues & { 's3-bucket'?: string | undefined; 's3-prefix'?: string | undefined; 's3-region'?: string | undefined; 'glue-database'?: string | undefined }): Promise<CatalogPort & { partitions(table: string): Promise<CatalogPartition[]> } | undefined> {
  const glue = values['glue-database'] ?? process.env['GLUE_DATABASE'];
  if (glue !== undefined) {
    const bucket = values['s3-bucket'];
    if (bucket === undefined) throw usageError('--glue-database needs the lake on S3 (--s3-bucket)');
    const prefix = values['s3-prefix'] ?? '';
    const { createGlueCatalog } = await import('../ports/catalog/glue.ts');
    return createGlueCatalog({ database: glue, s3Root: `s3://${bucket}/${prefix === '' ? '' : `${prefix.replace(/\/$/, '')}/`}`, region: values.region ?? values['s3-region'] });
  }
  if (values['s3-bucket'] !== undefined || values.lake === undefined) return undefined;
  const { createLocalCatalog } = await import('../ports/catalog/local.ts');
  return createLocalCatalog(values.lake);
}

// `sink query`: SQL or a named query over the lake (DuckDB), an S3 lake through a local cache, or Athena.
import { LIVE_NAMED_QUERIES, NAMED_QUERIES, namedQuerySql } from '../ports/query/named.ts';
import type { QueryEngineName } from '../ports/query/port.ts';
import { parse, S3_FLAGS, s3StoreFromFlags, usageError } from './flags.ts';
import { formatTable } from './table.ts';
import { QUERY_USAGE } from './usage.ts';
import { WAREHOUSE_FLAGS } from './warehouse-flags.ts';

export async function queryCommand(args: readonly string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      lake: { type: 'string' },
      list: { type: 'boolean' },
      named: { type: 'string' },
      param: { type: 'string', multiple: true },
      engine: { type: 'string' },
      'print-sql': { type: 'boolean' },
      ...S3_FLAGS,
      // --workgroup, --database and --region serve Athena and Redshift alike.
      ...WAREHOUSE_FLAGS,
      'output-location': { type: 'string' },
    },
    QUERY_USAGE,
    true,
  );
  if (parsed === undefined) return 0;
  const { values, positionals } = parsed;
  if (values.list === true) {
    const rows = [...NAMED_QUERIES, ...LIVE_NAMED_QUERIES].map((q) => ({
      name: q.name,
      params: q.params.map((p) => `${p.name} (${p.description}, default ${p.default})`).join('; '),
      description: q.description,
    }));
    process.stdout.write(formatTable({ columns: ['name', 'description', 'params'], rows }));
    return 0;
  }
  const engine = values.engine ?? 'duckdb';
  if (engine !== 'duckdb' && engine !== 'athena' && engine !== 'warehouse') throw usageError('--engine must be duckdb, athena or warehouse');
  if (positionals.length > 1) throw usageError('give the SQL as one argument (quote it)');
  if (values.named !== undefined && positionals.length > 0) throw usageError('give either --named or SQL, not both');
  if (values.named === undefined && (values.param !== undefined || values['print-sql'] === true)) throw usageError('--param and --print-sql go with --named');
  const params: Record<string, string> = {};
  for (const pair of values.param ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--param ${pair}: expected NAME=VALUE`);
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let sql = positionals[0];
  if (engine === 'warehouse') {
    if (values.named !== undefined && values['print-sql'] === true) {
      process.stdout.write(`${namedQuerySql(values.named, (values.warehouse ?? process.env['WAREHOUSE']) === 'redshift' ? 'redshift' : 'postgres', params)}\n`);
      return 0;
    }
    const { warehouseQuery } = await import('./warehouse.ts');
    return warehouseQuery(sql, values.named === undefined ? undefined : { name: values.named, params }, values);
  }
  if (values.named !== undefined) {
    // An unknown name or a bad --param is CLD_NAMED_QUERY, a usage error.
    sql = namedQuerySql(values.named, engine as QueryEngineName, params);
    if (values['print-sql'] === true) {
      process.stdout.write(`${sql}\n`);
      return 0;
    }
  }
  if (engine === 'athena') return athenaQuery(sql, values);

  const lakeDir = values.lake;
  if (lakeDir === undefined) throw usageError('--lake is required');
  const store = await s3StoreFromFlags(values);
  if (store !== undefined) {
    // DuckDB here has no httpfs: mirror the S3 lake into the --lake folder, then query the copy.
    const { objectSource, syncLakeCache } = await import('../lake/reader.ts');
    try {
      const sync = await syncLakeCache(objectSource(store), lakeDir);
      process.stderr.write(`cache ${lakeDir}: ${sync.downloaded} downloaded, ${sync.kept} kept, ${sync.removed} removed\n`);
    } finally {
      await store.close();
    }
  }
  const { openLake } = await import('../ports/query/duckdb.ts');
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
  values: { workgroup?: string | undefined; database?: string | undefined; region?: string | undefined; 'output-location'?: string | undefined },
): Promise<number> {
  if (sql === undefined || sql.trim() === '') throw usageError('athena needs --named NAME or SQL');
  const workGroup = values.workgroup ?? process.env['ATHENA_WORKGROUP'];
  const database = values.database ?? process.env['ATHENA_DATABASE'];
  if (workGroup === undefined || database === undefined) {
    throw usageError('--engine athena needs --workgroup and --database (or $ATHENA_WORKGROUP, $ATHENA_DATABASE)');
  }
  const { createAthenaEngine } = await import('../ports/query/athena.ts');
  const athena = createAthenaEngine({ workGroup, database, region: values.region, outputLocation: values['output-location'] });
  try {
    const result = await athena.query(sql);
    process.stdout.write(formatTable(result));
    process.stderr.write(`athena query ${result.queryExecutionId}: ${result.dataScannedBytes} bytes scanned\n`);
    return 0;
  } finally {
    await athena.close();
  }
}

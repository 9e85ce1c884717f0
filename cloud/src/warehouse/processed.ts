// The processed zone in the warehouse: a table per processed table (DDL from its definition) and loads
// that follow rebuilds. A processed partition is replaced by a new build (the catalog switches its
// location), so its rows are replaced here too: in one transaction the partition's rows are deleted, the
// build's rows inserted and the processed ledger (table, partition → location and build) updated. A
// partition whose catalog location is the one in the ledger is up to date; any other is loaded again,
// so after each load the warehouse holds exactly the rows the catalog's locations hold, never a sum of
// builds. Killed anywhere, a transaction applies whole or not at all and the next round redoes it.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { quotedString, type DuckDBConnection } from '@duckdb/node-api';
import type { CityError, Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { filesAt, PARAM } from '../lake/versions.ts';
import type { CatalogPartition, CatalogReader } from '../ports/catalog/port.ts';
import { isLocalStore, type ObjectStore } from '../ports/store/port.ts';
import { PROCESSED_TABLES, processedTable, type ProcessedTable, type ProcessedTableName } from '../processing/definitions.ts';
import { footerRows, objectFile } from './duck.ts';
import { columnList, mergeSql } from './load-sql.ts';
import { stageFromManifest } from './manifest.ts';
import type { Warehouse, WarehouseStep } from './port.ts';
import { qualified, quoteIdent, quoteLiteral, sqlType, warehouseTable, type WarehouseColumn, type WarehouseDialect, type WarehouseTable } from './schema.ts';
import type { TableStatus } from './loader.ts';

export const PROCESSED_LEDGER_TABLE = 'wh_processed_ledger';
const SOURCE = 'wh_psrc';
const LEDGER_SOURCE = 'wh_pledger_new';

const col = (name: string, type: WarehouseColumn['type'], maxLength?: number): WarehouseColumn => (maxLength === undefined ? { name, type } : { name, type, maxLength });

/** One row per processed partition loaded: which location (build) its warehouse rows came from. */
export const PROCESSED_LEDGER_TABLE_DEF: WarehouseTable = {
  name: PROCESSED_LEDGER_TABLE,
  columns: [
    col('table_name', 'string', 128),
    col('event_date', 'string', 10),
    col('event_hour', 'int64'),
    col('build', 'string', 64),
    col('location', 'string', 1024),
    col('is_final', 'boolean'),
    col('partition_rows', 'int64'),
    col('batch_id', 'string', 64),
    col('loaded_at', 'timestamp'),
  ],
  fileColumns: [],
  key: ['table_name', 'event_date', 'event_hour'],
};

/** String lengths of processed columns (ids and labels); Redshift needs explicit VARCHAR lengths. */
const PROCESSED_LENGTHS: Readonly<Record<string, number>> = {
  day: 10,
  district: 32,
  tti_band: 16,
  aqi_category: 40,
  eea_band: 20,
  platform: 16,
  severity: 32,
  category: 128,
  sub_category: 128,
  report_category: 128,
};
const ID_LENGTH = 64;

const TABLES = new Map<string, WarehouseTable>();

/**
 * The warehouse table of a processed table: its columns (is_final included), then event_date and
 * event_hour. Key: the partition and the table's group-by columns (its non-null ones), so a row that
 * moves between partitions across rebuilds (an incident whose first report arrived late) never clashes.
 * Sort key: its time column.
 */
export function processedWarehouseTable(t: ProcessedTable): WarehouseTable {
  let table = TABLES.get(t.name);
  if (table === undefined) {
    const lengths: Record<string, number> = {};
    for (const c of t.schema.columns) if (c.type === 'string') lengths[c.name] = PROCESSED_LENGTHS[c.name] ?? ID_LENGTH;
    const groupBy = t.schema.columns.filter((c) => c.name !== 'is_final' && !c.nullable).map((c) => c.name);
    const time = t.schema.columns.find((c) => c.type === 'timestamp' && !c.nullable)?.name ?? (groupBy.includes('day') ? 'day' : undefined);
    table = warehouseTable(t.schema, { key: ['event_date', 'event_hour', ...groupBy], lengths, ...(time === undefined ? {} : { sortKey: time }) });
    TABLES.set(t.name, table);
  }
  return table;
}

/** Tables init creates for the processed zone: the ledger and one per processed table asked for. */
export function processedWarehouseTables(names?: readonly ProcessedTableName[]): WarehouseTable[] {
  return [PROCESSED_LEDGER_TABLE_DEF, ...resolveTables(names).map(processedWarehouseTable)];
}

function resolveTables(names?: readonly string[]): ProcessedTable[] {
  if (names === undefined) return [...PROCESSED_TABLES];
  return names.map((n) => {
    const t = processedTable(n);
    if (t === undefined) throw cloudErrors.create('CLD_INVALID_OPTIONS', `warehouse loader: /processed/tables: unknown processed table ${n}`);
    return t;
  });
}

/** A processed partition's place in the lake as the catalog has it. */
export interface ProcessedPartition {
  event_date: string;
  event_hour: number;
  location: string;
  build: string;
  final: boolean;
}

export interface ReplacedPartition extends ProcessedPartition {
  rows: number;
}

const partitionWhere = (parts: readonly { event_date: string; event_hour: number }[]): string =>
  parts.map((p) => `(event_date = ${quoteLiteral(p.event_date)} AND event_hour = ${p.event_hour})`).join(' OR ');

const timestampLiteral = (ms: number) => `CAST(${quoteLiteral(new Date(ms).toISOString().replace('T', ' ').replace('Z', '+00'))} AS TIMESTAMPTZ)`;

/**
 * The statements replacing partitions of a processed table once `source` holds their new rows (every
 * column of the warehouse table): DELETE the partitions' rows, INSERT the new ones, MERGE the ledger.
 * The same text on PostgreSQL, PGlite and Redshift.
 */
export function replacePartitionsSql(
  table: WarehouseTable,
  source: string | undefined,
  parts: readonly ReplacedPartition[],
  batchId: string,
  nowMs: number,
  schema: string,
  dialect: WarehouseDialect,
): string[] {
  if (parts.length === 0) return [];
  const target = qualified(schema, table.name);
  const names = table.columns.map((c) => quoteIdent(c.name)).join(', ');
  const out = [`DELETE FROM ${target} WHERE ${partitionWhere(parts)}`];
  if (source !== undefined) out.push(`INSERT INTO ${target} (${names}) SELECT ${names} FROM ${quoteIdent(source)}`);
  const values = parts
    .map(
      (p) =>
        `(${quoteLiteral(table.name)}, ${quoteLiteral(p.event_date)}, ${p.event_hour}, ${quoteLiteral(p.build)}, ${quoteLiteral(p.location)}, ` +
        `${p.final ? 'TRUE' : 'FALSE'}, ${p.rows}, ${quoteLiteral(batchId)}, ${timestampLiteral(nowMs)})`,
    )
    .join(',\n');
  const ledgerNames = PROCESSED_LEDGER_TABLE_DEF.columns.map((c) => quoteIdent(c.name)).join(', ');
  out.push(
    `CREATE TEMP TABLE ${quoteIdent(LEDGER_SOURCE)} (${columnList(PROCESSED_LEDGER_TABLE_DEF.columns, dialect)})`,
    `INSERT INTO ${quoteIdent(LEDGER_SOURCE)} (${ledgerNames}) VALUES\n${values}`,
    mergeSql(PROCESSED_LEDGER_TABLE_DEF, LEDGER_SOURCE, schema),
    `DROP TABLE ${quoteIdent(LEDGER_SOURCE)}`,
  );
  return out;
}

/** Where the loader learns the processed partitions: a catalog with partitions() (local, Glue) or a reader. */
export type ProcessedCatalog = { partitions(table: string): Promise<CatalogPartition[]> } | CatalogReader;

export interface ProcessedLoadOptions {
  catalog: ProcessedCatalog;
  /** Processed tables to load; all by default. */
  tables?: readonly ProcessedTableName[];
  /** Partitions per transaction; 64 by default (8 on Redshift, whose batches take at most 40 statements). */
  maxPartitionsPerBatch?: number;
}

export interface ProcessedLoadResult {
  partitions: number;
  rows: number;
  skipped: { key: string; reason: string; error: CityError }[];
  perTable: Record<string, { partitions: number; rows: number }>;
}

interface Context {
  warehouse: Warehouse;
  store: ObjectStore;
  duck: () => Promise<DuckDBConnection>;
  redshift?: { iamRole: string; manifestPrefix?: string };
  log: Log;
}

interface ReadyPartition extends ReplacedPartition {
  /** Local paths of the build's files, with their columns in file order. */
  files: { key: string; path: string; bytes: number; columns: { name: string; type: string }[] }[];
}

const duckType = (c: WarehouseColumn): string =>
  ({ string: 'VARCHAR', int64: 'BIGINT', double: 'DOUBLE', boolean: 'BOOLEAN', timestamp: 'TIMESTAMPTZ' })[c.type];

export interface ProcessedLoader {
  readonly tables: readonly WarehouseTable[];
  load(scratch: string, signal?: AbortSignal): Promise<ProcessedLoadResult>;
  status(): Promise<TableStatus[]>;
}

export function createProcessedLoader(options: ProcessedLoadOptions, ctx: Context): ProcessedLoader {
  const defs = resolveTables(options.tables);
  const { warehouse, store } = ctx;
  const schema = warehouse.schema;
  const maxBatch = options.maxPartitionsPerBatch ?? (warehouse.canCopyCsv ? 64 : 8);
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'warehouse loader: /processed/maxPartitionsPerBatch must be a positive integer');

  const catalogPartitions = async (name: string): Promise<ProcessedPartition[]> => {
    const c = options.catalog;
    const parts = 'partitions' in c ? await c.partitions(name) : ((await c.tables()).find((t) => t.name === name)?.partitions ?? []);
    return parts.map((p) => ({
      event_date: String(p.values[0]),
      event_hour: Number(p.values[1]),
      location: p.location,
      build: p.parameters?.[PARAM.build] ?? '',
      final: p.parameters?.[PARAM.final] === 'true',
    }));
  };

  const ledger = async (name: string): Promise<Map<string, { location: string; rows: number; event_date: string; event_hour: number }>> => {
    const result = await warehouse.query(
      `SELECT event_date, event_hour, location, partition_rows FROM ${qualified(schema, PROCESSED_LEDGER_TABLE)} WHERE table_name = ${quoteLiteral(name)}`,
    );
    return new Map(
      result.rows.map((r) => [
        `${String(r.event_date)}/${Number(r.event_hour)}`,
        { location: String(r.location), rows: Number(r.partition_rows), event_date: String(r.event_date), event_hour: Number(r.event_hour) },
      ]),
    );
  };

  /** The build's files, local and checked readable, or the reason they are not. */
  const prepare = async (p: ProcessedPartition, scratch: string): Promise<ReadyPartition> => {
    const connection = await ctx.duck();
    const files: ReadyPartition['files'] = [];
    let rows = 0;
    for (const key of await filesAt(store, p.location)) {
      const { path, bytes } = await objectFile(store, key, scratch);
      const n = await footerRows(connection, path).catch((err: unknown) => {
        throw new Error(`${key}: ${errorMessage(err)}`);
      });
      // The file's own columns (no Hive columns from its path): Redshift's COPY maps them by position.
      const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quotedString(path)}, hive_partitioning = false)`);
      const columns = described.getRowObjects().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
      files.push({ key, path, bytes, columns });
      rows += n;
    }
    return { ...p, rows, files };
  };

  /** COPY FROM STDIN steps (PostgreSQL/PGlite): DuckDB writes every partition's rows into one CSV. */
  const copySteps = async (table: WarehouseTable, parts: readonly ReadyPartition[], scratch: string): Promise<WarehouseStep[]> => {
    const selects: string[] = [];
    for (const p of parts) {
      for (const f of p.files) {
        const present = new Set(f.columns.map((c) => c.name));
        const cols = table.columns.map((c) => {
          if (c.name === 'event_date') return `${quotedString(p.event_date)} AS event_date`;
          if (c.name === 'event_hour') return `CAST(${p.event_hour} AS BIGINT) AS event_hour`;
          return present.has(c.name) ? `CAST(${quoteIdent(c.name)} AS ${duckType(c)}) AS ${quoteIdent(c.name)}` : `CAST(NULL AS ${duckType(c)}) AS ${quoteIdent(c.name)}`;
        });
        selects.push(`SELECT ${cols.join(', ')} FROM read_parquet(${quotedString(f.path)}, hive_partitioning = false)`);
      }
    }
    const steps: WarehouseStep[] = [{ sql: `CREATE TEMP TABLE ${quoteIdent(SOURCE)} (${columnList(table.columns, warehouse.dialect)})` }];
    if (selects.length > 0) {
      const csv = join(scratch, `${randomUUID()}.csv`);
      await (await ctx.duck()).run(`COPY (${selects.join(' UNION ALL ')}) TO ${quotedString(csv)} (FORMAT csv, HEADER false)`);
      steps.push({ copyCsv: { table: SOURCE, columns: table.columns.map((c) => c.name), path: csv } });
    }
    return steps;
  };

  /** COPY from S3 steps (Redshift): a manifest and a staging table per partition, then one source table. */
  const manifestSteps = async (table: WarehouseTable, parts: readonly ReadyPartition[], batchId: string) => {
    const config = ctx.redshift as { iamRole: string; manifestPrefix?: string };
    const role = config.iamRole === 'default' ? 'default' : quoteLiteral(config.iamRole);
    const steps: WarehouseStep[] = [];
    const selects: string[] = [];
    const stages: string[] = [];
    const manifests: string[] = [];
    const byName = new Map(table.columns.map((c) => [c.name, c]));
    let i = 0;
    for (const p of parts) {
      if (p.files.length === 0) continue;
      const first = p.files[0] as ReadyPartition['files'][number];
      const layout = first.columns.map((c) => c.name).join(',');
      if (p.files.some((f) => f.columns.map((c) => c.name).join(',') !== layout)) throw new Error(`${p.location}: files with different columns in one build`);
      const stage = `wh_pstage_${i++}`;
      stages.push(stage);
      const stageColumns = first.columns.map((c) => `${quoteIdent(c.name)} ${sqlType(byName.get(c.name) ?? { name: c.name, type: 'string' }, 'redshift')}`);
      const manifestKey = `${(config.manifestPrefix ?? '_warehouse/manifests/').replace(/\/?$/, '/')}${batchId}-p${i}.json`;
      steps.push(...(await stageFromManifest(store, manifestKey, p.files, stage, stageColumns, role)));
      manifests.push(manifestKey);
      const present = new Set(first.columns.map((c) => c.name));
      const cols = table.columns.map((c) => {
        if (c.name === 'event_date') return `CAST(${quoteLiteral(p.event_date)} AS VARCHAR(10)) AS event_date`;
        if (c.name === 'event_hour') return `CAST(${p.event_hour} AS BIGINT) AS event_hour`;
        return present.has(c.name) ? quoteIdent(c.name) : `CAST(NULL AS ${sqlType(c, 'redshift')}) AS ${quoteIdent(c.name)}`;
      });
      selects.push(`SELECT ${cols.join(', ')} FROM ${quoteIdent(stage)}`);
    }
    if (selects.length > 0) steps.push({ sql: `CREATE TEMP TABLE ${quoteIdent(SOURCE)} AS ${selects.join(' UNION ALL ')}` });
    return { steps, stages, manifests, hasSource: selects.length > 0 };
  };

  const loadBatch = async (table: WarehouseTable, parts: readonly ReadyPartition[], scratch: string): Promise<void> => {
    const batchId = randomUUID();
    const steps: WarehouseStep[] = [];
    let stages: string[] = [];
    let manifests: string[] = [];
    let source = true;
    if (warehouse.canCopyCsv) {
      steps.push(...(await copySteps(table, parts, scratch)));
    } else {
      const copy = await manifestSteps(table, parts, batchId);
      steps.push(...copy.steps);
      stages = copy.stages;
      manifests = copy.manifests;
      source = copy.hasSource;
    }
    for (const sql of replacePartitionsSql(table, source ? SOURCE : undefined, parts, batchId, Date.now(), schema, warehouse.dialect)) steps.push({ sql });
    if (source) steps.push({ sql: `DROP TABLE ${quoteIdent(SOURCE)}` });
    for (const stage of stages) steps.push({ sql: `DROP TABLE ${quoteIdent(stage)}` });
    try {
      await warehouse.transaction(steps);
    } finally {
      for (const key of manifests) await store.delete?.(key).catch(() => undefined);
    }
    ctx.log('info', 'warehouse processed partitions replaced', { table: table.name, partitions: parts.length, rows: parts.reduce((n, p) => n + p.rows, 0), batchId });
  };

  return {
    tables: processedWarehouseTables(options.tables),

    async load(scratch, signal) {
      const result: ProcessedLoadResult = { partitions: 0, rows: 0, skipped: [], perTable: {} };
      for (const def of defs) {
        if (isAborted(signal)) break;
        const table = processedWarehouseTable(def);
        const per = (result.perTable[def.name] = { partitions: 0, rows: 0 });
        const loaded = await ledger(def.name);
        const pending = (await catalogPartitions(def.name)).filter((p) => loaded.get(`${p.event_date}/${p.event_hour}`)?.location !== p.location);
        const ready: ReadyPartition[] = [];
        for (const p of pending) {
          try {
            ready.push(await prepare(p, scratch));
          } catch (err) {
            // A location retired under us (its grace period passed): the catalog names a newer one next round.
            const reason = errorMessage(err);
            const key = `${def.name}/${p.event_date}/${p.event_hour}@${p.location}`;
            result.skipped.push({ key, reason, error: cloudErrors.create('CLD_WAREHOUSE_OBJECT', `${key}: ${reason}`, err) });
            ctx.log('warn', 'processed partition skipped', { table: def.name, location: p.location, reason });
          }
        }
        for (let i = 0; i < ready.length; i += maxBatch) {
          if (isAborted(signal)) break;
          const batch = ready.slice(i, i + maxBatch);
          await loadBatch(table, batch, scratch);
          const rows = batch.reduce((n, p) => n + p.rows, 0);
          per.partitions += batch.length;
          per.rows += rows;
          result.partitions += batch.length;
          result.rows += rows;
          if (!isLocalStore(store)) for (const p of batch) for (const f of p.files) await rm(f.path, { force: true });
        }
      }
      return result;
    },

    async status() {
      const out: TableStatus[] = [];
      const hourOf = (date: string, hour: number) => Date.parse(`${date}T00:00:00Z`) / 3_600_000 + hour;
      for (const def of defs) {
        const loaded = await ledger(def.name);
        const parts = await catalogPartitions(def.name);
        const pending = parts.filter((p) => loaded.get(`${p.event_date}/${p.event_hour}`)?.location !== p.location);
        const count = await warehouse.query(`SELECT count(*) AS n FROM ${qualified(schema, def.name)}`);
        const newest = (list: readonly { event_date: string; event_hour: number }[]) =>
          list.reduce<{ event_date: string; event_hour: number } | undefined>((a, p) => (a === undefined || hourOf(p.event_date, p.event_hour) > hourOf(a.event_date, a.event_hour) ? p : a), undefined);
        const lake = newest(parts);
        const done = newest([...loaded.values()]);
        out.push({
          table: def.name,
          objectsLoaded: loaded.size,
          objectsCovered: 0,
          objectsPending: pending.length,
          rowsLoaded: [...loaded.values()].reduce((n, l) => n + l.rows, 0),
          warehouseRows: Number(count.rows[0]?.n ?? 0),
          lakeNewest: lake === undefined ? null : `${lake.event_date}/${lake.event_hour}`,
          loadedNewest: done === undefined ? null : `${done.event_date}/${done.event_hour}`,
          lagHours:
            lake === undefined ? null : pending.length === 0 ? 0 : done === undefined ? null : Math.max(0, hourOf(lake.event_date, lake.event_hour) - hourOf(done.event_date, done.event_hour)),
        });
      }
      return out;
    },
  };
}

// A function, so a check after an await is not narrowed away by the one before it.
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

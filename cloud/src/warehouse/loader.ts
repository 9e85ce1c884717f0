// The exactly-once loader: lake objects (curated zone Parquet) not yet in the load ledger go into the
// warehouse in batches, each batch one transaction: staging → dedupe by event id → MERGE into the fact
// table → dimensions → ledger rows. (PostgreSQL/PGlite: DuckDB dedupes while it writes the CSV that COPY
// streams into the MERGE source; Redshift: COPY from S3 into staging, then the dedupe in SQL.) Killed anywhere, a batch is applied whole or not at all, and the next
// run loads what the ledger lacks; MERGE by event id makes loading a row twice harmless anyway.
//
// Which objects: the live files of each table, as the lake reader decides (a compacted file hides the
// inputs it replaced). A compacted file whose inputs were all loaded (the ledger's rows for its
// topic-partition and offset range add up to its row count) is recorded as covered, not loaded again.
// A corrupt or unreadable object is reported with its reason and skipped; the next run tries it again.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quotedString, type DuckDBConnection } from '@duckdb/node-api';
import { csvParts } from './csv-parts.ts';
import { footerRows, lazyDuck, objectFile } from './duck.ts';
import { stageFromManifest } from './manifest.ts';
import { EVENT_KINDS, LIVE_LAKE_TABLES, type CityError, type EventKind, type Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { liveFiles } from '../lake/reader.ts';
import { parseLakeFileKey, partitionOfKey, tablePrefix, type LakePartition, type LakeTable } from '../lake/layout.ts';
import type { CatalogReader } from '../ports/catalog/port.ts';
import { isLocalStore, type ObjectStore } from '../ports/store/port.ts';
import { columnList, dedupeSql, dimensionSql, ledgerSelectSql, ledgerSql, mergeSql, SOURCE_TABLE, type LedgerEntry } from './load-sql.ts';
import type { Warehouse, WarehouseStep } from './port.ts';
import { LIVE_WAREHOUSE_TABLES } from '../live/lambda/tables.ts';
import { createLiveTablesLoader, type LiveLoadResult } from './live-loader.ts';
import { createProcessedLoader, type ProcessedLoadOptions, type ProcessedLoadResult } from './processed.ts';
import {
  districtRowsSql,
  existingColumnsSql,
  factTable,
  planSchema,
  qualified,
  quoteIdent,
  quoteLiteral,
  sqlType,
  warehouseTables,
  type ExistingColumn,
  type SchemaPlan,
  type WarehouseColumn,
  type WarehouseTable,
} from './schema.ts';

export interface RedshiftLoadConfig {
  /** IAM role Redshift assumes to read the lake and the manifests: an ARN, or `default`. */
  iamRole: string;
  /** Key prefix for the COPY manifests in the lake's store. */
  manifestPrefix?: string;
}

export interface WarehouseLoaderOptions {
  warehouse: Warehouse;
  /** The lake. */
  store: ObjectStore;
  /** Where the partitions are registered; their locations are listed instead of the table prefix. */
  catalog?: CatalogReader;
  /** Event kinds to load; all by default. */
  tables?: readonly EventKind[];
  /** PostgreSQL/PGlite: rows per CSV part of a batch without duplicates (PART_ROWS by default). */
  csvPartRows?: number;
  /** Objects per transaction; 64 by default. */
  maxObjectsPerBatch?: number;
  /** Required when the warehouse is Redshift. */
  redshift?: RedshiftLoadConfig;
  /** Extra tables init creates (e.g. the processed zone's). */
  extraTables?: readonly WarehouseTable[];
  /** Also create and load the live engine's tables (kpi_windows, alerts) and the Power BI watermark (live-loader.ts). */
  liveTables?: boolean;
  /** Loads the processed zone too: each partition's rows replaced by its current build (see processed.ts). */
  processed?: ProcessedLoadOptions;
  log?: Log;
  /** Called after each committed batch (the fault test watches for it). */
  onBatch?: (batch: { table: string; objects: number; rows: number; batchId: string }) => void;
}

export interface SkippedObject {
  key: string;
  reason: string;
  /** CLD_WAREHOUSE_OBJECT, naming the object and the reason. */
  error: CityError;
}

export interface LoadResult {
  batches: number;
  objects: number;
  rows: number;
  covered: number;
  skipped: SkippedObject[];
  perTable: Record<string, { objects: number; rows: number; covered: number }>;
  /** Processed partitions replaced, when the loader loads the processed zone. */
  processed?: ProcessedLoadResult;
}

export interface TableStatus {
  table: string;
  objectsLoaded: number;
  objectsCovered: number;
  rowsLoaded: number;
  warehouseRows: number;
  /** Live lake objects not in the ledger yet. */
  objectsPending: number;
  /** Newest lake partition of the table and newest partition loaded, e.g. 2026-12-01/13. */
  lakeNewest: string | null;
  loadedNewest: string | null;
  /** Hours between the two; 0 when up to date. */
  lagHours: number | null;
}

export interface WarehouseLoader {
  /** Creates the schema, tables and dimensions; adds columns the protocol added. Idempotent. */
  init(): Promise<SchemaPlan>;
  /** Loads every live object not in the ledger, batch by batch. */
  load(options?: { signal?: AbortSignal }): Promise<LoadResult>;
  status(): Promise<TableStatus[]>;
  close(): Promise<void>;
}

interface LakeObject {
  key: string;
  table: LakeTable;
  partition: LakePartition;
}

interface Inspected extends LakeObject {
  path: string;
  rows: number;
  bytes: number;
  /** Column names and DuckDB types in file order. */
  columns: { name: string; type: string }[];
}

const DEFAULT_BATCH = 64;
/** Rows per CSV part of a PostgreSQL/PGlite batch: the first COPY starts after about this many. */
const PART_ROWS = 40_000;
/**
 * Staging tables per Redshift batch: each adds three statements (create, COPY, drop) to the thirteen of
 * the MERGE, dimensions and ledger, and the Data API takes at most 40 statements per batch.
 */
const MAX_REDSHIFT_GROUPS = 8;

const stagingGroup = (o: Inspected): string => `${o.partition.event_date}/${o.partition.event_hour}/${o.columns.map((c) => `${c.name}:${c.type}`).join(',')}`;

/** Batches of at most `size` objects spanning at most `groups` staging groups, in key order. */
function batches(objects: readonly Inspected[], size: number, groups: number): Inspected[][] {
  const out: Inspected[][] = [];
  let current: Inspected[] = [];
  let seen = new Set<string>();
  for (const o of [...objects].sort((a, b) => stagingGroup(a).localeCompare(stagingGroup(b)) || a.key.localeCompare(b.key))) {
    const group = stagingGroup(o);
    if (current.length >= size || (!seen.has(group) && seen.size >= groups)) {
      out.push(current);
      current = [];
      seen = new Set();
    }
    current.push(o);
    seen.add(group);
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function createWarehouseLoader(options: WarehouseLoaderOptions): WarehouseLoader {
  const { warehouse, store } = options;
  const schema = warehouse.schema;
  const kinds = options.tables ?? EVENT_KINDS;
  for (const k of kinds) if (!EVENT_KINDS.includes(k)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `warehouse loader: /tables: unknown event kind ${String(k)}`);
  const maxBatch = options.maxObjectsPerBatch ?? DEFAULT_BATCH;
  const partRows = options.csvPartRows ?? PART_ROWS;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'warehouse loader: /maxObjectsPerBatch must be a positive integer');
  if (warehouse.engine === 'redshift') {
    if (options.redshift === undefined) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'warehouse loader: /redshift (iamRole) is required for Redshift');
    if (isLocalStore(store)) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'warehouse loader: Redshift loads from S3: the lake must be an S3 store');
  }
  const log = options.log ?? (() => undefined);
  const duck = lazyDuck();
  let closed = false;
  const live = options.liveTables === true ? createLiveTablesLoader({ warehouse, store, catalog: options.catalog, maxObjectsPerBatch: options.maxObjectsPerBatch, log }) : undefined;

  const db = (): Promise<DuckDBConnection> => duck.connection();

  const processed =
    options.processed === undefined
      ? undefined
      : createProcessedLoader(options.processed, { warehouse, store, duck: () => db(), log, ...(options.redshift === undefined ? {} : { redshift: options.redshift }) });

  const checkOpen = () => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'warehouse loader');
  };

  /** Live objects of a table with their partitions, through the catalog's locations when there is one. */
  const listObjects = async (kind: LakeTable): Promise<LakeObject[]> => {
    const found: LakeObject[] = [];
    const registered = options.catalog === undefined ? undefined : (await options.catalog.tables()).find((t) => t.name === kind);
    if (registered !== undefined && registered.partitions.length > 0) {
      for (const p of registered.partitions) {
        const partition = { event_date: p.values[0] as string, event_hour: Number(p.values[1]) };
        for (const key of await store.list(p.location)) if (key.endsWith('.parquet')) found.push({ key, table: kind, partition });
      }
    } else {
      for (const key of await store.list(tablePrefix(kind))) {
        const partition = key.endsWith('.parquet') ? partitionOfKey(kind, key) : undefined;
        if (partition !== undefined) found.push({ key, table: kind, partition });
      }
    }
    const live = new Set(liveFiles(found.map((o) => o.key)));
    return found.filter((o) => live.has(o.key));
  };

  const readLedger = async (kind?: string): Promise<Map<string, { table: string; status: string; rows: number }>> => {
    const result = await warehouse.query(ledgerSelectSql(schema, kind));
    return new Map(result.rows.map((r) => [String(r.object_key), { table: String(r.table_name), status: String(r.status), rows: Number(r.object_rows) }]));
  };

  /** Local path, row count, size and columns of an object; undefined (with the reason) when unreadable. */
  const inspect = async (object: LakeObject, scratch: string): Promise<Inspected | SkippedObject> => {
    try {
      const { path, bytes } = await objectFile(store, object.key, scratch);
      const connection = await db();
      const rows = await footerRows(connection, path);
      const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quotedString(path)})`);
      const columns = described.getRowObjects().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
      if (!columns.some((c) => c.name === 'event_id')) throw new Error('no event_id column');
      // Reading every row once proves the pages decode, so a corrupt page fails here, not mid-transaction.
      await connection.run(`SELECT count(event_id) FROM read_parquet(${quotedString(path)})`);
      return { ...object, path, rows, bytes, columns };
    } catch (err) {
      const reason = errorMessage(err);
      return { key: object.key, reason, error: cloudErrors.create('CLD_WAREHOUSE_OBJECT', `${object.key}: ${reason}`, err) };
    }
  };

  /** Steps putting the batch's rows, one per key, into the MERGE source through COPY FROM STDIN (PostgreSQL/PGlite). */
  const copySteps = async (table: WarehouseTable, objects: readonly Inspected[], scratch: string): Promise<WarehouseStep[]> => {
    const connection = await db();
    const selects = objects.map((o) => {
      const present = new Set(o.columns.map((c) => c.name));
      const cols = table.columns.map((c) => {
        if (c.name === 'event_date') return `${quotedString(o.partition.event_date)} AS event_date`;
        if (c.name === 'event_hour') return `CAST(${o.partition.event_hour} AS BIGINT) AS event_hour`;
        return present.has(c.name) ? quoteIdent(c.name) : `CAST(NULL AS ${duckType(c)}) AS ${quoteIdent(c.name)}`;
      });
      return `SELECT ${cols.join(', ')} FROM read_parquet(${quotedString(o.path)})`;
    });
    // DuckDB dedupes by key on the way out (faster than a window over the staged rows in PostgreSQL), so
    // the CSV fills the MERGE source itself. The window materializes every column; a batch seldom holds a
    // key twice (a replay), and finding out reads the key columns only: the window runs only when needed.
    const key = table.key.map(quoteIdent).join(', ');
    const rows = selects.join(' UNION ALL ');
    const twice = await connection.runAndReadAll(`SELECT 1 FROM (${rows}) wh_rows GROUP BY ${key} HAVING count(*) > 1 LIMIT 1`);
    // Without duplicates each part of the batch is its own CSV file (about PART_ROWS rows), written while
    // the warehouse's COPY reads the ones before; a batch that holds a key twice is deduplicated whole.
    const parts: string[] = [];
    if (twice.currentRowCount === 0) {
      let part: string[] = [];
      let partSize = 0;
      objects.forEach((o, i) => {
        part.push(selects[i] as string);
        partSize += o.rows;
        if (partSize >= partRows || i === objects.length - 1) {
          parts.push(part.join(' UNION ALL '));
          part = [];
          partSize = 0;
        }
      });
    } else parts.push(`SELECT * FROM (${rows}) wh_rows QUALIFY row_number() OVER (PARTITION BY ${key} ORDER BY ${key}) = 1`);
    const id = randomUUID();
    const source = csvParts(parts.length, (i) => join(scratch, `${id}-${i}.csv`), async (i, path) => {
      await connection.run(`COPY (${parts[i] as string}) TO ${quotedString(path)} (FORMAT csv, HEADER false)`);
    });
    return [
      { sql: `CREATE TEMP TABLE ${quoteIdent(SOURCE_TABLE)} (${columnList(table.columns, warehouse.dialect)})` },
      { copyCsv: { table: SOURCE_TABLE, columns: table.columns.map((c) => c.name), ...source } },
    ];
  };

  /** Steps putting the batch's rows into staging with COPY from S3 through manifests (Redshift). */
  const manifestSteps = async (table: WarehouseTable, objects: readonly Inspected[], batchId: string) => {
    const config = options.redshift as RedshiftLoadConfig;
    // COPY maps Parquet columns by position: one staging table per column layout and partition.
    const groups = new Map<string, Inspected[]>();
    for (const o of objects) {
      const id = stagingGroup(o);
      let list = groups.get(id);
      if (list === undefined) groups.set(id, (list = []));
      list.push(o);
    }
    const steps: WarehouseStep[] = [];
    const selects: string[] = [];
    const stages: string[] = [];
    const manifests: string[] = [];
    const role = config.iamRole === 'default' ? 'default' : quoteLiteral(config.iamRole);
    let i = 0;
    for (const group of groups.values()) {
      const first = group[0] as Inspected;
      const stage = `wh_stage_${i++}`;
      stages.push(stage);
      const byName = new Map(table.columns.map((c) => [c.name, c]));
      const stageColumns = first.columns.map((c) => `${quoteIdent(c.name)} ${byName.has(c.name) ? sqlType(byName.get(c.name) as WarehouseColumn, 'redshift') : redshiftTypeOf(c.type)}`);
      const manifestKey = `${(config.manifestPrefix ?? '_warehouse/manifests/').replace(/\/?$/, '/')}${batchId}-${i}.json`;
      steps.push(...(await stageFromManifest(store, manifestKey, group, stage, stageColumns, role)));
      manifests.push(manifestKey);
      const present = new Set(first.columns.map((c) => c.name));
      const cols = table.columns.map((c) => {
        if (c.name === 'event_date') return `CAST(${quoteLiteral(first.partition.event_date)} AS VARCHAR(10)) AS event_date`;
        if (c.name === 'event_hour') return `CAST(${first.partition.event_hour} AS BIGINT) AS event_hour`;
        return present.has(c.name) ? quoteIdent(c.name) : `CAST(NULL AS ${sqlType(c, 'redshift')}) AS ${quoteIdent(c.name)}`;
      });
      selects.push(`SELECT ${cols.join(', ')} FROM ${quoteIdent(stage)}`);
    }
    return { steps, staged: selects.join(' UNION ALL '), stages, manifests };
  };

  const loadBatch = async (kind: EventKind, objects: readonly Inspected[], scratch: string): Promise<void> => {
    const table = factTable(kind);
    const batchId = randomUUID();
    const steps: WarehouseStep[] = [];
    let stages: string[] = [];
    let manifests: string[] = [];
    if (warehouse.canCopyCsv) {
      // Statistics on the fresh temp table let the planner hash-join it to the target (a third off the MERGE):
      // its row count and the key's, which the join needs; the other columns' would cost a quarter of the MERGE.
      steps.push(...(await copySteps(table, objects, scratch)), { sql: `ANALYZE ${quoteIdent(SOURCE_TABLE)} (${table.key.map(quoteIdent).join(', ')})` });
    } else {
      const copy = await manifestSteps(table, objects, batchId);
      steps.push(...copy.steps, { sql: dedupeSql(table, copy.staged) });
      stages = copy.stages;
      manifests = copy.manifests;
    }
    steps.push({ sql: mergeSql(table, SOURCE_TABLE, schema) });
    for (const sql of dimensionSql(table, kind, schema)) steps.push({ sql });
    const entries: LedgerEntry[] = objects.map((o) => ({
      objectKey: o.key,
      table: kind,
      status: 'loaded',
      rows: o.rows,
      bytes: o.bytes,
      eventDate: o.partition.event_date,
      eventHour: o.partition.event_hour,
    }));
    for (const sql of ledgerSql(entries, batchId, Date.now(), schema, warehouse.dialect)) steps.push({ sql });
    steps.push({ sql: `DROP TABLE ${quoteIdent(SOURCE_TABLE)}` });
    for (const stage of stages) steps.push({ sql: `DROP TABLE ${quoteIdent(stage)}` });
    try {
      await warehouse.transaction(steps);
    } finally {
      for (const key of manifests) await store.delete?.(key).catch(() => undefined);
    }
    const rows = objects.reduce((n, o) => n + o.rows, 0);
    log('info', 'warehouse batch loaded', { table: kind, objects: objects.length, rows, batchId });
    options.onBatch?.({ table: kind, objects: objects.length, rows, batchId });
  };

  return {
    async init() {
      checkOpen();
      await warehouse.transaction([{ sql: `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}` }]);
      const existing = await warehouse.query(existingColumnsSql(schema));
      const columns: ExistingColumn[] = existing.rows.map((r) => ({
        table: String(r.table_name),
        column: String(r.column_name),
        dataType: String(r.data_type),
        maxLength: r.character_maximum_length === null || r.character_maximum_length === undefined ? null : Number(r.character_maximum_length),
      }));
      const plan = planSchema(warehouseTables([...(processed?.tables ?? []), ...(options.extraTables ?? []), ...(options.liveTables === true ? LIVE_WAREHOUSE_TABLES : [])]), columns, warehouse.dialect, schema);
      for (const sql of plan.statements) await warehouse.transaction([{ sql }]);
      await warehouse.transaction(districtRowsSql(schema).map((sql) => ({ sql })));
      return plan;
    },

    async load(loadOptions = {}) {
      checkOpen();
      const aborted = (): boolean => loadOptions.signal?.aborted === true;
      const result: LoadResult = { batches: 0, objects: 0, rows: 0, covered: 0, skipped: [], perTable: {} };
      const scratch = await mkdtemp(join(tmpdir(), 'warehouse-load-'));
      try {
        for (const kind of kinds) {
          if (aborted()) break;
          const per = (result.perTable[kind] = { objects: 0, rows: 0, covered: 0 });
          const ledger = await readLedger(kind);
          const live = await listObjects(kind);
          const pending = live.filter((o) => !ledger.has(o.key));
          const inspected: Inspected[] = [];
          const covered: LedgerEntry[] = [];
          // After a crash the sink may rewrite its newest uncommitted file under the same key with more
          // rows: the newest loaded file of each topic-partition is looked at again, and loaded again
          // (MERGE keeps the rows already there) when it has grown.
          for (const object of newestPerGroup(live.filter((o) => ledger.get(o.key)?.status === 'loaded'))) {
            const got = await inspect(object, scratch);
            if ('path' in got && got.rows > (ledger.get(object.key)?.rows ?? 0)) inspected.push(got);
            else if ('path' in got && !isLocalStore(store)) await rm(got.path, { force: true });
          }
          for (const object of pending) {
            const got = await inspect(object, scratch);
            if (!('path' in got)) {
              result.skipped.push(got);
              log('warn', got.error.message, { code: got.error.code, key: got.key });
              continue;
            }
            if (coveredByLedger(got, ledger)) {
              covered.push({ objectKey: got.key, table: kind, status: 'covered', rows: got.rows, bytes: got.bytes, eventDate: got.partition.event_date, eventHour: got.partition.event_hour });
            } else {
              inspected.push(got);
            }
          }
          if (covered.length > 0) {
            await warehouse.transaction(ledgerSql(covered, randomUUID(), Date.now(), schema, warehouse.dialect).map((sql) => ({ sql })));
            per.covered += covered.length;
            result.covered += covered.length;
          }
          for (const batch of batches(inspected, maxBatch, warehouse.canCopyCsv ? Infinity : MAX_REDSHIFT_GROUPS)) {
            if (aborted()) break;
            await loadBatch(kind, batch, scratch);
            const rows = batch.reduce((n, o) => n + o.rows, 0);
            result.batches++;
            result.objects += batch.length;
            result.rows += rows;
            per.objects += batch.length;
            per.rows += rows;
            if (!isLocalStore(store)) for (const o of batch) await rm(o.path, { force: true });
          }
        }
        if (processed !== undefined && !aborted()) {
          const p = (result.processed = await processed.load(scratch, loadOptions.signal));
          for (const s of p.skipped) result.skipped.push(s);
        }
        if (live !== undefined && !aborted()) addLive(result, await live.load(loadOptions));
        return result;
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },

    async status() {
      checkOpen();
      const ledger = await warehouse.query(
        `SELECT table_name, status, count(*) AS objects, sum(object_rows) AS object_rows, ` +
          `max(event_date || '/' || lpad(CAST(event_hour AS VARCHAR(2)), 2, '0')) AS newest FROM ${qualified(schema, 'wh_load_ledger')} GROUP BY table_name, status`,
      );
      const keys = new Set((await readLedger()).keys());
      const out: TableStatus[] = [];
      for (const kind of [...kinds, ...(live === undefined ? [] : LIVE_LAKE_TABLES)]) {
        const rows = ledger.rows.filter((r) => r.table_name === kind);
        const loaded = rows.find((r) => r.status === 'loaded');
        const coveredRow = rows.find((r) => r.status === 'covered');
        const count = await warehouse.query(`SELECT count(*) AS n FROM ${qualified(schema, kind)}`);
        const objects = await listObjects(kind);
        const pending = objects.filter((o) => !keys.has(o.key));
        const partitionName = (p: LakePartition) => `${p.event_date}/${p.event_hour}`;
        const hourOf = (name: string | null) => {
          if (name === null) return undefined;
          const [date, hour] = name.split('/');
          return Date.parse(`${date}T00:00:00Z`) / 3_600_000 + Number(hour);
        };
        let lakeNewest: string | null = null;
        for (const o of objects) if (lakeNewest === null || (hourOf(partitionName(o.partition)) as number) > (hourOf(lakeNewest) as number)) lakeNewest = partitionName(o.partition);
        // Hours are zero-padded in SQL so max() orders them; shown unpadded like the lake's paths.
        const newestLoaded = [loaded?.newest, coveredRow?.newest]
          .filter((v): v is string => typeof v === 'string')
          .map((v) => v.replace(/\/0?(\d+)$/, (_m, h: string) => `/${Number(h)}`));
        let loadedNewest: string | null = null;
        for (const n of newestLoaded) if (loadedNewest === null || (hourOf(n) as number) > (hourOf(loadedNewest) as number)) loadedNewest = n;
        const lake = hourOf(lakeNewest);
        const done = hourOf(loadedNewest);
        out.push({
          table: kind,
          objectsLoaded: Number(loaded?.objects ?? 0),
          objectsCovered: Number(coveredRow?.objects ?? 0),
          rowsLoaded: Number(loaded?.object_rows ?? 0),
          warehouseRows: Number(count.rows[0]?.n ?? 0),
          objectsPending: pending.length,
          lakeNewest,
          loadedNewest,
          lagHours: lake === undefined ? null : pending.length === 0 ? 0 : done === undefined ? null : Math.max(0, lake - done),
        });
      }
      if (processed !== undefined) out.push(...(await processed.status()));
      return out;
    },

    async close() {
      if (closed) return;
      closed = true;
      await live?.close();
      duck.close();
    },
  };
}

/** The sink-written (not merged) object with the highest first offset per folder and Kafka topic-partition. */
export function newestPerGroup<T extends { key: string }>(objects: readonly T[]): T[] {
  const newest = new Map<string, { object: T; first: bigint }>();
  for (const object of objects) {
    const file = parseLakeFileKey(object.key);
    if (file === undefined || file.merged) continue;
    const group = `${file.folder}\u0000${file.topic}\u0000${file.kafkaPartition}`;
    const seen = newest.get(group);
    if (seen === undefined || file.firstOffset > seen.first) newest.set(group, { object, first: file.firstOffset });
  }
  return [...newest.values()].map((v) => v.object);
}

/** True when ledger rows of the merged file's inputs add up to its rows: every one of them was loaded. */
export function coveredByLedger(object: { key: string; rows: number }, ledger: ReadonlyMap<string, { rows: number }>): boolean {
  const merged = parseLakeFileKey(object.key);
  if (merged === undefined || !merged.merged || merged.lastOffset === undefined) return false;
  let rows = 0;
  for (const [key, entry] of ledger) {
    const input = parseLakeFileKey(key);
    if (input === undefined || input.folder !== merged.folder || input.topic !== merged.topic || input.kafkaPartition !== merged.kafkaPartition) continue;
    const inside = input.merged
      ? merged.firstOffset <= input.firstOffset && (input.lastOffset as bigint) <= merged.lastOffset
      : merged.firstOffset <= input.firstOffset && input.firstOffset <= merged.lastOffset;
    if (inside) rows += entry.rows;
  }
  return rows === object.rows;
}

const duckType = (c: WarehouseColumn): string =>
  ({ string: 'VARCHAR', int64: 'BIGINT', double: 'DOUBLE', boolean: 'BOOLEAN', timestamp: 'TIMESTAMPTZ' })[c.type];

/** A Redshift type for a Parquet column the protocol does not know (a newer writer's). */
function redshiftTypeOf(duckdbType: string): string {
  const t = duckdbType.toUpperCase();
  if (t === 'BIGINT' || t === 'INTEGER') return 'BIGINT';
  if (t === 'DOUBLE' || t === 'FLOAT') return 'DOUBLE PRECISION';
  if (t === 'BOOLEAN') return 'BOOLEAN';
  if (t.startsWith('TIMESTAMP')) return 'TIMESTAMPTZ';
  return 'VARCHAR(65535)';
}

function addLive(result: LoadResult, live: LiveLoadResult): void {
  result.batches += live.batches;
  result.objects += live.objects;
  result.rows += live.rows;
  result.covered += live.covered;
  result.skipped.push(...live.skipped);
  Object.assign(result.perTable, live.perTable);
}

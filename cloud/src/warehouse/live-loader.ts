// Loads the live engine's lake tables (kpi_windows, alerts) into the warehouse tables of the same names,
// exactly once, by the same rules as the event loader: objects not in the load ledger go in batches, one
// transaction each (rows → temp table → MERGE on the table's key → ledger rows); a sink file rewritten
// with more rows after a crash is loaded again; a compacted file whose inputs were loaded is recorded as
// covered. kpi_windows takes final revisions only (what Power BI gets; early updates stay in the lake).
//
// emitted_at is what the Power BI Lambda's watermark follows (rows with emitted_at > watermark), so a
// row written later must never carry an older emitted_at than one already there: a batch whose rows are
// older than the newest in the table (the lake's files do not arrive in emission order) has them
// raised to just past it, inside the same transaction. On a fresh table the live engine's times stand.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quotedString, type DuckDBConnection } from '@duckdb/node-api';
import { footerRows, lazyDuck, objectFile } from './duck.ts';
import { LIVE_LAKE_TABLES, type LiveLakeTableName, type Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { partitionOfKey, tablePrefix, type LakePartition } from '../lake/layout.ts';
import { liveFiles } from '../lake/reader.ts';
import type { CatalogReader } from '../ports/catalog/port.ts';
import { isLocalStore, type ObjectStore } from '../ports/store/port.ts';
import { columnList, ledgerSelectSql, ledgerSql, mergeSql, type LedgerEntry } from './load-sql.ts';
import { ALERTS_TABLE, KPI_WINDOWS_TABLE } from './live-tables.ts';
import { coveredByLedger, newestPerGroup, type SkippedObject } from './loader.ts';
import type { Warehouse, WarehouseStep } from './port.ts';
import { qualified, quoteIdent, quoteLiteral, type WarehouseTable } from './schema.ts';

export interface LiveLoadOptions {
  warehouse: Warehouse;
  store: ObjectStore;
  catalog?: CatalogReader | undefined;
  /** Objects per transaction; 64 by default. */
  maxObjectsPerBatch?: number | undefined;
  /** INSERT statements per transaction where COPY from a file is not possible (Redshift: at most 40 statements per batch). */
  maxInsertsPerTransaction?: number | undefined;
  /** Bytes per INSERT statement (Redshift path); 64 KiB by default, below the Data API's 100 KB. */
  maxInsertBytes?: number | undefined;
  log?: Log | undefined;
}

export interface LiveLoadResult {
  batches: number;
  objects: number;
  /** Rows merged into the warehouse (kpi_windows: final revisions only). */
  rows: number;
  covered: number;
  skipped: SkippedObject[];
  perTable: Record<string, { objects: number; rows: number; covered: number }>;
}

export interface LiveTablesLoader {
  load(options?: { signal?: AbortSignal }): Promise<LiveLoadResult>;
  close(): Promise<void>;
}

interface Found {
  key: string;
  partition: LakePartition;
}

interface Inspected extends Found {
  path: string;
  rows: number;
  bytes: number;
}

const TABLES: { readonly [T in LiveLakeTableName]: WarehouseTable } = { kpi_windows: KPI_WINDOWS_TABLE, alerts: ALERTS_TABLE };
const SOURCE = 'wh_live_src';
const DEFAULT_BATCH = 64;
/** Below the Data API's 100 KB per statement. */
const MAX_INSERT_BYTES = 64 * 1024;

/** DuckDB SELECT of one object's rows as the warehouse table's columns (timestamps as ISO text). */
function selectSql(table: WarehouseTable, path: string): string {
  const cols = table.columns.map((c) => (c.type === 'timestamp' ? `strftime(${quoteIdent(c.name)}, '%Y-%m-%dT%H:%M:%S.%fZ') AS ${quoteIdent(c.name)}` : quoteIdent(c.name)));
  return `SELECT ${cols.join(', ')} FROM read_parquet(${quotedString(path)})${table.name === 'kpi_windows' ? ' WHERE final' : ''}`;
}

/** One row per key: a replayed emission repeats a key; the latest emission (then the escalated severity) wins. */
function dedupedSql(table: WarehouseTable, objects: readonly Inspected[]): string {
  const key = table.key.map(quoteIdent).join(', ');
  const severity = table.name === 'alerts' ? `, CASE WHEN severity = 'critical' THEN 1 ELSE 0 END DESC` : '';
  return `SELECT * FROM (${objects.map((o) => selectSql(table, o.path)).join(' UNION ALL ')}) r QUALIFY row_number() OVER (PARTITION BY ${key} ORDER BY emitted_at DESC${severity}) = 1`;
}

function literal(value: unknown, type: string): string {
  if (value === null || value === undefined) return 'NULL';
  if (type === 'timestamp') return `CAST(${quoteLiteral(String(value))} AS TIMESTAMPTZ)`;
  if (type === 'boolean') return value === true ? 'TRUE' : 'FALSE';
  if (type === 'int64' || type === 'double') {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new RangeError(`not a finite number: ${String(value)}`);
    return String(value);
  }
  return quoteLiteral(String(value));
}

export function createLiveTablesLoader(options: LiveLoadOptions): LiveTablesLoader {
  const { warehouse, store } = options;
  const schema = warehouse.schema;
  const maxBatch = options.maxObjectsPerBatch ?? DEFAULT_BATCH;
  const maxInserts = options.maxInsertsPerTransaction ?? 30;
  const maxInsertBytes = options.maxInsertBytes ?? MAX_INSERT_BYTES;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'live tables loader: /maxObjectsPerBatch must be a positive integer');
  if (!Number.isInteger(maxInserts) || maxInserts < 1 || maxInserts > 32) throw cloudErrors.create('CLD_INVALID_OPTIONS', 'live tables loader: /maxInsertsPerTransaction must be an integer from 1 to 32');
  const log = options.log ?? (() => undefined);
  const duck = lazyDuck();
  let closed = false;

  const db = (): Promise<DuckDBConnection> => duck.connection();

  const list = async (table: LiveLakeTableName): Promise<Found[]> => {
    const found: Found[] = [];
    const registered = options.catalog === undefined ? undefined : (await options.catalog.tables()).find((t) => t.name === table);
    if (registered !== undefined && registered.partitions.length > 0) {
      for (const p of registered.partitions) {
        const partition = { event_date: p.values[0] as string, event_hour: Number(p.values[1]) };
        for (const key of await store.list(p.location)) if (key.endsWith('.parquet')) found.push({ key, partition });
      }
    } else {
      for (const key of await store.list(tablePrefix(table))) {
        const partition = key.endsWith('.parquet') ? partitionOfKey(table, key) : undefined;
        if (partition !== undefined) found.push({ key, partition });
      }
    }
    const live = new Set(liveFiles(found.map((o) => o.key)));
    return found.filter((o) => live.has(o.key));
  };

  const inspect = async (object: Found, scratch: string): Promise<Inspected | SkippedObject> => {
    try {
      const { path, bytes } = await objectFile(store, object.key, scratch);
      const connection = await db();
      const rows = await footerRows(connection, path);
      // Every page decoded once here, so a corrupt one fails before the transaction, not inside it.
      await connection.run(`SELECT count(*) FROM read_parquet(${quotedString(path)}) WHERE emitted_at IS NOT NULL`);
      return { ...object, path, rows, bytes };
    } catch (err) {
      const reason = errorMessage(err);
      return { key: object.key, reason, error: cloudErrors.create('CLD_WAREHOUSE_OBJECT', `${object.key}: ${reason}`, err) };
    }
  };

  const createSource = (table: WarehouseTable): WarehouseStep => ({ sql: `CREATE TEMP TABLE ${quoteIdent(SOURCE)} (${columnList(table.columns, warehouse.dialect)})` });

  /** One transaction: the source filled by `fill`, emitted_at raised where needed, MERGE, ledger rows for `entries`. */
  const apply = async (table: WarehouseTable, fill: readonly WarehouseStep[], entries: readonly LedgerEntry[]): Promise<void> => {
    const target = qualified(schema, table.name);
    const newest = `(SELECT max(emitted_at) FROM ${target})`;
    const steps: WarehouseStep[] = [
      createSource(table),
      ...fill,
      // Keeps emitted_at increasing per row written (see the top of this file).
      { sql: `UPDATE ${quoteIdent(SOURCE)} SET emitted_at = ${newest} + INTERVAL '1 millisecond' WHERE emitted_at <= ${newest}` },
      { sql: mergeSql(table, SOURCE, schema) },
      ...ledgerSql(entries, randomUUID(), Date.now(), schema, warehouse.dialect).map((sql) => ({ sql })),
      { sql: `DROP TABLE ${quoteIdent(SOURCE)}` },
    ];
    await warehouse.transaction(steps);
  };

  const entriesOf = (name: LiveLakeTableName, objects: readonly Inspected[]): LedgerEntry[] =>
    objects.map((o) => ({ objectKey: o.key, table: name, status: 'loaded', rows: o.rows, bytes: o.bytes, eventDate: o.partition.event_date, eventHour: o.partition.event_hour }));

  /** INSERT statements of at most maxInsertBytes each (the Data API takes 100 KB per statement). */
  const insertSteps = (table: WarehouseTable, rows: readonly unknown[][]): WarehouseStep[] => {
    const head = `INSERT INTO ${quoteIdent(SOURCE)} (${table.columns.map((c) => quoteIdent(c.name)).join(', ')}) VALUES\n`;
    const steps: WarehouseStep[] = [];
    let values: string[] = [];
    let bytes = head.length;
    for (const r of rows) {
      const tuple = `(${table.columns.map((c, j) => literal(typeof r[j] === 'bigint' ? String(r[j]) : r[j], c.type)).join(', ')})`;
      const size = Buffer.byteLength(tuple) + 2;
      if (head.length + size > maxInsertBytes) throw new RangeError(`a ${table.name} row of ${size} bytes is longer than one statement may be`);
      if (values.length > 0 && bytes + size > maxInsertBytes) {
        steps.push({ sql: head + values.join(',\n') });
        values = [];
        bytes = head.length;
      }
      values.push(tuple);
      bytes += size;
    }
    if (values.length > 0) steps.push({ sql: head + values.join(',\n') });
    return steps;
  };

  /** Loads a batch in one transaction (several, for one object too big for one Data API batch); returns the rows merged. */
  const loadBatch = async (name: LiveLakeTableName, objects: readonly Inspected[], scratch: string): Promise<number> => {
    const table = TABLES[name];
    const connection = await db();
    let rows: number;
    if (warehouse.canCopyCsv) {
      const csv = join(scratch, `${randomUUID()}.csv`);
      await connection.run(`COPY (${dedupedSql(table, objects)}) TO ${quotedString(csv)} (FORMAT csv, HEADER false)`);
      rows = Number((await connection.runAndReadAll(`SELECT count(*) FROM (${dedupedSql(table, objects)}) n`)).getRows()[0]?.[0] ?? 0);
      await apply(table, [{ copyCsv: { table: SOURCE, columns: table.columns.map((c) => c.name), path: csv } }], entriesOf(name, objects));
    } else {
      // Redshift cannot COPY from a file here: the rows (alerts, final windows: few) go in as INSERTs.
      const read = (await connection.runAndReadAll(dedupedSql(table, objects))).getRows();
      const inserts = insertSteps(table, read);
      rows = read.length;
      if (inserts.length > maxInserts && objects.length > 1) {
        const half = Math.ceil(objects.length / 2);
        return (await loadBatch(name, objects.slice(0, half), scratch)) + (await loadBatch(name, objects.slice(half), scratch));
      }
      // One object over the limit: its rows in several transactions, the ledger row with the last (a MERGE
      // again after a crash in between is harmless).
      for (let i = 0; i < Math.max(1, inserts.length); i += maxInserts) {
        const last = i + maxInserts >= inserts.length;
        await apply(table, inserts.slice(i, i + maxInserts), last ? entriesOf(name, objects) : []);
      }
    }
    log('info', 'warehouse batch loaded', { table: name, objects: objects.length, rows });
    return rows;
  };

  return {
    async load(loadOptions = {}) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'live tables loader');
      const result: LiveLoadResult = { batches: 0, objects: 0, rows: 0, covered: 0, skipped: [], perTable: {} };
      const scratch = await mkdtemp(join(tmpdir(), 'warehouse-live-'));
      const drop = async (o: Inspected) => {
        if (!isLocalStore(store)) await rm(o.path, { force: true });
      };
      try {
        for (const name of LIVE_LAKE_TABLES) {
          if (isAborted(loadOptions.signal)) break;
          const per = (result.perTable[name] = { objects: 0, rows: 0, covered: 0 });
          const ledger = new Map((await warehouse.query(ledgerSelectSql(schema, name))).rows.map((r) => [String(r.object_key), { status: String(r.status), rows: Number(r.object_rows) }]));
          const live = await list(name);
          const todo: Inspected[] = [];
          const covered: LedgerEntry[] = [];
          // A sink file rewritten after a crash under the same key with more rows: load it again.
          for (const object of newestPerGroup(live.filter((o) => ledger.get(o.key)?.status === 'loaded'))) {
            const got = await inspect(object, scratch);
            if ('path' in got && got.rows > (ledger.get(object.key)?.rows ?? 0)) todo.push(got);
            else if ('path' in got) await drop(got);
          }
          for (const object of live.filter((o) => !ledger.has(o.key))) {
            const got = await inspect(object, scratch);
            if (!('path' in got)) {
              result.skipped.push(got);
              log('warn', got.error.message, { code: got.error.code, key: got.key });
            } else if (coveredByLedger(got, ledger)) {
              covered.push({ objectKey: got.key, table: name, status: 'covered', rows: got.rows, bytes: got.bytes, eventDate: got.partition.event_date, eventHour: got.partition.event_hour });
              await drop(got);
            } else todo.push(got);
          }
          if (covered.length > 0) {
            await warehouse.transaction(ledgerSql(covered, randomUUID(), Date.now(), schema, warehouse.dialect).map((sql) => ({ sql })));
            per.covered += covered.length;
            result.covered += covered.length;
          }
          // Oldest first, so emitted_at mostly arrives in order and keeps the engine's own times.
          todo.sort((a, b) => a.partition.event_date.localeCompare(b.partition.event_date) || a.partition.event_hour - b.partition.event_hour || a.key.localeCompare(b.key));
          for (let i = 0; i < todo.length; i += maxBatch) {
            if (isAborted(loadOptions.signal)) break;
            const batch = todo.slice(i, i + maxBatch);
            const rows = await loadBatch(name, batch, scratch);
            result.batches++;
            result.objects += batch.length;
            result.rows += rows;
            per.objects += batch.length;
            per.rows += rows;
            for (const o of batch) await drop(o);
          }
        }
        return result;
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      duck.close();
    },
  };
}

// A function, so a check after an await is not narrowed away by the one before it.
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

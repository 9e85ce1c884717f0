// The query port on DuckDB over the lake's Parquet files, one view per table. Athena takes this
// place in AWS; the views mirror what a catalog registers (table columns, then partition keys).
import {
  DuckDBArrayValue,
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBListValue,
  DuckDBMapValue,
  DuckDBStructValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  quotedIdentifier,
  quotedString,
  type DuckDBConnection,
  type DuckDBValue,
} from '@duckdb/node-api';
import { EVENT_KINDS, LIVE_LAKE_TABLES, type Column } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import { isLakeTable, listLiveFiles, liveFiles, SQL_TYPES, tablePrefix, tableSchema, type LakeTable } from '../../lake/index.ts';
import { createLocalCatalog, type CatalogReader } from '../catalog/index.ts';
import { createLocalFolderStore, type ObjectStore } from '../store/index.ts';
import type { LakeValue, QueryResult } from './port.ts';

export interface LakeTableInfo {
  /** A lake table, or a table the catalog registered (e.g. of another zone). */
  name: string;
  /** Parquet files behind the view when it was (re)created; 0 means an empty view with the right columns. */
  files: number;
}

export interface Lake {
  readonly root: string;
  readonly tables: readonly LakeTableInfo[];
  query(sql: string): Promise<QueryResult>;
  /** Rows per table, in table order. */
  counts(): Promise<{ table: LakeTable; rows: number }[]>;
  /** Re-creates the views, e.g. after the first file of a table appeared. */
  refresh(): Promise<void>;
  close(): void;
}

export const LAKE_TABLES: readonly LakeTable[] = [...EVENT_KINDS, 'deadletter'];

/** What a view is made of: the table's columns and partition keys, and the key prefix of its files. */
interface ViewSpec {
  name: string;
  columns: readonly Column[];
  partitionKeys: readonly Column[];
  prefix: string;
  /** The catalog's partition locations: when given, the view reads exactly the files directly in them. */
  locations?: readonly string[];
}

export interface OpenLakeOptions {
  store?: ObjectStore;
  /**
   * Where the tables are registered; defaults to the local catalog beside the lake. Its tables add
   * views (or widen the built-in ones with columns it holds); the layout's tables are always there.
   */
  catalog?: CatalogReader;
  /** Only these tables get views (each view reads its files' footers): e.g. the processing job's sources. */
  tables?: readonly string[];
}

/** Opens an in-memory DuckDB with a view per lake table (named after the kind, plus `deadletter`). */
export async function openLake(lakeDir: string, options: OpenLakeOptions = {}): Promise<Lake> {
  const store = options.store ?? createLocalFolderStore(lakeDir);
  const catalog = options.catalog ?? createLocalCatalog(lakeDir);
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  try {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    await connection.run(`SET TimeZone = 'UTC'`);
  } catch (err) {
    connection?.closeSync();
    instance?.closeSync();
    throw cloudErrors.create('CLD_LAKE_OPEN', errorMessage(err), err);
  }
  const db = connection;
  const dbInstance = instance;
  let tables: LakeTableInfo[] = [];
  let closed = false;
  // What each view was last made of: a refresh re-creates only views whose files or columns changed
  // (creating one reads every file's footer), so a long-lived lake pays a listing per unchanged table.
  const madeOf = new Map<string, string>();

  const refresh = async (): Promise<void> => {
    try {
      const specs = new Map<string, ViewSpec & { optional: boolean }>();
      const layoutView = (table: LakeTable, optional: boolean) => {
        const schema = tableSchema(table);
        specs.set(table, { name: table, columns: schema.columns, partitionKeys: schema.partitionKeys, prefix: tablePrefix(table), optional });
      };
      for (const table of LAKE_TABLES) layoutView(table, false);
      // The live engine's tables: always a view (empty until the sink wrote some), so their queries run.
      for (const table of LIVE_LAKE_TABLES) layoutView(table, false);
      // Other zones (raw_<kind>, where the layout has them) get a view once they hold files, so an empty
      // lake keeps the plain table list.
      for (const kind of EVENT_KINDS) {
        const raw = `raw_${kind}`;
        if (isLakeTable(raw)) layoutView(raw, true);
      }
      for (const t of await catalog.tables()) {
        const known = specs.get(t.name);
        // The catalog only ever adds columns; the protocol may be newer than the catalog: take both.
        const names = new Set(known?.columns.map((c) => c.name));
        const columns = [...(known?.columns ?? []), ...t.columns.filter((c) => !names.has(c.name))];
        // Registered partitions: read what the catalog points at, as Athena and Spark do, so a partition
        // whose location was switched (a rebuild, a compaction) reads its new files only.
        const locations = t.partitions.length > 0 || known === undefined ? t.partitions.map((p) => p.location) : undefined;
        specs.set(t.name, { name: t.name, columns, partitionKeys: t.partitionKeys, prefix: t.location, ...(locations === undefined ? {} : { locations }), optional: false });
      }
      const next: LakeTableInfo[] = [];
      for (const spec of specs.values()) {
        if (options.tables !== undefined && !options.tables.includes(spec.name)) continue;
        // Only live files: inputs a compacted file has replaced must not be read twice. A file can vanish
        // between listing and reading (compaction finished): list again.
        for (let attempt = 1; ; attempt++) {
          const keys = spec.locations === undefined ? await listLiveFiles(store, spec.prefix) : await locationFiles(store, spec.locations);
          if (spec.optional && keys.length === 0) break;
          const made = JSON.stringify([spec.columns, spec.partitionKeys, keys]);
          if (madeOf.get(spec.name) !== made) {
            madeOf.delete(spec.name);
            try {
              await db.run(`CREATE OR REPLACE VIEW ${quotedIdentifier(spec.name)} AS ${await viewSql(db, store, spec, keys)}`);
            } catch (err) {
              if (attempt < 20 && VANISHED_FILE.test(errorMessage(err))) continue;
              throw err;
            }
            madeOf.set(spec.name, made);
          }
          next.push({ name: spec.name, files: keys.length });
          break;
        }
      }
      tables = next;
    } catch (err) {
      throw cloudErrors.create('CLD_LAKE_OPEN', errorMessage(err), err);
    }
  };

  const query = async (sql: string): Promise<QueryResult> => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'lake');
    let reader;
    // Views list files at refresh; a running compaction may have removed some since. List again: it
    // converges once the compactor has moved on (each merged file is durable before its inputs go).
    for (let attempt = 1; ; attempt++) {
      try {
        reader = await db.runAndReadAll(sql);
        break;
      } catch (err) {
        if (attempt >= 20 || !VANISHED_FILE.test(errorMessage(err))) throw cloudErrors.create('CLD_QUERY', errorMessage(err), err);
        await refresh();
      }
    }
    const columns = reader.columnNames();
    const rows = reader.getRows().map((values) => {
      const row: Record<string, LakeValue> = {};
      columns.forEach((name, i) => {
        row[name] = toLakeValue(values[i] ?? null);
      });
      return row;
    });
    return { columns, rows };
  };

  try {
    await refresh();
  } catch (err) {
    db.closeSync();
    dbInstance.closeSync();
    throw err;
  }

  return {
    root: store.root,
    get tables() {
      return tables;
    },
    query,
    async counts() {
      const sql = LAKE_TABLES.map((t) => `SELECT ${quotedString(t)} AS "table", count(*) AS "rows" FROM ${quotedIdentifier(t)}`).join(' UNION ALL ');
      const result = await query(sql);
      const byTable = new Map(result.rows.map((r) => [r.table as string, Number(r.rows)]));
      return LAKE_TABLES.map((table) => ({ table, rows: byTable.get(table) ?? 0 }));
    },
    refresh,
    close() {
      if (closed) return;
      closed = true;
      db.closeSync();
      dbInstance.closeSync();
    },
  };
}

/** The files directly in each location (not below it), less inputs an in-place compaction superseded. */
async function locationFiles(store: ObjectStore, locations: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const location of locations) {
    const prefix = location.endsWith('/') ? location : `${location}/`;
    for (const key of await store.list(prefix)) if (key.endsWith('.parquet') && !key.slice(prefix.length).includes('/')) keys.push(key);
  }
  return liveFiles(keys);
}

/** DuckDB's errors for a file listed a moment ago and gone now. */
const VANISHED_FILE = /No files found|No such file|Could not open|Cannot open|does not exist/i;

/** Opens the lake, runs one SQL statement over its views and closes it. */
export async function queryLake(lakeDir: string, sql: string): Promise<QueryResult> {
  const lake = await openLake(lakeDir);
  try {
    return await lake.query(sql);
  } finally {
    lake.close();
  }
}

async function viewSql(db: DuckDBConnection, store: ObjectStore, schema: ViewSpec, keys: readonly string[]): Promise<string> {
  const typed = (name: string, type: string) => `CAST(NULL AS ${type}) AS ${quotedIdentifier(name)}`;
  const partitionKeys = schema.partitionKeys.map((k) => ({ name: k.name, type: SQL_TYPES[k.type] }));
  if (keys.length === 0) {
    const columns = [...schema.columns.map((c) => ({ name: c.name, type: SQL_TYPES[c.type] })), ...partitionKeys];
    return `SELECT ${columns.map((c) => typed(c.name, c.type)).join(', ')} WHERE false`;
  }
  const hiveTypes = partitionKeys.map((k) => `${quotedString(k.name)}: ${k.type}`).join(', ');
  const source =
    `read_parquet([${keys.map((key) => quotedString(store.locate(key))).join(', ')}], ` +
    `hive_partitioning = true, union_by_name = true, hive_types = {${hiveTypes}})`;
  // Select the table's columns by name, so files written before a column existed read as NULL there
  // and the view keeps the schema's order whatever the files hold.
  const present = new Set(
    (await db.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects().map((r) => String(r.column_name)),
  );
  const select = schema.columns.map((c) =>
    present.has(c.name) ? quotedIdentifier(c.name) : typed(c.name, SQL_TYPES[c.type]),
  );
  select.push(...partitionKeys.map((k) => quotedIdentifier(k.name)));
  return `SELECT ${select.join(', ')} FROM ${source}`;
}

/** DuckDB values as plain JSON-able JS: BigInt → number when safe (else string), times → ISO strings. */
export function toLakeValue(value: DuckDBValue): LakeValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof DuckDBTimestampTZValue) return isoFromMicros(value.micros, value.isFinite, true) ?? value.toString();
  if (value instanceof DuckDBTimestampValue) return isoFromMicros(value.micros, value.isFinite, false) ?? value.toString();
  if (value instanceof DuckDBTimestampMillisecondsValue) return isoFromMicros(value.millis * 1000n, value.isFinite, false) ?? value.toString();
  if (value instanceof DuckDBTimestampSecondsValue) return isoFromMicros(value.seconds * 1_000_000n, value.isFinite, false) ?? value.toString();
  if (value instanceof DuckDBTimestampNanosecondsValue) return isoFromMicros(value.nanos / 1000n, value.isFinite, false) ?? value.toString();
  if (value instanceof DuckDBDateValue) return value.toString();
  if (value instanceof DuckDBDecimalValue) return value.toDouble();
  if (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue) return value.items.map(toLakeValue);
  if (value instanceof DuckDBStructValue) {
    return Object.fromEntries(Object.entries(value.entries).map(([k, v]) => [k, toLakeValue(v)]));
  }
  if (value instanceof DuckDBMapValue) return value.entries.map((e) => ({ key: toLakeValue(e.key), value: toLakeValue(e.value) }));
  if (value instanceof DuckDBBlobValue) return Buffer.from(value.bytes).toString('base64');
  return value.toString();
}

function isoFromMicros(micros: bigint, finite: boolean, utc: boolean): string | undefined {
  if (!finite) return undefined;
  const ms = Number(micros / 1000n) - (micros % 1000n < 0n ? 1 : 0);
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return undefined;
  const iso = date.toISOString();
  // A naive TIMESTAMP has no zone: do not claim UTC for it.
  return utc ? iso : iso.slice(0, -1);
}

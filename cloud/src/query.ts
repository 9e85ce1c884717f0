// The local query port: DuckDB over the lake's Parquet files, one view per table. Athena takes this
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
import { EVENT_KINDS, PARTITION_KEYS } from '@city/protocol';
import { cloudErrors, errorMessage } from './errors.ts';
import { tablePrefix, tableSchema, type LakeTable } from './layout.ts';
import { SQL_TYPES } from './parquet.ts';
import { createLocalFolderStore, type ObjectStore } from './store.ts';

export type LakeValue = string | number | boolean | null | LakeValue[] | { [key: string]: LakeValue };

export interface QueryResult {
  columns: string[];
  rows: Record<string, LakeValue>[];
}

export interface LakeTableInfo {
  name: LakeTable;
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

/** Opens an in-memory DuckDB with a view per lake table (named after the kind, plus `deadletter`). */
export async function openLake(lakeDir: string, options: { store?: ObjectStore } = {}): Promise<Lake> {
  const store = options.store ?? createLocalFolderStore(lakeDir);
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

  const refresh = async (): Promise<void> => {
    try {
      const next: LakeTableInfo[] = [];
      for (const table of LAKE_TABLES) {
        const keys = (await store.list(tablePrefix(table))).filter((key) => key.endsWith('.parquet'));
        await db.run(`CREATE OR REPLACE VIEW ${quotedIdentifier(table)} AS ${await viewSql(db, store, table, keys.length > 0)}`);
        next.push({ name: table, files: keys.length });
      }
      tables = next;
    } catch (err) {
      throw cloudErrors.create('CLD_LAKE_OPEN', errorMessage(err), err);
    }
  };

  const query = async (sql: string): Promise<QueryResult> => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'lake');
    let reader;
    try {
      reader = await db.runAndReadAll(sql);
    } catch (err) {
      throw cloudErrors.create('CLD_QUERY', errorMessage(err), err);
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

/** Opens the lake, runs one SQL statement over its views and closes it. */
export async function queryLake(lakeDir: string, sql: string): Promise<QueryResult> {
  const lake = await openLake(lakeDir);
  try {
    return await lake.query(sql);
  } finally {
    lake.close();
  }
}

async function viewSql(db: DuckDBConnection, store: ObjectStore, table: LakeTable, hasFiles: boolean): Promise<string> {
  const schema = tableSchema(table);
  const typed = (name: string, type: string) => `CAST(NULL AS ${type}) AS ${quotedIdentifier(name)}`;
  const partitionKeys = PARTITION_KEYS.map((k) => ({ name: k.name, type: SQL_TYPES[k.type] }));
  if (!hasFiles) {
    const columns = [...schema.columns.map((c) => ({ name: c.name, type: SQL_TYPES[c.type] })), ...partitionKeys];
    return `SELECT ${columns.map((c) => typed(c.name, c.type)).join(', ')} WHERE false`;
  }
  const hiveTypes = partitionKeys.map((k) => `${quotedString(k.name)}: ${k.type}`).join(', ');
  const source =
    `read_parquet(${quotedString(store.locate(`${tablePrefix(table)}**/*.parquet`))}, ` +
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

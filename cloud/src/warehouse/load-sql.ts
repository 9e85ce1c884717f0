// The statements of one load, the same text on PostgreSQL, PGlite and Redshift once the rows are in
// staging: dedupe by key into a temp table (one source row per target row, as Redshift's MERGE needs),
// MERGE into the fact table, keep the device and date dimensions, and record the objects in the ledger.
import {
  DIM_DATE,
  DIM_DEVICE,
  LEDGER_TABLE,
  LEDGER_TABLE_DEF,
  qualified,
  quoteIdent,
  quoteLiteral,
  sqlType,
  type WarehouseColumn,
  type WarehouseDialect,
  type WarehouseTable,
} from './schema.ts';

/** Temp tables of a load; dropped at its end (Redshift keeps temp tables for the session). */
export const SOURCE_TABLE = 'wh_src';
const DEVICE_SOURCE = 'wh_dev';
const DATE_SOURCE = 'wh_dates';
const LEDGER_SOURCE = 'wh_ledger_new';

export const columnList = (columns: readonly WarehouseColumn[], dialect: WarehouseDialect): string =>
  columns.map((c) => `${quoteIdent(c.name)} ${sqlType(c, dialect)}`).join(', ');

/** MERGE of `source` into `table` on its key: matched rows take the source's values, others are inserted. */
export function mergeSql(table: WarehouseTable, source: string, schema: string, update: Readonly<Record<string, string>> = {}): string {
  const target = qualified(schema, table.name);
  const targetName = quoteIdent(table.name);
  const src = quoteIdent(source);
  const on = table.key.map((k) => `${targetName}.${quoteIdent(k)} = ${src}.${quoteIdent(k)}`).join(' AND ');
  const keys = new Set(table.key);
  const sets = table.columns
    .filter((c) => !keys.has(c.name))
    .map((c) => `${quoteIdent(c.name)} = ${update[c.name] ?? `${src}.${quoteIdent(c.name)}`}`);
  const names = table.columns.map((c) => quoteIdent(c.name));
  return (
    `MERGE INTO ${target} USING ${src} ON ${on}\n` +
    `WHEN MATCHED THEN UPDATE SET ${sets.join(', ')}\n` +
    `WHEN NOT MATCHED THEN INSERT (${names.join(', ')}) VALUES (${table.columns.map((c) => `${src}.${quoteIdent(c.name)}`).join(', ')})`
  );
}

/** One row per key from the staged rows (a replayed event arrives more than once). */
export function dedupeSql(table: WarehouseTable, staged: string): string {
  const names = table.columns.map((c) => quoteIdent(c.name)).join(', ');
  const key = table.key.map(quoteIdent).join(', ');
  return (
    `CREATE TEMP TABLE ${quoteIdent(SOURCE_TABLE)} AS SELECT ${names} FROM (` +
    `SELECT ${names}, row_number() OVER (PARTITION BY ${key} ORDER BY ${key}) AS wh_rn FROM (${staged}) wh_staged) wh_ranked WHERE wh_rn = 1`
  );
}

/** Dimension upkeep from the deduplicated rows of a fact table. */
export function dimensionSql(table: WarehouseTable, kind: string, schema: string): string[] {
  const out: string[] = [];
  const src = quoteIdent(SOURCE_TABLE);
  const time = table.sortKey;
  if (time !== undefined && table.columns.some((c) => c.name === 'device_id')) {
    const t = quoteIdent(time);
    out.push(
      `CREATE TEMP TABLE ${quoteIdent(DEVICE_SOURCE)} AS SELECT CAST(${quoteLiteral(kind)} AS VARCHAR(32)) AS kind, device_id, ` +
        `min(${t}) AS first_seen, max(${t}) AS last_seen FROM ${src} GROUP BY device_id`,
      mergeSql(DEVICE_DIM_FOR_MERGE, DEVICE_SOURCE, schema, {
        first_seen: `LEAST(${quoteIdent(DIM_DEVICE)}.first_seen, ${quoteIdent(DEVICE_SOURCE)}.first_seen)`,
        last_seen: `GREATEST(${quoteIdent(DIM_DEVICE)}.last_seen, ${quoteIdent(DEVICE_SOURCE)}.last_seen)`,
      }),
      `DROP TABLE ${quoteIdent(DEVICE_SOURCE)}`,
    );
  }
  if (table.columns.some((c) => c.name === 'event_date')) {
    out.push(
      `CREATE TEMP TABLE ${quoteIdent(DATE_SOURCE)} AS SELECT event_date, CAST(SUBSTRING(event_date, 1, 4) AS BIGINT) AS year, ` +
        `CAST(SUBSTRING(event_date, 6, 2) AS BIGINT) AS month, CAST(SUBSTRING(event_date, 9, 2) AS BIGINT) AS day, ` +
        `CAST(EXTRACT(DOW FROM CAST(event_date AS DATE)) AS BIGINT) AS day_of_week FROM (SELECT DISTINCT event_date FROM ${src}) d`,
      mergeSql(DATE_DIM_FOR_MERGE, DATE_SOURCE, schema),
      `DROP TABLE ${quoteIdent(DATE_SOURCE)}`,
    );
  }
  return out;
}

const DEVICE_DIM_FOR_MERGE: WarehouseTable = {
  name: DIM_DEVICE,
  columns: [
    { name: 'kind', type: 'string', maxLength: 32 },
    { name: 'device_id', type: 'string', maxLength: 64 },
    { name: 'first_seen', type: 'timestamp' },
    { name: 'last_seen', type: 'timestamp' },
  ],
  fileColumns: [],
  key: ['kind', 'device_id'],
};

const DATE_DIM_FOR_MERGE: WarehouseTable = {
  name: DIM_DATE,
  columns: [
    { name: 'event_date', type: 'string', maxLength: 10 },
    { name: 'year', type: 'int64' },
    { name: 'month', type: 'int64' },
    { name: 'day', type: 'int64' },
    { name: 'day_of_week', type: 'int64' },
  ],
  fileColumns: [],
  key: ['event_date'],
};

export type LedgerStatus = 'loaded' | 'covered';

export interface LedgerEntry {
  objectKey: string;
  table: string;
  status: LedgerStatus;
  rows: number;
  bytes: number;
  eventDate: string;
  eventHour: number;
}

const timestampLiteral = (ms: number) => `CAST(${quoteLiteral(new Date(ms).toISOString().replace('T', ' ').replace('Z', '+00'))} AS TIMESTAMPTZ)`;

/** Records objects in the ledger (a MERGE, so recording an object again updates its row). */
export function ledgerSql(entries: readonly LedgerEntry[], batchId: string, nowMs: number, schema: string, dialect: WarehouseDialect): string[] {
  if (entries.length === 0) return [];
  const values = entries
    .map(
      (e) =>
        `(${quoteLiteral(e.objectKey)}, ${quoteLiteral(e.table)}, ${quoteLiteral(e.status)}, ${e.rows}, ${e.bytes}, ` +
        `${quoteLiteral(e.eventDate)}, ${e.eventHour}, ${quoteLiteral(batchId)}, ${timestampLiteral(nowMs)})`,
    )
    .join(',\n');
  const names = LEDGER_TABLE_DEF.columns.map((c) => quoteIdent(c.name)).join(', ');
  return [
    `CREATE TEMP TABLE ${quoteIdent(LEDGER_SOURCE)} (${columnList(LEDGER_TABLE_DEF.columns, dialect)})`,
    `INSERT INTO ${quoteIdent(LEDGER_SOURCE)} (${names}) VALUES\n${values}`,
    mergeSql(LEDGER_TABLE_DEF, LEDGER_SOURCE, schema),
    `DROP TABLE ${quoteIdent(LEDGER_SOURCE)}`,
  ];
}

export const ledgerSelectSql = (schema: string, table?: string): string =>
  `SELECT object_key, table_name, status, object_rows FROM ${qualified(schema, LEDGER_TABLE)}` +
  (table === undefined ? '' : ` WHERE table_name = ${quoteLiteral(table)}`);

// Warehouse tables derived from the protocol's table schemas (the same ones the Parquet files and the
// catalog use): a fact table per event kind keyed by event id, dimensions (device, district, date) and the
// load ledger; the DDL for PostgreSQL/PGlite and Redshift, and the additive evolution of existing tables.
// The SQL keeps to what PostgreSQL 15 and Redshift share: no ON CONFLICT, no RETURNING, no identity
// columns; MERGE with a table as source and one source row per target row.
import { EVENT_KINDS, EVENT_SCHEMAS, eventTable, GATEWAY_COLUMNS, ID_PATTERN, type ColumnType, type EventKind, type TableSchema } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import { DISTRICT_BOXES } from '../ports/query/named.ts';

export type WarehouseDialect = 'postgres' | 'redshift';

export interface WarehouseColumn {
  name: string;
  type: ColumnType;
  /** Longest value in characters, where the protocol bounds it (strings only). */
  maxLength?: number;
}

export interface WarehouseTable {
  name: string;
  /** Table order: the lake table's columns, then its partition keys (event_date, event_hour). */
  columns: readonly WarehouseColumn[];
  /** Columns a lake file of the table holds, in file order (partition keys live in the path). */
  fileColumns: readonly string[];
  /** MERGE key: the event id for facts; the group-by columns for a processed table. */
  key: readonly string[];
  /** Redshift SORTKEY: the event time. */
  sortKey?: string;
  /** The lake table it loads from (curated zone), when it has one. */
  lakeTable?: EventKind;
}

export const LEDGER_TABLE = 'wh_load_ledger';
export const DIM_DEVICE = 'dim_device';
export const DIM_DISTRICT = 'dim_district';
export const DIM_DATE = 'dim_date';

/** Length of a string column from its JSON schema: maxLength, the longest enum value, or the id pattern. */
function schemaLength(node: Record<string, unknown> | undefined): number | undefined {
  if (node === undefined) return undefined;
  if (typeof node.maxLength === 'number') return node.maxLength;
  if (Array.isArray(node.enum)) return Math.max(...node.enum.map((v) => String(v).length));
  if (node.pattern === ID_PATTERN) return 64;
  return undefined;
}

function nodeAt(kind: EventKind, path: readonly string[]): Record<string, unknown> | undefined {
  let node = EVENT_SCHEMAS[kind] as unknown as Record<string, unknown> | undefined;
  for (const key of path) {
    const properties = node?.properties as Record<string, Record<string, unknown>> | undefined;
    node = properties?.[key];
  }
  return node;
}

/** Gateway ids follow the id rule of the gateway's config. */
const GATEWAY_ID_LENGTH = 64;

/**
 * A warehouse table for any lake table schema: its columns, then its partition keys. `lengths` bounds
 * string columns; a processed table passes its own key (its group-by columns) and sort key.
 */
export function warehouseTable(
  schema: TableSchema,
  options: { key: readonly string[]; sortKey?: string; lengths?: Readonly<Record<string, number>>; lakeTable?: EventKind },
): WarehouseTable {
  const lengths = options.lengths ?? {};
  const columns: WarehouseColumn[] = [...schema.columns, ...schema.partitionKeys].map((c) => {
    const column: WarehouseColumn = { name: c.name, type: c.type };
    const length = c.type === 'string' ? (lengths[c.name] ?? (c.name === 'event_date' ? 10 : undefined)) : undefined;
    if (length !== undefined) column.maxLength = length;
    return column;
  });
  const names = new Set(columns.map((c) => c.name));
  for (const k of [...options.key, ...(options.sortKey === undefined ? [] : [options.sortKey])]) {
    if (!names.has(k)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `warehouse table ${schema.name}: no column ${k} for its key`);
  }
  return {
    name: schema.name,
    columns,
    fileColumns: schema.columns.map((c) => c.name),
    key: [...options.key],
    ...(options.sortKey === undefined ? {} : { sortKey: options.sortKey }),
    ...(options.lakeTable === undefined ? {} : { lakeTable: options.lakeTable }),
  };
}

const FACTS = new Map<EventKind, WarehouseTable>();

/** The fact table of an event kind: keyed by event id, sorted by event time. */
export function factTable(kind: EventKind): WarehouseTable {
  let table = FACTS.get(kind);
  if (table === undefined) {
    const schema = eventTable(kind);
    const lengths: Record<string, number> = {};
    for (const c of schema.columns) {
      if (c.type !== 'string') continue;
      const length = c.source.length === 0 ? (GATEWAY_COLUMNS.some((g) => g.name === c.name) ? GATEWAY_ID_LENGTH : undefined) : schemaLength(nodeAt(kind, c.source));
      if (length !== undefined) lengths[c.name] = length;
    }
    const eventTime = schema.columns.find((c) => c.source.length === 1 && c.source[0] === 'dateObserved');
    table = warehouseTable(schema, { key: ['event_id'], lengths, lakeTable: kind, ...(eventTime === undefined ? {} : { sortKey: eventTime.name }) });
    FACTS.set(kind, table);
  }
  return table;
}

export const FACT_TABLES: readonly WarehouseTable[] = EVENT_KINDS.map(factTable);

/** The event time column of a fact table (its sort key). */
export function eventTimeColumn(table: WarehouseTable): string | undefined {
  return table.sortKey;
}

const col = (name: string, type: ColumnType, maxLength?: number): WarehouseColumn => (maxLength === undefined ? { name, type } : { name, type, maxLength });

/** Devices seen per kind: first and last event time loaded. */
export const DIM_DEVICE_TABLE: WarehouseTable = {
  name: DIM_DEVICE,
  columns: [col('kind', 'string', 32), col('device_id', 'string', 64), col('first_seen', 'timestamp'), col('last_seen', 'timestamp')],
  fileColumns: [],
  key: ['kind', 'device_id'],
};

/** The city's districts as bounding boxes (the named queries' district rule). */
export const DIM_DISTRICT_TABLE: WarehouseTable = {
  name: DIM_DISTRICT,
  columns: [col('district', 'string', 32), col('lat_min', 'double'), col('lat_max', 'double'), col('lon_min', 'double'), col('lon_max', 'double'), col('priority', 'int64')],
  fileColumns: [],
  key: ['district'],
};

/** UTC dates that hold events, keyed like the facts' event_date; day_of_week 0 is Sunday. */
export const DIM_DATE_TABLE: WarehouseTable = {
  name: DIM_DATE,
  columns: [col('event_date', 'string', 10), col('year', 'int64'), col('month', 'int64'), col('day', 'int64'), col('day_of_week', 'int64')],
  fileColumns: [],
  key: ['event_date'],
};

/** One row per lake object loaded (or found covered by loaded objects after compaction). */
export const LEDGER_TABLE_DEF: WarehouseTable = {
  name: LEDGER_TABLE,
  columns: [
    col('object_key', 'string', 1024),
    col('table_name', 'string', 128),
    col('status', 'string', 16),
    col('object_rows', 'int64'),
    col('object_bytes', 'int64'),
    col('event_date', 'string', 10),
    col('event_hour', 'int64'),
    col('batch_id', 'string', 64),
    col('loaded_at', 'timestamp'),
  ],
  fileColumns: [],
  key: ['object_key'],
};

export const DIMENSION_TABLES: readonly WarehouseTable[] = [DIM_DEVICE_TABLE, DIM_DISTRICT_TABLE, DIM_DATE_TABLE];

/** Every table `init` creates: ledger, dimensions, a fact table per event kind, plus tables passed in. */
export function warehouseTables(extra: readonly WarehouseTable[] = []): WarehouseTable[] {
  return [LEDGER_TABLE_DEF, ...DIMENSION_TABLES, ...FACT_TABLES, ...extra];
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;
export const quoteLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/** A table name in the warehouse schema (temp tables are never qualified). */
export function qualified(schema: string | undefined, table: string): string {
  return schema === undefined ? quoteIdent(table) : `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** Redshift counts VARCHAR in bytes: a UTF-8 character takes up to 4. */
const REDSHIFT_MAX_VARCHAR = 65535;

export function sqlType(column: WarehouseColumn, dialect: WarehouseDialect): string {
  switch (column.type) {
    case 'string':
      if (dialect === 'redshift') return `VARCHAR(${Math.min(REDSHIFT_MAX_VARCHAR, (column.maxLength ?? REDSHIFT_MAX_VARCHAR) * 4)})`;
      return column.maxLength === undefined ? 'VARCHAR' : `VARCHAR(${column.maxLength})`;
    case 'int64':
      return 'BIGINT';
    case 'double':
      return 'DOUBLE PRECISION';
    case 'boolean':
      return 'BOOLEAN';
    case 'timestamp':
      return 'TIMESTAMPTZ';
  }
}

/** CREATE TABLE IF NOT EXISTS; Redshift gets DISTSTYLE AUTO and the event time as SORTKEY. */
export function createTableSql(table: WarehouseTable, dialect: WarehouseDialect, schema?: string): string {
  const keys = new Set(table.key);
  const columns = table.columns.map((c) => `  ${quoteIdent(c.name)} ${sqlType(c, dialect)}${keys.has(c.name) ? ' NOT NULL' : ''}`);
  // PostgreSQL enforces the key; Redshift records it for the planner only (MERGE keeps it unique there).
  columns.push(`  PRIMARY KEY (${table.key.map(quoteIdent).join(', ')})`);
  let sql = `CREATE TABLE IF NOT EXISTS ${qualified(schema, table.name)} (\n${columns.join(',\n')}\n)`;
  if (dialect === 'redshift') sql += ` DISTSTYLE AUTO${table.sortKey === undefined ? '' : ` SORTKEY (${quoteIdent(table.sortKey)})`}`;
  return sql;
}

/** A column as information_schema.columns describes it. */
export interface ExistingColumn {
  table: string;
  column: string;
  dataType: string;
  maxLength: number | null;
}

const INFO_TYPES: Record<string, ColumnType> = {
  'character varying': 'string',
  text: 'string',
  character: 'string',
  bigint: 'int64',
  'double precision': 'double',
  boolean: 'boolean',
  'timestamp with time zone': 'timestamp',
};

/** The query listing the warehouse schema's columns (both engines have information_schema.columns). */
export function existingColumnsSql(schema: string): string {
  return (
    `SELECT table_name, column_name, data_type, character_maximum_length FROM information_schema.columns ` +
    `WHERE table_schema = ${quoteLiteral(schema)} ORDER BY table_name, ordinal_position`
  );
}

export interface SchemaPlan {
  /** Statements to run, each on its own (Redshift will not widen a column inside a transaction block). */
  statements: string[];
  created: string[];
  added: string[];
  widened: string[];
}

/**
 * What brings the warehouse to the wanted tables: creates missing tables, adds missing columns (nullable:
 * old rows have none), widens VARCHARs. A column whose type changed is refused: no data is rewritten.
 */
export function planSchema(
  tables: readonly WarehouseTable[],
  existing: readonly ExistingColumn[],
  dialect: WarehouseDialect,
  schema: string,
): SchemaPlan {
  const byTable = new Map<string, Map<string, ExistingColumn>>();
  for (const c of existing) {
    let columns = byTable.get(c.table);
    if (columns === undefined) byTable.set(c.table, (columns = new Map()));
    columns.set(c.column, c);
  }
  const plan: SchemaPlan = { statements: [], created: [], added: [], widened: [] };
  const refused: string[] = [];
  for (const table of tables) {
    const have = byTable.get(table.name);
    if (have === undefined) {
      plan.statements.push(createTableSql(table, dialect, schema));
      plan.created.push(table.name);
      continue;
    }
    for (const column of table.columns) {
      const found = have.get(column.name);
      const name = `${table.name}.${column.name}`;
      if (found === undefined) {
        plan.statements.push(`ALTER TABLE ${qualified(schema, table.name)} ADD COLUMN ${quoteIdent(column.name)} ${sqlType(column, dialect)}`);
        plan.added.push(name);
        continue;
      }
      const foundType = INFO_TYPES[found.dataType.toLowerCase()];
      if (foundType !== column.type) {
        refused.push(`${name} is ${found.dataType} in the warehouse but ${column.type} (${sqlType(column, dialect)}) in the protocol`);
        continue;
      }
      if (column.type === 'string' && found.maxLength !== null) {
        const wanted = sqlType(column, dialect);
        const m = /\((\d+)\)/.exec(wanted);
        if (m === null || Number(m[1]) > found.maxLength) {
          plan.statements.push(`ALTER TABLE ${qualified(schema, table.name)} ALTER COLUMN ${quoteIdent(column.name)} TYPE ${wanted}`);
          plan.widened.push(name);
        }
      }
    }
  }
  if (refused.length > 0) throw cloudErrors.create('CLD_WAREHOUSE_SCHEMA', `changed column types: ${refused.join('; ')}`);
  return plan;
}

/** Rows of the district dimension, in rule order (smaller districts first win where boxes overlap). */
export function districtRowsSql(schema: string): string[] {
  const values = DISTRICT_BOXES.map(
    (d, i) => `(${quoteLiteral(d.name)}, ${d.latMin}, ${d.latMax}, ${d.lonMin}, ${d.lonMax}, ${i})`,
  ).join(', ');
  const target = qualified(schema, DIM_DISTRICT);
  return [`DELETE FROM ${target}`, `INSERT INTO ${target} (district, lat_min, lat_max, lon_min, lon_max, priority) VALUES ${values}`];
}

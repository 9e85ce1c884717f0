// Parquet through DuckDB: rows go into a scratch table of an in-memory database through the Appender in column chunks, then
// COPY (SELECT …) TO, typing each column, writes a Snappy Parquet file. Column names, order and types come from the protocol's
// table schemas; timestamps are TIMESTAMP WITH TIME ZONE, i.e. Parquet timestamps adjusted to UTC.
// Rows may also come as the JSON texts their values were validated from (JsonRows): DuckDB then parses the texts in one
// from_json per row and only the JSON text and the few cells that are not in it cross the appender.
// Rows may also come packed (lake/packed.ts): each column's values in one buffer, bound as one parameter
// and split by DuckDB, so nothing crosses per value at all.
import {
  blobValue,
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBInstance,
  quotedIdentifier,
  quotedString,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { CityError, type CellValue, type Column, type ColumnType, type TableSchema } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import { parquetCodecOptions } from './layout.ts';
import type { PackedColumn, PackedRows } from './packed.ts';

export const SQL_TYPES: { readonly [T in ColumnType]: string } = {
  string: 'VARCHAR',
  int64: 'BIGINT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMPTZ',
};

const DUCKDB_TYPES: { readonly [T in ScratchType]: DuckDBType } = {
  VARCHAR,
  DOUBLE,
  BOOLEAN,
};

/** DuckDB's vector size: a data chunk holds at most this many rows. */
const CHUNK_ROWS = 2048;

export interface ParquetWriteOptions {
  /** Key/value pairs stored in the file footer (e.g. the Kafka offsets the file covers). */
  metadata?: Record<string, string>;
}

/**
 * Rows given as the JSON texts their values come from: a column with a source path is read from the text
 * by that path, every other column from `cells`.
 */
export interface JsonRows {
  readonly texts: readonly string[];
  /** Values of the columns the texts do not give (e.g. the gateway columns, event times as epoch ms), by column name. */
  readonly cells: { readonly [column: string]: readonly CellValue[] };
  /**
   * Keys each text's objects hold as JSON.parse read them (top level plus each nested object). DuckDB reads
   * the first of a repeated key, JSON.parse the last: a text whose count differs is written from `row` instead.
   */
  readonly keys: readonly number[];
  /** Row `i` as cells in table column order, as the JavaScript reader sees it: the way out when DuckDB cannot read the texts. */
  row(i: number): CellValue[];
}

/**
 * Rows packed off the heap (lake/packed.ts), columns by table column name. With `json`, the columns not
 * packed are read from the JSON texts in column `json.text`, as for JsonRows.
 */
export interface PackedTableRows {
  readonly packed: PackedRows;
  readonly json?: {
    /** Packed columns holding the texts and JavaScript's key counts (see JsonRows.keys). */
    readonly text: string;
    readonly keys: string;
    /** Row `i` as cells in table column order, as the JavaScript reader sees it (see JsonRows.row). */
    row(i: number): CellValue[];
  };
}

export type ParquetRows = readonly (readonly CellValue[])[] | JsonRows | PackedTableRows;

export function isJsonRows(rows: ParquetRows): rows is JsonRows {
  return !Array.isArray(rows) && 'texts' in rows;
}

export function isPackedRows(rows: ParquetRows): rows is PackedTableRows {
  return !Array.isArray(rows) && 'packed' in rows;
}

export function rowCount(rows: ParquetRows): number {
  return isPackedRows(rows) ? rows.packed.rows : isJsonRows(rows) ? rows.texts.length : rows.length;
}

export interface ParquetWriter {
  /** Writes `rows` (cells in table column order, or JSON texts) as one Parquet file at `path`, replacing it. */
  write(table: TableSchema, rows: ParquetRows, path: string, options?: ParquetWriteOptions): Promise<void>;
  close(): void;
}

/** SQL column list of a table, e.g. for CREATE TABLE or typed empty views. */
export function columnDefinitions(columns: readonly Column[]): string {
  return columns.map((c) => `${quotedIdentifier(c.name)} ${SQL_TYPES[c.type]}`).join(', ');
}

export async function createParquetWriter(options: { threads?: number } = {}): Promise<ParquetWriter> {
  const instance = await DuckDBInstance.create(':memory:', { threads: String(options.threads ?? 1) });
  const connection = await instance.connect();
  await connection.run(`SET TimeZone = 'UTC'`);
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  let seq = 0;

  const write: ParquetWriter['write'] = (table, rows, path, writeOptions = {}) => {
    if (closed) return Promise.reject(cloudErrors.create('CLD_CLOSED', 'parquet writer'));
    // One connection, one statement at a time: queue the writes.
    const run = queue.then(() => writeFile(connection, `parquet_rows_${++seq}`, table, rows, path, writeOptions.metadata));
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    write,
    close() {
      if (closed) return;
      closed = true;
      connection.closeSync();
      instance.closeSync();
    },
  };
}

async function writeFile(
  connection: DuckDBConnection,
  tempTable: string,
  table: TableSchema,
  rows: ParquetRows,
  path: string,
  metadata: Record<string, string> | undefined,
): Promise<void> {
  const fail = (err: unknown) =>
    err instanceof CityError ? err : cloudErrors.create('CLD_PARQUET_WRITE', `${table.name} → ${path}: ${(err as Error).message}`, err);
  if (isPackedRows(rows)) {
    const json = rows.json;
    let plan: PackedPlan | undefined;
    try {
      plan = packedPlan(table, rows);
    } catch (err) {
      throw fail(err);
    }
    if (json === undefined || plan === undefined) {
      if (plan === undefined) throw fail(new Error('packed rows lack a column'));
      return copyPacked(connection, table, plan, path, metadata);
    }
    try {
      return await copyPacked(connection, table, plan, path, metadata);
    } catch {
      // As for JsonRows below: the rows as the JavaScript reader built them.
    }
    let columns: ScratchColumn[];
    try {
      columns = cellColumns(table, Array.from({ length: rows.packed.rows }, (_, i) => json.row(i)));
    } catch (err) {
      throw fail(err);
    }
    return writeScratch(connection, tempTable, table, rows.packed.rows, columns, undefined, path, metadata);
  }
  if (!isJsonRows(rows)) {
    let columns: ScratchColumn[];
    try {
      columns = cellColumns(table, rows);
    } catch (err) {
      throw fail(err);
    }
    return writeScratch(connection, tempTable, table, rows.length, columns, undefined, path, metadata);
  }
  let plan: JsonPlan | undefined;
  try {
    plan = jsonPlan(table, rows);
  } catch (err) {
    throw fail(err);
  }
  if (plan !== undefined) {
    try {
      return await writeScratch(connection, tempTable, table, rows.texts.length, plan.columns, plan, path, metadata);
    } catch {
      // A text DuckDB reads differently from JSON.parse (a repeated key) or not at all (an escaped lone
      // surrogate): the same rows as the JavaScript reader built them.
    }
  }
  let columns: ScratchColumn[];
  try {
    const cells = Array.from({ length: rows.texts.length }, (_, i) => rows.row(i));
    columns = cellColumns(table, cells);
  } catch (err) {
    throw fail(err);
  }
  return writeScratch(connection, tempTable, table, rows.texts.length, columns, undefined, path, metadata);
}

function cellColumns(table: TableSchema, rows: readonly (readonly CellValue[])[]): ScratchColumn[] {
  return table.columns.map((column, index) => scratchColumn(column, index, rows.length, (r) => (rows[r] as readonly CellValue[])[index] ?? null));
}

interface JsonPlan {
  columns: ScratchColumn[];
  /** The scratch column holding the texts and the one holding JavaScript's key counts. */
  text: string;
  keys: string;
  /** DuckDB type of the struct from_json builds, and the object paths whose keys are counted. */
  structType: string;
  objects: string[][];
}

/** The columns of a JSON write: read from the text by source path, or from the cells; undefined if a column has neither. */
function jsonPlan(table: TableSchema, rows: JsonRows): JsonPlan | undefined {
  const n = rows.texts.length;
  const struct: StructNode = {};
  const objects = new Set<string>();
  const columns: ScratchColumn[] = [];
  let index = 0;
  for (const column of table.columns) {
    const cells = rows.cells[column.name];
    if (cells !== undefined) {
      columns.push(scratchColumn(column, index++, n, (r) => cells[r] ?? null));
      continue;
    }
    // Event times need protocol's parsing (offsets, sub-millisecond truncation): they come as cells.
    if (column.source.length === 0 || column.type === 'timestamp') return undefined;
    if (!addStructField(struct, objects, column.source, SQL_TYPES[column.type])) return undefined;
    const field = column.source.map((k) => quotedIdentifier(k)).join('.');
    columns.push({ column, index: -1, expression: `CAST(s.${field} AS ${SQL_TYPES[column.type]})`, values: undefined, scratchType: 'VARCHAR' });
  }
  const text = scratchColumn({ name: 'text', type: 'string', nullable: false, source: [] }, index++, n, (r) => rows.texts[r] ?? null);
  const keys = scratchColumn({ name: 'keys', type: 'int64', nullable: false, source: [] }, index++, n, (r) => rows.keys[r] ?? null);
  // Both are appended whatever they hold: they feed from_json and the key check, not an output column.
  for (const c of [text, keys]) c.values ??= constantValues(c, n);
  return {
    columns: [...columns, { ...text, expression: '' }, { ...keys, expression: '' }],
    text: quotedIdentifier(`c${text.index}`),
    keys: quotedIdentifier(`c${keys.index}`),
    structType: JSON.stringify(struct),
    objects: [...objects].map((o) => o.split('\u0000')),
  };
}

interface PackedPlan {
  /** COPY's SELECT list and what it selects from. */
  select: string;
  source: string;
  /** The packed columns' chunks, bound as $1, $2, … */
  params: DuckDBValue[];
}

/**
 * The SELECT over packed rows: each chunk of a packed column is a parameter that string_split turns back
 * into its values (unnests side by side keep rows together); a column holding one value is a literal.
 * Undefined when a JSON file's column is neither packed nor readable from the text.
 */
function packedPlan(table: TableSchema, rows: PackedTableRows): PackedPlan | undefined {
  const n = rows.packed.rows;
  const params: DuckDBValue[] = [];
  const unnests: string[] = [];
  /** The column's value per row as VARCHAR (or a typed literal when constant). */
  const text = (c: PackedColumn): string => {
    if (c.error !== undefined) throw c.error;
    if (c.length !== n) throw new Error(`packed column ${c.name} holds ${c.length} values for ${n} rows`);
    if (c.constant) return c.first === null ? 'NULL' : quotedString(String(c.first));
    const lists = c.parts().map((part) => {
      params.push(blobValue(part));
      return `string_split(decode($${params.length}), chr(31))`;
    });
    const ref = quotedIdentifier(`c${unnests.length + 1}`);
    unnests.push(`unnest(${lists.length === 1 ? lists[0] : `flatten([${lists.join(', ')}])`}) AS ${ref}`);
    return c.sqlText(ref);
  };
  const json = rows.json;
  const struct: StructNode = {};
  const objects = new Set<string>();
  const select: string[] = [];
  for (const column of table.columns) {
    const packed = rows.packed.column(column.name);
    if (packed !== undefined) {
      if (packed.type !== column.type) throw new Error(`packed column ${column.name} is ${packed.type}, the table's ${column.type}`);
      select.push(`${sqlValue(column, text(packed))} AS ${quotedIdentifier(column.name)}`);
      continue;
    }
    if (json === undefined || column.source.length === 0 || column.type === 'timestamp') return undefined;
    if (!addStructField(struct, objects, column.source, SQL_TYPES[column.type])) return undefined;
    const field = column.source.map((k) => quotedIdentifier(k)).join('.');
    select.push(`CAST(s.${field} AS ${SQL_TYPES[column.type]}) AS ${quotedIdentifier(column.name)}`);
  }
  let textExpr = '';
  let keysExpr = '';
  if (json !== undefined) {
    const textColumn = rows.packed.column(json.text);
    const keysColumn = rows.packed.column(json.keys);
    if (textColumn === undefined || keysColumn === undefined) return undefined;
    textExpr = text(textColumn);
    keysExpr = `CAST(${text(keysColumn)} AS BIGINT)`;
  }
  let source = unnests.length === 0 ? `range(${n})` : `(SELECT ${unnests.join(', ')})`;
  if (json !== undefined) {
    // As for JsonRows: one parse into the struct; the key count catches a repeated key.
    const counted = keyCount(textExpr, [...objects].map((o) => o.split('\u0000')));
    source = `(SELECT *, from_json(${textExpr}, ${quotedString(JSON.stringify(struct))}) AS s FROM ${source} WHERE CASE WHEN ${counted} = ${keysExpr} THEN true ELSE error('a JSON text repeats a key') END)`;
  }
  return { select: select.join(', '), source, params };
}

async function copyPacked(connection: DuckDBConnection, table: TableSchema, plan: PackedPlan, path: string, metadata: Record<string, string> | undefined): Promise<void> {
  try {
    await connection.run(`COPY (SELECT ${plan.select} FROM ${plan.source}) TO ${quotedString(path)} (FORMAT parquet, ${parquetCodecOptions(table.name)}${kvMetadata(metadata)})`, plan.params);
  } catch (err) {
    throw cloudErrors.create('CLD_PARQUET_WRITE', `${table.name} → ${path}: ${(err as Error).message}`, err);
  }
}

function kvMetadata(metadata: Record<string, string> | undefined): string {
  const kv = Object.entries(metadata ?? {})
    .map(([key, value]) => `${quotedIdentifier(key)}: ${quotedString(value)}`)
    .join(', ');
  return kv === '' ? '' : `, KV_METADATA {${kv}}`;
}

/**
 * Adds a JSON field's path to the struct DuckDB reads the texts as (objects on the way recorded in
 * `objects`); false when the path runs through a field that is not an object.
 */
function addStructField(struct: StructNode, objects: Set<string>, source: readonly string[], type: string): boolean {
  let node = struct;
  for (let i = 0; i < source.length - 1; i++) {
    const key = source[i] as string;
    objects.add(source.slice(0, i + 1).join('\u0000'));
    const child = node[key];
    if (typeof child === 'string') return false;
    node = node[key] = child ?? {};
  }
  node[source[source.length - 1] as string] = type;
  return true;
}

interface StructNode {
  [key: string]: StructNode | string;
}

function constantValues(c: ScratchColumn, n: number): DuckDBValue[][] {
  const value = c.constant ?? null;
  const chunks: DuckDBValue[][] = [];
  for (let start = 0; start < n; start += CHUNK_ROWS) chunks.push(new Array<DuckDBValue>(Math.min(CHUNK_ROWS, n - start)).fill(value));
  return chunks;
}

async function writeScratch(
  connection: DuckDBConnection,
  tempTable: string,
  table: TableSchema,
  rowCount: number,
  columns: ScratchColumn[],
  json: JsonPlan | undefined,
  path: string,
  metadata: Record<string, string> | undefined,
): Promise<void> {
  const name = quotedIdentifier(tempTable);
  try {
    // A column holding one value in every row (the Kafka topic of a raw file, a gateway id) is a literal
    // in the SELECT instead of a value per row through the appender; the rest go in as their cells.
    const appended = columns.filter((c) => c.values !== undefined);
    let source = appended.length === 0 ? `range(${rowCount})` : name;
    if (appended.length > 0) {
      await connection.run(`CREATE OR REPLACE TABLE ${name} (${appended.map((c) => `${quotedIdentifier(`c${c.index}`)} ${c.scratchType}`).join(', ')})`);
      const appender = await connection.createAppender(tempTable);
      try {
        const types = appended.map((c) => DUCKDB_TYPES[c.scratchType]);
        for (let start = 0; start < rowCount; start += CHUNK_ROWS) {
          const end = Math.min(start + CHUNK_ROWS, rowCount);
          const chunk = DuckDBDataChunk.create(types, end - start);
          chunk.setColumns(appended.map((c) => (c.values as DuckDBValue[][])[start / CHUNK_ROWS] as DuckDBValue[]));
          appender.appendDataChunk(chunk);
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
    }
    const select = columns
      .filter((c) => c.expression !== '')
      .map((c) => `${c.expression} AS ${quotedIdentifier(c.column.name)}`)
      .join(', ');
    if (json !== undefined) {
      // One parse into the struct for the values; the key count catches a repeated key (DuckDB keeps the first).
      const counted = keyCount(json.text, json.objects);
      source = `(SELECT *, from_json(${json.text}, ${quotedString(json.structType)}) AS s FROM ${name} WHERE CASE WHEN ${counted} = ${json.keys} THEN true ELSE error('a JSON text repeats a key') END)`;
    }
    await connection.run(
      `COPY (SELECT ${select} FROM ${source}) TO ${quotedString(path)} (FORMAT parquet, ${parquetCodecOptions(table.name)}${kvMetadata(metadata)})`,
    );
  } catch (err) {
    throw cloudErrors.create('CLD_PARQUET_WRITE', `${table.name} → ${path}: ${(err as Error).message}`, err);
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
  }
}

type ScratchType = 'VARCHAR' | 'DOUBLE' | 'BOOLEAN';

interface ScratchColumn {
  column: Column;
  index: number;
  /** SQL giving the column's value from the scratch table (or a literal). */
  expression: string;
  /** The cells to append, a list per data chunk, or undefined when the expression is a literal. */
  values: DuckDBValue[][] | undefined;
  scratchType: ScratchType;
  /** The value of every row when the column is a literal. */
  constant?: DuckDBValue;
}

/** Integers and timestamps (epoch ms) go in as DOUBLE, exact for safe integers, and are cast in SQL: no BigInt per cell. */
const SCRATCH_TYPES: { readonly [T in ColumnType]: ScratchType } = {
  string: 'VARCHAR',
  int64: 'DOUBLE',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  timestamp: 'DOUBLE',
};

function scratchColumn(column: Column, index: number, rowCount: number, valueAt: (row: number) => CellValue): ScratchColumn {
  const scratchType = SCRATCH_TYPES[column.type];
  const values: DuckDBValue[][] = [];
  const first = rowCount > 0 ? valueAt(0) : null;
  // A NUL ends a SQL string literal early in DuckDB's parser: such a text goes in as cells.
  let constant = column.type !== 'double' && rowCount > 0 && !(typeof first === 'string' && first.includes('\u0000'));
  for (let start = 0; start < rowCount; start += CHUNK_ROWS) {
    const end = Math.min(start + CHUNK_ROWS, rowCount);
    const chunk: DuckDBValue[] = new Array(end - start);
    for (let r = start; r < end; r++) {
      const value = valueAt(r);
      if (value !== first) constant = false;
      chunk[r - start] = value === null ? null : checked(column, value);
    }
    values.push(chunk);
  }
  const ref = quotedIdentifier(`c${index}`);
  if (constant) {
    return { column, index, expression: sqlValue(column, first === null ? 'NULL' : literal(first)), values: undefined, scratchType, constant: first === null ? null : checked(column, first) };
  }
  return { column, index, expression: sqlValue(column, ref), values, scratchType };
}

/** The column's SQL type from its scratch value. */
function sqlValue(column: Column, value: string): string {
  switch (column.type) {
    case 'int64':
      return `CAST(${value} AS BIGINT)`;
    case 'timestamp':
      // Cells carry epoch milliseconds; DuckDB counts microseconds.
      return `make_timestamptz(CAST(${value} AS BIGINT) * 1000)`;
    default:
      return `CAST(${value} AS ${SQL_TYPES[column.type]})`;
  }
}

/** SQL counting the keys of a text's top-level object and of the objects at `objects`, in one parse of the text (json_keys over a list of paths). */
function keyCount(text: string, objects: readonly (readonly string[])[]): string {
  const paths = ['$', ...objects.map((path) => `$.${path.map(jsonPathKey).join('.')}`)].map(quotedString).join(', ');
  return `list_sum(list_transform(json_keys(${text}, [${paths}]), k -> coalesce(len(k), 0)))`;
}

/** A key in a JSON path: quoted, so any field name reads as itself. */
function jsonPathKey(key: string): string {
  return JSON.stringify(key);
}

function literal(value: string | number | boolean): string {
  if (typeof value === 'string') return quotedString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  // Only int64 and timestamp columns are taken as literals: safe integers (checked), exact as text.
  return String(value);
}

function checked(column: Column, value: string | number | boolean): string | number | boolean {
  switch (column.type) {
    case 'string':
      if (typeof value === 'string') return value;
      break;
    case 'double':
      if (typeof value === 'number') return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'int64':
    case 'timestamp':
      if (Number.isSafeInteger(value)) return value;
      break;
  }
  throw new TypeError(`column ${column.name} (${column.type}) cannot hold ${JSON.stringify(value)}`);
}

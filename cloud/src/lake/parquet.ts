// Parquet through DuckDB: rows go into a scratch table of an in-memory database through the Appender in column chunks, then
// COPY (SELECT …) TO, typing each column, writes a Snappy Parquet file. Column names, order and types come from the protocol's
// table schemas; timestamps are TIMESTAMP WITH TIME ZONE, i.e. Parquet timestamps adjusted to UTC.
import {
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
import type { CellValue, Column, ColumnType, TableSchema } from '@city/protocol';
import { cloudErrors } from '../errors.ts';

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

export interface ParquetWriter {
  /** Writes `rows` (cells in table column order) as one Parquet file at `path`, replacing it. */
  write(table: TableSchema, rows: readonly (readonly CellValue[])[], path: string, options?: ParquetWriteOptions): Promise<void>;
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
  rows: readonly (readonly CellValue[])[],
  path: string,
  metadata: Record<string, string> | undefined,
): Promise<void> {
  const name = quotedIdentifier(tempTable);
  try {
    // A column holding one value in every row (the Kafka topic of a raw file, a gateway id) is a literal
    // in the SELECT instead of a value per row through the appender; the rest go in as their cells.
    const columns = table.columns.map((column, index) => scratchColumn(column, index, rows));
    const appended = columns.filter((c) => c.values !== undefined);
    const source = appended.length === 0 ? `range(${rows.length})` : name;
    if (appended.length > 0) {
      await connection.run(`CREATE OR REPLACE TABLE ${name} (${appended.map((c) => `${quotedIdentifier(`c${c.index}`)} ${c.scratchType}`).join(', ')})`);
      const appender = await connection.createAppender(tempTable);
      try {
        const types = appended.map((c) => DUCKDB_TYPES[c.scratchType]);
        for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
          const end = Math.min(start + CHUNK_ROWS, rows.length);
          const chunk = DuckDBDataChunk.create(types, end - start);
          chunk.setColumns(appended.map((c) => (c.values as DuckDBValue[][])[start / CHUNK_ROWS] as DuckDBValue[]));
          appender.appendDataChunk(chunk);
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
    }
    const kv = Object.entries(metadata ?? {})
      .map(([key, value]) => `${quotedIdentifier(key)}: ${quotedString(value)}`)
      .join(', ');
    const select = columns.map((c) => `${c.expression} AS ${quotedIdentifier(c.column.name)}`).join(', ');
    await connection.run(
      `COPY (SELECT ${select} FROM ${source}) TO ${quotedString(path)} (FORMAT parquet, COMPRESSION snappy${kv === '' ? '' : `, KV_METADATA {${kv}}`})`,
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
}

/** Integers and timestamps (epoch ms) go in as DOUBLE, exact for safe integers, and are cast in SQL: no BigInt per cell. */
const SCRATCH_TYPES: { readonly [T in ColumnType]: ScratchType } = {
  string: 'VARCHAR',
  int64: 'DOUBLE',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  timestamp: 'DOUBLE',
};

function scratchColumn(column: Column, index: number, rows: readonly (readonly CellValue[])[]): ScratchColumn {
  const scratchType = SCRATCH_TYPES[column.type];
  const values: DuckDBValue[][] = [];
  let constant = column.type !== 'double' && rows.length > 0;
  const first = rows.length > 0 ? ((rows[0] as readonly CellValue[])[index] ?? null) : null;
  for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
    const end = Math.min(start + CHUNK_ROWS, rows.length);
    const chunk: DuckDBValue[] = new Array(end - start);
    for (let r = start; r < end; r++) {
      const value = (rows[r] as readonly CellValue[])[index] ?? null;
      if (value !== first) constant = false;
      chunk[r - start] = value === null ? null : checked(column, value);
    }
    values.push(chunk);
  }
  const ref = quotedIdentifier(`c${index}`);
  if (constant) return { column, index, expression: sqlValue(column, first === null ? 'NULL' : literal(first)), values: undefined, scratchType };
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

// Parquet through DuckDB: rows go into a scratch table of an in-memory database through the Appender in column chunks, then
// COPY … TO writes a Snappy Parquet file. Column names, order and types come from the protocol's
// table schemas; timestamps are TIMESTAMP WITH TIME ZONE, i.e. Parquet timestamps adjusted to UTC.
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  quotedIdentifier,
  quotedString,
  TIMESTAMPTZ,
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

const DUCKDB_TYPES: { readonly [T in ColumnType]: DuckDBType } = {
  string: VARCHAR,
  int64: BIGINT,
  double: DOUBLE,
  boolean: BOOLEAN,
  timestamp: TIMESTAMPTZ,
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
  const instance = await DuckDBInstance.create(':memory:', { threads: String(options.threads ?? 2) });
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
    await connection.run(`CREATE OR REPLACE TABLE ${name} (${columnDefinitions(table.columns)})`);
    const appender = await connection.createAppender(tempTable);
    try {
      const types = table.columns.map((c) => DUCKDB_TYPES[c.type]);
      for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
        const end = Math.min(start + CHUNK_ROWS, rows.length);
        const chunk = DuckDBDataChunk.create(types, end - start);
        chunk.setColumns(table.columns.map((column, index) => columnValues(column, index, rows, start, end)));
        appender.appendDataChunk(chunk);
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
    const kv = Object.entries(metadata ?? {})
      .map(([key, value]) => `${quotedIdentifier(key)}: ${quotedString(value)}`)
      .join(', ');
    await connection.run(
      `COPY ${name} TO ${quotedString(path)} (FORMAT parquet, COMPRESSION snappy${kv === '' ? '' : `, KV_METADATA {${kv}}`})`,
    );
  } catch (err) {
    throw cloudErrors.create('CLD_PARQUET_WRITE', `${table.name} → ${path}: ${(err as Error).message}`, err);
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${name}`).catch(() => undefined);
  }
}

function columnValues(
  column: Column,
  index: number,
  rows: readonly (readonly CellValue[])[],
  start: number,
  end: number,
): DuckDBValue[] {
  const out: DuckDBValue[] = new Array(end - start);
  for (let r = start; r < end; r++) {
    const value = (rows[r] as readonly CellValue[])[index];
    out[r - start] = value === null || value === undefined ? null : toDuckDB(column, value);
  }
  return out;
}

function toDuckDB(column: Column, value: string | number | boolean): DuckDBValue {
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
      if (Number.isSafeInteger(value)) return BigInt(value);
      break;
    case 'timestamp':
      // Cells carry epoch milliseconds; DuckDB counts microseconds.
      if (Number.isSafeInteger(value)) return new DuckDBTimestampTZValue(BigInt(value) * 1000n);
      break;
  }
  throw new TypeError(`column ${column.name} (${column.type}) cannot hold ${JSON.stringify(value)}`);
}

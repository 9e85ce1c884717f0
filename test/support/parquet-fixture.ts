// A Parquet writer, a DuckDB reader and a scratch folder shared by the tests of one describe block:
// opened before its first test, closed after its last.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { createParquetWriter, type ParquetWriter } from '@city/cloud';

export interface ParquetFixture {
  /** The scratch folder (removed after the block). */
  readonly dir: string;
  readonly writer: ParquetWriter;
  /** A DuckDB connection of its own to read the files back. */
  readonly db: DuckDBConnection;
  /** The rows of a query as objects. */
  all(sql: string): Promise<Record<string, unknown>[]>;
}

/** Call inside a describe block; the fields are set once its beforeAll has run. */
export function parquetFixture(prefix: string): ParquetFixture {
  let dir: string | undefined;
  let writer: ParquetWriter | undefined;
  let reader: DuckDBInstance | undefined;
  let db: DuckDBConnection | undefined;
  const opened = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`parquet fixture: ${what} is used before beforeAll ran`);
    return value;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    writer = await createParquetWriter();
    reader = await DuckDBInstance.create(':memory:');
    db = await reader.connect();
  });
  afterAll(async () => {
    writer?.close();
    db?.closeSync();
    reader?.closeSync();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return opened(dir, 'dir');
    },
    get writer() {
      return opened(writer, 'writer');
    },
    get db() {
      return opened(db, 'db');
    },
    all: async (sql) => (await opened(db, 'db').runAndReadAll(sql)).getRowObjects(),
  };
}

// The warehouse port: SQL statements run as one transaction, and queries. Adapters: PGlite (embedded,
// a folder), PostgreSQL (pg) and Amazon Redshift (Data API). The loader builds the same MERGE text for
// all three; only how rows reach the staging table differs (COPY FROM STDIN here, COPY from S3 there).
import type { QueryResult } from '../ports/query/port.ts';
import type { CsvSource } from './csv-parts.ts';
import type { WarehouseDialect } from './schema.ts';

/**
 * One step of a transaction: a statement, or CSV rows streamed into a table (PostgreSQL and PGlite): from a
 * file at `path`, or from `parts`, files read in order as each is written.
 */
export type WarehouseStep = { sql: string } | { copyCsv: { table: string; columns: readonly string[] } & CsvSource };

export type WarehouseEngine = 'pglite' | 'postgres' | 'redshift';

export interface Warehouse {
  readonly engine: WarehouseEngine;
  readonly dialect: WarehouseDialect;
  /** Schema the warehouse tables live in. */
  readonly schema: string;
  /** True when copyCsv steps are possible (not on Redshift: it loads from S3 only). */
  readonly canCopyCsv: boolean;
  /** Runs the steps in order as one transaction: every step applies, or none. */
  transaction(steps: readonly WarehouseStep[]): Promise<void>;
  /** One read statement; values as the query port gives them (numbers, ISO timestamps, strings). */
  query(sql: string): Promise<QueryResult>;
  close(): Promise<void>;
}

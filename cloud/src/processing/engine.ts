// Where a processing job's SQL runs. Locally: DuckDB over the lake's catalog-driven views, each result
// COPY'd to a scratch Parquet file and put() under the version location. In AWS: Athena, the result
// UNLOADed as Parquet straight into the version location. The job above does not care which.
import { quotedString } from '@duckdb/node-api';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { VersionedCatalog } from '../ports/catalog/index.ts';
import type { AthenaEngine } from '../ports/query/athena.ts';
import { openLake, type Lake } from '../ports/query/duckdb.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import type { ProcessingEngineName } from './sql.ts';

export interface ProcessingEngine {
  readonly dialect: ProcessingEngineName;
  /** Runs a SELECT and returns its rows as plain values. */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  /** Writes a SELECT's result as Parquet files under `location` (a fresh, empty key prefix); rows written when known. */
  write(sql: string, location: string): Promise<number | undefined>;
  /** Sees tables and partitions registered since it opened. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** DuckDB over the local lake, reading through the catalog (see ports/query/duckdb.ts). */
export async function createDuckDBProcessing(lakeDir: string, store: ObjectStore, catalog: VersionedCatalog & { tables?: unknown }): Promise<ProcessingEngine> {
  const lake: Lake = await openLake(lakeDir, { store, catalog: isReader(catalog) ? catalog : undefined });
  return {
    dialect: 'duckdb',
    async rows(sql) {
      return (await lake.query(sql)).rows;
    },
    async write(sql, location) {
      const key = `${location}part-00000.parquet`;
      const scratch = await store.scratchPath(key);
      let rows: number;
      try {
        const result = await lake.query(`COPY (${sql}) TO ${quotedString(scratch)} (FORMAT parquet, COMPRESSION snappy)`);
        rows = Number(Object.values(result.rows[0] ?? {})[0] ?? 0);
      } catch (err) {
        await store.discard(scratch).catch(() => undefined);
        throw cloudErrors.create('CLD_PROCESSING', `${location}: ${errorMessage(err)}`, err);
      }
      try {
        await store.put(key, scratch);
      } catch (err) {
        await store.discard(scratch).catch(() => undefined);
        throw cloudErrors.create('CLD_STORE_PUT', `${key}: ${errorMessage(err)}`, err);
      }
      return rows;
    },
    refresh: () => lake.refresh(),
    async close() {
      lake.close();
    },
  };
}

function isReader(c: unknown): c is { tables(): Promise<never[]> } & VersionedCatalog {
  return typeof (c as { tables?: unknown }).tables === 'function';
}

/** The Athena statement writing one build: UNLOAD into a fresh location (Athena refuses a non-empty one). */
export function unloadSql(sql: string, s3Location: string): string {
  return `UNLOAD (${sql})\nTO ${quotedString(s3Location)}\nWITH (format = 'PARQUET', compression = 'SNAPPY')`;
}

/** Athena over the Glue catalog: reads run as SELECTs, writes as UNLOAD into s3Root + location. */
export function createAthenaProcessing(athena: AthenaEngine, s3Root: string): ProcessingEngine {
  const root = s3Root.endsWith('/') ? s3Root : `${s3Root}/`;
  return {
    dialect: 'athena',
    async rows(sql) {
      return (await athena.query(sql)).rows;
    },
    async write(sql, location) {
      await athena.query(unloadSql(sql, root + location));
      return undefined;
    },
    async refresh() {
      // Athena reads the Glue catalog at every query.
    },
    close: () => athena.close(),
  };
}

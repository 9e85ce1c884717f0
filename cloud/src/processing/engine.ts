// Where a processing job's SQL runs. Locally: DuckDB over the lake's catalog-driven views, each result
// COPY'd to a scratch Parquet file and put() under the version location. In AWS: Athena, the result
// UNLOADed as Parquet straight into the version location. The job above does not care which.
import { quotedString } from '@duckdb/node-api';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { VersionedCatalog } from '../ports/catalog/index.ts';
import type { AthenaEngine } from '../ports/query/athena.ts';
import { openLake, type Lake } from '../ports/query/duckdb.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import { PROCESSED_TABLES } from './definitions.ts';
import type { ProcessingEngineName } from './sql.ts';

export interface ProcessingEngine {
  readonly dialect: ProcessingEngineName;
  /** Runs a SELECT and returns its rows as plain values. */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  /** Writes a SELECT's result as Parquet files under `location` (a fresh, empty key prefix); rows written when known. */
  write(sql: string, location: string, timings?: Record<string, number>): Promise<number | undefined>;
  /**
   * As write, but resolves once the SELECT has run, with `stored` settling when the files are durable
   * under `location`: the caller overlaps storing with its next SELECT and awaits `stored` before it
   * switches the catalog to the location.
   */
  writeDeferred?(sql: string, location: string, timings?: Record<string, number>): Promise<{ rows: number | undefined; stored: Promise<void> }>;
  /**
   * Sees tables, partitions and files registered, written or switched since it opened or last refreshed
   * (runProcessing calls it first, so an engine can be kept open across runs).
   */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/**
 * DuckDB over the local lake, reading through the catalog (see ports/query/duckdb.ts). Opening pays a
 * DuckDB instance and a view per source table (each reads its files' footers); a refresh re-creates only
 * the views whose files changed, so a long-lived engine pays that once.
 */
export async function createDuckDBProcessing(lakeDir: string, store: ObjectStore, catalog: VersionedCatalog & { tables?: unknown }): Promise<ProcessingEngine> {
  // Views of the processed tables' sources only: the job reads nothing else, and each view reads footers.
  const sources = [...new Set(PROCESSED_TABLES.flatMap((t) => t.sources))];
  const lake: Lake = await openLake(lakeDir, { store, catalog: isReader(catalog) ? catalog : undefined, tables: sources });
  const add = (timings: Record<string, number> | undefined, phase: string, ms: number) => {
    if (timings !== undefined) timings[phase] = (timings[phase] ?? 0) + ms;
  };
  /** COPY of the SELECT into a scratch file, then put() (fsync, rename) left running for the caller to await. */
  const copyThenStore = async (sql: string, location: string, timings?: Record<string, number>) => {
    const key = `${location}part-00000.parquet`;
    const t0 = performance.now();
    const scratch = await store.scratchPath(key);
    let rows: number;
    try {
      const result = await lake.query(`COPY (${sql}) TO ${quotedString(scratch)} (FORMAT parquet, COMPRESSION snappy)`);
      rows = Number(Object.values(result.rows[0] ?? {})[0] ?? 0);
    } catch (err) {
      await store.discard(scratch).catch(() => undefined);
      throw cloudErrors.create('CLD_PROCESSING', `${location}: ${errorMessage(err)}`, err);
    }
    const t1 = performance.now();
    add(timings, '  SELECT + COPY TO', t1 - t0);
    const stored = (async () => {
      try {
        await store.put(key, scratch);
      } catch (err) {
        await store.discard(scratch).catch(() => undefined);
        throw cloudErrors.create('CLD_STORE_PUT', `${key}: ${errorMessage(err)}`, err);
      }
      add(timings, '  put (fsync + rename, overlapped)', performance.now() - t1);
    })();
    stored.catch(() => undefined);
    return { rows, stored };
  };
  return {
    dialect: 'duckdb',
    async rows(sql) {
      return (await lake.query(sql)).rows;
    },
    async write(sql, location, timings) {
      const { rows, stored } = await copyThenStore(sql, location, timings);
      await stored;
      return rows;
    },
    writeDeferred: (sql, location, timings) => copyThenStore(sql, location, timings),
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

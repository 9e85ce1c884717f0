// The loaders' DuckDB: opened on first use (a load with nothing to read never starts it), UTC, closed once;
// and what every loader asks of a lake object before it loads it (a local file, its footer's row count).
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, quotedString, type DuckDBConnection } from '@duckdb/node-api';
import { isLocalStore, type ObjectStore } from '../ports/store/port.ts';

export interface LazyDuck {
  connection(): Promise<DuckDBConnection>;
  close(): void;
}

export function lazyDuck(): LazyDuck {
  let duck: Promise<{ instance: DuckDBInstance; connection: DuckDBConnection }> | undefined;
  let opened: { instance: DuckDBInstance; connection: DuckDBConnection } | undefined;
  return {
    async connection() {
      duck ??= (async () => {
        const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
        const connection = await instance.connect();
        await connection.run(`SET TimeZone = 'UTC'`);
        return (opened = { instance, connection });
      })();
      return (await duck).connection;
    },
    close() {
      opened?.connection.closeSync();
      opened?.instance.closeSync();
      opened = undefined;
      duck = undefined;
    },
  };
}

/** A lake object as a file here: the local store's own file, or a download into `scratch` (the caller removes it). */
export async function objectFile(store: ObjectStore, key: string, scratch: string): Promise<{ path: string; bytes: number }> {
  let path: string;
  if (isLocalStore(store)) path = store.locate(key);
  else {
    if (store.download === undefined) throw new Error(`the store at ${store.root} cannot download objects`);
    path = join(scratch, `${randomUUID()}.parquet`);
    await store.download(key, path);
  }
  return { path, bytes: (await stat(path)).size };
}

/** The row count a Parquet file's footer gives; an error when it gives none. */
export async function footerRows(connection: DuckDBConnection, path: string): Promise<number> {
  const meta = await connection.runAndReadAll(`SELECT num_rows FROM parquet_file_metadata(${quotedString(path)})`);
  const rows = Number(meta.getRows()[0]?.[0] ?? Number.NaN);
  if (!Number.isSafeInteger(rows)) throw new Error('no row count in the footer');
  return rows;
}

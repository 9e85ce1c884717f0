// The loaders' DuckDB: opened on first use (a load with nothing to read never starts it), UTC, closed once.
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

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

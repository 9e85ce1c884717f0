// The warehouse on a PostgreSQL server (pg). A transaction runs on one pooled connection between BEGIN
// and COMMIT; CSV rows stream into a table with COPY … FROM STDIN over pg's copy sub-protocol (no extra
// package: the few protocol messages are sent from a submittable, below).
import { once } from 'node:events';
import pg from 'pg';
import { CityError } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { QueryResult, LakeValue } from '../ports/query/port.ts';
import { readCsv, type CsvSource } from './csv-parts.ts';
import type { Warehouse, WarehouseStep } from './port.ts';
import { quoteIdent } from './schema.ts';
import { VALUE_PARSERS } from './values.ts';

export interface PostgresWarehouseOptions {
  /** postgres://user@host:port/database */
  connectionString: string;
  /** Schema of the warehouse tables (created by init); `public` by default. */
  schema?: string;
  /** Pooled connections; 2 by default. */
  maxConnections?: number;
}

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw cloudErrors.create('CLD_INVALID_OPTIONS', `warehouse: /schema must match ${SCHEMA_NAME} (got "${schema}")`);
  return schema;
}

const types = {
  getTypeParser: (oid: number, format?: string) => {
    const parse = VALUE_PARSERS[oid];
    return parse ?? (pg.types.getTypeParser as (oid: number, format?: string) => (text: string) => unknown)(oid, format);
  },
} as pg.CustomTypesConfig;

/** Errors of the server that name the statement's fault, as opposed to the connection's. */
function isStatementError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention) are not the SQL's fault.
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|53|57)/.test(code);
}

export function warehouseError(what: string, err: unknown) {
  return cloudErrors.create(isStatementError(err) ? 'CLD_WAREHOUSE_SQL' : 'CLD_WAREHOUSE', `${what}: ${errorMessage(err)}`, err);
}

export function createPostgresWarehouse(options: PostgresWarehouseOptions): Warehouse {
  const schema = checkSchemaName(options.schema ?? 'public');
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 2,
    // Unqualified names (named queries, ad-hoc SQL) resolve in the warehouse schema; UTC for date_trunc.
    options: `-c search_path=${schema} -c TimeZone=UTC`,
    types,
  });
  // An idle connection the server drops must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  let closed = false;

  const checkOpen = () => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'postgres warehouse');
  };

  return {
    engine: 'postgres',
    dialect: 'postgres',
    schema,
    canCopyCsv: true,
    async transaction(steps: readonly WarehouseStep[]) {
      checkOpen();
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw cloudErrors.create('CLD_WAREHOUSE', `connecting: ${errorMessage(err)}`, err);
      }
      let broken = false;
      try {
        await client.query('BEGIN');
        for (const step of steps) {
          if ('sql' in step) {
            try {
              await client.query(step.sql);
            } catch (err) {
              throw warehouseError(step.sql.slice(0, 200), err);
            }
          } else {
            const { table, columns } = step.copyCsv;
            const sql = `COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM STDIN WITH (FORMAT csv)`;
            try {
              await copyFromCsv(client, sql, step.copyCsv);
            } catch (err) {
              throw warehouseError(sql, err);
            }
          }
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err instanceof CityError ? err : warehouseError('transaction', err);
      } finally {
        client.release(broken);
      }
    },
    async query(sql: string): Promise<QueryResult> {
      checkOpen();
      let result: pg.QueryResult;
      try {
        result = await pool.query(sql);
      } catch (err) {
        throw warehouseError('query', err);
      }
      return { columns: result.fields.map((f) => f.name), rows: result.rows as Record<string, LakeValue>[] };
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/** The few copy-protocol messages pg's Connection sends, which its typings leave out. */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: NodeJS.WritableStream & { writableNeedDrain?: boolean };
}

/** COPY … FROM STDIN with the source's bytes as the data; resolves when the server has taken every row. */
export function copyFromCsv(client: pg.ClientBase, sql: string, source: CsvSource): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let failure: unknown;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve();
      else reject(err);
    };
    const submittable = {
      submit(connection: CopyConnection) {
        connection.query(sql);
      },
      handleCopyInResponse(connection: CopyConnection) {
        void (async () => {
          try {
            await readCsv(source, async (chunk) => {
              connection.sendCopyFromChunk(chunk);
              if (connection.stream.writableNeedDrain === true) await once(connection.stream, 'drain');
            });
            connection.endCopyFrom();
          } catch (err) {
            failure = err;
            connection.sendCopyFail(errorMessage(err));
          }
        })();
      },
      handleCommandComplete() {},
      handleError(err: unknown) {
        settle(failure ?? err);
      },
      handleReadyForQuery() {
        settle(failure);
      },
      handleRowDescription() {},
      handleDataRow() {},
      handleEmptyQuery() {},
      handlePortalSuspended() {},
      handleCopyData() {},
    };
    client.query(submittable as unknown as pg.Submittable);
  });
}

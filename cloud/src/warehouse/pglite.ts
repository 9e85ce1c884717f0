// The warehouse on PGlite: PostgreSQL in WebAssembly on a local folder, the city's default. One
// connection; CSV rows go in through COPY … FROM '/dev/blob', PGlite's route for COPY FROM STDIN.
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { CityError } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { LakeValue, QueryResult } from '../ports/query/port.ts';
import { readCsv } from './csv-parts.ts';
import type { Warehouse, WarehouseStep } from './port.ts';
import { checkSchemaName, warehouseError } from './postgres.ts';
import { quoteIdent } from './schema.ts';
import { VALUE_PARSERS } from './values.ts';

export interface PgliteWarehouseOptions {
  /** Folder of the database; created when missing. */
  dataDir: string;
  schema?: string;
}

export async function createPgliteWarehouse(options: PgliteWarehouseOptions): Promise<Warehouse> {
  const schema = checkSchemaName(options.schema ?? 'public');
  let db: PGlite;
  try {
    await mkdir(options.dataDir, { recursive: true });
    db = await PGlite.create(options.dataDir, { parsers: VALUE_PARSERS as Record<number, (value: string) => unknown> });
    await db.exec(`SET TimeZone TO 'UTC'; CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}; SET search_path TO ${quoteIdent(schema)}`);
  } catch (err) {
    throw cloudErrors.create('CLD_WAREHOUSE', `opening PGlite at ${options.dataDir}: ${errorMessage(err)}`, err);
  }
  let closed = false;
  const checkOpen = () => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'pglite warehouse');
  };

  return {
    engine: 'pglite',
    dialect: 'postgres',
    schema,
    canCopyCsv: true,
    async transaction(steps: readonly WarehouseStep[]) {
      checkOpen();
      try {
        await db.transaction(async (tx) => {
          for (const step of steps) {
            if ('sql' in step) {
              try {
                await tx.query(step.sql);
              } catch (err) {
                throw warehouseError(step.sql.slice(0, 200), err);
              }
              continue;
            }
            const { table, columns } = step.copyCsv;
            const sql = `COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM '/dev/blob' WITH (FORMAT csv)`;
            try {
              // PGlite takes the rows whole.
              const chunks: Buffer[] = [];
              await readCsv(step.copyCsv, (chunk) => void chunks.push(chunk));
              await tx.query(sql, [], { blob: new Blob(chunks) });
            } catch (err) {
              throw warehouseError(sql, err);
            }
          }
        });
      } catch (err) {
        throw err instanceof CityError ? err : warehouseError('transaction', err);
      }
    },
    async query(sql: string): Promise<QueryResult> {
      checkOpen();
      try {
        const result = await db.query<Record<string, LakeValue>>(sql);
        return { columns: result.fields.map((f) => f.name), rows: result.rows };
      } catch (err) {
        throw warehouseError('query', err);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
    },
  };
}

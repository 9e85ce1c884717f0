// The named city queries give the same answers on the warehouse (PGlite, PostgreSQL) as DuckDB gives on
// the lake it was loaded from.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lakeFolder } from '../../../test/support/lake.ts';
import { dropSchema, TEST_POSTGRES_URL, writeCityLake } from '../../../test/support/warehouse.ts';
import { openLake, type Lake } from '../ports/query/duckdb.ts';
import { NAMED_QUERIES, namedQuerySql } from '../ports/query/named.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { createWarehouseLoader } from './loader.ts';
import { createPgliteWarehouse } from './pglite.ts';
import type { Warehouse } from './port.ts';
import { createPostgresWarehouse } from './postgres.ts';
import { warehouseNamedQuery } from './queries.ts';

const root = lakeFolder('wh-queries-');
const lakeDir = join(root, 'lake');
const schema = `whq_${process.pid}_${Date.now() % 100000}`;
let lake: Lake;
const warehouses: [string, Warehouse][] = [];

beforeAll(async () => {
  // No replayed duplicates: the lake holds each event once, as the sink writes it.
  await writeCityLake(lakeDir, { perHour: 60, hours: 3, filesPerHour: 2 });
  lake = await openLake(lakeDir);
  const store = createLocalFolderStore(lakeDir);
  for (const [name, warehouse] of [
    ['pglite', await createPgliteWarehouse({ dataDir: join(root, 'pglite'), schema: 'city' })],
    ['postgres', createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema })],
  ] as const) {
    warehouses.push([name, warehouse]);
    const loader = createWarehouseLoader({ warehouse, store });
    await loader.init();
    await loader.load();
    await loader.close();
  }
  await store.close();
});

afterAll(async () => {
  lake?.close();
  for (const [, w] of warehouses) await w.close();
  await dropSchema(schema);
});

describe.each(NAMED_QUERIES.map((q) => q.name))('named query %s', (name) => {
  it.each(['pglite', 'postgres'])('gives DuckDB\'s answer on %s', async (engine) => {
    const expected = await lake.query(namedQuerySql(name, 'duckdb'));
    expect(expected.rows.length).toBeGreaterThan(0);
    const warehouse = warehouses.find(([n]) => n === engine)?.[1] as Warehouse;
    const got = await warehouseNamedQuery(warehouse, name);
    expect(got.columns).toEqual(expected.columns);
    expect(got.rows).toEqual(expected.rows);
  });
});

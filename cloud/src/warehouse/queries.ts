// The named city queries on the warehouse: the same queries as on the lake, in the warehouse's dialect
// (PostgreSQL for PGlite and PostgreSQL, Redshift's own), over the fact tables the loader fills.
import { namedQuery, namedQuerySql } from '../ports/query/named.ts';
import type { QueryResult } from '../ports/query/port.ts';
import type { Warehouse } from './port.ts';

export async function warehouseNamedQuery(warehouse: Warehouse, name: string, params: Readonly<Record<string, string>> = {}): Promise<QueryResult> {
  const result = await warehouse.query(namedQuerySql(name, warehouse.dialect, params));
  // Same column order as on the lake whatever the engine reports.
  const columns = [...namedQuery(name).columns];
  return { columns, rows: result.rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))) };
}

// The flags naming a warehouse, shared by `sink warehouse` and `sink query --engine warehouse`.

/** Flags naming the warehouse; `sink query --engine warehouse` takes them too. */
export const WAREHOUSE_FLAGS = {
  warehouse: { type: 'string' },
  'pglite-dir': { type: 'string' },
  'postgres-url': { type: 'string' },
  schema: { type: 'string' },
  workgroup: { type: 'string' },
  cluster: { type: 'string' },
  database: { type: 'string' },
  'secret-arn': { type: 'string' },
  'db-user': { type: 'string' },
  region: { type: 'string' },
} as const;


// The warehouse: the port, its adapters (PGlite, PostgreSQL, Redshift Data API), the DDL derived from the
// protocol, the exactly-once loader and the named queries on it.
export type { Warehouse, WarehouseEngine, WarehouseStep } from './port.ts';
export { createPgliteWarehouse, type PgliteWarehouseOptions } from './pglite.ts';
export { createPostgresWarehouse, type PostgresWarehouseOptions } from './postgres.ts';
export {
  createRedshiftWarehouse,
  REDSHIFT_DEFAULTS,
  RedshiftWarehouseSchema,
  type RedshiftWarehouse,
  type RedshiftWarehouseConfig,
  type RedshiftWarehouseOptions,
} from './redshift.ts';
export {
  createTableSql,
  factTable,
  FACT_TABLES,
  warehouseTable,
  warehouseTables,
  type WarehouseColumn,
  type WarehouseDialect,
  type WarehouseTable,
  type SchemaPlan,
} from './schema.ts';
export {
  createWarehouseLoader,
  type LoadResult,
  type RedshiftLoadConfig,
  type SkippedObject,
  type TableStatus,
  type WarehouseLoader,
  type WarehouseLoaderOptions,
} from './loader.ts';
export { warehouseNamedQuery } from './queries.ts';
export {
  createProcessedLoader,
  processedWarehouseTable,
  processedWarehouseTables,
  PROCESSED_LEDGER_TABLE,
  type ProcessedCatalog,
  type ProcessedLoadOptions,
  type ProcessedLoadResult,
} from './processed.ts';
export { spectrumSchemaSql, type SpectrumSchemaOptions } from './spectrum.ts';

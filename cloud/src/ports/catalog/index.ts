// The catalog port and its adapters: a local JSON catalog beside the lake, AWS Glue.
export type { CatalogPartition, CatalogPort, CatalogReader, CatalogTable, CatalogTableState, VersionedCatalog } from './port.ts';
export { isVersionedCatalog } from './port.ts';
export { mergeColumns } from './columns.ts';
export { createLocalCatalog, LOCAL_CATALOG_FILE, type LocalCatalog } from './local.ts';
export {
  createGlueCatalog,
  GLUE_MAX_PARTITIONS_PER_CALL,
  GLUE_TYPES,
  GlueCatalogSchema,
  PARQUET_INPUT_FORMAT,
  PARQUET_OUTPUT_FORMAT,
  PARQUET_SERDE,
  projectionParameters,
  type GlueCatalog,
  type GlueCatalogConfig,
  type GlueCatalogOptions,
  type GlueCatalogStats,
} from './glue.ts';
export { createCatalog, type CatalogConfig } from './factory.ts';

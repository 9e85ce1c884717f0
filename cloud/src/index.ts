// Public entry of the cloud package: the sink, the lake writer and its ports, and the query engine.
export { cloudErrors, type CloudErrorCode } from './errors.ts';
export { jsonLog, silentLog, type Log, type LogLevel } from './log.ts';
export {
  CURATED_PREFIX,
  DEADLETTER_PREFIX,
  dataFileKey,
  dataFileName,
  isLakeTable,
  parseDataFileKey,
  partitionPrefix,
  tablePrefix,
  tableSchema,
  type LakePartition,
  type LakeTable,
} from './layout.ts';
export {
  createRecordDecoder,
  DEFAULT_TOPICS,
  topicList,
  type KafkaRecord,
  type LakeRow,
  type RecordDecoder,
  type SinkTopics,
} from './records.ts';
export { columnDefinitions, createParquetWriter, SQL_TYPES, type ParquetWriteOptions, type ParquetWriter } from './parquet.ts';
export { createLocalFolderStore, type ObjectStore } from './store.ts';
export { createS3Store, type S3StoreOptions } from './s3-store.ts';
export { sampleEvent, type SampleOptions } from './samples.ts';
export { createLakeWriter, type LakeFile, type LakeWriter } from './lake-writer.ts';
export { resolveSinkOptions, SINK_DEFAULTS, type ResolvedSinkOptions, type SinkOptions } from './options.ts';
export {
  createSink,
  Sink,
  type CommittedOffset,
  type FlushErrorInfo,
  type FlushInfo,
  type FlushReason,
  type RebalanceInfo,
  type RejectedInfo,
  type SinkEvents,
  type SinkStats,
} from './sink.ts';
export {
  LAKE_TABLES,
  openLake,
  queryLake,
  objectSource,
  syncLakeCache,
  toLakeValue,
  type Lake,
  type LakeCacheSync,
  type LakeTableInfo,
  type LakeValue,
  type ObjectSource,
  type OpenLakeOptions,
  type QueryResult,
} from './query.ts';
export {
  createCatalog,
  type CatalogConfig,
  type CatalogPartition,
  type CatalogPort,
  type CatalogReader,
  type CatalogTable,
  type CatalogTableState,
} from './catalog.ts';
export { AWS_RETRY_DEFAULTS, isRetryableAwsError, withAwsRetry, type RetryPolicy } from './aws-retry.ts';
export { createLocalCatalog, LOCAL_CATALOG_FILE, mergeColumns, type LocalCatalog } from './catalog-local.ts';
export {
  createGlueCatalog,
  GLUE_MAX_PARTITIONS_PER_CALL,
  GLUE_TYPES,
  projectionParameters,
  type GlueCatalog,
  type GlueCatalogOptions,
  type GlueCatalogStats,
} from './catalog-glue.ts';
export { athenaValue, ATHENA_DEFAULTS, createAthenaEngine, newRequestToken, type AthenaEngine, type AthenaEngineOptions, type AthenaQueryResult } from './athena.ts';
export { DISTRICT_BOXES, districtSql, NAMED_QUERIES, namedQuery, namedQuerySql, type NamedQuery, type NamedQueryParam, type QueryEngineName } from './queries.ts';

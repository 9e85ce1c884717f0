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
export { LAKE_TABLES, openLake, queryLake, toLakeValue, type Lake, type LakeTableInfo, type LakeValue, type QueryResult } from './query.ts';

// The lake: layout and file names, Parquet writing, the lake writer, compaction, reading (live files, cache).
export {
  ALL_LAKE_TABLES,
  CURATED_PREFIX,
  DEADLETTER_PREFIX,
  RAW_COLUMNS,
  RAW_PREFIX,
  dataFileKey,
  dataFileName,
  footerMetadata,
  isLakeTable,
  mergedFileName,
  parquetCodec,
  parseDataFileKey,
  parseLakeFileKey,
  partitionOfKey,
  partitionPrefix,
  rawKind,
  rawTable,
  tablePrefix,
  tableSchema,
  type LakeFileKey,
  type LakePartition,
  type LakeTable,
  type ParquetCodec,
  type RawTable,
} from './layout.ts';
export {
  columnDefinitions,
  createParquetWriter,
  isJsonRows,
  isPackedRows,
  rowCount,
  SQL_TYPES,
  type JsonRows,
  type PackedTableRows,
  type ParquetRows,
  type ParquetWriteOptions,
  type ParquetWriter,
} from './parquet.ts';
export { PackedColumn, PackedRows, type PackedType } from './packed.ts';
export { createLakeWriter, type LakeFile, type LakeWriter } from './writer.ts';
export { COMPACT_DEFAULTS, compactionOptions, CompactionSchema, type CompactionConfig } from './compaction-options.ts';
export {
  compactLake,
  compactPartition,
  type CompactOptions,
  type CompactStep,
  type PartitionCompaction,
} from './compaction.ts';
export { listLiveFiles, liveFiles, objectSource, supersededFiles, syncLakeCache, type LakeCacheSync, type ObjectSource } from './reader.ts';

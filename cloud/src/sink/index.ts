// The sink: Kafka consumer group → exactly-once Parquet lake, with its events, options and record decoding.
export { createSink, Sink } from './sink.ts';
export { resolveSinkOptions, SINK_DEFAULTS, SinkSchema, type ResolvedSinkOptions, type SinkConfig, type SinkOptions } from './options.ts';
export type {
  CommittedOffset,
  CompactionInfo,
  FlushErrorInfo,
  FlushInfo,
  RebalanceInfo,
  RejectedInfo,
  SinkEvents,
  SinkStats,
} from './events.ts';
export type { FlushReason } from './segments.ts';
export { createRecordDecoder, DEFAULT_TOPICS, topicList, type KafkaRecord, type LakeRow, type RecordDecoder, type SinkTopics } from './records.ts';
// The per-record stages, for the benchmark that measures them without Kafka (test/bench/sink-intake.ts).
export { createRecordReader, eventTextPack, eventTextRows, packedEventRows, packEvent, packRawRecord, packRawRow, rawCells, rawRowPack, type EventText, type RawRecord } from './records.ts';
export { Intake } from './intake.ts';
export { Segments } from './segments.ts';
export { DuplicateWindow } from './dedup.ts';
export { emptyStats } from './events.ts';
export { createSinkDecoder, decodeAlertRecord, decodeKpiRecord, type SinkLiveTopics } from './live-records.ts';

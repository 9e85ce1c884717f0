// Sink options: merged over defaults and validated once, so the rest of the sink trusts them.
import { compileSchema, describeProblems, EVENT_KINDS } from '@city/protocol';
import { cloudErrors } from './errors.ts';
import { jsonLog, type Log } from './log.ts';
import { DEFAULT_TOPICS, type SinkTopics } from './records.ts';
import type { CatalogPort } from './catalog.ts';
import type { ObjectStore } from './store.ts';

export interface SinkOptions {
  /** Kafka bootstrap brokers, host:port. */
  brokers: string[];
  /** Root of the local lake (also where the default object store writes). */
  lakeDir: string;
  groupId?: string;
  clientId?: string;
  /** Where a group without committed offsets starts. */
  fromBeginning?: boolean;
  /**
   * Segment rules (see sink.ts): records of one topic-partition after which its segment ends, and so its
   * files roll. Counted over the record stream only, so a replay cuts the same files.
   */
  maxRows?: number;
  /** Record bytes (key + value) of one topic-partition after which its segment ends. */
  maxBytes?: number;
  /** Record time: a record whose Kafka timestamp is this far past its segment's first one starts a new segment. */
  maxSpanMs?: number;
  /** Freshness (wall clock): a segment whose partition has been idle this long ends and is written. */
  maxAgeMs?: number;
  /**
   * Duplicate window, in records per topic-partition: an event whose id appears among the previous
   * dedupWindow records of its topic-partition is dropped. Rebuilt from Kafka after every (re)assignment.
   */
  dedupWindow?: number;
  /** Also write the raw zone: every record of an event topic as received, with its Kafka metadata. */
  rawZone?: boolean;
  /** Rows buffered in total above which consumption waits for a flush (memory bound, backpressure). */
  maxBufferedRows?: number;
  /**
   * Kafka consumer session timeout: how long the group waits for a silent member (e.g. a killed
   * process) before giving its partitions to another.
   */
  sessionTimeoutMs?: number;
  /** Deadline for close(): after it, unflushed rows are abandoned (they stay uncommitted in Kafka). */
  closeTimeoutMs?: number;
  /** Backoff between retries of a failed write or commit: doubles from initial up to max. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  topics?: SinkTopics;
  /** Object store to write through (closed with the sink); defaults to the local folder lakeDir. */
  store?: ObjectStore;
  /** Catalog to register tables and partitions in before offsets are committed (not closed by the sink). */
  catalog?: CatalogPort;
  log?: Log;
}

export interface ResolvedSinkOptions {
  brokers: string[];
  lakeDir: string;
  groupId: string;
  clientId: string;
  fromBeginning: boolean;
  maxRows: number;
  maxBytes: number;
  maxSpanMs: number;
  maxAgeMs: number;
  dedupWindow: number;
  rawZone: boolean;
  maxBufferedRows: number;
  sessionTimeoutMs: number;
  closeTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  topics: SinkTopics;
  store: ObjectStore | undefined;
  catalog: CatalogPort | undefined;
  log: Log;
}

export const SINK_DEFAULTS = {
  groupId: 'city-sink',
  clientId: 'city-sink',
  fromBeginning: true,
  maxRows: 50_000,
  // One PutObject per file: well under S3's 5 GB single-put limit, and bounded memory.
  maxBytes: 64 * 1024 * 1024,
  maxSpanMs: 300_000,
  maxAgeMs: 5_000,
  dedupWindow: 20_000,
  rawZone: true,
  maxBufferedRows: 200_000,
  sessionTimeoutMs: 30_000,
  closeTimeoutMs: 30_000,
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  topics: DEFAULT_TOPICS,
} as const;

const TOPIC_NAME = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' };
const positiveInt = (maximum: number) => ({ type: 'integer', minimum: 1, maximum });

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['brokers', 'lakeDir'],
  properties: {
    brokers: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^\\S+:\\d{1,5}$' } },
    lakeDir: { type: 'string', minLength: 1 },
    groupId: { type: 'string', minLength: 1, maxLength: 255 },
    clientId: { type: 'string', minLength: 1, maxLength: 255 },
    fromBeginning: { type: 'boolean' },
    maxRows: positiveInt(10_000_000),
    maxBytes: { type: 'integer', minimum: 1024, maximum: 4 * 1024 ** 3 },
    maxSpanMs: positiveInt(7 * 24 * 3600_000),
    maxAgeMs: positiveInt(24 * 3600_000),
    dedupWindow: positiveInt(100_000_000),
    rawZone: { type: 'boolean' },
    maxBufferedRows: positiveInt(100_000_000),
    // Kafka brokers refuse session timeouts outside group.min/max.session.timeout.ms (6 s to 30 min by default).
    sessionTimeoutMs: { type: 'integer', minimum: 1_000, maximum: 3600_000 },
    closeTimeoutMs: positiveInt(3600_000),
    retryInitialMs: positiveInt(3600_000),
    retryMaxMs: positiveInt(3600_000),
    topics: {
      type: 'object',
      additionalProperties: false,
      required: ['events', 'deadletter'],
      properties: {
        events: {
          type: 'object',
          additionalProperties: false,
          required: EVENT_KINDS,
          properties: Object.fromEntries(EVENT_KINDS.map((kind) => [kind, TOPIC_NAME])),
        },
        deadletter: TOPIC_NAME,
      },
    },
  },
};

const validateOptions = compileSchema<Omit<ResolvedSinkOptions, 'store' | 'catalog' | 'log'>>(optionsSchema);

export function resolveSinkOptions(options: SinkOptions): ResolvedSinkOptions {
  const { store, catalog, log, ...data } = options;
  const merged: Record<string, unknown> = { ...SINK_DEFAULTS };
  // An explicit undefined means "default", not "unset".
  for (const [key, value] of Object.entries(data)) if (value !== undefined) merged[key] = value;
  const checked = validateOptions(merged);
  if (!checked.ok) throw cloudErrors.create('CLD_INVALID_OPTIONS', describeProblems(checked.problems));
  const resolved = checked.value;
  if (resolved.maxBufferedRows < resolved.maxRows) {
    throw cloudErrors.create('CLD_INVALID_OPTIONS', `/maxBufferedRows (${resolved.maxBufferedRows}) must be at least /maxRows (${resolved.maxRows})`);
  }
  if (resolved.retryMaxMs < resolved.retryInitialMs) {
    throw cloudErrors.create('CLD_INVALID_OPTIONS', '/retryMaxMs must be at least /retryInitialMs');
  }
  const topics = [...Object.values(resolved.topics.events), resolved.topics.deadletter];
  if (new Set(topics).size !== topics.length) throw cloudErrors.create('CLD_INVALID_OPTIONS', '/topics names must be distinct');
  if (log !== undefined && typeof log !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', '/log must be a function');
  if (store !== undefined && (typeof store !== 'object' || store === null || typeof store.put !== 'function')) {
    throw cloudErrors.create('CLD_INVALID_OPTIONS', '/store must be an ObjectStore');
  }
  if (catalog !== undefined && (typeof catalog !== 'object' || catalog === null || typeof catalog.addPartitions !== 'function')) {
    throw cloudErrors.create('CLD_INVALID_OPTIONS', '/catalog must be a CatalogPort');
  }
  return { ...resolved, brokers: [...resolved.brokers], store, catalog, log: log ?? jsonLog() };
}

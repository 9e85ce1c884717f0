// Sink options: a schema gives the type, defaults are merged under what the caller passed, and the
// result is validated once, so the rest of the sink trusts them. The store, catalog and log are objects
// handed in beside the data and checked by shape only.
import { Type, type Static } from '@sinclair/typebox';
import { checkKafkaSecurity, defineOptions, EVENT_KINDS, jsonLog, KafkaSecurity, type DeepPartial, type Log, type OAuthBearerTokenProvider } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import { COMPACT_DEFAULTS } from '../lake/compaction-options.ts';
import type { CatalogPort } from '../ports/catalog/index.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import { DEFAULT_TOPICS } from './records.ts';

const TopicName = Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$' });
const positiveInt = (maximum: number) => Type.Integer({ minimum: 1, maximum });

export const SinkSchema = Type.Object(
  {
    /** Kafka bootstrap brokers, host:port. */
    brokers: Type.Array(Type.String({ pattern: '^\\S+:\\d{1,5}$' }), { minItems: 1 }),
    /** TLS and SASL towards Kafka, the same schema as the gateway's (where secrets are, never the secrets). */
    security: Type.Optional(KafkaSecurity),
    /** Root of the local lake (also where the default object store writes). */
    lakeDir: Type.String({ minLength: 1 }),
    groupId: Type.String({ minLength: 1, maxLength: 255 }),
    clientId: Type.String({ minLength: 1, maxLength: 255 }),
    /** Where a group without committed offsets starts. */
    fromBeginning: Type.Boolean(),
    /**
     * Segment rules (see segments.ts): records of one topic-partition after which its segment ends, and so
     * its files roll. Counted over the record stream only, so a replay cuts the same files.
     */
    maxRows: positiveInt(10_000_000),
    /** Record bytes (key + value) of one topic-partition after which its segment ends. */
    maxBytes: Type.Integer({ minimum: 1024, maximum: 4 * 1024 ** 3 }),
    /** Record time: a record whose Kafka timestamp is this far past its segment's first one starts a new segment. */
    maxSpanMs: positiveInt(7 * 24 * 3600_000),
    /** Freshness (wall clock): a segment whose partition has been idle this long ends and is written. */
    maxAgeMs: positiveInt(24 * 3600_000),
    /**
     * Duplicate window, in records per topic-partition: an event whose id appears among the previous
     * dedupWindow records of its topic-partition is dropped. Rebuilt from Kafka after every (re)assignment.
     */
    dedupWindow: positiveInt(100_000_000),
    /** Also write the raw zone: every record of an event topic as received, with its Kafka metadata. */
    rawZone: Type.Boolean(),
    /** Rows buffered in total above which consumption waits for a flush (memory bound, backpressure). */
    maxBufferedRows: positiveInt(100_000_000),
    /**
     * Kafka consumer session timeout: how long the group waits for a silent member (e.g. a killed
     * process) before giving its partitions to another. Brokers refuse values outside
     * group.min/max.session.timeout.ms (6 s to 30 min by default).
     */
    sessionTimeoutMs: Type.Integer({ minimum: 1_000, maximum: 3600_000 }),
    /** Deadline for close(): after it, unflushed rows are abandoned (they stay uncommitted in Kafka). */
    closeTimeoutMs: positiveInt(3600_000),
    /** Backoff between retries of a failed write or commit: doubles from initial up to max. */
    retryInitialMs: positiveInt(3600_000),
    retryMaxMs: positiveInt(3600_000),
    /**
     * Compaction of the sink's own committed files, every this many ms (0: never). Runs beside the
     * write path; see compactor.ts for which files it may touch.
     */
    compactEveryMs: Type.Integer({ minimum: 0, maximum: 24 * 3600_000 }),
    /** Size up to which compaction merges a topic-partition's files in one lake partition. */
    compactTargetBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 ** 3 }),
    topics: Type.Object(
      {
        events: Type.Object(Object.fromEntries(EVENT_KINDS.map((kind) => [kind, TopicName])) as Record<(typeof EVENT_KINDS)[number], typeof TopicName>, {
          additionalProperties: false,
        }),
        deadletter: TopicName,
      },
      { additionalProperties: false },
    ),
    /** Also write the live engine's KPI and alert topics to the lake (tables kpi_windows and alerts). */
    liveTopics: Type.Optional(Type.Object({ kpi: TopicName, alerts: TopicName }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export type SinkConfig = Static<typeof SinkSchema>;

/** What the caller gives: brokers and lakeDir, any other setting to override, and the objects to use. */
export type SinkOptions = DeepPartial<SinkConfig> & {
  brokers: string[];
  lakeDir: string;
  /** Object store to write through (closed with the sink); defaults to the local folder lakeDir. */
  store?: ObjectStore;
  /** Catalog to register tables and partitions in before offsets are committed (not closed by the sink). */
  catalog?: CatalogPort;
  log?: Log;
  /** OAUTHBEARER tokens from code (AWS MSK IAM, Entra, …), beside security.sasl.mechanism oauthbearer. */
  kafkaTokenProvider?: OAuthBearerTokenProvider;
};

export type ResolvedSinkOptions = SinkConfig & {
  store: ObjectStore | undefined;
  catalog: CatalogPort | undefined;
  log: Log;
  kafkaTokenProvider: OAuthBearerTokenProvider | undefined;
};

export const SINK_DEFAULTS: Readonly<Omit<SinkConfig, 'brokers' | 'lakeDir'>> = {
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
  compactEveryMs: 60_000,
  compactTargetBytes: COMPACT_DEFAULTS.targetBytes,
  topics: DEFAULT_TOPICS,
};

const sinkOptions = defineOptions({
  schema: SinkSchema,
  defaults: SINK_DEFAULTS,
  check(o) {
    if (o.maxBufferedRows < o.maxRows) return `/maxBufferedRows (${o.maxBufferedRows}) must be at least /maxRows (${o.maxRows})`;
    if (o.retryMaxMs < o.retryInitialMs) return '/retryMaxMs must be at least /retryInitialMs';
    const topics = [...Object.values(o.topics.events), o.topics.deadletter, ...(o.liveTopics === undefined ? [] : [o.liveTopics.kpi, o.liveTopics.alerts])];
    if (new Set(topics).size !== topics.length) return '/topics names must be distinct';
    return checkKafkaSecurity(o.security, '/security', hasTokenProvider);
  },
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', detail),
});

// Whether code handed in a token provider matters to the check, which runs inside resolve().
let hasTokenProvider = false;

export function resolveSinkOptions(options: SinkOptions): ResolvedSinkOptions {
  const { store, catalog, log, kafkaTokenProvider, ...data } = options;
  if (kafkaTokenProvider !== undefined && typeof kafkaTokenProvider !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', '/kafkaTokenProvider must be a function');
  if (log !== undefined && typeof log !== 'function') throw cloudErrors.create('CLD_INVALID_OPTIONS', '/log must be a function');
  if (store !== undefined && (typeof store !== 'object' || store === null || typeof store.put !== 'function')) {
    throw cloudErrors.create('CLD_INVALID_OPTIONS', '/store must be an ObjectStore');
  }
  if (catalog !== undefined && (typeof catalog !== 'object' || catalog === null || typeof catalog.addPartitions !== 'function')) {
    throw cloudErrors.create('CLD_INVALID_OPTIONS', '/catalog must be a CatalogPort');
  }
  hasTokenProvider = kafkaTokenProvider !== undefined;
  let resolved: SinkConfig;
  try {
    resolved = sinkOptions.resolve(data);
  } finally {
    hasTokenProvider = false;
  }
  return { ...resolved, brokers: [...resolved.brokers], store, catalog, log: log ?? jsonLog(), kafkaTokenProvider };
}

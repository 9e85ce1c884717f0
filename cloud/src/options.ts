// Sink options: merged over defaults and validated once, so the rest of the sink trusts them.
import { compileSchema, describeProblems, EVENT_KINDS } from '@city/protocol';
import { cloudErrors } from './errors.ts';
import { jsonLog, type Log } from './log.ts';
import { DEFAULT_TOPICS, type SinkTopics } from './records.ts';
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
  /** Rows in one open file buffer that trigger a flush. */
  maxRows?: number;
  /** Age of the oldest buffered row that triggers a flush (wall clock). */
  maxAgeMs?: number;
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
  log?: Log;
}

export interface ResolvedSinkOptions {
  brokers: string[];
  lakeDir: string;
  groupId: string;
  clientId: string;
  fromBeginning: boolean;
  maxRows: number;
  maxAgeMs: number;
  maxBufferedRows: number;
  sessionTimeoutMs: number;
  closeTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  topics: SinkTopics;
  store: ObjectStore | undefined;
  log: Log;
}

export const SINK_DEFAULTS = {
  groupId: 'city-sink',
  clientId: 'city-sink',
  fromBeginning: true,
  maxRows: 50_000,
  maxAgeMs: 5_000,
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
    maxAgeMs: positiveInt(24 * 3600_000),
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

const validateOptions = compileSchema<Omit<ResolvedSinkOptions, 'store' | 'log'>>(optionsSchema);

export function resolveSinkOptions(options: SinkOptions): ResolvedSinkOptions {
  const { store, log, ...data } = options;
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
  return { ...resolved, brokers: [...resolved.brokers], store, log: log ?? jsonLog() };
}

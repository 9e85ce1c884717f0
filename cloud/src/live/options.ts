// Options of the live engine (cloud live): validated once; the output port and the log are handed in
// beside the data and checked by shape only.
import { defineOptions, jsonLog, kafkaTopicSet, liveTopicSet, Type, type DeepPartial, type KafkaTopicSet, type LiveTopicSet, type Log, type Static } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import { ALERT_DEFAULTS, AlertConfigSchema } from './alerts.ts';
import type { LiveOutput } from './output.ts';

const TopicName = Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$' });

export const LiveSchema = Type.Object(
  {
    brokers: Type.Array(Type.String({ pattern: '^\\S+:\\d{1,5}$' }), { minItems: 1 }),
    /** Its own consumer group: the sink's hot path is not touched. */
    groupId: Type.String({ minLength: 1, maxLength: 255 }),
    clientId: Type.String({ minLength: 1, maxLength: 255 }),
    fromBeginning: Type.Boolean(),
    /** Events this long after their window's end still update it (and it is re-emitted). */
    allowedLatenessMs: Type.Integer({ minimum: 0, maximum: 24 * 3600_000 }),
    /** A source partition without records this long stops holding the global watermark back. */
    idleTimeoutMs: Type.Integer({ minimum: 100, maximum: 3600_000 }),
    /** How often changed windows are emitted (early updates), finals checked and offsets committed; ≤ 2 s. */
    tickMs: Type.Integer({ minimum: 10, maximum: 2_000 }),
    /** Wall-clock time a finished merged window is kept after its last change, for instances that report later. */
    mergeGraceMs: Type.Integer({ minimum: 0, maximum: 24 * 3600_000 }),
    sessionTimeoutMs: Type.Integer({ minimum: 1_000, maximum: 3600_000 }),
    closeTimeoutMs: Type.Integer({ minimum: 1, maximum: 3600_000 }),
    alerts: AlertConfigSchema,
    topics: Type.Object(
      {
        events: Type.Record(Type.String(), TopicName),
        deadletter: TopicName,
      },
      { additionalProperties: false },
    ),
    liveTopics: Type.Object({ kpi: TopicName, alerts: TopicName, partials: TopicName }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

export type LiveConfig = Static<typeof LiveSchema> & { topics: KafkaTopicSet; liveTopics: LiveTopicSet };

export type LiveOptions = DeepPartial<Omit<LiveConfig, 'brokers'>> & {
  brokers: string[];
  /** Where finished KPI windows and alerts go besides Kafka (Power BI, Fabric Eventstream). */
  output?: LiveOutput | undefined;
  log?: Log | undefined;
  /** Wall clock, for idle partitions and gateway silence (tests pass their own). */
  now?: (() => number) | undefined;
};

export type ResolvedLiveOptions = LiveConfig & { output: LiveOutput | undefined; log: Log; now: () => number };

export const LIVE_DEFAULTS = {
  groupId: 'city-live',
  clientId: 'city-live',
  fromBeginning: true,
  allowedLatenessMs: 60_000,
  idleTimeoutMs: 10_000,
  tickMs: 1_000,
  mergeGraceMs: 60_000,
  sessionTimeoutMs: 10_000,
  closeTimeoutMs: 30_000,
  alerts: ALERT_DEFAULTS,
  topics: kafkaTopicSet(),
  liveTopics: liveTopicSet(),
} satisfies DeepPartial<LiveConfig>;

const resolver = defineOptions({
  schema: LiveSchema,
  defaults: LIVE_DEFAULTS,
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', `live: ${detail}`),
});

export function resolveLiveOptions(options: LiveOptions): ResolvedLiveOptions {
  const { output, log, now, ...data } = options;
  const config = resolver.resolve(data) as LiveConfig;
  return { ...config, output, log: log ?? jsonLog('info'), now: now ?? Date.now };
}

// Gateway options: merged over defaults and validated once, with errors that name the field.
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum, compileSchema, describeProblems, EVENT_KINDS, kafkaTopicSet, Location, type KafkaTopicSet } from '@city/protocol';
import { DURABILITY } from './buffer.ts';
import { gatewayErrors } from './errors.ts';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Millis = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });

export const GatewayConfig = Type.Object(
  {
    gatewayId: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    mqtt: Type.Object({ host: Type.String({ minLength: 1 }), port: Port }, { additionalProperties: false }),
    buffer: Type.Object(
      {
        path: Type.String({ minLength: 1 }),
        durability: StringEnum(Object.values(DURABILITY)),
        /** Group-commit window: 0 commits what arrived in one event-loop turn. */
        commitWindowMs: Millis(0, 1000),
        commitMaxRecords: Type.Integer({ minimum: 1, maximum: 100_000 }),
      },
      { additionalProperties: false },
    ),
    kafka: Type.Object(
      {
        brokers: Type.Array(Type.String({ pattern: '^[^\\s:]+:\\d{1,5}$' }), { minItems: 1 }),
        clientId: Type.String({ minLength: 1 }),
        compression: StringEnum(['none', 'gzip'] as const),
        requestTimeoutMs: Millis(100, 300_000),
      },
      { additionalProperties: false },
    ),
    forward: Type.Object(
      {
        batchSize: Type.Integer({ minimum: 1, maximum: 100_000 }),
        idleMs: Millis(1, 60_000),
        minBackoffMs: Millis(1, 60_000),
        maxBackoffMs: Millis(1, 3_600_000),
      },
      { additionalProperties: false },
    ),
    topics: Type.Object(
      {
        events: Type.Object(Object.fromEntries(EVENT_KINDS.map((k) => [k, Type.String({ minLength: 1 })])), {
          additionalProperties: false,
        }),
        deadletter: Type.String({ minLength: 1 }),
      },
      { additionalProperties: false },
    ),
    /** How often the gateway reports its own health through the event path; 0 = never. */
    healthIntervalMs: Millis(0, 86_400_000),
    location: Type.Optional(Location),
    /** On close, how long to keep forwarding what is buffered before leaving it for the next start. */
    drainOnCloseMs: Millis(0, 600_000),
    shutdownTimeoutMs: Millis(100, 600_000),
  },
  { additionalProperties: false },
);

export type GatewayConfig = Static<typeof GatewayConfig> & { topics: KafkaTopicSet };

type DeepPartial<T> = { [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type GatewayOptions = DeepPartial<GatewayConfig> & { gatewayId: string; buffer: { path: string } };

export const GATEWAY_DEFAULTS = {
  mqtt: { host: '0.0.0.0', port: 1883 },
  buffer: { durability: DURABILITY.powerLoss, commitWindowMs: 0, commitMaxRecords: 5000 },
  kafka: { brokers: ['127.0.0.1:9092'], clientId: 'city-gateway', compression: 'none', requestTimeoutMs: 30_000 },
  forward: { batchSize: 2000, idleMs: 50, minBackoffMs: 100, maxBackoffMs: 30_000 },
  topics: kafkaTopicSet(),
  healthIntervalMs: 60_000,
  drainOnCloseMs: 2_000,
  shutdownTimeoutMs: 15_000,
} as const;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge of plain objects; arrays and scalars from `over` replace those of `base`. */
export function mergeDefaults(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value !== undefined) out[key] = mergeDefaults(base[key], value);
  }
  return out;
}

const check = compileSchema<GatewayConfig>(GatewayConfig);

export function resolveGatewayOptions(options: GatewayOptions): GatewayConfig {
  const result = check(mergeDefaults(GATEWAY_DEFAULTS, options));
  if (!result.ok) throw gatewayErrors.create('GW_OPTIONS_INVALID', describeProblems(result.problems));
  if (result.value.forward.minBackoffMs > result.value.forward.maxBackoffMs) {
    throw gatewayErrors.create('GW_OPTIONS_INVALID', '/forward/minBackoffMs must not exceed maxBackoffMs');
  }
  return result.value;
}

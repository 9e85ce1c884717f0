// Gateway options, through the shared resolver: the schema gives the type, defaults are merged under
// what the caller passed, and the result is validated once, with errors that name the field.
import { Type, type Static } from '@sinclair/typebox';
import {
  StringEnum,
  checkKafkaSecurity,
  defineOptions,
  EVENT_KINDS,
  KafkaSecurity,
  kafkaTopicSet,
  loadKafkaSecurity,
  Location,
  type DeepPartial,
  type KafkaTopicSet,
  type OAuthBearerTokenProvider,
} from '@city/protocol';
import { AuthConfig, LimitsConfig, SECURITY_DEFAULTS, TlsConfig, WebSocketConfig, checkSecurityConfig } from './broker/index.ts';
import { DURABILITY } from './buffer/index.ts';
import { TIMESYNCD_FLAG } from './health/clock.ts';
import { REPLAY_ORDERS, UPLINK_COMPRESSIONS, type UplinkSecurity } from './forward/index.ts';
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
        /** A group commit also closes as soon as this many records wait (bounds latency and memory). */
        commitMaxRecords: Type.Integer({ minimum: 1, maximum: 100_000 }),
        /** Cap on payload bytes held; 0 = none. Telemetry then dead letters are evicted oldest-first, emergency never. */
        maxBytes: Type.Integer({ minimum: 0 }),
        /** Free space to keep on the buffer's file system (statfs of its directory); 0 = none. */
        minFreeDiskBytes: Type.Integer({ minimum: 0 }),
        /** Optional time-to-live per lane (ms, 0 = forever); expired records are counted, not sent. */
        ttlMs: Type.Object(
          {
            emergency: Type.Optional(Millis(0, 31_536_000_000)),
            deadletter: Type.Optional(Millis(0, 31_536_000_000)),
            telemetry: Type.Optional(Millis(0, 31_536_000_000)),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    kafka: Type.Object(
      {
        brokers: Type.Array(Type.String({ pattern: '^[^\\s:]+:\\d{1,5}$' }), { minItems: 1 }),
        clientId: Type.String({ minLength: 1 }),
        /** Record-batch codec of the uplink; the sink reads every one of these. */
        compression: StringEnum(UPLINK_COMPRESSIONS),
        requestTimeoutMs: Millis(100, 300_000),
        /** TLS and SASL (see @city/protocol kafka-security.ts): only where secrets are, never the secrets. */
        security: Type.Optional(KafkaSecurity),
      },
      { additionalProperties: false },
    ),
    forward: Type.Object(
      {
        batchSize: Type.Integer({ minimum: 1, maximum: 100_000 }),
        idleMs: Millis(1, 60_000),
        /** After a batch that was not full, wait this long before the next: fewer, fuller Kafka requests. */
        lingerMs: Millis(0, 10_000),
        minBackoffMs: Millis(1, 60_000),
        maxBackoffMs: Millis(1, 3_600_000),
        /** Backlog pace (records and payload bytes per second, 0 = unpaced); see forward/forwarder.ts. */
        replayRecordsPerSec: Type.Integer({ minimum: 0 }),
        replayBytesPerSec: Type.Integer({ minimum: 0 }),
        /** Which goes first in a batch; per-device order holds either way. */
        replayOrder: StringEnum(REPLAY_ORDERS),
        expireEveryMs: Millis(100, 3_600_000),
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
    /** System sampling (CPU, memory, temperature, disk) runs on its own timer and is cached: it is slow. */
    health: Type.Object(
      { sampleIntervalMs: Millis(1000, 3_600_000), sampleTimeoutMs: Millis(100, 600_000) },
      { additionalProperties: false },
    ),
    /**
     * Clock synchronisation (health/clock.ts): the flag file whose presence means synchronised ('' = no
     * time service to ask), checked every checkIntervalMs; each receive stamp carries the last answer.
     */
    clock: Type.Object(
      { syncFlag: Type.String(), checkIntervalMs: Millis(100, 3_600_000) },
      { additionalProperties: false },
    ),
    /** Status and metrics listener (/healthz, /metrics); loopback by default. */
    http: Type.Object(
      { enabled: Type.Boolean(), host: Type.String({ minLength: 1 }), port: Port },
      { additionalProperties: false },
    ),
    location: Type.Optional(Location),
    /** On close, how long to keep forwarding what is buffered before leaving it for the next start. */
    drainOnCloseMs: Millis(0, 600_000),
    shutdownTimeoutMs: Millis(100, 600_000),
    /** Device security (broker/security.ts): credentials, ACL, size and rate limits; TLS and WebSocket listeners are optional. */
    auth: AuthConfig,
    limits: LimitsConfig,
    tls: Type.Optional(TlsConfig),
    websocket: Type.Optional(WebSocketConfig),
  },
  { additionalProperties: false },
);

export type GatewayConfig = Static<typeof GatewayConfig> & {
  topics: KafkaTopicSet;
  /** OAUTHBEARER tokens from code (AWS MSK IAM, Entra, …), beside kafka.security.sasl.mechanism oauthbearer. */
  kafkaTokenProvider?: OAuthBearerTokenProvider;
};
export type GatewayOptions = DeepPartial<Omit<GatewayConfig, 'kafkaTokenProvider'>> & {
  gatewayId: string;
  buffer: { path: string };
  kafkaTokenProvider?: OAuthBearerTokenProvider;
};

/**
 * Node flags of every gateway process: a 4 MB young generation (what waits for a commit dies young, yet
 * resident memory stays small) and one V8 worker thread. The service unit, gateway.sh, `npm run gateway`
 * and the CLI's shebang spell them out; a test keeps them equal to this.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--v8-pool-size=1'];

export const GATEWAY_DEFAULTS: DeepPartial<GatewayConfig> = {
  mqtt: { host: '0.0.0.0', port: 1883 },
  // 5 ms: at a light load each commit (at least one 4 KiB page written) carries several messages.
  buffer: { durability: DURABILITY.powerLoss, commitWindowMs: 5, commitMaxRecords: 5000, maxBytes: 0, minFreeDiskBytes: 64 * 1024 * 1024, ttlMs: {} },
  kafka: { brokers: ['127.0.0.1:9092'], clientId: 'city-gateway', compression: 'none', requestTimeoutMs: 30_000 },
  forward: {
    batchSize: 2000,
    idleMs: 50,
    lingerMs: 20,
    minBackoffMs: 100,
    maxBackoffMs: 30_000,
    // Pacing keeps a replay from crowding out live records and the uplink; high enough to drain a
    // backlog at several times a neighbourhood's live rate.
    replayRecordsPerSec: 20_000,
    replayBytesPerSec: 0,
    replayOrder: 'live-first',
    expireEveryMs: 1000,
  },
  topics: kafkaTopicSet(),
  healthIntervalMs: 60_000,
  health: { sampleIntervalMs: 15_000, sampleTimeoutMs: 10_000 },
  clock: { syncFlag: TIMESYNCD_FLAG, checkIntervalMs: 10_000 },
  http: { enabled: false, host: '127.0.0.1', port: 9180 },
  drainOnCloseMs: 2_000,
  shutdownTimeoutMs: 15_000,
  auth: { ...SECURITY_DEFAULTS.auth },
  limits: { ...SECURITY_DEFAULTS.limits },
};

/** The gateway's options resolver (also layers the CLI's sources: defaults < file < environment < flags). */
export const gatewayOptions = defineOptions<typeof GatewayConfig, GatewayOptions>({
  schema: GatewayConfig,
  defaults: GATEWAY_DEFAULTS as DeepPartial<Static<typeof GatewayConfig>>,
  check: (config) =>
    config.forward.minBackoffMs > config.forward.maxBackoffMs
      ? '/forward/minBackoffMs must not exceed /forward/maxBackoffMs'
      : (checkSecurityConfig(config) ?? checkKafkaSecurity(config.kafka.security, '/kafka/security', hasTokenProvider)),
  error: (detail) => gatewayErrors.create('GW_OPTIONS_INVALID', detail),
});

// The check above runs inside resolve(); whether code handed in a token provider is known only there.
let hasTokenProvider = false;

export function resolveGatewayOptions(options: GatewayOptions): GatewayConfig {
  const { kafkaTokenProvider, ...data } = options;
  if (kafkaTokenProvider !== undefined && typeof kafkaTokenProvider !== 'function') {
    throw gatewayErrors.create('GW_OPTIONS_INVALID', '/kafkaTokenProvider must be a function returning the token');
  }
  hasTokenProvider = kafkaTokenProvider !== undefined;
  try {
    const config = gatewayOptions.resolve(data) as GatewayConfig;
    return kafkaTokenProvider === undefined ? config : { ...config, kafkaTokenProvider };
  } finally {
    hasTokenProvider = false;
  }
}

/**
 * The uplink's secrets, read now: called for every new Kafka connection, so a fixed password file or a
 * refreshed token is picked up without a restart. A secret that cannot be read is GW_KAFKA_SECRET.
 */
export function loadUplinkSecurity(config: GatewayConfig): UplinkSecurity | undefined {
  return loadKafkaSecurity(config.kafka.security, {
    ...(config.kafkaTokenProvider === undefined ? {} : { tokenProvider: config.kafkaTokenProvider }),
    fail: (detail, cause) => gatewayErrors.create('GW_KAFKA_SECRET', detail, cause),
  });
}

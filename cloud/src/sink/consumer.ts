// The sink's Kafka consumer: one kafkajs consumer group member reading the sink's topics batch by batch,
// with offsets committed only by the sink (no auto-commit, no auto-resolve of whole batches).
// Before any consumer fetches: kafkajs then decodes records with the sink's decoder (see the module).
import './kafkajs-records.ts';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import { loadKafkaSecurity, withTimeout, type KafkaSecurityConfig, type Log, type OAuthBearerTokenProvider } from '@city/protocol';
import { cloudErrors } from '../errors.ts';
import { registerKafkaCodecs } from './codecs.ts';
import type { CommittedOffset } from './events.ts';

export interface ConsumerSettings {
  brokers: string[];
  clientId: string;
  groupId: string;
  fromBeginning: boolean;
  sessionTimeoutMs: number;
  topics: readonly string[];
  /** TLS and SASL (the schema shared with the gateway); secrets are read when the consumer is created. */
  security?: KafkaSecurityConfig | undefined;
  tokenProvider?: OAuthBearerTokenProvider | undefined;
}

export interface ConsumerHandlers {
  batch(payload: EachBatchPayload): Promise<void>;
  /** The group was (re)joined with this assignment: topic → partitions. */
  joined(assignment: Record<string, number[]>): void;
  /** kafkajs's consumer crashed; with restart it will rejoin by itself. */
  crashed(error: Error, restart: boolean): void;
  /** The group coordinator is not ready yet (`condition`, e.g. still loading after a broker start): kafkajs restarts the consumer and tries again. */
  retrying(error: Error, condition: string): void;
}

/**
 * Kafka's answers (by kafkajs's names) while a group's coordinator is not ready: loading its state after
 * a broker start, or moving. Retriable by definition: a consumer kafkajs restarts for one has not crashed.
 */
const COORDINATOR_NOT_READY: ReadonlySet<string> = new Set(['GROUP_LOAD_IN_PROGRESS', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR_FOR_GROUP']);

/** The coordinator condition behind a kafkajs error (its cause chain), if that is what it is. */
export function coordinatorNotReady(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && COORDINATOR_NOT_READY.has(type)) return type;
  }
  return undefined;
}

export interface SinkConsumer {
  /** Connects, subscribes and starts the consumer loop; resolves once the group is joined. */
  start(): Promise<void>;
  /** Reads a topic-partition again from `offset` (next fetch); false when the consumer cannot seek now. */
  seek(topic: string, partition: number, offset: bigint): boolean;
  /** Stops fetching every topic but stays in the group (commits still need the membership). */
  pauseAll(): void;
  /** Commits offsets; rejects while kafkajs is restarting after a crash (its commit would be dropped). */
  commit(offsets: readonly CommittedOffset[]): Promise<void>;
  disconnect(): Promise<void>;
  /** Which of the sink's topics the cluster lacks. */
  missingTopics(): Promise<string[]>;
}

/** kafkajs's ssl and sasl for `settings`, secrets read now (CLD_KAFKA_SECRET names what cannot be read). */
export function kafkajsSecurity(settings: Pick<ConsumerSettings, 'security' | 'tokenProvider'>): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const loaded = loadKafkaSecurity(settings.security, {
    ...(settings.tokenProvider === undefined ? {} : { tokenProvider: settings.tokenProvider }),
    fail: (detail, cause) => cloudErrors.create('CLD_KAFKA_SECRET', detail, cause),
  });
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (loaded?.tls !== undefined) {
    const { ca, cert, key, serverName } = loaded.tls;
    out.ssl = { rejectUnauthorized: true, ...(ca === undefined ? {} : { ca: [ca] }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }), ...(serverName === undefined ? {} : { servername: serverName }) };
  }
  const sasl = loaded?.sasl;
  if (sasl !== undefined) {
    if (sasl.mechanism === 'oauthbearer') {
      const token = sasl.token;
      out.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token === undefined ? '' : await token() }) };
    } else {
      // kafkajs takes the password as a string; it stays inside the client's config, which is never logged.
      const options: SASLOptions = { mechanism: sasl.mechanism, username: sasl.username ?? '', password: sasl.password?.() ?? '' } as SASLOptions;
      out.sasl = options;
    }
  }
  return out;
}

// kafkajs against the real broker: SASL refusals are KafkaJSSASLAuthenticationError; TLS failures are
// connection errors carrying Node's TLS code (certificate checks) or OpenSSL's "wrong version number"
// (a TLS client at a plaintext port).
const TLS_CODES = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_|HOSTNAME_MISMATCH)/;

/** A start failure caused by TLS or SASL as CLD_KAFKA_TLS / CLD_KAFKA_AUTH naming the cause; other errors as they are. */
export function securityFailure(err: unknown, tls: boolean): Error | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const { name, code, message } = e as { name?: unknown; code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (name === 'KafkaJSSASLAuthenticationError') return cloudErrors.create('CLD_KAFKA_AUTH', `SASL authentication refused: ${text}`, err);
    if (typeof code === 'string' && TLS_CODES.test(code)) {
      const hint = /WRONG_VERSION|PACKET_LENGTH/.test(code) ? 'the listener does not speak TLS (plaintext port?)' : "the broker's certificate is not trusted (check security.tls.caFile)";
      return cloudErrors.create('CLD_KAFKA_TLS', `${hint}: ${code} ${text}`, err);
    }
    if (tls && /disconnected before secure TLS connection/.test(text)) return cloudErrors.create('CLD_KAFKA_TLS', `the listener does not speak TLS (plaintext port?): ${text}`, err);
    // A plaintext client at a TLS listener: the broker drops the connection at the first bytes.
    if (!tls && name === 'KafkaJSConnectionClosedError') {
      return cloudErrors.create('CLD_KAFKA_TLS', `the broker closed the connection at once: a TLS listener spoken to in plaintext? (set security.tls): ${text}`, err);
    }
  }
  return undefined;
}

export function createSinkConsumer(settings: ConsumerSettings, handlers: ConsumerHandlers, log: Log): SinkConsumer {
  registerKafkaCodecs();
  const kafka = new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    logLevel: logLevel.INFO,
    logCreator: () => (entry) => kafkaLog(log, entry),
    ...kafkajsSecurity(settings),
  });
  // Topics are created by deployment with their partition counts; the sink must not invent them.
  const consumer: Consumer = kafka.consumer({
    groupId: settings.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: Math.min(3_000, Math.floor(settings.sessionTimeoutMs / 3)),
    // kafkajs's stop() waits for the fetch in flight: a short long-poll keeps close() quick.
    maxWaitTimeInMs: 1_000,
  });
  // Between a crash and the next join kafkajs's runner is stopped, and its commitOffsets then returns
  // without committing anything: such a commit must fail (and be retried), not look done.
  let up = false;
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    up = true;
    handlers.joined(event.payload.memberAssignment);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    up = false;
    const { error, restart } = event.payload;
    const condition = restart ? coordinatorNotReady(error) : undefined;
    if (condition !== undefined) handlers.retrying(error, condition);
    else handlers.crashed(error, restart);
  });

  return {
    async start() {
      try {
        await consumer.connect();
      } catch (err) {
        throw securityFailure(err, settings.security?.tls !== undefined) ?? err;
      }
      await consumer.subscribe({ topics: [...settings.topics], fromBeginning: settings.fromBeginning });
      await consumer.run({
        autoCommit: false,
        // Offsets are resolved one by one as records are buffered, never for a whole batch at once.
        eachBatchAutoResolve: false,
        eachBatch: (payload) => handlers.batch(payload),
      });
    },
    seek(topic, partition, offset) {
      try {
        consumer.seek({ topic, partition, offset: offset.toString() });
        return true;
      } catch (err) {
        log('warn', 'seek failed', { topic, partition, error: err });
        return false;
      }
    },
    pauseAll() {
      try {
        consumer.pause(settings.topics.map((topic) => ({ topic })));
      } catch {
        // not running (start failed or already stopped): nothing to pause
      }
    },
    async commit(offsets) {
      if (!up) throw new Error('the Kafka consumer is restarting after a crash; committing later');
      await consumer.commitOffsets([...offsets]);
    },
    disconnect: () => consumer.disconnect(),
    async missingTopics() {
      const admin = kafka.admin();
      try {
        await withTimeout(admin.connect(), 10_000, 'connecting the Kafka admin client');
        const existing = new Set(await withTimeout(admin.listTopics(), 10_000, 'listing topics'));
        return settings.topics.filter((t) => !existing.has(t));
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

function kafkaLog(log: Log, entry: LogEntry): void {
  const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log;
  // Kafka no longer holds the records at the position the group reads from (retention deleted them before
  // they were read): kafkajs resumes at the oldest record kept, so what lay between never reaches the lake.
  if (message.startsWith('Offset out of range')) {
    log('warn', 'kafkajs: Kafka no longer holds the records at the sink position; reading resumes at the oldest record kept', { namespace: entry.namespace, ...fields });
    return;
  }
  // kafkajs logs every retried connection error as ERROR; the sink reports what outlasts retries itself.
  const level = entry.level === logLevel.ERROR ? 'info' : 'debug';
  log(level, `kafkajs: ${message}`, { namespace: entry.namespace, ...fields });
}

// Device security for the broker: who may connect (registry credentials), where a device may publish
// and subscribe (its own topic prefix), how big a publish may be and how fast devices may go.
//
// Decisions:
// - Unknown, revoked or forged credentials: CONNACK "bad user name or password" (4); a client id that is
//   not the username, or a will outside the device's prefix: "not authorized" (5).
// - Publish under another device's prefix: a forged topic is hostile. It is kept as a dead letter
//   (rule 'acl', payload truncated) so the attempt is visible downstream, acknowledged so it is not
//   resent, and the connection is closed. Subscriptions outside the prefix get SUBACK failure (128).
// - Payload over limits.maxPayloadBytes: dead letter (rule 'size') with only the first
//   limits.deadLetterPayloadBytes kept, acknowledged, connection kept. A packet whose MQTT header
//   announces more than limits.maxPacketBytes is cut off before it is buffered (frame-guard.ts).
// - Over the publish rate: the publish is refused without PUBACK and the connection closed, so the
//   device backs off and resends later; nothing acknowledged is dropped.
// - Over the connection rate: the connection is closed before CONNACK.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import type { Aedes, AuthenticateError, AuthErrorCode, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes';
import { MAX_PAYLOAD_BYTES, StringEnum, TokenBucket, mqttDevicePrefix, type Log, type Problem } from '@city/protocol';
import { gatewayErrors } from '../errors.ts';
import { guardFrames } from './frame-guard.ts';
import { openRegistry, type DeviceRegistry } from './registry.ts';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Rate = Type.Number({ minimum: 0, maximum: 1_000_000 });
const Burst = Type.Integer({ minimum: 1, maximum: 10_000_000 });

export const AuthConfig = Type.Object(
  {
    /** 'registry': only devices in the registry, with their secret; 'none': anyone (labs, tests). */
    mode: StringEnum(['none', 'registry'] as const),
    registryPath: Type.Optional(Type.String({ minLength: 1 })),
    /** How often revocations made by another process (the CLI) are picked up. */
    recheckMs: Type.Integer({ minimum: 10, maximum: 600_000 }),
  },
  { additionalProperties: false },
);

export const LimitsConfig = Type.Object(
  {
    maxPayloadBytes: Type.Integer({ minimum: 1, maximum: 268_435_455 }),
    /** How much of a refused (oversize or forged) payload the dead letter keeps. */
    deadLetterPayloadBytes: Type.Integer({ minimum: 0, maximum: MAX_PAYLOAD_BYTES }),
    /** Largest MQTT packet let through to the parser; 0 = no frame guard. */
    maxPacketBytes: Type.Integer({ minimum: 0, maximum: 268_435_460 }),
    /** Publishes per second per device (token bucket); 0 = unlimited. */
    publishRate: Rate,
    publishBurst: Burst,
    /** New connections per second, whole gateway; 0 = unlimited. */
    connectRate: Rate,
    connectBurst: Burst,
    /** New connections per second per source address; 0 = unlimited (phones behind one NAT share one). */
    connectRatePerAddress: Rate,
    connectBurstPerAddress: Burst,
  },
  { additionalProperties: false },
);

export const TlsConfig = Type.Object(
  { host: Type.Optional(Type.String({ minLength: 1 })), port: Port, certFile: Type.String({ minLength: 1 }), keyFile: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
);

export const WebSocketConfig = Type.Object(
  { host: Type.Optional(Type.String({ minLength: 1 })), port: Port, path: Type.String({ pattern: '^/' }) },
  { additionalProperties: false },
);

export type AuthConfig = Static<typeof AuthConfig>;
export type LimitsConfig = Static<typeof LimitsConfig>;
export type TlsConfig = Static<typeof TlsConfig>;
export type WebSocketConfig = Static<typeof WebSocketConfig>;

/** Library defaults keep a lab gateway open (tests, the local city); the CLI should merge SECURE_AUTH. */
export const SECURITY_DEFAULTS = {
  auth: { mode: 'none', recheckMs: 1000 },
  limits: {
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    deadLetterPayloadBytes: 1024,
    maxPacketBytes: 4 * MAX_PAYLOAD_BYTES,
    publishRate: 0,
    publishBurst: 1000,
    connectRate: 0,
    connectBurst: 1000,
    connectRatePerAddress: 0,
    connectBurstPerAddress: 100,
  },
} as const;

export const SECURE_AUTH = { mode: 'registry', registryPath: 'gateway-devices.db' } as const;

/** Cross-field rules the schema cannot say; returns a message naming the field, or undefined. */
export function checkSecurityConfig(config: { auth: AuthConfig; limits: LimitsConfig }): string | undefined {
  if (config.auth.mode === 'registry' && config.auth.registryPath === undefined) {
    return '/auth/registryPath is required when /auth/mode is "registry"';
  }
  if (config.limits.maxPacketBytes !== 0 && config.limits.maxPacketBytes < config.limits.maxPayloadBytes) {
    return '/limits/maxPacketBytes must be 0 or at least /limits/maxPayloadBytes';
  }
  return undefined;
}

export const REFUSAL_REASONS = [
  'unknown-device',
  'revoked-device',
  'bad-secret',
  'no-credentials',
  'client-id-mismatch',
  'will-topic',
  'acl-publish',
  'acl-subscribe',
  'oversize-payload',
  'oversize-packet',
  'publish-rate',
  'connect-rate',
  'connect-rate-address',
  'revoked-dropped',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];
export type RefusalCounts = Record<RefusalReason, number>;

export type PublishVerdict =
  | { action: 'accept' }
  | { action: 'refuse'; error: Error }
  | { action: 'deadletter'; problem: Problem; keepBytes: number; disconnect: boolean };

/** The verdict for nearly every publish: one object, not one per message. */
const ACCEPT: PublishVerdict = Object.freeze({ action: 'accept' });

function authError(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: returnCode as AuthErrorCode });
}

function remoteAddress(client: Client): string {
  const conn = client.conn as Partial<Socket> & { remoteAddressOfGuarded?: string };
  return conn.remoteAddressOfGuarded ?? conn.remoteAddress ?? client.req?.socket.remoteAddress ?? 'unknown';
}

export interface Security {
  readonly registry: DeviceRegistry | undefined;
  preConnect(client: Client, packet: ConnectPacket, callback: (error: Error | null, success: boolean) => void): void;
  authenticate(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void;
  authorizeSubscribe(client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void;
  /** Size, rate and topic-ownership checks for one publish, before anything parses the payload. */
  checkPublish(client: Client | null, packet: PublishPacket, payloadLength: number): PublishVerdict;
  /** Guards a raw connection in place with the frame guard (nothing to do when the guard is off). */
  guard<S extends Duplex>(stream: S, address?: string): Duplex;
  /** Starts watching the registry for revocations; drops revoked devices' live connections. */
  attach(broker: Aedes): void;
  /** Drops live connections of devices no longer active now (also run on a timer). */
  enforceRevocations(): number;
  refusals(): RefusalCounts;
  close(): void;
}

export function createSecurity(config: { auth: AuthConfig; limits: LimitsConfig }, log: Log): Security {
  const { auth, limits } = config;
  const registry = auth.mode === 'registry' ? openRegistry(auth.registryPath!) : undefined;
  const counts = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as RefusalCounts;
  const publishBuckets = new Map<string, TokenBucket>();
  const addressBuckets = new Map<string, TokenBucket>();
  const globalBucket = limits.connectRate > 0 ? new TokenBucket(limits.connectRate, limits.connectBurst) : undefined;
  let broker: Aedes | undefined;
  let timer: NodeJS.Timeout | undefined;
  let seenVersion = registry?.version() ?? 0;

  // A flood must not become a log flood on an SD card: one line per reason per second, carrying how
  // many were left out since the last one. The counters stay exact.
  const lastLogged = new Map<RefusalReason, { at: number; suppressed: number }>();
  const refuse = (reason: RefusalReason, fields: Record<string, unknown>): void => {
    counts[reason]++;
    const now = Date.now();
    const last = lastLogged.get(reason);
    if (last !== undefined && now - last.at < 1000) {
      last.suppressed++;
      return;
    }
    log('warn', `refused: ${reason}`, { reason, ...fields, ...(last?.suppressed ? { similarNotLogged: last.suppressed } : {}) });
    lastLogged.set(reason, { at: now, suppressed: 0 });
  };

  const ownsTopic = (deviceId: string, topic: string): boolean => topic.startsWith(mqttDevicePrefix(deviceId));

  const preConnect: Security['preConnect'] = (client, packet, callback) => {
    const address = remoteAddress(client);
    if (globalBucket !== undefined && !globalBucket.tryTake()) {
      refuse('connect-rate', { address, clientId: packet.clientId });
      callback(gatewayErrors.create('GW_RATE_LIMITED', 'new connections to this gateway'), false);
      return;
    }
    if (limits.connectRatePerAddress > 0) {
      let bucket = addressBuckets.get(address);
      if (bucket === undefined) addressBuckets.set(address, (bucket = new TokenBucket(limits.connectRatePerAddress, limits.connectBurstPerAddress)));
      if (!bucket.tryTake()) {
        refuse('connect-rate-address', { address, clientId: packet.clientId });
        callback(gatewayErrors.create('GW_RATE_LIMITED', `new connections from ${address}`), false);
        return;
      }
    }
    // Client id = username is enforced in authenticate, so the will must sit under the client id's prefix.
    const willTopic = packet.will?.topic;
    if (registry !== undefined && willTopic !== undefined && !ownsTopic(packet.clientId, willTopic)) {
      refuse('will-topic', { clientId: packet.clientId, topic: willTopic, address });
      callback(gatewayErrors.create('GW_NOT_AUTHORIZED', `last-will topic "${willTopic}" is outside ${mqttDevicePrefix(packet.clientId)}`), false);
      return;
    }
    callback(null, true);
  };

  const authenticate: Security['authenticate'] = (client, username, password, done) => {
    if (registry === undefined) {
      done(null, true);
      return;
    }
    const address = remoteAddress(client);
    if (username === undefined || password === undefined) {
      refuse('no-credentials', { clientId: client.id, address });
      done(authError(4, 'username (device id) and password (secret) are required'), false);
      return;
    }
    if (client.id !== username) {
      refuse('client-id-mismatch', { clientId: client.id, username, address });
      done(authError(5, `client id "${client.id}" must equal the username "${username}"`), false);
      return;
    }
    registry.verify(username, password).then(
      (result) => {
        if (result.ok) {
          done(null, true);
          return;
        }
        const reason = result.reason === 'unknown' ? 'unknown-device' : result.reason === 'revoked' ? 'revoked-device' : 'bad-secret';
        refuse(reason, { deviceId: username, address });
        done(authError(4, reason), false);
      },
      (err: Error) => {
        log('error', 'device registry lookup failed; refusing the connection', { deviceId: username, error: err.message });
        done(authError(4, 'registry unavailable'), false);
      },
    );
  };

  const authorizeSubscribe: Security['authorizeSubscribe'] = (client, sub, callback) => {
    if (registry !== undefined && !ownsTopic(client.id, sub.topic)) {
      refuse('acl-subscribe', { deviceId: client.id, topic: sub.topic });
      callback(null, null); // SUBACK failure (128) for this filter; the connection stays
      return;
    }
    callback(null, sub);
  };

  const checkPublish: Security['checkPublish'] = (client, packet, payloadLength) => {
    const clientId = client?.id;
    if (limits.publishRate > 0 && clientId !== undefined) {
      let bucket = publishBuckets.get(clientId);
      if (bucket === undefined) publishBuckets.set(clientId, (bucket = new TokenBucket(limits.publishRate, limits.publishBurst)));
      if (!bucket.tryTake()) {
        refuse('publish-rate', { clientId, topic: packet.topic });
        return { action: 'refuse', error: gatewayErrors.create('GW_RATE_LIMITED', `publishes from ${clientId}`) };
      }
    }
    if (registry !== undefined && clientId !== undefined && !ownsTopic(clientId, packet.topic)) {
      refuse('acl-publish', { deviceId: clientId, topic: packet.topic });
      return {
        action: 'deadletter',
        problem: { path: '', rule: 'acl', message: `device "${clientId}" may publish only under ${mqttDevicePrefix(clientId)}` },
        keepBytes: limits.deadLetterPayloadBytes,
        disconnect: true,
      };
    }
    if (payloadLength > limits.maxPayloadBytes) {
      refuse('oversize-payload', { clientId, topic: packet.topic, bytes: payloadLength });
      return {
        action: 'deadletter',
        problem: { path: '', rule: 'size', message: `payload is ${payloadLength} bytes, limit ${limits.maxPayloadBytes}` },
        keepBytes: limits.deadLetterPayloadBytes,
        disconnect: false,
      };
    }
    return ACCEPT;
  };

  const guard: Security['guard'] = (stream, address) => {
    if (limits.maxPacketBytes === 0) return stream;
    return guardFrames(stream, limits.maxPacketBytes, address, (announced) =>
      refuse('oversize-packet', { address, bytes: announced, limit: limits.maxPacketBytes }),
    );
  };

  const enforceRevocations = (): number => {
    if (registry === undefined || broker === undefined) return 0;
    let dropped = 0;
    const clients = (broker as Aedes & { clients: Record<string, Client> }).clients;
    for (const client of Object.values(clients)) {
      if (!registry.isActive(client.id)) {
        refuse('revoked-dropped', { deviceId: client.id });
        client.close();
        dropped++;
      }
    }
    return dropped;
  };

  const attach: Security['attach'] = (b) => {
    broker = b;
    timer = setInterval(() => {
      const now = Date.now();
      for (const [key, bucket] of publishBuckets) if (bucket.idle(now)) publishBuckets.delete(key);
      for (const [key, bucket] of addressBuckets) if (bucket.idle(now)) addressBuckets.delete(key);
      if (registry === undefined) return;
      try {
        const version = registry.version();
        if (version !== seenVersion) {
          seenVersion = version;
          enforceRevocations();
        }
      } catch (err) {
        log('warn', 'device registry check failed', { error: (err as Error).message });
      }
    }, auth.recheckMs);
    timer.unref();
  };

  return {
    registry,
    preConnect,
    authenticate,
    authorizeSubscribe,
    checkPublish,
    guard,
    attach,
    enforceRevocations,
    refusals: () => ({ ...counts }),
    close() {
      clearInterval(timer);
      broker = undefined;
      registry?.close();
    },
  };
}

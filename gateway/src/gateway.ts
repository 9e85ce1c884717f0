// The edge gateway: an MQTT broker whose every accepted publish is committed to the SQLite buffer
// before the device gets its PUBACK, and a forwarder that moves the buffer to Kafka.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { statfsSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { availableParallelism, freemem, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import {
  decodeEvent,
  describeProblems,
  encodePayload,
  parseMqttTopic,
  validateEvent,
  type CityEvent,
  type DeadLetter,
  type GatewayHealth,
  type Problem,
} from '@city/protocol';
import { openBuffer, type OutboxBuffer, type OutboxRecord } from './buffer.ts';
import { gatewayErrors } from './errors.ts';
import { createForwarder, type Forwarder } from './forwarder.ts';
import { resolveGatewayOptions, type GatewayConfig, type GatewayOptions } from './options.ts';

export type LogLevel = 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

export interface GatewayStats {
  /** Publishes received from devices. */
  received: number;
  /** Valid events committed to the buffer. */
  accepted: number;
  /** Invalid publishes committed to the buffer as dead letters. */
  deadLettered: number;
  /** Records Kafka acknowledged. */
  forwarded: number;
  /** Group commits that failed (their devices were not acknowledged). */
  commitFailures: number;
  bufferDepth: number;
  bufferBytes: number;
  oldestUnsentAgeMs: number | null;
  connectedDevices: number;
}

export interface GatewayEvents {
  listening: [{ port: number; host: string }];
  deadletter: [DeadLetter];
  forwarded: [{ records: number }];
  kafkaError: [Error];
  closed: [];
}

interface Pending {
  record: OutboxRecord;
  done: (err?: Error | null) => void;
}

export interface Gateway extends EventEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  start(): Promise<void>;
  close(): Promise<void>;
  /** Port the MQTT listener is bound to (after start). */
  port(): number;
  stats(): GatewayStats;
  /** Reports the gateway's health now, as a gateway_health event through the normal path. */
  reportHealth(): Promise<GatewayHealth>;
}

export const defaultLog: Log = (level, message, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
};

export function createGateway(options: GatewayOptions, log: Log = defaultLog): Gateway {
  const config = resolveGatewayOptions(options);
  const emitter = new EventEmitter<GatewayEvents>();
  const counters = { received: 0, accepted: 0, deadLettered: 0, commitFailures: 0 };

  let state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  let buffer: OutboxBuffer | undefined;
  let forwarder: Forwarder | undefined;
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let lastHealth = { at: Date.now(), accepted: 0, forwarded: 0 };

  // Group commit: everything that arrives within one window shares one transaction (and one fsync).
  let pending: Pending[] = [];
  let commitTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  const commit = (): void => {
    commitTimer = undefined;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    let failure: Error | undefined;
    try {
      if (buffer === undefined) throw gatewayErrors.create('GW_CLOSED');
      buffer.append(batch.map((p) => p.record));
    } catch (err) {
      failure = err as Error;
      counters.commitFailures++;
      log('error', 'buffer commit failed; devices are not acknowledged and will resend', {
        records: batch.length,
        error: failure.message,
      });
    }
    for (const p of batch) p.done(failure);
    if (failure === undefined) forwarder?.notify();
  };

  const enqueue = (record: OutboxRecord, done: (err?: Error | null) => void): void => {
    pending.push({ record, done });
    if (pending.length >= config.buffer.commitMaxRecords) {
      clearTimeout(commitTimer as NodeJS.Timeout);
      clearImmediate(commitTimer as NodeJS.Immediate);
      commit();
    } else if (commitTimer === undefined) {
      commitTimer = config.buffer.commitWindowMs === 0 ? setImmediate(commit) : setTimeout(commit, config.buffer.commitWindowMs);
    }
  };

  const deadLetter = (
    packet: PublishPacket,
    clientId: string,
    receivedAt: number,
    problems: Problem[],
    deviceId: string | undefined,
    kind: string | undefined,
  ): OutboxRecord => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const letter: DeadLetter = {
      stage: 'gateway',
      reason: describeProblems(problems),
      problems,
      ...encodePayload(payload),
      mqttTopic: packet.topic,
      clientId,
      gatewayId: config.gatewayId,
      receivedAt,
    };
    if (deviceId !== undefined) letter.deviceId = deviceId;
    if (kind !== undefined) letter.kind = kind;
    const eventId = peekEventId(payload);
    if (eventId !== undefined) letter.eventId = eventId;
    counters.deadLettered++;
    emitter.emit('deadletter', letter);
    return {
      topic: config.topics.deadletter,
      key: deviceId ?? clientId,
      value: Buffer.from(JSON.stringify(letter)),
      receivedAt,
      eventId: null,
    };
  };

  const eventRecord = (event: CityEvent, payload: Buffer, receivedAt: number): OutboxRecord => {
    counters.accepted++;
    return { topic: config.topics.events[event.kind], key: event.deviceId, value: payload, receivedAt, eventId: event.eventId };
  };

  const authorizePublish = (client: Client | null, packet: PublishPacket, callback: (err?: Error | null) => void) => {
    if (state !== 'running') {
      callback(gatewayErrors.create('GW_CLOSED', 'not accepting publishes'));
      return;
    }
    counters.received++;
    const receivedAt = Date.now();
    const clientId = client?.id ?? '';
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const topic = parseMqttTopic(packet.topic);
    let record: OutboxRecord;
    if (!topic.ok) {
      record = deadLetter(packet, clientId, receivedAt, [{ path: '', rule: 'topic', message: topic.reason }], topic.deviceId, undefined);
    } else {
      const result = decodeEvent(payload, { kind: topic.kind, deviceId: topic.deviceId });
      record = result.ok
        ? eventRecord(result.value, payload, receivedAt)
        : deadLetter(packet, clientId, receivedAt, result.problems, topic.deviceId, topic.kind);
    }
    // An invalid publish is acknowledged once its dead letter is durable: resending it cannot help.
    enqueue(record, callback);
  };

  const bufferStats = () => {
    const s = buffer?.stats() ?? { depth: 0, bytes: 0, oldestReceivedAt: null };
    return { ...s, oldestUnsentAgeMs: s.oldestReceivedAt === null ? null : Math.max(0, Date.now() - s.oldestReceivedAt) };
  };

  const stats = (): GatewayStats => {
    const b = bufferStats();
    return {
      ...counters,
      forwarded: forwarder?.forwardedTotal() ?? 0,
      bufferDepth: b.depth,
      bufferBytes: b.bytes,
      oldestUnsentAgeMs: b.oldestUnsentAgeMs,
      connectedDevices: broker?.connectedClients ?? 0,
    };
  };

  const healthEvent = (): GatewayHealth => {
    const now = Date.now();
    const s = stats();
    const seconds = Math.max(0.001, (now - lastHealth.at) / 1000);
    let diskFree = 0;
    try {
      const fs = statfsSync(dirname(config.buffer.path));
      diskFree = fs.bavail * fs.bsize;
    } catch {
      // the health report still goes out; disk free reads 0
    }
    const event: GatewayHealth = {
      kind: 'gateway_health',
      // Stored once and resent as stored, so a random id stays stable across retries and replays.
      eventId: randomUUID(),
      deviceId: config.gatewayId,
      seq: buffer!.nextSequence('health'),
      dateObserved: new Date(now).toISOString(),
      cpuLoad: Math.min(1, loadavg()[0]! / availableParallelism()),
      memoryUsed: totalmem() - freemem(),
      memoryTotal: totalmem(),
      diskFree,
      uptime: process.uptime(),
      bufferDepth: s.bufferDepth,
      bufferBytes: s.bufferBytes,
      connectedDevices: s.connectedDevices,
      inRate: (s.accepted - lastHealth.accepted) / seconds,
      outRate: Math.max(0, s.forwarded - lastHealth.forwarded) / seconds,
    };
    if (s.oldestUnsentAgeMs !== null) event.oldestUnsentAge = s.oldestUnsentAgeMs / 1000;
    if (config.location !== undefined) event.location = config.location;
    lastHealth = { at: now, accepted: s.accepted, forwarded: s.forwarded };
    return event;
  };

  const reportHealth = (): Promise<GatewayHealth> =>
    new Promise((resolve, reject) => {
      if (state !== 'running') {
        reject(gatewayErrors.create('GW_NOT_STARTED'));
        return;
      }
      const event = healthEvent();
      const checked = validateEvent(event);
      if (!checked.ok) {
        reject(gatewayErrors.create('GW_BUFFER_WRITE', `health event invalid: ${describeProblems(checked.problems)}`));
        return;
      }
      enqueue(eventRecord(event, Buffer.from(JSON.stringify(event)), Date.now()), (err) =>
        err ? reject(err) : resolve(event),
      );
    });

  const start = async (): Promise<void> => {
    if (state !== 'new') throw gatewayErrors.create(state === 'closed' ? 'GW_CLOSED' : 'GW_NOT_STARTED', 'start() called twice');
    state = 'starting';
    buffer = openBuffer(config.buffer.path, config.buffer.durability);
    const backlog = buffer.stats();
    if (backlog.depth > 0) log('info', 'buffer holds records from before; forwarding them first', { records: backlog.depth });

    forwarder = createForwarder(buffer, {
      brokers: config.kafka.brokers,
      clientId: config.kafka.clientId,
      gatewayId: config.gatewayId,
      compression: config.kafka.compression,
      requestTimeoutMs: config.kafka.requestTimeoutMs,
      ...config.forward,
    });
    let kafkaDown = false;
    forwarder.on('error', (err) => {
      if (!kafkaDown) log('warn', 'Kafka unavailable; buffering and retrying with backoff', { error: err.message });
      kafkaDown = true;
      emitter.emit('kafkaError', err);
    });
    forwarder.on('forwarded', ({ records }) => {
      if (kafkaDown) log('info', 'Kafka reachable again; forwarding the backlog');
      kafkaDown = false;
      emitter.emit('forwarded', { records });
    });

    broker = await Aedes.createBroker({
      id: config.gatewayId,
      authorizePublish,
      drainTimeout: 10_000,
      maxTopicLevels: 8,
      heartbeatInterval: 60_000,
    });
    broker.on('clientError', (client, err) => log('warn', 'client error', { clientId: client.id, error: err.message }));
    server = createServer(broker.handle);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(config.mqtt.port, config.mqtt.host, () => {
        server!.off('error', reject);
        resolve();
      });
    });
    state = 'running';
    forwarder.start();
    if (config.healthIntervalMs > 0) {
      healthTimer = setInterval(() => {
        reportHealth().catch((err: Error) => log('warn', 'health report failed', { error: err.message }));
      }, config.healthIntervalMs);
      healthTimer.unref();
    }
    const address = server.address() as AddressInfo;
    log('info', 'gateway listening', { gatewayId: config.gatewayId, mqtt: `${address.address}:${address.port}`, buffer: config.buffer.path });
    emitter.emit('listening', { port: address.port, host: address.address });
  };

  // Shutdown order: stop intake → commit what was received → forward what we can → close Kafka and the buffer.
  const shutdown = async (): Promise<void> => {
    state = 'closing';
    clearInterval(healthTimer);
    const serverClosed = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : Promise.resolve();
    if (broker) await new Promise<void>((resolve) => broker!.close(() => resolve()));
    await serverClosed;
    clearTimeout(commitTimer as NodeJS.Timeout);
    clearImmediate(commitTimer as NodeJS.Immediate);
    commit();
    if (forwarder) {
      if (config.drainOnCloseMs > 0) {
        await forwarder.drain(config.drainOnCloseMs).catch(() => {
          log('info', 'records left in the buffer for the next start', { records: buffer?.stats().depth });
        });
      }
      await forwarder.close();
    }
    buffer?.close();
    state = 'closed';
    emitter.emit('closed');
  };

  const close = (): Promise<void> => {
    if (closing) return closing;
    if (state === 'new') {
      state = 'closed';
      return (closing = Promise.resolve());
    }
    closing = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(gatewayErrors.create('GW_SHUTDOWN_TIMEOUT', `${config.shutdownTimeoutMs} ms`)),
        config.shutdownTimeoutMs,
      );
      timer.unref();
      shutdown().then(resolve, reject).finally(() => clearTimeout(timer));
    });
    return closing;
  };

  return Object.assign(emitter, {
    config,
    start,
    close,
    port: () => (server?.address() as AddressInfo | null)?.port ?? 0,
    stats,
    reportHealth,
  });
}

function peekEventId(payload: Buffer): string | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    const id = typeof value === 'object' && value !== null ? (value as { eventId?: unknown }).eventId : undefined;
    return typeof id === 'string' && id.length <= 128 ? id : undefined;
  } catch {
    return undefined;
  }
}

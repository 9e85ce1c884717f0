// The edge gateway: an MQTT broker whose every accepted publish is committed to the SQLite buffer
// before the device gets its PUBACK, and a forwarder that moves the buffer to Kafka.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import {
  decodeEvent,
  describeProblems,
  encodePayload,
  parseMqttTopic,
  validateEvent,
  type CityEvent,
  type DeadLetter,
  type GatewayHealth,
  type MqttTopicParse,
  type Problem,
} from '@city/protocol';
import { compressSegment, openBuffer, type LaneCounts, type OutboxBuffer, type OutboxRecord } from './buffer.ts';
import { gatewayErrors } from './errors.ts';
import { createForwarder, type Forwarder } from './forwarder.ts';
import { buildHealthEvent, createHealthMonitor, createRateMeter, type HealthMonitor, type StatusSnapshot } from './health.ts';
import { createStatusServer, type StatusServer } from './http.ts';
import { resolveGatewayOptions, type GatewayConfig, type GatewayOptions } from './options.ts';
import type { DeviceRegistry } from './registry.ts';
import { REFUSAL_REASONS, createSecurity, type RefusalCounts, type Security } from './security.ts';

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
  /** Group commits written (each one transaction; in power-loss mode flushed before its PUBACKs). */
  groupCommits: number;
  bufferDepth: number;
  bufferBytes: number;
  /** Of the forwarded records, those sent as backlog (header `replayed: 1`). */
  replayed: number;
  /** Records evicted to make room / dropped past their time-to-live / refused (not acknowledged), by lane. */
  evicted: LaneCounts;
  expired: LaneCounts;
  refused: LaneCounts;
  /** Buffer files found corrupt at start and moved aside (see the bufferCorrupt event for the path). */
  bufferCorrupt: number;
  oldestUnsentAgeMs: number | null;
  connectedDevices: number;
  /** Connections, publishes and subscriptions refused by device security, per reason. */
  denied: RefusalCounts;
}

export interface GatewayEvents {
  listening: [{ port: number; host: string }];
  deadletter: [DeadLetter];
  forwarded: [{ records: number }];
  kafkaError: [Error];
  /** The buffer file failed its integrity check at start; the error names where it was moved. */
  bufferCorrupt: [Error];
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
  /** Ports of every listener (after start); tls and websocket only when configured. */
  ports(): { mqtt: number; tls?: number; websocket?: number };
  /** The device registry when auth.mode is 'registry' (after start). */
  devices(): DeviceRegistry | undefined;
  /** Revokes a device and drops its live connection now; false if it is unknown. */
  revokeDevice(deviceId: string): boolean;
  stats(): GatewayStats;
  /** Reports the gateway's health now, as a gateway_health event through the normal path. */
  reportHealth(): Promise<GatewayHealth>;
  /** What /healthz and /metrics serve: counters, buffer, cached system sample (never waits on sampling). */
  status(): StatusSnapshot;
  /** Port of the status and metrics listener (0 when disabled or not started). */
  httpPort(): number;
}

export const defaultLog: Log = (level, message, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
};

export function createGateway(options: GatewayOptions, log: Log = defaultLog): Gateway {
  const config = resolveGatewayOptions(options);
  const emitter = new EventEmitter<GatewayEvents>();
  const counters = { received: 0, accepted: 0, deadLettered: 0, commitFailures: 0, groupCommits: 0, bufferCorrupt: 0 };

  let state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';
  let buffer: OutboxBuffer | undefined;
  let forwarder: Forwarder | undefined;
  let broker: Aedes | undefined;
  let server: Server | undefined;
  let tlsServer: TlsServer | undefined;
  let httpServer: HttpServer | undefined;
  let wsServer: WebSocketServer | undefined;
  let security: Security | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let statusServer: StatusServer | undefined;
  // /healthz: the buffer is writable until a group commit fails, and again once one succeeds.
  let bufferError: string | undefined;
  let kafka: StatusSnapshot['kafka'] = 'unknown';
  emitter.on('kafkaError', () => (kafka = 'unreachable'));
  emitter.on('forwarded', () => (kafka = 'reachable'));
  // Health events measure rates between reports; /metrics between system samples (scrape-independent).
  const eventRates = { in: createRateMeter(), out: createRateMeter() };
  const sampleRates = { in: createRateMeter(), out: createRateMeter(), last: { in: 0, out: 0 } };
  const monitor: HealthMonitor = createHealthMonitor({
    bufferPath: config.buffer.path,
    ...config.health,
    warn: (message, fields) => log('warn', message, fields),
    onSample: (sample) => {
      if (state !== 'running') return; // a sample finishing during close must not read a closed buffer
      const s = stats();
      sampleRates.last = { in: sampleRates.in.next(s.accepted, sample.at), out: sampleRates.out.next(s.forwarded, sample.at) };
    },
  });

  // Group commit: everything that arrives within one window shares one transaction (and one fsync).
  let pending: Pending[] = [];
  let commitTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  // Each commit's records are packed and compressed on the thread pool, then stored in the order
  // the commits were cut (compressions may finish in any order).
  interface Cut {
    batch: Pending[];
    records: OutboxRecord[];
    segment: Buffer | undefined;
    ready: boolean;
  }
  const compressing: Cut[] = [];
  let storedWaiters: (() => void)[] = [];
  const commit = (): void => {
    commitTimer = undefined;
    if (pending.length === 0) return;
    const cut: Cut = { batch: pending, records: pending.map((p) => p.record), segment: undefined, ready: false };
    pending = [];
    compressing.push(cut);
    compressSegment(cut.records, (err, segment) => {
      cut.ready = true;
      // Without a segment (packing failed) append packs the records itself, and reports what is wrong.
      if (err === null) cut.segment = segment;
      while (compressing[0]?.ready) store(compressing.shift()!);
      if (compressing.length > 0) return;
      const waiters = storedWaiters;
      storedWaiters = [];
      for (const resolve of waiters) resolve();
    });
  };
  /** Resolves once every commit cut so far is stored. */
  const allStored = (): Promise<void> =>
    compressing.length === 0 ? Promise.resolve() : new Promise((resolve) => storedWaiters.push(resolve));

  const store = ({ batch, records, segment }: Cut): void => {
    let failure: Error | undefined;
    let refused: readonly number[] = [];
    try {
      if (buffer === undefined) throw gatewayErrors.create('GW_CLOSED');
      const result = buffer.append(records, segment);
      counters.groupCommits++;
      bufferError = undefined;
      refused = result.refused;
      if (refused.length > 0) bufferError = `full: ${refused.length} records refused, nothing evictable`;
      if (result.evicted > 0) log('warn', 'buffer full; evicted the oldest records of the lowest lane', { evicted: result.evicted });
    } catch (err) {
      failure = err as Error;
      bufferError = failure.message;
      counters.commitFailures++;
      log('error', 'buffer commit failed; devices are not acknowledged and will resend', {
        records: batch.length,
        error: failure.message,
      });
    }
    if (refused.length > 0) {
      // Not stored, so not acknowledged: aedes drops the connection and the device resends later.
      const full = gatewayErrors.create('GW_BUFFER_FULL', `${refused.length} records refused`);
      log('error', 'buffer full and nothing evictable; refusing publishes', { records: refused.length });
      for (const i of refused) batch[i]!.done(full);
    }
    const skip = new Set(refused);
    const stored = skip.size === 0 ? batch : batch.filter((_, i) => !skip.has(i));
    if (failure !== undefined || buffer === undefined) {
      for (const p of stored) p.done(failure);
      return;
    }
    forwarder?.notify();
    // Acknowledged once durable: in power-loss mode after a flush of the WAL that started after this commit.
    buffer.sync((err) => {
      if (err !== null) {
        counters.commitFailures++;
        bufferError = err.message;
        log('error', 'buffer flush failed; devices are not acknowledged and will resend', { records: stored.length, error: err.message });
      }
      for (const p of stored) p.done(err);
    });
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
      lane: 'deadletter',
    };
  };

  const eventRecord = (event: CityEvent, payload: Buffer, receivedAt: number): OutboxRecord => {
    counters.accepted++;
    return {
      topic: config.topics.events[event.kind],
      key: event.deviceId,
      value: payload,
      receivedAt,
      eventId: event.eventId,
      lane: event.kind === 'emergency' ? 'emergency' : 'telemetry',
    };
  };

  // Devices publish to the same few topics over and over: parse each once (bounded, dropped when full).
  const topics = new Map<string, MqttTopicParse>();
  const parseTopic = (topic: string): MqttTopicParse => {
    let parsed = topics.get(topic);
    if (parsed === undefined) {
      if (topics.size >= 20_000) topics.clear();
      topics.set(topic, (parsed = parseMqttTopic(topic)));
    }
    return parsed;
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
    // Rate, size and topic ownership are checked before anything parses the payload (security.ts).
    const verdict = security!.checkPublish(client, packet, payload.length);
    if (verdict.action === 'refuse') {
      callback(verdict.error);
      return;
    }
    if (verdict.action === 'deadletter') {
      const kept = { ...packet, payload: payload.subarray(0, verdict.keepBytes) };
      const named = parseTopic(packet.topic);
      enqueue(deadLetter(kept, clientId, receivedAt, [verdict.problem], named.deviceId, named.ok ? named.kind : undefined), (err) => {
        callback(err);
        if (!err && verdict.disconnect && client !== null) setImmediate(() => client.close());
      });
      return;
    }
    const topic = parseTopic(packet.topic);
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
      replayed: forwarder?.replayedTotal() ?? 0,
      bufferDepth: b.depth,
      bufferBytes: b.bytes,
      ...(buffer?.counters() ?? { evicted: zeroLanes(), expired: zeroLanes(), refused: zeroLanes() }),
      oldestUnsentAgeMs: b.oldestUnsentAgeMs,
      connectedDevices: broker?.connectedClients ?? 0,
      denied: security?.refusals() ?? (Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as RefusalCounts),
    };
  };

  const healthEvent = async (): Promise<GatewayHealth> => {
    const sample = await monitor.current();
    const now = Date.now();
    const s = stats();
    return buildHealthEvent({
      gatewayId: config.gatewayId,
      seq: buffer!.nextSequence('health'),
      sample,
      bufferDepth: s.bufferDepth,
      bufferBytes: s.bufferBytes,
      oldestUnsentAgeMs: s.oldestUnsentAgeMs,
      connectedDevices: s.connectedDevices,
      inRate: eventRates.in.next(s.accepted, now),
      outRate: eventRates.out.next(s.forwarded, now),
      totals: {
        evicted: sumLanes(s.evicted),
        expired: sumLanes(s.expired),
        refused: sumLanes(s.refused),
        replayed: s.replayed,
        bufferCorrupt: s.bufferCorrupt,
      },
      ...(config.location === undefined ? {} : { location: config.location }),
      now,
    });
  };

  const status = (): StatusSnapshot => {
    const snapshot: StatusSnapshot = {
      gatewayId: config.gatewayId,
      state,
      bufferWritable: bufferError === undefined,
      kafka,
      stats: { ...stats() } as Record<string, unknown>,
      sampleFailures: monitor.failures(),
      inRate: sampleRates.last.in,
      outRate: sampleRates.last.out,
      uptime: process.uptime(),
    };
    if (bufferError !== undefined) snapshot.bufferError = bufferError;
    const sample = monitor.latest();
    if (sample) snapshot.sample = sample;
    return snapshot;
  };

  const reportHealth = async (): Promise<GatewayHealth> => {
    if (state !== 'running') throw gatewayErrors.create('GW_NOT_STARTED');
    // The system sample is cached; only the very first report waits for one.
    const event = await healthEvent();
    if (state !== 'running') throw gatewayErrors.create('GW_CLOSED', 'closed while sampling health');
    const checked = validateEvent(event);
    if (!checked.ok) throw gatewayErrors.create('GW_BUFFER_WRITE', `health event invalid: ${describeProblems(checked.problems)}`);
    return new Promise((resolve, reject) => {
      enqueue(eventRecord(event, Buffer.from(JSON.stringify(event)), Date.now()), (err) => (err ? reject(err) : resolve(event)));
    });
  };

  const start = async (): Promise<void> => {
    if (state !== 'new') throw gatewayErrors.create(state === 'closed' ? 'GW_CLOSED' : 'GW_NOT_STARTED', 'start() called twice');
    state = 'starting';
    buffer = openBuffer(config.buffer.path, config.buffer.durability, config.buffer);
    if (buffer.recovered !== null) {
      counters.bufferCorrupt++;
      const err = gatewayErrors.create('GW_BUFFER_CORRUPT', `moved to ${buffer.recovered.movedTo}: ${buffer.recovered.reason}`);
      log('error', 'buffer file corrupt; moved aside and started a fresh buffer', {
        movedTo: buffer.recovered.movedTo,
        reason: buffer.recovered.reason,
      });
      emitter.emit('bufferCorrupt', err);
    }
    const backlog = buffer.stats();
    if (backlog.depth > 0) log('info', 'buffer holds records from before; replaying them paced and marked replayed', { records: backlog.depth });

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
    forwarder.on('expired', ({ records }) => log('warn', 'records outlived their time-to-live; dropped', { records }));
    forwarder.on('forwarded', ({ records }) => {
      if (kafkaDown) log('info', 'Kafka reachable again; forwarding the backlog');
      kafkaDown = false;
      emitter.emit('forwarded', { records });
    });

    security = createSecurity(config, log);
    const guarded = security;
    // Read before any listener opens, so a bad path fails start() with nothing listening.
    let tlsFiles: { cert: Buffer; key: Buffer } | undefined;
    if (config.tls !== undefined) {
      try {
        tlsFiles = { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
      } catch (err) {
        throw gatewayErrors.create('GW_TLS_FILES', (err as Error).message, err);
      }
    }
    broker = await Aedes.createBroker({
      id: config.gatewayId,
      preConnect: guarded.preConnect,
      authenticate: guarded.authenticate,
      authorizeSubscribe: guarded.authorizeSubscribe,
      authorizePublish,
      drainTimeout: 10_000,
      maxTopicLevels: 8,
      heartbeatInterval: 60_000,
    });
    broker.on('clientError', (client, err) => log('warn', 'client error', { clientId: client.id, error: err.message }));
    const handle = broker.handle;
    server = createServer((socket) => handle(guarded.guard(socket)));
    const listen = (s: Server | HttpServer, port: number, host: string) =>
      new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, host, () => {
          s.off('error', reject);
          resolve();
        });
      });
    await listen(server, config.mqtt.port, config.mqtt.host);
    if (config.tls !== undefined && tlsFiles !== undefined) {
      tlsServer = createTlsServer(tlsFiles, (socket) => handle(guarded.guard(socket)));
      tlsServer.on('tlsClientError', (err) => log('warn', 'TLS handshake failed', { error: err.message }));
      await listen(tlsServer, config.tls.port, config.tls.host ?? config.mqtt.host);
    }
    if (config.websocket !== undefined) {
      httpServer = createHttpServer();
      const maxPayload = config.limits.maxPacketBytes === 0 ? undefined : config.limits.maxPacketBytes;
      wsServer = new WebSocketServer({ server: httpServer, path: config.websocket.path, ...(maxPayload === undefined ? {} : { maxPayload }) });
      wsServer.on('connection', (ws, req) => {
        const stream = createWebSocketStream(ws);
        stream.on('error', () => ws.terminate());
        handle(guarded.guard(stream, req.socket.remoteAddress), req);
      });
      await listen(httpServer, config.websocket.port, config.websocket.host ?? config.mqtt.host);
    }
    security.attach(broker);
    const listeners = {
      ...(tlsServer ? { tls: (tlsServer.address() as AddressInfo).port } : {}),
      ...(httpServer ? { websocket: (httpServer.address() as AddressInfo).port } : {}),
    };
    log(config.auth.mode === 'none' ? 'warn' : 'info', config.auth.mode === 'none' ? 'auth.mode is "none": any client may connect' : 'device auth on', {
      auth: config.auth.mode,
      ...listeners,
    });
    if (config.http.enabled) {
      statusServer = createStatusServer({ host: config.http.host, port: config.http.port, snapshot: status });
      const http = await statusServer.start();
      log('info', 'status and metrics listening', { http: `${http.host}:${http.port}`, paths: ['/healthz', '/metrics'] });
    }
    state = 'running';
    forwarder.start();
    monitor.start();
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
    monitor.close();
    const serverClosed = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : Promise.resolve();
    const tlsClosed = tlsServer ? new Promise<void>((resolve) => tlsServer!.close(() => resolve())) : Promise.resolve();
    for (const ws of wsServer?.clients ?? []) ws.terminate();
    wsServer?.close();
    const httpClosed = httpServer ? new Promise<void>((resolve) => httpServer!.close(() => resolve())) : Promise.resolve();
    if (broker) await new Promise<void>((resolve) => broker!.close(() => resolve()));
    await Promise.all([serverClosed, tlsClosed, httpClosed]);
    security?.close();
    clearTimeout(commitTimer as NodeJS.Timeout);
    clearImmediate(commitTimer as NodeJS.Immediate);
    commit();
    await allStored();
    if (forwarder) {
      if (config.drainOnCloseMs > 0) {
        await forwarder.drain(config.drainOnCloseMs).catch(() => {
          log('info', 'records left in the buffer for the next start', { records: buffer?.stats().depth });
        });
      }
      await forwarder.close();
    }
    // Kept up until here so /healthz answers 503 "closing" while the backlog drains.
    await statusServer?.close();
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
    ports: () => {
      const portOf = (s: Server | HttpServer | undefined) => (s?.address() as AddressInfo | null | undefined)?.port;
      const tls = portOf(tlsServer);
      const websocket = portOf(httpServer);
      return { mqtt: portOf(server) ?? 0, ...(tls === undefined ? {} : { tls }), ...(websocket === undefined ? {} : { websocket }) };
    },
    devices: () => security?.registry,
    revokeDevice: (deviceId: string) => {
      const registry = security?.registry;
      if (registry === undefined) throw gatewayErrors.create('GW_NOT_STARTED', 'no device registry (auth.mode is not "registry" or the gateway is not started)');
      const known = registry.revoke(deviceId);
      security!.enforceRevocations();
      return known;
    },
    stats,
    reportHealth,
    status,
    httpPort: () => statusServer?.port() ?? 0,
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

function zeroLanes(): LaneCounts {
  return { emergency: 0, deadletter: 0, telemetry: 0 };
}

function sumLanes(counts: LaneCounts): number {
  return Object.values(counts).reduce((a: number, b) => a + (b ?? 0), 0);
}

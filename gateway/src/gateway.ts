// The edge gateway: an MQTT broker whose every accepted publish is committed to the SQLite buffer
// before the device gets its PUBACK, and a forwarder that moves the buffer to Kafka. This file only
// composes the parts (broker/, buffer/, forward/, health/) and gives them one lifecycle.
//
// Shutdown order (closers run in reverse order of registration): stop intake (at once: publishes are
// refused as soon as close() is called) → health timers → listeners and aedes → device security →
// commit what was received → forward for up to drainOnCloseMs → close Kafka → the status listener
// (it answers 503 "closing" while the backlog drains) → the buffer.
import { EventEmitter } from 'node:events';
import { createLifecycle, jsonLog, lifecycleErrorsFrom, type DeadLetter, type GatewayHealth, type Log } from '@city/protocol';
import {
  REFUSAL_REASONS,
  createIntake,
  createSecurity,
  openBroker,
  type Broker,
  type BrokerPorts,
  type DeviceRegistry,
  type Intake,
  type RefusalCounts,
  type Security,
} from './broker/index.ts';
import { createGroupCommit, openBuffer, zeroLanes, type GroupCommit, type LaneCounts, type OutboxBuffer } from './buffer/index.ts';
import { gatewayErrors } from './errors.ts';
import { createForwarder, type Forwarder, type KafkaState } from './forward/index.ts';
import { createClockWatch, createHealthReporter, createStatusServer, type StatusServer, type StatusSnapshot } from './health/index.ts';
import { loadUplinkSecurity, resolveGatewayOptions, type GatewayConfig, type GatewayOptions } from './options.ts';

export interface GatewayStats {
  /** Publishes received from devices. */
  received: number;
  /** Valid events committed to the buffer. */
  accepted: number;
  /** Invalid publishes committed to the buffer as dead letters. */
  deadLettered: number;
  /** Group commits that failed (their devices were not acknowledged). */
  commitFailures: number;
  /** Group commits written (each one transaction; in power-loss mode flushed before its PUBACKs). */
  groupCommits: number;
  /** Buffer files found corrupt at start and moved aside (see the bufferCorrupt event for the path). */
  bufferCorrupt: number;
  /** Records Kafka acknowledged. */
  forwarded: number;
  /** Of the forwarded records, those sent as backlog (header `replayed: 1`). */
  replayed: number;
  bufferDepth: number;
  bufferBytes: number;
  /** Records evicted to make room / dropped past their time-to-live / refused (not acknowledged), by lane. */
  evicted: LaneCounts;
  expired: LaneCounts;
  refused: LaneCounts;
  /** Records held now, by lane. */
  depth: LaneCounts;
  oldestUnsentAgeMs: number | null;
  connectedDevices: number;
  /** Connections, publishes and subscriptions refused by device security, per reason. */
  denied: RefusalCounts;
}

export interface GatewayEvents {
  listening: [{ port: number; host: string }];
  deadletter: [DeadLetter];
  forwarded: [{ records: number }];
  /** A batch Kafka did not take (GW_KAFKA_SEND, or GW_KAFKA_TOPIC_MISSING naming the topics). */
  kafkaError: [Error];
  /** The buffer file failed its integrity check at start; the error names where it was moved. */
  bufferCorrupt: [Error];
  closed: [];
}

export interface Gateway extends EventEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  /** Opens every part; a second call is GW_ALREADY_STARTED, a failed one closes what it opened. */
  start(): Promise<void>;
  /** Closes once, in order, within shutdownTimeoutMs (the same promise for every caller). */
  close(): Promise<void>;
  /** Port the MQTT listener is bound to (after start). */
  port(): number;
  /** Ports of every listener (after start); tls and websocket only when configured. */
  ports(): BrokerPorts;
  /** The device registry when auth.mode is 'registry' (after start). */
  devices(): DeviceRegistry | undefined;
  /** Revokes a device and drops its live connection now; false if it is unknown. */
  revokeDevice(deviceId: string): boolean;
  stats(): GatewayStats;
  /** Reports the gateway's health now, as a gateway_health event through the normal path. */
  reportHealth(): Promise<GatewayHealth>;
  /** What /healthz and /metrics serve: counters, buffer, Kafka, cached system sample (never waits on sampling). */
  status(): StatusSnapshot;
  /** Port of the status and metrics listener (0 when disabled or not started). */
  httpPort(): number;
}

const lifecycleErrors = lifecycleErrorsFrom(gatewayErrors, { alreadyStarted: 'GW_ALREADY_STARTED', closed: 'GW_CLOSED', timeout: 'GW_SHUTDOWN_TIMEOUT' });

/** The parts of a started gateway, each set once it is open. */
interface Parts {
  buffer?: OutboxBuffer;
  forwarder?: Forwarder;
  commits?: GroupCommit;
  security?: Security;
  intake?: Intake;
  broker?: Broker;
  status?: StatusServer;
}

export function createGateway(options: GatewayOptions, log: Log = jsonLog()): Gateway {
  const config = resolveGatewayOptions(options);
  const emitter = new EventEmitter<GatewayEvents>();
  const life = createLifecycle({ name: 'gateway', deadlineMs: config.shutdownTimeoutMs, errors: lifecycleErrors });
  const parts: Parts = {};
  let bufferCorrupt = 0;
  const clock = createClockWatch({ syncFlag: config.clock.syncFlag, intervalMs: config.clock.checkIntervalMs });
  const health = createHealthReporter({
    gatewayId: config.gatewayId,
    location: config.location,
    bufferPath: config.buffer.path,
    ...config.health,
    intervalMs: config.healthIntervalMs,
    log,
    figures: () => stats(),
    running: () => life.state === 'running',
    clockSynced: () => clock.synced(),
  });

  const stats = (): GatewayStats => {
    const { buffer, forwarder } = parts;
    const held = buffer?.stats() ?? { depth: 0, bytes: 0, oldestReceivedAt: null };
    return {
      ...(parts.intake?.counters() ?? { received: 0, accepted: 0, deadLettered: 0 }),
      ...(parts.commits?.counters() ?? { commitFailures: 0, groupCommits: 0 }),
      bufferCorrupt,
      forwarded: forwarder?.forwardedTotal() ?? 0,
      replayed: forwarder?.replayedTotal() ?? 0,
      bufferDepth: held.depth,
      bufferBytes: held.bytes,
      ...(buffer?.counters() ?? { evicted: zeroLanes(), expired: zeroLanes(), refused: zeroLanes(), depth: zeroLanes() }),
      oldestUnsentAgeMs: held.oldestReceivedAt === null ? null : Math.max(0, Date.now() - held.oldestReceivedAt),
      connectedDevices: parts.broker?.connectedClients() ?? 0,
      denied: parts.security?.refusals() ?? (Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as RefusalCounts),
    };
  };

  const status = (): StatusSnapshot => {
    const kafka: KafkaState = parts.forwarder?.kafkaState() ?? { state: 'unknown' };
    const bufferError = parts.commits?.error();
    const snapshot: StatusSnapshot = {
      gatewayId: config.gatewayId,
      state: life.state,
      bufferWritable: bufferError === undefined,
      kafka: kafka.state,
      stats: { ...stats() },
      sampleFailures: health.monitor.failures(),
      inRate: health.rates().in,
      outRate: health.rates().out,
      uptime: process.uptime(),
      clock: clock.latest(),
    };
    if (bufferError !== undefined) snapshot.bufferError = bufferError;
    if (kafka.topicsMissing !== undefined) snapshot.kafkaTopicsMissing = kafka.topicsMissing;
    if (kafka.error !== undefined) snapshot.kafkaError = kafka.error;
    const sample = health.monitor.latest();
    if (sample) snapshot.sample = sample;
    return snapshot;
  };

  const reportHealth = async (): Promise<GatewayHealth> => {
    if (life.state === 'new' || life.state === 'starting') throw gatewayErrors.create('GW_NOT_STARTED', 'no health report before start() has finished');
    if (life.state !== 'running') throw gatewayErrors.create('GW_CLOSED', 'no health report from a closed gateway');
    return health.report();
  };

  const openForwarder = (buffer: OutboxBuffer): Forwarder => {
    const forwarder = createForwarder(buffer, {
      brokers: config.kafka.brokers,
      clientId: config.kafka.clientId,
      gatewayId: config.gatewayId,
      compression: config.kafka.compression,
      requestTimeoutMs: config.kafka.requestTimeoutMs,
      security: () => loadUplinkSecurity(config),
      ...config.forward,
    });
    let previous: KafkaState['state'] = 'unknown';
    forwarder.on('state', (kafka) => {
      if (kafka.state === 'unreachable') log('warn', 'Kafka unavailable; buffering and retrying with backoff', { error: kafka.error });
      else if (kafka.state === 'topic-missing') {
        const topics = kafka.topicsMissing ?? [];
        log('warn', `Kafka topic missing: ${topics.join(', ')}; buffering`, {
          code: 'GW_KAFKA_TOPIC_MISSING',
          topics,
          error: kafka.error,
          action: gatewayErrors.catalog.GW_KAFKA_TOPIC_MISSING.action,
        });
      } else if (kafka.state === 'reachable' && previous !== 'unknown') log('info', 'Kafka reachable again; forwarding the backlog');
      previous = kafka.state;
    });
    forwarder.on('error', (err) => emitter.emit('kafkaError', err));
    forwarder.on('expired', ({ records }) => log('warn', 'records outlived their time-to-live; dropped', { records }));
    forwarder.on('forwarded', ({ records }) => emitter.emit('forwarded', { records }));
    return forwarder;
  };

  const drainAndClose = async (forwarder: Forwarder): Promise<void> => {
    if (config.drainOnCloseMs > 0) {
      await forwarder.drain(config.drainOnCloseMs).catch(() => {
        log('info', 'records left in the buffer for the next start', { records: parts.buffer?.stats().depth });
      });
    }
    await forwarder.close();
  };

  // Each part registers its closer as it is opened; see the shutdown order above.
  const open = async (): Promise<void> => {
    // Known before the first publish is stamped; then checked in the background.
    const time = await clock.start();
    life.defer('clock', () => clock.close());
    if (time.state !== 'synchronized') log('warn', `clock ${time.state}: receive stamps say so until it is synchronised`, { clock: time.state, source: time.source, syncFlag: config.clock.syncFlag });
    const buffer = (parts.buffer = openBuffer(config.buffer.path, config.buffer.durability, config.buffer));
    life.defer('buffer', () => buffer.close());
    if (buffer.recovered !== null) {
      bufferCorrupt++;
      const err = gatewayErrors.create('GW_BUFFER_CORRUPT', `moved to ${buffer.recovered.movedTo}: ${buffer.recovered.reason}`);
      log('error', 'buffer file corrupt; moved aside and started a fresh buffer', { movedTo: buffer.recovered.movedTo, reason: buffer.recovered.reason });
      emitter.emit('bufferCorrupt', err);
    }
    const backlog = buffer.stats().depth;
    if (backlog > 0) log('info', 'buffer holds records from before; replaying them paced and marked replayed', { records: backlog });
    // Opened last (below), closed after the forwarder.
    life.defer('status listener', () => parts.status?.close());
    const forwarder = (parts.forwarder = openForwarder(buffer));
    life.defer('forwarder', () => drainAndClose(forwarder), () => forwarder.close());
    const commits = (parts.commits = createGroupCommit(buffer, {
      windowMs: config.buffer.commitWindowMs,
      maxRecords: config.buffer.commitMaxRecords,
      log,
      onStored: () => forwarder.notify(),
    }));
    life.defer('group commit', () => commits.close());
    const security = (parts.security = createSecurity(config, log));
    life.defer('device security', () => security.close());
    const intake = (parts.intake = createIntake({
      gatewayId: config.gatewayId,
      topics: config.topics,
      security,
      enqueue: commits.enqueue,
      accepting: () => life.state === 'running',
      onDeadLetter: (letter) => emitter.emit('deadletter', letter),
      clockSynced: () => clock.synced(),
    }));
    const broker = (parts.broker = await openBroker({ ...config, security, authorizePublish: intake.authorizePublish, log }));
    life.defer('broker', () => broker.close());
    if (config.http.enabled) {
      parts.status = createStatusServer({ host: config.http.host, port: config.http.port, snapshot: status });
      await parts.status.start();
    }
    forwarder.start();
    health.start({ nextSequence: () => buffer.nextSequence('health'), submit: intake.submit });
    life.defer('health', () => health.close());
  };

  const start = async (): Promise<void> => {
    await life.start(open);
    const broker = parts.broker!;
    const { tls, websocket } = broker.ports();
    const none = config.auth.mode === 'none';
    log(none ? 'warn' : 'info', none ? 'auth.mode is "none": any client may connect' : 'device auth on', {
      auth: config.auth.mode,
      ...(tls === undefined ? {} : { tls }),
      ...(websocket === undefined ? {} : { websocket }),
    });
    if (parts.status !== undefined) {
      log('info', 'status and metrics listening', { http: `${config.http.host}:${parts.status.port()}`, paths: ['/healthz', '/metrics'] });
    }
    const address = broker.address();
    log('info', 'gateway listening', { gatewayId: config.gatewayId, mqtt: `${address.address}:${address.port}`, buffer: config.buffer.path });
    emitter.emit('listening', { port: address.port, host: address.address });
  };

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= life.close().finally(() => emitter.emit('closed')));

  return Object.assign(emitter, {
    config,
    start,
    close,
    port: () => parts.broker?.ports().mqtt ?? 0,
    ports: () => parts.broker?.ports() ?? { mqtt: 0 },
    devices: () => parts.security?.registry,
    revokeDevice: (deviceId: string) => {
      const { security } = parts;
      if (security?.registry === undefined) {
        throw gatewayErrors.create('GW_NOT_STARTED', 'no device registry (auth.mode is not "registry" or the gateway is not started)');
      }
      const known = security.registry.revoke(deviceId);
      security.enforceRevocations();
      return known;
    },
    stats,
    reportHealth,
    status,
    httpPort: () => parts.status?.port() ?? 0,
  });
}

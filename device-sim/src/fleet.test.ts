// Runs real fleets against an MQTT broker in the test process (aedes on port 0).
import { createServer, type Server } from 'node:net';
import { CityError, decodeEvent, parseMqttTopic, waitFor, withTimeout, type CityEvent } from '@city/protocol';
import { Aedes } from 'aedes';
import { connect, type MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { startMqttBroker, type TestMqttBroker } from '../../test/support/mqtt-broker.ts';
import { createTcpProxy } from '../../test/support/tcp-proxy.ts';
import { onTeardown } from '../../test/support/teardown.ts';
import type { FleetOptions } from './fleet-options.ts';
import { createAckLedger, createFleet, type Fleet } from './fleet.ts';

let counter = 0;
const uniquePrefix = () => `t${process.pid}${Date.now().toString(36)}x${counter++}`;

interface Received {
  deviceId: string;
  payload: Buffer;
  event: CityEvent | undefined;
  rules: string[];
}

interface Subscriber {
  messages: Received[];
  /** Resolves once `count` messages arrived and everything the broker had before then has been delivered. */
  received(count: number, timeoutMs?: number): Promise<void>;
}

function startBroker(): Promise<TestMqttBroker> {
  return startMqttBroker(() => Aedes.createBroker());
}

/** Bounded teardown, so a hang fails the test instead of the run. */
function teardown(close: () => Promise<unknown>): void {
  onTeardown(() => withTimeout(close(), 10_000, 'cleanup'));
}

async function subscribe(url: string, prefix: string): Promise<Subscriber> {
  const client: MqttClient = connect(url, { clientId: `${prefix}-sub`, protocolVersion: 4, reconnectPeriod: 0 });
  teardown(() => client.endAsync());
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    }),
    10_000,
    'subscriber connect',
  );
  // MQTT wildcards match whole levels, so take every device and keep this test's.
  await client.subscribeAsync('city/v1/devices/+/+', { qos: 1 });
  const messages: Received[] = [];
  // A marker the subscriber sends itself: the broker delivers in order, so once it is back every
  // message published before it has arrived too (and an unexpected extra one would be counted).
  const markerTopic = `city/v1/devices/${prefix}marker/weather`;
  let markers = 0;
  client.on('message', (topic, payload) => {
    if (topic === markerTopic) {
      markers++;
      return;
    }
    const parsed = parseMqttTopic(topic);
    if (!parsed.ok || !parsed.deviceId.startsWith(`${prefix}-`)) return;
    const decoded = decodeEvent(payload, { kind: parsed.kind, deviceId: parsed.deviceId });
    messages.push({
      deviceId: parsed.deviceId,
      payload,
      event: decoded.ok ? decoded.value : undefined,
      rules: decoded.ok ? [] : decoded.problems.map((p) => p.rule),
    });
  });
  return {
    messages,
    async received(count, timeoutMs = 15_000) {
      await waitFor(() => messages.length >= count, { timeoutMs, what: () => `${count} messages (have ${messages.length})` });
      const want = markers + 1;
      await client.publishAsync(markerTopic, 'marker', { qos: 1 });
      await waitFor(() => markers >= want, { timeoutMs: 5_000, what: 'the marker back' });
    },
  };
}

function fleetOf(options: FleetOptions): Fleet {
  const fleet = createFleet(options);
  teardown(() => fleet.stop());
  return fleet;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('fleet against an MQTT broker', () => {
  it('publishes every valid event in order plus exactly the requested invalid payloads; done() stats match', async () => {
    const prefix = uniquePrefix();
    const broker = await startBroker();
    const sub = await subscribe(broker.url, prefix);
    const perKind = 2;
    const events = 15;
    const invalidCount = 11;
    const fleet = fleetOf({
      url: broker.url,
      seed: 3,
      deviceIdPrefix: prefix,
      devices: { vehicle: perKind, gps: perKind, weather: perKind, air_quality: perKind, traffic_camera: perKind, emergency: perKind, phone: perKind },
      ratePerDevice: 0,
      eventsPerDevice: events,
      invalid: { count: invalidCount },
      startTime: Date.UTC(2025, 5, 2, 6, 0),
      connectConcurrency: 4,
    });
    const ledger = createAckLedger(fleet);
    await withTimeout(fleet.start(), 20_000, 'start');
    const stats = await withTimeout(fleet.done(), 20_000, 'done');

    const devices = 7 * perKind;
    expect(stats.done).toBe(true);
    expect(stats.published).toBe(devices * events);
    expect(stats.acknowledged).toBe(devices * events);
    expect(stats.invalidPublished).toBe(invalidCount);
    expect(stats.invalidAcknowledged).toBe(invalidCount);
    expect(stats.errors).toBe(0);
    expect(stats.inFlight).toBe(0);
    for (const kind of Object.values(stats.byKind)) expect(kind.acknowledged).toBe(perKind * events);
    expect(Object.values(stats.invalidByRule).reduce((a, b) => a + b, 0)).toBe(invalidCount);
    expect(ledger.valid.size).toBe(devices * events);
    expect(ledger.invalid.size).toBe(invalidCount);
    expect(ledger.duplicates).toBe(0);

    await sub.received(devices * events + invalidCount);
    expect(sub.messages.length).toBe(devices * events + invalidCount);
    const valid = sub.messages.filter((m) => m.event !== undefined);
    const invalid = sub.messages.filter((m) => m.event === undefined);
    expect(valid.length).toBe(devices * events);
    expect(invalid.length).toBe(invalidCount);
    // The subscriber (as the gateway will) finds exactly the rules the fleet says it broke.
    const found: Record<string, number> = {};
    for (const m of invalid) for (const rule of m.rules) found[rule] = (found[rule] ?? 0) + 1;
    expect(found).toEqual(stats.invalidByRule);
    const acked: Record<string, number> = {};
    for (const record of ledger.invalid.values()) acked[record.rule as string] = (acked[record.rule as string] ?? 0) + 1;
    expect(acked).toEqual(stats.invalidByRule);
    // Per device: seq 0..events-1 in publish order, ids as acknowledged.
    const byDevice = new Map<string, number[]>();
    for (const m of valid) {
      const e = m.event as CityEvent;
      expect(ledger.valid.get(e.eventId)?.seq).toBe(e.seq);
      byDevice.set(m.deviceId, [...(byDevice.get(m.deviceId) ?? []), e.seq]);
    }
    expect(byDevice.size).toBe(devices);
    for (const seqs of byDevice.values()) expect(seqs).toEqual(Array.from({ length: events }, (_, i) => i));
    expect(fleet.devices.map((d) => d.deviceId).sort()).toEqual([...byDevice.keys()].sort());

    const first = fleet.stop();
    expect(fleet.stop()).toBe(first);
    await withTimeout(first, 10_000, 'stop');
    expect(fleet.stats().connected).toBe(0);
    await waitFor(() => broker.connections() === 1, { timeoutMs: 5_000, what: 'only the subscriber left connected' });
    await expect(fleet.start()).rejects.toMatchObject({ code: 'SIM_CLOSED' });
  });

  it('paces each device at its rate and stamps simulated times', async () => {
    const prefix = uniquePrefix();
    const broker = await startBroker();
    const sub = await subscribe(broker.url, prefix);
    const startTime = Date.UTC(2025, 0, 10, 12, 0);
    const fleet = fleetOf({
      url: broker.url, deviceIdPrefix: prefix, devices: { vehicle: 1, weather: 1, phone: 1 }, ratePerDevice: 20, eventsPerDevice: 10, startTime,
    });
    const began = Date.now();
    await fleet.start();
    await withTimeout(fleet.done(), 10_000, 'done');
    // 10 events at 20/s take at least 9 intervals of 50 ms.
    expect(Date.now() - began).toBeGreaterThanOrEqual(440);
    await sub.received(30);
    expect(sub.messages.length).toBe(30);
    for (const m of sub.messages) {
      const e = m.event as CityEvent;
      const t = typeof e.dateObserved === 'number' ? e.dateObserved : Date.parse(e.dateObserved);
      expect(t).toBe(startTime + e.seq * 50);
    }
  });

  it('reconnects by itself after its connections are cut, loses nothing and keeps order', async () => {
    const prefix = uniquePrefix();
    const broker = await startBroker();
    const sub = await subscribe(broker.url, prefix);
    // A TCP proxy in front of the broker, so the test can cut every device connection at once.
    const proxy = createTcpProxy({ targetHost: '127.0.0.1', targetPort: broker.port });
    await proxy.start();
    teardown(() => proxy.close());
    const port = proxy.port();
    const events = 60;
    const fleet = fleetOf({
      url: `mqtt://127.0.0.1:${port}`, deviceIdPrefix: prefix, devices: { vehicle: 3, phone: 3 }, ratePerDevice: 40,
      eventsPerDevice: events, reconnectPeriod: 100, maxInflightPerDevice: 4,
    });
    const ledger = createAckLedger(fleet);
    let lost = 0;
    fleet.on('connectionLost', () => lost++);
    let cut = false;
    fleet.on('ack', () => {
      if (!cut && ledger.valid.size >= 60) {
        cut = true;
        // Reset every open connection; new ones go through again at once.
        proxy.setMode('drop');
        proxy.setMode('forward');
      }
    });
    await fleet.start();
    const stats = await withTimeout(fleet.done(), 20_000, 'done after reconnect');
    expect(cut).toBe(true);
    expect(lost).toBe(6);
    expect(stats.reconnects).toBeGreaterThanOrEqual(6);
    expect(stats.acknowledged).toBe(6 * events);
    expect(ledger.valid.size).toBe(6 * events);

    await sub.received(6 * events);
    // QoS 1 may deliver a message twice after a reconnect; first deliveries must be complete and in order.
    const firstSeen = new Map<string, number[]>();
    for (const m of sub.messages) {
      const e = m.event as CityEvent;
      const seqs = firstSeen.get(m.deviceId) ?? [];
      if (!seqs.includes(e.seq)) seqs.push(e.seq);
      firstSeen.set(m.deviceId, seqs);
    }
    expect(firstSeen.size).toBe(6);
    for (const seqs of firstSeen.values()) expect(seqs).toEqual(Array.from({ length: events }, (_, i) => i));
  });

  it('stop() before the end: done() rejects, stop is idempotent, the broker sees clean disconnects', async () => {
    const prefix = uniquePrefix();
    const broker = await startBroker();
    const fleet = fleetOf({ url: broker.url, deviceIdPrefix: prefix, devices: { gps: 3, emergency: 2 }, ratePerDevice: 10, eventsPerDevice: 10_000 });
    const done = fleet.done();
    await fleet.start();
    await waitFor(() => fleet.stats().acknowledged >= 5, { timeoutMs: 10_000, what: 'a few acknowledged events' });
    const [a, b] = [fleet.stop(), fleet.stop()];
    expect(a).toBe(b);
    await withTimeout(a, 10_000, 'stop');
    await expect(done).rejects.toMatchObject({ code: 'SIM_STOPPED_BEFORE_DONE' });
    const stats = fleet.stats();
    expect(stats.published).toBeGreaterThan(0);
    expect(stats.acknowledged).toBe(stats.published);
    expect(stats.connected).toBe(0);
    await waitFor(() => broker.connections() === 0, { timeoutMs: 5_000, what: 'the broker to see every device gone' });
  });

  it('fails start() clearly when the broker is not there or refuses the devices', async () => {
    // Nothing listens on a port we just closed.
    const probe = createServer();
    const deadPort = await listen(probe);
    await closeServer(probe);
    const absent = fleetOf({ url: `mqtt://127.0.0.1:${deadPort}`, deviceIdPrefix: uniquePrefix(), devices: { weather: 2 }, connectTimeoutMs: 500 });
    const err = await absent.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CityError);
    expect((err as CityError).code).toBe('SIM_CONNECT_TIMEOUT');
    expect((err as CityError).canRetry).toBe(true);
    await withTimeout(absent.stop(), 5000, 'stop after failed start');

    // stop() while devices are still trying ends start() at once rather than at the connect timeout.
    const waiting = fleetOf({ url: `mqtt://127.0.0.1:${deadPort}`, deviceIdPrefix: uniquePrefix(), devices: { weather: 3 }, reconnectPeriod: 100 });
    const starting = waiting.start();
    await waitFor(() => waiting.stats().lastError !== undefined, { timeoutMs: 5_000, what: 'a failed connect attempt' });
    await withTimeout(waiting.stop(), 5000, 'stop while connecting');
    await expect(withTimeout(starting, 2000, 'start after stop')).rejects.toMatchObject({ code: 'SIM_CLOSED' });

    // A broker that answers every CONNECT with "not authorized" (CONNACK return code 5).
    const refusing = createServer((socket) => {
      socket.once('data', () => socket.write(Buffer.from([0x20, 0x02, 0x00, 0x05])));
      socket.on('error', () => {});
    });
    const port = await listen(refusing);
    teardown(() => closeServer(refusing));
    const refused = fleetOf({ url: `mqtt://127.0.0.1:${port}`, deviceIdPrefix: uniquePrefix(), devices: { phone: 2 }, username: 'u', password: 'wrong' });
    await expect(refused.start()).rejects.toMatchObject({ code: 'SIM_CONNECT_REFUSED' });
  });

  it('rejects bad options up front, naming the field', () => {
    const BROKER = 'mqtt://127.0.0.1:1883';
    expect(() => createFleet({ url: 'http://x' })).toThrow(/url/);
    expect(() => createFleet({ url: BROKER, ratePerDevice: -1 })).toThrow(/ratePerDevice/);
    expect(() => createFleet({ url: BROKER, invalid: { count: 1, rate: 0.1 } })).toThrow(/not both/);
    expect(() => createFleet({ url: BROKER, devices: { gateway_health: 1 } as never })).toThrow(/gateway_health/);
    expect(() => createFleet({ url: BROKER, deviceIdPrefix: 'a b' })).toThrow(/deviceIdPrefix/);
    return expect(createFleet({ url: BROKER }).done()).rejects.toMatchObject({ code: 'SIM_NO_EVENT_LIMIT' });
  });
});

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateEvent } from '@city/protocol';
import { buildHealthEvent, createHealthMonitor, createRateMeter, systemProbe, type SystemReading, type SystemSample } from './index.ts';
import { testGateway } from '../../../test/support/gateway.ts';
import { onTeardown, tempDir as makeTempDir } from '../../../test/support/teardown.ts';

const tempDir = () => makeTempDir('gw-health-');

const reading = (over: Partial<SystemReading> = {}): SystemReading => ({
  cpuLoad: 0.25,
  memoryUsed: 512 * 1048576,
  memoryTotal: 2048 * 1048576,
  diskFree: 10 * 1073741824,
  diskTotal: 32 * 1073741824,
  systemUptime: 3600,
  errors: [],
  ...over,
});

const sample = (over: Partial<SystemReading> = {}): SystemSample => ({ ...reading(over), at: Date.now(), durationMs: 12 });

const eventInput = { gatewayId: 'gw-h', seq: 0, bufferDepth: 3, bufferBytes: 300, oldestUnsentAgeMs: 1500, connectedDevices: 2, inRate: 4, outRate: 1 };

describe('system probe (kernel counters, no spawned process)', () => {
  it('reads CPU, memory, the buffer filesystem and uptime, and gives a valid health event', async () => {
    const dir = tempDir();
    const r = await systemProbe(dir);
    expect(r.cpuLoad).toBeGreaterThanOrEqual(0);
    expect(r.cpuLoad).toBeLessThanOrEqual(1);
    expect(r.memoryTotal).toBeGreaterThan(0);
    expect(r.memoryUsed).toBeGreaterThan(0);
    expect(r.memoryUsed).toBeLessThanOrEqual(r.memoryTotal);
    expect(r.diskTotal).toBeGreaterThan(0);
    expect(r.diskFree).toBeGreaterThan(0);
    expect(r.diskFree).toBeLessThanOrEqual(r.diskTotal);
    expect(r.systemUptime).toBeGreaterThan(0);
    // A board without a sensor leaves the field out; one with a sensor gives a plausible reading.
    if ('temperature' in r) expect(r.temperature).toBeGreaterThan(-60);
    const event = buildHealthEvent({ ...eventInput, sample: { ...r, at: Date.now(), durationMs: 1 } });
    expect(validateEvent(event)).toMatchObject({ ok: true });
  });

  it('names the part it could not read instead of failing the whole sample', async () => {
    const r = await systemProbe(join(tempDir(), 'no', 'such', 'dir'));
    expect(r.errors).toEqual([expect.stringMatching(/^disk: .*ENOENT/)]);
    expect(r.diskFree).toBe(0);
    expect(r.memoryTotal).toBeGreaterThan(0);
  });
});

describe('health event', () => {
  it('carries temperature only when the board has a sensor, and validates either way', () => {
    const without = buildHealthEvent({ ...eventInput, sample: sample() });
    expect('temperature' in without).toBe(false);
    expect(validateEvent(without)).toMatchObject({ ok: true });
    const withSensor = buildHealthEvent({ ...eventInput, sample: sample({ temperature: 51.5 }) });
    expect(withSensor.temperature).toBe(51.5);
    expect(validateEvent(withSensor)).toMatchObject({ ok: true });
    expect(withSensor).toMatchObject({
      kind: 'gateway_health',
      deviceId: 'gw-h',
      cpuLoad: 0.25,
      memoryUsed: 512 * 1048576,
      memoryTotal: 2048 * 1048576,
      diskFree: 10 * 1073741824,
      bufferDepth: 3,
      bufferBytes: 300,
      oldestUnsentAge: 1.5,
      connectedDevices: 2,
      inRate: 4,
      outRate: 1,
    });
    expect(buildHealthEvent({ ...eventInput, oldestUnsentAgeMs: null, sample: sample() }).oldestUnsentAge).toBeUndefined();
  });
});

describe('health monitor', () => {
  it('shares one sampling among concurrent callers and serves the cached sample afterwards', async () => {
    let calls = 0;
    let release: (r: SystemReading) => void = () => undefined;
    const monitor = createHealthMonitor({
      bufferPath: '/tmp/x.db',
      sampleIntervalMs: 60_000,
      sampleTimeoutMs: 60_000,
      probe: () => {
        calls++;
        return new Promise((resolve) => (release = resolve));
      },
    });
    onTeardown(() => monitor.close());
    expect(monitor.latest()).toBeUndefined();
    const a = monitor.current();
    const b = monitor.sample();
    expect(calls).toBe(1);
    release(reading({ temperature: 40 }));
    const [sa, sb] = await Promise.all([a, b]);
    expect(sa).toBe(sb);
    expect(monitor.latest()).toBe(sa);
    expect(await monitor.current()).toBe(sa);
    expect(calls).toBe(1);
  });

  it('counts a sample that fails or outlives its deadline and keeps serving the previous one', async () => {
    let mode: 'ok' | 'hang' | 'throw' = 'ok';
    const monitor = createHealthMonitor({
      bufferPath: '/tmp/x.db',
      sampleIntervalMs: 60_000,
      sampleTimeoutMs: 100,
      probe: () => (mode === 'ok' ? Promise.resolve(reading()) : mode === 'throw' ? Promise.reject(new Error('boom')) : new Promise(() => undefined)),
    });
    onTeardown(() => monitor.close());
    const first = await monitor.sample();
    mode = 'hang';
    await expect(monitor.sample()).rejects.toMatchObject({ code: 'GW_HEALTH_SAMPLE', message: expect.stringMatching(/within 100 ms/) });
    mode = 'throw';
    await expect(monitor.sample()).rejects.toMatchObject({ code: 'GW_HEALTH_SAMPLE', message: expect.stringMatching(/boom/) });
    expect(monitor.failures()).toBe(2);
    expect(monitor.latest()).toBe(first);
  });
});

describe('rate meter', () => {
  it('gives per-second rates between readings and never a negative one', () => {
    const meter = createRateMeter(0, 1000);
    expect(meter.next(50, 3000)).toBe(25);
    expect(meter.next(50, 4000)).toBe(0);
    expect(meter.next(10, 5000)).toBe(0);
    expect(meter.next(20, 5500)).toBe(20);
  });
});

describe('gateway health report', () => {
  it('publishes a valid gateway_health event with the system figures through the event path', async () => {
    const gateway = testGateway({ gatewayId: 'gw-health', buffer: { path: join(tempDir(), 'buffer.db'), minFreeDiskBytes: 0 }, location: { lat: 52.52, lon: 13.405 } });
    await expect(gateway.reportHealth()).rejects.toMatchObject({ code: 'GW_NOT_STARTED' });
    await gateway.start();
    const before = gateway.stats();
    const event = await gateway.reportHealth();
    expect(validateEvent(event)).toMatchObject({ ok: true });
    expect(event).toMatchObject({ kind: 'gateway_health', deviceId: 'gw-health', seq: 0, location: { lat: 52.52, lon: 13.405 } });
    expect(event.memoryTotal).toBeGreaterThan(0);
    expect(event.diskFree).toBeGreaterThan(0);
    const snapshot = gateway.status();
    expect(snapshot.sample?.memoryTotal).toBe(event.memoryTotal);
    if (snapshot.sample?.temperature === undefined) expect('temperature' in event).toBe(false);
    else expect(event.temperature).toBe(snapshot.sample.temperature);
    // Committed to the buffer like any device's event (Kafka is away, so it waits there).
    expect(gateway.stats().accepted).toBe(before.accepted + 1);
    expect(gateway.stats().bufferDepth).toBe(before.bufferDepth + 1);
    const second = await gateway.reportHealth();
    expect(second.seq).toBe(1);
    expect(second.bufferDepth).toBe(1);
  });
});

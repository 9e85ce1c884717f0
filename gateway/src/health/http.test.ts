import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { exampleEvent, kafkaTopicSet, mqttTopic, topicSpecs, waitFor } from '@city/protocol';
import type { Gateway, GatewayOptions } from '../index.ts';
import { createStatusServer, fetchGatewayStatus, formatStatus, METRICS_CONTENT_TYPE, renderMetrics, type StatusSnapshot } from './index.ts';
import { runCli } from '../../../test/support/cli.ts';
import { KAFKA_AWAY, startTestGateway } from '../../../test/support/gateway.ts';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { connectDevice } from '../../../test/support/mqtt.ts';
import { onTeardown, tempDir as makeTempDir } from '../../../test/support/teardown.ts';

const brokers = inject('kafkaBrokers');
const tempDir = () => makeTempDir('gw-http-');

// ---- a strict reader of the Prometheus text format 0.0.4, independent of the code under test ----

interface Family {
  help: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: { name: string; family: Family } | undefined;
  let pendingHelp: { name: string; help: string } | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line))) {
      expect(families.has(m[1]!), `HELP for ${m[1]} given twice`).toBe(false);
      pendingHelp = { name: m[1]!, help: m[2]! };
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      expect(pendingHelp?.name, `TYPE ${m[1]} must follow its HELP`).toBe(m[1]);
      expect(families.has(m[1]!), `TYPE for ${m[1]} given twice`).toBe(false);
      const family: Family = { help: pendingHelp!.help, type: m[2]!, samples: [] };
      families.set(m[1]!, family);
      current = { name: m[1]!, family };
      pendingHelp = undefined;
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/.exec(line))) {
      expect(current?.name, `sample ${m[1]} outside its family`).toBe(m[1]);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
      const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
      expect(m[3] === 'NaN' || !Number.isNaN(value), `value of ${line}`).toBe(true);
      const series = `${m[1]}${JSON.stringify(labels)}`;
      expect(seen.has(series), `series ${series} twice`).toBe(false);
      seen.add(series);
      current!.family.samples.push({ name: m[1]!, labels, value });
    } else {
      throw new Error(`not a Prometheus 0.0.4 line: ${JSON.stringify(line)}`);
    }
  }
  for (const [name, f] of families) {
    if (f.type === 'counter') {
      expect(name.endsWith('_total'), `counter ${name} ends in _total`).toBe(true);
      for (const s of f.samples) expect(s.value, `${name} is never negative`).toBeGreaterThanOrEqual(0);
    }
    expect(f.samples.length, `${name} has samples`).toBeGreaterThan(0);
  }
  return families;
}

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined =>
  families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

const total = (families: Map<string, Family>, name: string): number | undefined =>
  families.get(name)?.samples.reduce((sum, s) => sum + s.value, 0);

async function scrape(port: number): Promise<Map<string, Family>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(METRICS_CONTENT_TYPE);
  return parseExposition(await res.text());
}

async function startGateway(options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const suffix = randomUUID().slice(0, 8);
  const topics = kafkaTopicSet(`http-${suffix}`);
  await ensureTopics(brokers, topicSpecs(topics));
  return startTestGateway({
    gatewayId: `gw-http-${suffix}`,
    buffer: { path: join(tempDir(), 'buffer.db'), minFreeDiskBytes: 0 },
    kafka: { brokers, clientId: `gw-http-${suffix}` },
    topics,
    http: { enabled: true, host: '127.0.0.1', port: 0 },
    drainOnCloseMs: 2_000,
    ...options,
  });
}

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> =>
  waitFor(probe, { timeoutMs, intervalMs: 100, what: `waiting for ${what}` });

const snapshot = (over: Partial<StatusSnapshot> = {}): StatusSnapshot => ({
  gatewayId: 'gw-fake',
  state: 'running',
  bufferWritable: true,
  kafka: 'reachable',
  stats: {
    received: 5,
    accepted: 4,
    deadLettered: 1,
    forwarded: 3,
    commitFailures: 0,
    bufferDepth: 2,
    bufferBytes: 200,
    oldestUnsentAgeMs: 2500,
    connectedDevices: 1,
    evicted: { emergency: 0, deadletter: 1, telemetry: 7 },
    refused: { emergency: 2, deadletter: 0, telemetry: 0 },
    denied: { 'bad-secret': 3, 'acl-publish': 0 },
  },
  sampleFailures: 0,
  inRate: 1.5,
  outRate: 0.5,
  uptime: 12,
  ...over,
});

describe('/metrics', () => {
  it('is checked by a reader that rejects what Prometheus would', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{lane="x"} 1\n';
    expect(value(parseExposition(ok), 'a_total', { lane: 'x' })).toBe(1);
    expect(() => parseExposition('# HELP a A.\n# TYPE a counter\na 1\n')).toThrow(/ends in _total/);
    expect(() => parseExposition('a_total 1\n')).toThrow(/outside its family/);
    expect(() => parseExposition('# TYPE a gauge\na 1\n')).toThrow(/must follow its HELP/);
    expect(() => parseExposition('# HELP a A.\n# TYPE a gauge\na{l=unquoted} 1\n')).toThrow(/not a Prometheus/);
    expect(() => parseExposition('# HELP a A.\n# TYPE a gauge\na 1\na 2\n')).toThrow(/twice/);
  });

  it('is Prometheus text 0.0.4 whose counters move with publishes and forwarding', async () => {
    const gateway = await startGateway();
    const port = gateway.httpPort();
    expect(port).toBeGreaterThan(0);
    const before = await scrape(port);
    expect(before.get('city_gateway_received_total')?.type).toBe('counter');
    expect(before.get('city_gateway_buffer_depth')?.type).toBe('gauge');
    expect(value(before, 'city_gateway_info', { gateway_id: gateway.config.gatewayId })).toBe(1);
    expect(value(before, 'city_gateway_up')).toBe(1);
    expect(value(before, 'city_gateway_received_total')).toBe(0);

    const client = await connectDevice(gateway, 'ws-m1');
    for (let i = 0; i < 5; i++) {
      await client.publishAsync(mqttTopic('ws-m1', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-m1', seq: i, eventId: randomUUID() })), { qos: 1 });
    }
    await client.publishAsync(mqttTopic('ws-m1', 'weather'), '{"not":"an event"}', { qos: 1 });
    const after = await scrape(port);
    expect(value(after, 'city_gateway_received_total')).toBe(6);
    expect(value(after, 'city_gateway_accepted_total')).toBe(5);
    expect(value(after, 'city_gateway_dead_lettered_total')).toBe(1);
    expect(value(after, 'city_gateway_connected_devices')).toBe(1);
    // Forwarding is asynchronous: wait for Kafka to take all six, then the buffer gauges fall to 0.
    const forwarded = await until('forwarding', async () => {
      const f = await scrape(port);
      return value(f, 'city_gateway_forwarded_total') === 6 && total(f, 'city_gateway_buffer_depth') === 0 ? f : undefined;
    });
    expect(value(forwarded, 'city_gateway_buffer_bytes')).toBe(0);
    expect(value(forwarded, 'city_gateway_oldest_unsent_age_seconds')).toBe(0);
    expect(value(forwarded, 'city_gateway_kafka_reachable')).toBe(1);
    // System figures come from the cached sample (taken at start, off the scrape path).
    const sampled = await until('a system sample', async () => {
      const f = await scrape(port);
      return f.has('city_gateway_memory_total_bytes') ? f : undefined;
    });
    expect(value(sampled, 'city_gateway_memory_total_bytes')).toBeGreaterThan(0);
    expect(value(sampled, 'city_gateway_cpu_load_ratio')).toBeLessThanOrEqual(1);
    expect(value(sampled, 'city_gateway_disk_free_bytes')).toBeGreaterThan(0);
    expect(sampled.has('city_gateway_temperature_celsius')).toBe(gateway.status().sample?.temperature !== undefined);
    for (const lane of ['emergency', 'deadletter', 'telemetry']) {
      expect(value(sampled, 'city_gateway_buffer_evicted_total', { lane })).toBe(0);
    }
  });

  it('exports loss counters by lane and refusals by reason, and escapes label values', () => {
    const families = parseExposition(renderMetrics(snapshot({ gatewayId: 'gw "quoted" \\ id' })));
    expect(families.get('city_gateway_buffer_evicted_total')?.type).toBe('counter');
    expect(value(families, 'city_gateway_buffer_evicted_total', { lane: 'telemetry' })).toBe(7);
    expect(value(families, 'city_gateway_buffer_refused_total', { lane: 'emergency' })).toBe(2);
    expect(value(families, 'city_gateway_denied_total', { reason: 'bad-secret' })).toBe(3);
    expect(value(families, 'city_gateway_oldest_unsent_age_seconds')).toBe(2.5);
    expect(families.get('city_gateway_info')?.samples[0]?.labels.gateway_id).toBe('gw \\"quoted\\" \\\\ id');
    // Not sampled yet: no system series at all rather than zeros.
    expect(families.has('city_gateway_memory_total_bytes')).toBe(false);
    expect(families.has('city_gateway_temperature_celsius')).toBe(false);
  });
});

describe('/healthz', () => {
  it('answers 200 while serving and 503 with the reason while closing', async () => {
    // Kafka away and a long drain: close() stays in its drain phase long enough to ask.
    const gateway = await startGateway({ kafka: KAFKA_AWAY, drainOnCloseMs: 3000 });
    const base = `http://127.0.0.1:${gateway.httpPort()}`;
    const ok = await fetch(`${base}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', healthy: true, reasons: [], state: 'running', bufferWritable: true });
    const client = await connectDevice(gateway, 'ws-h1');
    await client.publishAsync(mqttTopic('ws-h1', 'weather'), JSON.stringify(exampleEvent('weather', { deviceId: 'ws-h1' })), { qos: 1 });
    await client.endAsync();
    const closed = gateway.close();
    const during = await fetch(`${base}/healthz`);
    expect(during.status).toBe(503);
    expect(await during.json()).toMatchObject({ status: 'unhealthy', healthy: false, reasons: ['not serving (state closing)'] });
    await closed;
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('answers 503 when the buffer is full and refuses what it cannot evict', async () => {
    // A 100-byte cap with Kafka away: an emergency event (never evicted) cannot be stored.
    const gateway = await startGateway({ kafka: KAFKA_AWAY, drainOnCloseMs: 0, buffer: { path: join(tempDir(), 'b.db'), maxBytes: 100, minFreeDiskBytes: 0 } });
    const base = `http://127.0.0.1:${gateway.httpPort()}`;
    const client = await connectDevice(gateway, 'em-1');
    // No PUBACK comes for a refused publish (the device resends later), so this is not awaited.
    client.publish(mqttTopic('em-1', 'emergency'), JSON.stringify(exampleEvent('emergency', { deviceId: 'em-1' })), { qos: 1 });
    const body = await until('503', async () => {
      const res = await fetch(`${base}/healthz`);
      return res.status === 503 ? ((await res.json()) as { reasons: string[] }) : undefined;
    });
    expect(body.reasons).toEqual([expect.stringMatching(/^buffer not writable: full: 1 records refused/)]);
    const metrics = await scrape(gateway.httpPort());
    expect(value(metrics, 'city_gateway_buffer_refused_total', { lane: 'emergency' })).toBe(1);
    expect(value(metrics, 'city_gateway_buffer_writable')).toBe(0);
    expect(value(metrics, 'city_gateway_up')).toBe(0);
  });

  it('answers 503 naming the buffer error when the buffer does not take writes; 404 and 405 elsewhere', async () => {
    let current = snapshot();
    const server = createStatusServer({ host: '127.0.0.1', port: 0, snapshot: () => current });
    onTeardown(() => server.close());
    const { port } = await server.start();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    current = snapshot({ bufferWritable: false, bufferError: 'SQLITE_FULL: database or disk is full' });
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ healthy: false, reasons: ['buffer not writable: SQLITE_FULL: database or disk is full'] });
    expect(value(await scrape(port), 'city_gateway_up')).toBe(0);
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
    await server.close();
    await server.close();
  });
});

const CLI = join(import.meta.dirname, '../cli.ts');
const cli = (args: string[]) => runCli(CLI, args);

describe('gateway status', () => {
  it('summarises a running gateway (by --url and by --config) and fails when unhealthy or unreachable', async () => {
    const gateway = await startGateway();
    const report = await fetchGatewayStatus(`http://127.0.0.1:${gateway.httpPort()}`);
    expect(report.health.healthy).toBe(true);
    expect(formatStatus(report)).toMatch(new RegExp(`^gateway ${gateway.config.gatewayId} at http://127.0.0.1:\\d+: HEALTHY`));

    const byUrl = await cli(['status', '--url', `http://127.0.0.1:${gateway.httpPort()}`]);
    expect(byUrl.stderr).toBe('');
    expect(byUrl.code).toBe(0);
    expect(byUrl.stdout).toContain(`gateway ${gateway.config.gatewayId}`);
    expect(byUrl.stdout).toMatch(/HEALTHY \(HTTP 200, state running\)/);
    expect(byUrl.stdout).toMatch(/buffer +\d+ records/);

    const file = join(tempDir(), 'gateway.json');
    writeFileSync(file, JSON.stringify({ gatewayId: 'gw-file', http: { host: '0.0.0.0', port: gateway.httpPort() } }));
    const byConfig = await cli(['status', '--config', file, '--json']);
    expect(byConfig.code).toBe(0);
    expect(JSON.parse(byConfig.stdout)).toMatchObject({ status: 'ok', gatewayId: gateway.config.gatewayId });

    const unhealthy = createStatusServer({ host: '127.0.0.1', port: 0, snapshot: () => snapshot({ state: 'closing' }) });
    onTeardown(() => unhealthy.close());
    const { port } = await unhealthy.start();
    const sick = await cli(['status', '--url', `http://127.0.0.1:${port}`]);
    expect(sick.code).toBe(1);
    expect(sick.stdout).toMatch(/UNHEALTHY \(HTTP 503/);
    expect(sick.stdout).toContain('! not serving (state closing)');
    expect(sick.stdout).toMatch(/buffer loss evicted\{deadletter\} 1, evicted\{telemetry\} 7, refused\{emergency\} 2/);
    await unhealthy.close();

    const gone = await cli(['status', '--url', `http://127.0.0.1:${port}`, '--timeout', '2']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/GW_STATUS_UNREACHABLE|cannot reach the gateway status endpoint/);
  });
});

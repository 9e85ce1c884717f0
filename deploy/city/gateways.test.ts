// A city of several gateway processes on the suite's broker: each gateway its own process (the gateway
// CLI), buffer and port, its devices in a process of their own; what both accepted is in the lake
// exactly once.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_KINDS, kafkaTopicSet, silentLog, waitFor } from '@city/protocol';
import { createSink, openLake } from '@city/cloud';
import { DEFAULT_FLEET, SIM_KINDS } from '@city/device-sim';
import { describe, expect, inject, it, vi } from 'vitest';
import { onTeardown, tempDir } from '../../test/support/teardown.ts';
import { spreadDevices } from '@city/device-sim';
import { createCity, splitEvenly } from './index.ts';

const brokers = inject('kafkaBrokers');

describe('a city of several gateways', () => {
  it('splits devices over gateways and kinds like the default fleet', () => {
    expect(splitEvenly(10_000, 4)).toEqual([2500, 2500, 2500, 2500]);
    expect(splitEvenly(7, 3)).toEqual([3, 2, 2]);
    const spread = spreadDevices(2500);
    expect(Object.values(spread).reduce((a, b) => a + b, 0)).toBe(2500);
    for (const kind of SIM_KINDS) expect(spread[kind]).toBeGreaterThanOrEqual(Math.floor((2493 * DEFAULT_FLEET[kind]) / 100));
    // Fewer devices than kinds: no kind gets more than one.
    expect(Object.values(spreadDevices(3)).filter((n) => n > 0)).toEqual([1, 1, 1]);
  });

  it('refuses a gateway count out of range', () => {
    expect(() => createCity({ gateways: 0 })).toThrow(expect.objectContaining({ code: 'CITY_INVALID_OPTIONS', message: expect.stringMatching(/gateways/) }));
    expect(() => createCity({ devices: 1.5 })).toThrow(/devices/);
  });

  it('runs two gateway processes whose accepted events reach the lake exactly once', async () => {
    vi.stubEnv('KAFKA_BROKERS', brokers.join(','));
    onTeardown(() => vi.unstubAllEnvs());
    const suffix = `cityg${randomUUID().slice(0, 8)}`;
    const dir = tempDir('city-gateways-');
    const city = createCity({ dir, port: 0, dashboardPort: 0, gateways: 2, devices: 14, rate: 4, invalidRate: 0.05, topicSuffix: suffix, warehouseEveryMs: 0, log: silentLog });
    onTeardown(() => city.close());
    await city.start();

    const ports = city.gatewayPorts();
    expect(ports).toHaveLength(2);
    expect(new Set(ports).size).toBe(2);
    const running = city.stats();
    expect(running.devices).toBe(14);
    expect(running.gateways?.map((g) => [g.id, g.devices])).toEqual([
      ['gw-city-01', 7],
      ['gw-city-02', 7],
    ]);
    // Separate processes: neither is the city's, nor each other's.
    const pids = running.gateways!.flatMap((g) => [g.gateway.pid, g.fleet.pid]);
    expect(new Set([...pids, process.pid]).size).toBe(5);
    // The sink too runs in a process of its own, apart from the city's loop (the live engine, the dashboard).
    expect([...pids, process.pid]).not.toContain(running.parts.sink.pid);
    expect(running.parts.sink.running).toBe(true);
    await waitFor(() => (city.stats().gateways ?? []).every((g) => g.forwarded >= 40 && g.connected === 7), { timeoutMs: 60_000, what: 'both gateways forwarding' });
    await waitFor(() => city.stats().lakeRows > 0, { timeoutMs: 30_000, what: 'rows in the lake' });
    for (const g of city.stats().gateways!) {
      expect(g.kafka).toBe('reachable');
      expect(g.gateway.cpuSeconds).toBeGreaterThan(0);
      expect(g.gateway.rssMb).toBeGreaterThan(10);
    }

    await city.close();
    const after = city.stats();
    const gateways = after.gateways!;
    expect(after.connected).toBe(0);
    // Each gateway forwarded all it held before it exited, and each ran on a buffer of its own.
    for (const g of gateways) {
      expect(g.gateway.running).toBe(false);
      expect(g.buffered).toBe(0);
      expect(existsSync(join(dir, `${g.id}-buffer.db`))).toBe(true);
      expect(g.accepted).toBeGreaterThan(0);
    }
    expect(after.parts.sink.running).toBe(false);
    // The sink wrote and committed what it held before it exited: its final figures hold nothing back.
    expect(after.sink.buffered).toBe(0);
    const accepted = gateways.reduce((n, g) => n + g.accepted + g.deadLettered, 0);

    // What the city's sink had not read yet when it closed is still in Kafka: a sink of the same group
    // carries on from the committed offsets.
    const rest = createSink({ brokers, lakeDir: city.lakeDir, topics: kafkaTopicSet(suffix), groupId: `city-sink-${suffix}`, maxSpanMs: 1_000, maxAgeMs: 1_000, log: silentLog });
    onTeardown(() => rest.close());
    await rest.start();
    const curated = (rows: Partial<Record<string, number>>) => Object.entries(rows).reduce((n, [t, r]) => (t.startsWith('raw_') ? n : n + (r ?? 0)), 0);
    await waitFor(() => after.lakeRows + curated(rest.stats().rows) >= accepted, { timeoutMs: 60_000, what: `${accepted} accepted events in the lake` });
    await rest.close();

    const lake = await openLake(city.lakeDir);
    onTeardown(() => lake.close());
    const tables = new Set((await lake.counts()).map((c) => c.table));
    const kinds = EVENT_KINDS.filter((k) => tables.has(k));
    expect(kinds.length).toBeGreaterThan(3);
    const events = await lake.query(
      `SELECT gateway_id, count(*) AS n, count(DISTINCT event_id) AS ids FROM (${kinds.map((k) => `SELECT gateway_id, event_id FROM ${k}`).join(' UNION ALL ')}) GROUP BY 1 ORDER BY 1`,
    );
    const dead = tables.has('deadletter') ? await lake.query(`SELECT gateway_id, count(*) AS n FROM deadletter GROUP BY 1 ORDER BY 1`) : { rows: [] };
    const byGateway = (rows: readonly Record<string, unknown>[], id: string, column: string) => Number(rows.find((r) => r.gateway_id === id)?.[column] ?? 0);
    for (const g of gateways) {
      // Every event each gateway accepted, once: no loss, no duplicate; its dead letters likewise.
      expect({ gateway: g.id, rows: byGateway(events.rows, g.id, 'n'), ids: byGateway(events.rows, g.id, 'ids') }).toEqual({ gateway: g.id, rows: g.accepted, ids: g.accepted });
      expect({ gateway: g.id, deadletters: byGateway(dead.rows, g.id, 'n') }).toEqual({ gateway: g.id, deadletters: g.deadLettered });
    }
    expect(events.rows.map((r) => r.gateway_id)).toEqual(['gw-city-01', 'gw-city-02']);
  }, 240_000);
});

// The uplink's codecs end to end: four gateways, one per codec the gateway can send (none, gzip, lz4,
// zstd), forward to the same topics; one sink (kafkajs with the codecs it registers) reads every batch
// into the lake. A kafkajs consumer without them would stop at the first lz4 or zstd batch.
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { kafkaTopicSet, silentLog } from '@city/protocol';
import { createGateway } from '@city/gateway';
import { createSink, queryLake } from '@city/cloud';
import { createFleet } from '@city/device-sim';
import { ensureStandardTopics } from './support/kafka.ts';
import { onTeardown, tempDir } from './support/teardown.ts';

const brokers = inject('kafkaBrokers');
const CODECS = ['none', 'gzip', 'lz4', 'zstd'] as const;
const DEVICES = 2;
const EVENTS = 30;

describe('uplink codecs', () => {
  it('delivers what a gateway sends with each codec through the sink into the lake', { timeout: 180_000 }, async () => {
    const suffix = `codec${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(suffix);
    const dir = tempDir('city-codecs-');
    const lakeDir = join(dir, 'lake');
    await ensureStandardTopics(brokers, { suffix });
    const sink = createSink({ brokers, groupId: `sink-${suffix}`, lakeDir, topics, maxAgeMs: 1000, log: silentLog });
    onTeardown(() => sink.close());
    const crashes: string[] = [];
    sink.on('crash', ({ error }) => crashes.push(error.message));
    await sink.start();
    for (const codec of CODECS) {
      const gateway = createGateway(
        {
          gatewayId: `gw-${codec}`,
          mqtt: { host: '127.0.0.1', port: 0 },
          buffer: { path: join(dir, `buffer-${codec}.db`) },
          kafka: { brokers, compression: codec },
          topics,
          healthIntervalMs: 0,
        },
        silentLog,
      );
      onTeardown(() => gateway.close());
      await gateway.start();
      const fleet = createFleet({
        url: `mqtt://127.0.0.1:${gateway.port()}`,
        seed: 7,
        deviceIdPrefix: `${suffix}-${codec}`,
        devices: { vehicle: DEVICES, weather: DEVICES },
        eventsPerDevice: EVENTS,
        ratePerDevice: 200,
      });
      onTeardown(() => fleet.stop());
      await fleet.start();
      expect((await fleet.done()).acknowledged).toBe(2 * DEVICES * EVENTS);
    }
    const sql = `SELECT gateway_id, count(DISTINCT event_id) AS n FROM (SELECT gateway_id, event_id FROM vehicle UNION ALL SELECT gateway_id, event_id FROM weather) GROUP BY gateway_id ORDER BY gateway_id`;
    const expected = CODECS.map((codec) => ({ gateway_id: `gw-${codec}`, n: 2 * DEVICES * EVENTS })).sort((a, b) => a.gateway_id.localeCompare(b.gateway_id));
    await expect
      .poll(async () => (await queryLake(lakeDir, sql).catch(() => ({ rows: [] }))).rows.map((r) => ({ gateway_id: r.gateway_id, n: Number(r.n) })), { timeout: 90_000, interval: 500 })
      .toEqual(expected);
    expect(crashes).toEqual([]);
  });
});

// The spine end to end on real parts: simulated devices → MQTT → gateway (SQLite) → Kafka → sink → Parquet → SQL.
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { EVENT_KINDS, kafkaTopicSet, silentLog, waitFor, withTimeout, type EventKind } from '@city/protocol';
import { createGateway } from '@city/gateway';
import { createSink, queryLake } from '@city/cloud';
import { createFleet } from '@city/device-sim';
import { ensureStandardTopics } from './support/kafka.ts';
import { onTeardown, tempDir } from './support/teardown.ts';

const brokers = inject('kafkaBrokers');

const SIM_KINDS = EVENT_KINDS.filter((k) => k !== 'gateway_health');
const DEVICES_PER_KIND = 3;
const EVENTS_PER_DEVICE = 25;
const INVALID = 17;
const HEALTH_REPORTS = 3;

describe('the spine', () => {
  it('delivers every valid event exactly once and every invalid one as a dead letter with its reason', { timeout: 150_000 }, async () => {
    const suffix = `e2e${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(suffix);
    const dir = tempDir('city-e2e-');
    const lakeDir = join(dir, 'lake');
    const acknowledged = new Map<string, EventKind>();
    await ensureStandardTopics(brokers, { suffix });
    const gateway = createGateway(
      {
        gatewayId: 'gw-e2e',
        mqtt: { host: '127.0.0.1', port: 0 },
        buffer: { path: join(dir, 'buffer.db') },
        kafka: { brokers },
        topics,
        healthIntervalMs: 0,
      },
      silentLog,
    );
    const kafkaErrors: string[] = [];
    gateway.on('kafkaError', (err) => kafkaErrors.push(err.message));
    const sink = createSink({ brokers, groupId: `sink-${suffix}`, lakeDir, topics, maxAgeMs: 1000, log: silentLog });
    // Closed after the test in reverse order: fleet, then gateway, then sink.
    onTeardown(() => sink.close());
    await withTimeout(sink.start(), 30_000, 'the sink starting');
    onTeardown(() => gateway.close());
    await withTimeout(gateway.start(), 30_000, 'the gateway starting');

    const fleet = createFleet({
      url: `mqtt://127.0.0.1:${gateway.port()}`,
      seed: 42,
      deviceIdPrefix: suffix,
      devices: Object.fromEntries(SIM_KINDS.map((k) => [k, DEVICES_PER_KIND])),
      eventsPerDevice: EVENTS_PER_DEVICE,
      ratePerDevice: 50,
      invalid: { count: INVALID },
    });
    onTeardown(() => fleet.stop());
    fleet.on('ack', ({ eventId, kind, valid }) => {
      if (valid) acknowledged.set(eventId, kind);
    });
    // Where each part stands, for a wait that runs out.
    const where = () =>
      `fleet ${JSON.stringify({ ...fleet.stats(), byKind: undefined })}; gateway ${JSON.stringify(gateway.stats())}; ` +
      `Kafka errors ${JSON.stringify(kafkaErrors.slice(-3))}; sink ${JSON.stringify(sink.stats())}`;
    await fleet.start();
    const stats = await withTimeout(fleet.done(), 60_000, () => new Error(`the fleet's acknowledgements took over 60 s: ${where()}`));
    for (let i = 0; i < HEALTH_REPORTS; i++) {
      const report = await withTimeout(gateway.reportHealth(), 10_000, () => new Error(`health report ${i + 1} took over 10 s: ${where()}`));
      acknowledged.set(report.eventId, 'gateway_health');
    }

    const expected = Object.fromEntries(SIM_KINDS.map((k) => [k, DEVICES_PER_KIND * EVENTS_PER_DEVICE]));
    expected.gateway_health = HEALTH_REPORTS;
    const total = SIM_KINDS.length * DEVICES_PER_KIND * EVENTS_PER_DEVICE + HEALTH_REPORTS;
    expect(stats.acknowledged).toBe(total - HEALTH_REPORTS);
    expect(stats.invalidAcknowledged).toBe(INVALID);
    expect(acknowledged.size).toBe(total);

    const countsSql = EVENT_KINDS.map(
      (k) => `SELECT '${k}' AS kind, count(*) AS rows, count(DISTINCT event_id) AS ids FROM ${k}`,
    ).join(' UNION ALL ');
    let lake: number[] = [];
    await waitFor(
      async () => {
        const { rows } = await queryLake(lakeDir, `SELECT sum(rows) AS n FROM (${countsSql})`);
        const letters = await queryLake(lakeDir, 'SELECT count(*) AS n FROM deadletter');
        lake = [Number(rows[0]?.n ?? 0), Number(letters.rows[0]?.n ?? 0)];
        return lake[0] === total && lake[1] === INVALID;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: () => `the lake holding ${total} events and ${INVALID} dead letters (holds ${lake.join(' and ')}); ${where()}` },
    );

    const { rows } = await queryLake(lakeDir, countsSql);
    for (const row of rows) {
      expect(row, `kind ${String(row.kind)}`).toMatchObject({ rows: expected[row.kind as string], ids: expected[row.kind as string] });
    }

    // The lake holds exactly the acknowledged events, typed and stamped by the gateway.
    const ids = await queryLake(
      lakeDir,
      EVENT_KINDS.map((k) => `SELECT '${k}' AS kind, event_id, gateway_id, date_observed, received_at FROM ${k}`).join(' UNION ALL '),
    );
    expect(new Map(ids.rows.map((r) => [r.event_id as string, r.kind as EventKind]))).toEqual(acknowledged);
    expect(ids.rows.every((r) => r.gateway_id === 'gw-e2e')).toBe(true);
    expect(ids.rows.every((r) => typeof r.date_observed === 'string' && typeof r.received_at === 'string')).toBe(true);

    const letters = await queryLake(lakeDir, 'SELECT stage, reason, problems, mqtt_topic FROM deadletter');
    for (const letter of letters.rows) {
      expect(letter.stage).toBe('gateway');
      expect(letter.reason).toMatch(/\[\w+\]/);
      expect(JSON.parse(letter.problems as string).length).toBeGreaterThan(0);
      expect(letter.mqtt_topic).toMatch(new RegExp(`^city/v1/devices/${suffix}`));
    }
    expect(gateway.stats()).toMatchObject({ accepted: total, deadLettered: INVALID });
  });
});

// The live engine against the run's real Kafka broker: one instance and two instances in one consumer
// group read the same events and publish the same finished KPI windows, equal to a direct computation;
// alerts raise and clear; late events become dead letters.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Message } from 'kafkajs';
import { exampleEvent, kafkaTopicSet, liveTopicSet, liveTopicSpecs, recordHeaders, silentLog, topicSpecs, waitFor, withTimeout, type DeadLetter, type EventKind } from '@city/protocol';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { connectTestKafka, type TestKafka } from '../../../test/support/sink.ts';
import { onTeardown } from '../../../test/support/teardown.ts';
import type { Alert } from './alerts.ts';
import { districtOf } from './definitions.ts';
import { createLive, type Live } from './live.ts';
import type { LiveOptions } from './options.ts';
import type { KpiUpdate } from './output.ts';

const brokers = inject('kafkaBrokers');
const T0 = Date.parse('2026-12-01T12:00:00.000Z');
let kafka: TestKafka;

beforeAll(async () => {
  kafka = await connectTestKafka(brokers, 'live-test');
});
afterAll(async () => {
  await kafka?.close();
});

function message(kind: EventKind, overrides: Record<string, unknown>): Message {
  const e = exampleEvent(kind, overrides as never) as { eventId: string; deviceId: string };
  return { key: e.deviceId, value: JSON.stringify(e), headers: recordHeaders({ gatewayId: 'gw-live', receivedAt: T0, eventId: e.eventId }) };
}

function startLive(options: LiveOptions): Live {
  const live = createLive({ log: silentLog, tickMs: 200, idleTimeoutMs: 1_500, sessionTimeoutMs: 6_000, allowedLatenessMs: 60_000, mergeGraceMs: 15_000, ...options });
  onTeardown(() => withTimeout(live.close(), 30_000, 'closing a live instance').catch(() => undefined));
  return live;
}

/** The latest update per KPI window, as a screen holding the topic would show it. */
function collect(lives: readonly Live[]): { kpis: Map<string, KpiUpdate>; alerts: Alert[] } {
  const kpis = new Map<string, KpiUpdate>();
  const alerts: Alert[] = [];
  for (const live of lives) {
    live.on('kpi', (u) => kpis.set(`${u.kpi}|${u.key}|${u.windowStart}`, u));
    live.on('alert', (a) => alerts.push(a));
  }
  return { kpis, alerts };
}

async function readTopic(topic: string, groupId: string, count: number): Promise<Message[]> {
  const { Kafka, logLevel } = await import('kafkajs');
  const consumer = new Kafka({ brokers, clientId: groupId, logLevel: logLevel.NOTHING }).consumer({ groupId });
  const out: Message[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message: m }) => void out.push({ key: m.key, value: m.value }) });
    await waitFor(() => out.length >= count, { timeoutMs: 30_000, what: `${count} records on ${topic}` });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

describe('live engine on Kafka', () => {
  it('gives the same finished windows with two instances in one group as with one, equal to a direct computation', { timeout: 180_000 }, async () => {
    const id = `live${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(id);
    const single = liveTopicSet(`${id}.one`);
    const pair = liveTopicSet(`${id}.two`);
    await ensureTopics(brokers, [...topicSpecs(topics), ...liveTopicSpecs(single), ...liveTopicSpecs(pair)]);

    // 40 vehicles (spread over the 6 partitions by key) in two districts over two 5-minute windows.
    const vehicles: Message[] = [];
    const direct = new Map<string, { samples: number; devices: Set<string>; speed: number }>();
    let seq = 0;
    for (let i = 0; i < 1_200; i++) {
      const device = `veh-${i % 40}`;
      const ms = T0 + Math.floor((i / 1_200) * 600_000);
      const where = i % 3 === 0 ? { lat: 52.365, lon: 4.93 } : { lat: 52.37, lon: 4.89 };
      const speed = (i * 7) % 23;
      vehicles.push(message('vehicle', { eventId: `${id}-v${i}`, deviceId: device, seq: seq++, dateObserved: new Date(ms).toISOString(), location: where, speed }));
      const key = `${districtOf(where.lat, where.lon)}|${new Date(Math.floor(ms / 300_000) * 300_000).toISOString()}`;
      const d = direct.get(key) ?? { samples: 0, devices: new Set<string>(), speed: 0 };
      d.samples++;
      d.devices.add(device);
      d.speed += speed;
      direct.set(key, d);
    }
    // Event time moves on on every partition (a window that stays open): the windows above become final.
    for (let i = 0; i < 40; i++) {
      vehicles.push(message('vehicle', { eventId: `${id}-w${i}`, deviceId: `veh-${i}`, seq: seq++, dateObserved: new Date(T0 + 700_000).toISOString(), location: { lat: 52.37, lon: 4.89 } }));
    }
    // Unhealthy air for an hour, then clean air: the AQI alert raises and clears.
    const air = [
      message('air_quality', { eventId: `${id}-a1`, deviceId: 'aq-1', dateObserved: new Date(T0 + 60_000).toISOString(), pm25: 80 }),
      message('air_quality', { eventId: `${id}-a2`, deviceId: 'aq-1', dateObserved: new Date(T0 + 3_700_000).toISOString(), pm25: 4 }),
    ];
    // A high-severity incident opens and closes.
    const incident = [
      message('emergency', { eventId: `${id}-e1`, deviceId: 'amb-1', incidentId: `inc-${id}`, severity: 'high', incidentStatus: 'open', dateObserved: new Date(T0 + 5_000).toISOString() }),
      message('emergency', { eventId: `${id}-e2`, deviceId: 'amb-1', incidentId: `inc-${id}`, severity: 'high', incidentStatus: 'closed', dateObserved: new Date(T0 + 90_000).toISOString() }),
    ];
    const one = startLive({ brokers, groupId: `${id}-one`, topics, liveTopics: single });
    const a = startLive({ brokers, groupId: `${id}-two`, clientId: 'live-a', topics, liveTopics: pair });
    const b = startLive({ brokers, groupId: `${id}-two`, clientId: 'live-b', topics, liveTopics: pair });
    const seenOne = collect([one]);
    const seenPair = collect([a, b]);
    await Promise.all([one.start(), a.start(), b.start()]);
    // Events only once the pair shares the partitions: otherwise the first to join may read them all.
    await waitFor(() => a.stats().assignedPartitions > 0 && b.stats().assignedPartitions > 0 && a.stats().assignedPartitions + b.stats().assignedPartitions === one.stats().assignedPartitions, {
      timeoutMs: 30_000,
      what: () => `both instances of the pair assigned (${a.stats().assignedPartitions} + ${b.stats().assignedPartitions} of ${one.stats().assignedPartitions})`,
    });
    await kafka.produce(topics.events.vehicle, vehicles);
    await kafka.produce(topics.events.air_quality, air);
    await kafka.produce(topics.events.emergency, incident);

    const traffic = (m: Map<string, KpiUpdate>) =>
      new Map([...m.values()].filter((u) => u.kpi === 'traffic_district_5m' && Date.parse(u.windowStart) < T0 + 600_000).map((u) => [`${u.key}|${u.windowStart}`, u]));
    const done = (m: Map<string, KpiUpdate>) => {
      const t = traffic(m);
      return t.size === direct.size && [...t.values()].every((u) => u.final) && [...t.values()].reduce((s, u) => s + Number(u.values['samples']), 0) === vehicles.length - 40;
    };
    const state = (m: Map<string, KpiUpdate>) => [...traffic(m).values()].map((u) => `${u.key}@${u.windowStart.slice(11, 16)}:${String(u.values['samples'])}${u.final ? 'F' : ''}`).join(' ');
    await waitFor(() => done(seenOne.kpis) && done(seenPair.kpis), {
      timeoutMs: 90_000,
      what: () => `final traffic windows (want ${direct.size}, ${vehicles.length - 40} samples): one ${state(seenOne.kpis)}; pair ${state(seenPair.kpis)}; stats ${JSON.stringify([one.stats(), a.stats(), b.stats()])}`,
    });

    // Both instances of the pair took part.
    expect(a.stats().events).toBeGreaterThan(0);
    expect(b.stats().events).toBeGreaterThan(0);
    // Sums of non-integers merge in source order: equal to float rounding.
    const fixed = (p: KpiUpdate['partial']) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toFixed(6)) : v]));
    const figures = (m: Map<string, KpiUpdate>) => new Map([...traffic(m)].map(([k, u]) => [k, fixed(u.partial)]));
    expect(figures(seenPair.kpis)).toEqual(figures(seenOne.kpis));
    const direct3 = (u: KpiUpdate) => ({ samples: u.partial['samples'], vehicles: u.partial['vehicles'], speed: Number(Number(u.partial['speed_kmh_sum']).toFixed(6)) });
    expect(new Map([...traffic(seenOne.kpis)].map(([k, u]) => [k, direct3(u)]))).toEqual(
      new Map([...direct].map(([k, d]) => [k, { samples: d.samples, vehicles: d.devices.size, speed: Number((d.speed * 3.6).toFixed(6)) }])),
    );
    const anyWindow = [...traffic(seenOne.kpis).values()][0]!;
    expect(anyWindow.values['mean_speed_kmh']).toBeCloseTo((Number(anyWindow.partial['speed_kmh_sum']) / Number(anyWindow.partial['samples'])), 2);

    // Alerts: AQI raised for the unhealthy hour (AQI of 80 µg/m³ is 168) and cleared by the clean one; the incident raised and cleared.
    for (const seen of [seenOne, seenPair]) {
      await waitFor(() => seen.alerts.filter((x) => x.state === 'cleared').length >= 2, { timeoutMs: 30_000, what: 'alerts cleared' });
      // A rebalance replays from the commit and may send an alert event again: same id, same content.
      const unique = (rule: string) => [...new Map(seen.alerts.filter((x) => x.rule === rule).map((x) => [`${x.alertId}|${x.state}`, x])).values()];
      const aqi = unique('aqi');
      expect(aqi.map((x) => [x.state, x.value, x.threshold, x.severity])).toEqual([['raised', 168, 151, 'warning'], ['cleared', 22, 151, 'warning']]);
      expect(aqi[0]!.alertId).toBe(aqi[1]!.alertId);
      expect(unique('incident').map((x) => x.state)).toEqual(['raised', 'cleared']);
    }

    // What the dashboard reads: the KPI topic holds the contract's shape, keyed kpi|key|windowStart.
    const records = await readTopic(single.kpi, `${id}-reader`, 1);
    const first = JSON.parse(records[0]!.value!.toString()) as KpiUpdate;
    expect(records[0]!.key!.toString()).toBe(`${first.kpi}|${first.key}|${first.windowStart}`);
    expect(Object.keys(first)).toEqual(expect.arrayContaining(['kpi', 'key', 'windowStart', 'windowEnd', 'final', 'emittedAt', 'partial', 'values']));
  });

  it('dead-letters events later than the allowed lateness with the reason, and counts them', async () => {
    const id = `late${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(id);
    const liveTopics = liveTopicSet(id);
    await ensureTopics(brokers, [...topicSpecs(topics), ...liveTopicSpecs(liveTopics)]);
    // One device (one partition): a window, the watermark far past it, then an event for it.
    const at = (ms: number, i: number) => message('vehicle', { eventId: `${id}-${i}`, deviceId: 'bus-late', seq: i, dateObserved: new Date(ms).toISOString() });
    await kafka.produce(topics.events.vehicle, [at(T0 + 1_000, 0), at(T0 + 900_000, 1), at(T0 + 2_000, 2)]);
    const live = startLive({ brokers, groupId: `${id}-g`, topics, liveTopics });
    await live.start();
    await waitFor(() => live.stats().late === 1, { timeoutMs: 30_000, what: 'one late event' });
    const [letter] = await readTopic(topics.deadletter, `${id}-reader`, 1);
    const dead = JSON.parse(letter!.value!.toString()) as DeadLetter;
    expect(dead).toMatchObject({ stage: 'live', eventId: `${id}-2`, kind: 'vehicle', deviceId: 'bus-late' });
    expect(dead.reason).toMatch(/^late: event time 2026-12-01T12:00:02.000Z is for the traffic_district_5m window ending 2026-12-01T12:05:00.000Z/);
  });
});

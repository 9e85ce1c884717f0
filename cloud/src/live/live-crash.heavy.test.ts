// Restart safety of `sink live`: the process is killed with SIGKILL in the middle of the stream and
// started again; once the replay has passed, the KPI topic holds the same finished windows as an
// uninterrupted run over the same events.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Kafka, logLevel, type Consumer, type Message } from 'kafkajs';
import { exampleEvent, kafkaTopicSet, liveTopicSet, liveTopicSpecs, recordHeaders, silentLog, sleep, topicSpecs, waitFor, withTimeout } from '@city/protocol';
import { spawnCli } from '../../../test/support/cli.ts';
import { ensureTopics } from '../../../test/support/kafka.ts';
import { connectTestKafka, type TestKafka } from '../../../test/support/sink.ts';
import { onTeardown } from '../../../test/support/teardown.ts';
import { createLive } from './live.ts';
import type { KpiUpdate } from './output.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, '../cli/main.ts');
const T0 = Date.parse('2026-12-01T12:00:00.000Z');
let kafka: TestKafka;

beforeAll(async () => {
  kafka = await connectTestKafka(brokers, 'live-crash');
});
afterAll(async () => {
  await kafka?.close();
});

/** The latest record per key of a KPI topic, kept up to date while the test runs. */
async function follow(topic: string): Promise<Map<string, KpiUpdate>> {
  const latest = new Map<string, KpiUpdate>();
  const consumer: Consumer = new Kafka({ brokers, clientId: 'crash-reader', logLevel: logLevel.NOTHING }).consumer({ groupId: `${topic}-reader` });
  await consumer.connect();
  onTeardown(() => consumer.disconnect());
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void latest.set(message.key!.toString(), JSON.parse(message.value!.toString()) as KpiUpdate) });
  return latest;
}

// Sums of floats merged in another order differ in the last bits: compare at 1e-6.
const rounded = (p: KpiUpdate['partial']) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : v]));
const finals = (m: Map<string, KpiUpdate>) =>
  Object.fromEntries([...m].filter(([, u]) => u.final).map(([k, u]) => [k, rounded(u.partial)]).sort(([a], [b]) => String(a).localeCompare(String(b))));

describe('sink live after kill -9', () => {
  it('publishes the same finished windows as an uninterrupted run once the replay has passed', async () => {
    const id = `crash${randomUUID().slice(0, 8)}`;
    const topics = kafkaTopicSet(id);
    const reference = liveTopicSet(`${id}.ref`);
    const crashed = liveTopicSet(id);
    await ensureTopics(brokers, [...topicSpecs(topics), ...liveTopicSpecs(reference), ...liveTopicSpecs(crashed)]);

    // 60,000 vehicle events over an hour of event time, 300 devices; 3 % arrive up to 90 s out of order
    // (some within the allowed lateness, some too late).
    let seed = 5;
    const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const messages: Message[] = [];
    const N = 60_000;
    for (let i = 0; i < N; i++) {
      const late = rnd() < 0.03 ? rnd() * 90_000 : 0;
      const ms = T0 + Math.floor((i / N) * 3_600_000 - late);
      const where = rnd() < 0.5 ? { lat: 52.37, lon: 4.89 } : { lat: 52.365, lon: 4.93 };
      const e = exampleEvent('vehicle', { eventId: `${id}-${i}`, deviceId: `veh-${i % 300}`, seq: i, dateObserved: new Date(ms).toISOString(), location: where, speed: Math.round(rnd() * 250) / 10 });
      messages.push({ key: e.deviceId, value: JSON.stringify(e), headers: recordHeaders({ gatewayId: 'gw', receivedAt: ms, eventId: e.eventId }) });
    }
    await kafka.produce(topics.events.vehicle, messages);

    // The uninterrupted run, in process.
    const refTopic = await follow(reference.kpi);
    const ref = createLive({ brokers, groupId: `${id}-ref`, topics, liveTopics: reference, tickMs: 200, idleTimeoutMs: 1_500, mergeGraceMs: 1_000, sessionTimeoutMs: 6_000, log: silentLog });
    onTeardown(() => withTimeout(ref.close(), 30_000, 'closing the reference').catch(() => undefined));
    await ref.start();
    let settled = '';
    await waitFor(
      async () => {
        const now = JSON.stringify(finals(refTopic));
        const same = now === settled && Object.keys(finals(refTopic)).length >= 20;
        settled = now;
        if (!same) await sleep(2_000);
        return same;
      },
      { timeoutMs: 90_000, intervalMs: 10, what: () => `the reference run to settle (${Object.keys(finals(refTopic)).length} finals, ${refTopic.size} windows, ${JSON.stringify(ref.stats())})` },
    );
    expect(ref.stats().late).toBeGreaterThan(0);

    // The same events through the command, killed as soon as it has committed something.
    const args = ['live', '--brokers', brokers.join(','), '--topic-suffix', id, '--group', `${id}-cli`, '--tick-ms', '200', '--idle-timeout-ms', '1500', '--session-timeout-ms', '6000', '--log-level', 'warn'];
    const first = spawnCli(CLI, args);
    await waitFor(
      async () => {
        const offsets = await kafka.admin.fetchOffsets({ groupId: `${id}-cli`, topics: [topics.events.vehicle] });
        return offsets[0]!.partitions.some((p) => Number(p.offset) > 0);
      },
      { timeoutMs: 60_000, intervalMs: 20, what: 'a first commit of the command' },
    );
    first.child.kill('SIGKILL');
    const killed = await first.exited;
    expect(killed.signal).toBe('SIGKILL');
    const cliTopic = await follow(crashed.kpi);
    const partialBefore = Object.keys(finals(cliTopic)).length;

    const second = spawnCli(CLI, args);
    await waitFor(() => JSON.stringify(finals(cliTopic)) === settled, {
      timeoutMs: 150_000,
      what: () => `the restarted command to publish what the reference did (killed after ${partialBefore} finals; now ${Object.keys(finals(cliTopic)).length} of ${Object.keys(JSON.parse(settled) as object).length}; differing: ${JSON.stringify(Object.entries(JSON.parse(settled) as Record<string, unknown>).filter(([k, v]) => JSON.stringify(finals(cliTopic)[k]) !== JSON.stringify(v)).map(([k]) => [k, cliTopic.get(k)]))})`,
    });
    expect(finals(cliTopic)).toEqual(JSON.parse(settled));
    second.signal('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 400_000);
});

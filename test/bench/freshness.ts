// Benchmark (not a test): freshness, the time from an event's publish to Kafka until SQL over the lake
// (queryLake, the local query port) returns it; p50/p99 per roll setting of the sink, the default and lower ones,
// default and lower settings, under a steady background load, in the same run.
//   node test/bench/freshness.ts [--seconds 20] [--rate 500] [--settings default,5000:5000,1000:1000,250:250] [--poll-ms 100]
// A setting is maxSpanMs:maxAgeMs of the sink: under steady load a file rolls when its records span
// maxSpanMs of Kafka time; maxAgeMs rolls it once its partition has been idle that long.
// A probe is an ordinary valid event with a known id; a reader process runs SQL every poll-ms, so a
// figure includes up to one poll interval plus the time of the query itself.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners, type Message } from 'kafkajs';
import { EVENT_KINDS, kafkaTopicSet, recordHeaders, silentLog, sleep, topicSpecs } from '@city/protocol';
import { createSink, SINK_DEFAULTS } from '@city/cloud';
import { sampleEvent } from '../support/lake.ts';
import { ensureTopics, useKafka, KAFKA_VERSION } from '@city/deploy/kafka';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, rate: { type: 'string' }, settings: { type: 'string' }, 'poll-ms': { type: 'string' } },
});
const seconds = Number(values.seconds ?? 20);
const rate = Number(values.rate ?? 500);
const pollMs = Number(values['poll-ms'] ?? 100);
const settings = (values.settings ?? 'default,5000:5000,1000:1000,250:250').split(',').map((text) => {
  if (text === 'default') return { label: `default (${SINK_DEFAULTS.maxSpanMs}:${SINK_DEFAULTS.maxAgeMs})`, maxSpanMs: SINK_DEFAULTS.maxSpanMs, maxAgeMs: SINK_DEFAULTS.maxAgeMs };
  const [span, age] = text.split(':').map(Number);
  if (!Number.isInteger(span) || !Number.isInteger(age)) throw new Error(`--settings: "${text}" is not maxSpanMs:maxAgeMs`);
  return { label: `${span}:${age}`, maxSpanMs: span as number, maxAgeMs: age as number };
});
const PROBES_PER_SECOND = 10;

const dir = mkdtempSync(join(tmpdir(), 'freshness-bench-'));
const kafka = await useKafka();
const client = new Kafka({ clientId: 'freshness-bench', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
await producer.connect();

interface Result {
  label: string;
  /** Probes visible before the load stopped (the rest became visible once partitions went idle). */
  seenUnderLoad: number;
  probes: number;
  seen: number;
  p50: number;
  p99: number;
  max: number;
  queryMs: number;
}


function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function measure(setting: (typeof settings)[number]): Promise<Result> {
  const { maxAgeMs, maxSpanMs } = setting;
  const runId = `fresh${maxSpanMs}x${maxAgeMs}x${Date.now()}`;
  const topics = kafkaTopicSet(runId);
  await ensureTopics(kafka.brokers, topicSpecs(topics));
  const lakeDir = join(dir, runId);
  const sink = createSink({ brokers: kafka.brokers, lakeDir, topics, groupId: runId, maxAgeMs, maxSpanMs, log: silentLog });
  const flushes: { at: number; rows: number; ms: number }[] = [];
  const runStart = Date.now();
  sink.on('flush', (f) => flushes.push({ at: Date.now() - runStart, rows: f.rows, ms: f.durationMs }));
  await sink.start();

  const sent = new Map<string, number>();
  const seenAt = new Map<string, number>();
  let n = 0;
  const message = (kind: (typeof EVENT_KINDS)[number], id: string): { topic: string; message: Message } => {
    const event = sampleEvent(kind, n++, { idPrefix: id, dateObserved: Date.now() });
    return {
      topic: topics.events[kind],
      message: {
        key: event.deviceId,
        value: JSON.stringify(event),
        headers: recordHeaders({ gatewayId: 'gw-bench', receivedAt: Date.now(), eventId: event.eventId }),
      },
    };
  };

  let producing = true;
  // Background load plus probes, in 100 ms ticks; a probe's clock starts just before its send.
  const load = (async () => {
    const perTick = Math.max(1, Math.round(rate / 10));
    let tick = 0;
    while (producing) {
      const started = performance.now();
      const batch = Array.from({ length: perTick }, (_, i) => message(EVENT_KINDS[(tick + i) % EVENT_KINDS.length] as (typeof EVENT_KINDS)[number], `${runId}-bg`));
      const probe = message('vehicle', `${runId}-probe`);
      const probeId = JSON.parse(String(probe.message.value)).eventId as string;
      const byTopic = new Map<string, Message[]>();
      for (const m of [...batch, probe]) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m.message]);
      sent.set(probeId, Date.now());
      await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
      tick++;
      await sleep(Math.max(0, 1000 / PROBES_PER_SECOND - (performance.now() - started)));
    }
  })();

  // The reader is its own process, as a real one would be: its DuckDB work must not slow the sink's.
  const reader = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { queryLake } = await import('@city/cloud');
       const seen = new Set();
       for (;;) {
         const q0 = performance.now();
         const r = await queryLake(${JSON.stringify(lakeDir)}, ${JSON.stringify(`SELECT event_id FROM vehicle WHERE event_id LIKE '${runId}-probe-%'`)});
         const now = Date.now();
         const fresh = r.rows.map((row) => String(row.event_id)).filter((id) => !seen.has(id));
         for (const id of fresh) seen.add(id);
         console.log(JSON.stringify({ now, queryMs: performance.now() - q0, fresh }));
         await new Promise((res) => setTimeout(res, ${pollMs}));
       }`,
    ],
    // Run from this folder, so the reader resolves @city/cloud as this package does.
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: import.meta.dirname },
  );
  let queries = 0;
  let queryTotalMs = 0;
  const lines = createInterface({ input: reader.stdout });
  lines.on('line', (line) => {
    const { now, queryMs, fresh } = JSON.parse(line) as { now: number; queryMs: number; fresh: string[] };
    queries++;
    queryTotalMs += queryMs;
    for (const id of fresh) if (!seenAt.has(id)) seenAt.set(id, now);
  });

  await sleep(seconds * 1000);
  producing = false;
  await load;
  const seenUnderLoad = seenAt.size;
  // Drain: every probe must show up; stop waiting after a generous bound and report what is missing.
  const drainUntil = Date.now() + maxAgeMs + 30_000;
  while (seenAt.size < sent.size && Date.now() < drainUntil) await sleep(pollMs);
  reader.kill();
  await once(reader, 'exit');
  await sink.close();
  if (process.env['FRESHNESS_TRACE'] === '1') {
    const t0 = Math.min(...sent.values());
    for (const [id, t] of sent) process.stderr.write(`${setting.label} sent+${t - t0} latency ${(seenAt.get(id) ?? NaN) - t}\n`);
    process.stderr.write(`${setting.label} flushes ${JSON.stringify(flushes)}\n`);
  }

  const latencies = [...sent].filter(([id]) => seenAt.has(id)).map(([id, t]) => (seenAt.get(id) as number) - t).sort((a, b) => a - b);
  return {
    label: setting.label,
    seenUnderLoad,
    probes: sent.size,
    seen: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? NaN,
    queryMs: queryTotalMs / Math.max(1, queries),
  };
}

const results: Result[] = [];
for (const setting of settings) results.push(await measure(setting));
await producer.disconnect();
await kafka.stop();
rmSync(dir, { recursive: true, force: true });

console.log(`Kafka ${KAFKA_VERSION}; publish to Kafka → visible to queryLake; ${seconds} s per setting, ${rate} events/s background + ${PROBES_PER_SECOND} probes/s; poll every ${pollMs} ms; 2 cores shared`);
for (const r of results) {
  console.log(
    `  maxSpanMs:maxAgeMs ${r.label.padEnd(22)} p50 ${String(r.p50).padStart(6)} ms   p99 ${String(r.p99).padStart(6)} ms   max ${String(r.max).padStart(6)} ms   ` +
      `${r.seen}/${r.probes} probes seen, ${r.seenUnderLoad} of them under load   (mean query ${r.queryMs.toFixed(0)} ms)`,
  );
}
const missing = results.reduce((a, r) => a + r.probes - r.seen, 0);
if (missing > 0) console.log(`WARNING: ${missing} probes never became visible`);
process.exit(missing > 0 ? 1 : 0);

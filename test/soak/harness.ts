// Offline-buffer soak: simulated devices → gateway (a child process, killed with SIGKILL at random and
// restarted on the same buffer file) → TCP fault proxy (drops and blackholes) → a Kafka broker of its
// own whose advertised listener is the proxy, so every byte the gateway sends to Kafka — bootstrap and
// partition leaders alike — crosses the proxy. At the end the gateway drains and Kafka is read back.
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { createLifecycle, HEADERS, headerText, kafkaTopicSet, sleep, textLog, topicSpecs, waitFor, type Log } from '@city/protocol';
import { SIM_KINDS, createAckLedger, createFleet } from '@city/device-sim';
import { ensureTopics, startKafka } from '@city/deploy/kafka';
import { createTcpProxy, type ProxyMode } from '../support/tcp-proxy.ts';
import { freePort } from '../support/net.ts';
import { gatewayProcess } from './gateway-process.ts';

export interface SoakOptions {
  minutes: number;
  devices: number;
  ratePerDevice?: number;
  /** Lower bounds the schedule guarantees (it adds more when time allows). */
  minOutages?: number;
  minKills?: number;
  /** After the faults end: how long the gateway gets to deliver every acknowledged event. */
  drainTimeoutMs?: number;
  seed?: number;
  /** Progress lines; default `[soak] …` on stderr. */
  log?: Log;
}

export interface SoakReport {
  suffix: string;
  /** Replays the same fault schedule and device seed. */
  seed: number;
  sent: number;
  acknowledged: number;
  /** Distinct acknowledged event ids found in Kafka. */
  delivered: number;
  lost: number;
  /** Kafka records whose event id had already been read (redeliveries after a kill or a cut). */
  duplicates: number;
  /** Event ids in Kafka that no device saw acknowledged (accepted, then the PUBACK died with the process). */
  unacknowledgedDelivered: number;
  recordsRead: number;
  recordsWithoutId: number;
  outages: { mode: ProxyMode; ms: number }[];
  kills: number;
  /** Eviction counts by lane as the gateway reported them, or 'n/a' when it reports none. */
  evicted: Record<string, number> | 'n/a';
  bufferHighWaterBytes: number;
  /** Highest buffer_depth (records waiting) the gateway's /metrics showed. */
  bufferDepthHighWater: number | undefined;
  /** buffer_depth last read before the final heal: the backlog the drain time is about. */
  depthAtLastHeal: number | undefined;
  /** From the last heal until the gateway's /metrics showed an empty buffer. */
  bufferEmptyMs: number | undefined;
  longestOfflineMs: number;
  /** From the last heal until every acknowledged id had been read back from Kafka. */
  drainMs: number | undefined;
  deviceReconnects: number;
  gatewayLog: string;
}

/** Deterministic PRNG so a failing schedule can be replayed with the same seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How long closing every part (fleet, reader, gateway, Kafka, proxy, files) may take before the rest is forced. */
const CLOSE_DEADLINE_MS = 90_000;

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? textLog('soak');
  const seed = options.seed ?? Date.now();
  const rand = mulberry32(seed);
  const between = (lo: number, hi: number) => lo + rand() * (hi - lo);
  const sleepUntil = (at: number) => sleep(at - Date.now());
  const durationMs = options.minutes * 60_000;
  const minOutages = options.minOutages ?? 3;
  const minKills = options.minKills ?? 3;
  const drainTimeoutMs = options.drainTimeoutMs ?? 180_000;
  const suffix = `soak${Date.now()}${Math.floor(rand() * 1e6)}`;
  const topics = kafkaTopicSet(suffix);

  // Every part is closed in reverse order of opening, once, within one deadline; a failed start
  // closes what it had opened. A test harness: its lifecycle errors need no catalog codes.
  const life = createLifecycle({
    name: 'soak',
    deadlineMs: CLOSE_DEADLINE_MS,
    errors: { alreadyStarted: (d) => new Error(d), closed: (d) => new Error(d), timeout: (d) => new Error(d) },
  });
  const dir = mkdtempSync(join(tmpdir(), 'city-soak-'));
  const bufferPath = join(dir, 'buffer.db');
  const gatewayLog = join(dir, 'gateway.log');
  let highWater = 0;
  const sampleBuffer = () => {
    let bytes = 0;
    for (const suffixName of ['', '-wal']) {
      try {
        bytes += statSync(bufferPath + suffixName).size;
      } catch {
        // Not created yet.
      }
    }
    highWater = Math.max(highWater, bytes);
  };

  const [kafkaPort, proxyPort, mqttPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const viaProxy = [`127.0.0.1:${proxyPort}`];
  const proxy = createTcpProxy({ targetHost: '127.0.0.1', targetPort: kafkaPort, port: proxyPort });
  const logStream = createWriteStream(gatewayLog);
  const configPath = join(dir, 'gateway.json');
  const gateway = gatewayProcess({
    args: ['--config', configPath, '--port', String(mqttPort), '--host', '127.0.0.1', '--buffer', bufferPath, '--brokers', viaProxy.join(','), '--id', `gw-${suffix}`, '--health-interval', '0', '--http', `127.0.0.1:${httpPort}`],
    port: mqttPort,
    log: logStream,
  });
  const perKind = Math.max(1, Math.floor(options.devices / SIM_KINDS.length));
  const devices = Object.fromEntries(SIM_KINDS.map((k, i) => [k, perKind + (i < options.devices - perKind * SIM_KINDS.length ? 1 : 0)]));
  const fleet = createFleet({
    url: `mqtt://127.0.0.1:${mqttPort}`,
    seed: Math.floor(rand() * 1e9),
    deviceIdPrefix: suffix,
    devices,
    ratePerDevice: options.ratePerDevice ?? 1,
    reconnectPeriod: 500,
    // A loaded machine can take long to accept hundreds of connections at once.
    connectTimeoutMs: 60_000,
  });
  fleet.on('deviceError', () => undefined);
  fleet.on('publishError', () => undefined);
  const ledger = createAckLedger(fleet);
  // Polls (and misses) until the gateway listens; reads its counters across kills.
  const poller = pollMetrics(`http://127.0.0.1:${httpPort}/metrics`);

  await life.start(async () => {
    life.defer('metrics poller', () => poller.stop());
    life.defer('files', () => {
      logStream.end();
      if (process.env['SOAK_KEEP'] !== '1') rmSync(dir, { recursive: true, force: true });
    });
    const sampler = setInterval(sampleBuffer, 250);
    sampler.unref();
    life.defer('buffer sampler', () => clearInterval(sampler));
    await proxy.start();
    life.defer('proxy', () => proxy.close());
    const kafka = await startKafka({ port: kafkaPort, advertisedPort: proxyPort, heapMb: 384, log });
    life.defer('kafka', () => kafka.stop());
    await ensureTopics(viaProxy, topicSpecs(topics));

    // Short Kafka timeouts so a blackhole is noticed within seconds rather than the 30 s default.
    // Device authentication is not what this soak is about: devices connect without a registry.
    writeFileSync(configPath, JSON.stringify({ topics, auth: { mode: 'none' }, kafka: { requestTimeoutMs: 5_000 }, forward: { maxBackoffMs: 2_000 } }));
    await gateway.start();
    life.defer('gateway', () => gateway.stop(), () => gateway.kill9());
    life.defer('fleet', () => fleet.stop());
    life.defer('ack ledger', () => ledger.dispose());
    await fleet.start();
  });
  try {
    log('info', 'running', { devices: options.devices, gateway: mqttPort, kafka: kafkaPort, proxy: proxyPort, minutes: options.minutes });

    // Fault schedule: cycles of connected time then an outage (drop or blackhole), with one kill -9
    // per cycle at a random moment — sometimes inside the outage, when the buffer holds a backlog.
    const outages: { mode: ProxyMode; ms: number }[] = [];
    let kills = 0;
    let lastHealAt = Date.now();
    let depthAtLastHeal: number | undefined;
    const started = Date.now();
    const end = started + durationMs;
    const killAndRestart = async () => {
      await gateway.kill9();
      poller.processEnded();
      kills++;
      sampleBuffer();
      await sleep(between(200, 2_000));
      await gateway.start();
      log('info', 'kill -9 and restart', { kill: kills, atSeconds: Math.round((Date.now() - started) / 1000) });
    };
    while (Date.now() < end || outages.length < minOutages || kills < minKills) {
      const remaining = Math.max(0, end - Date.now());
      const scale = Math.max(0.5, Math.min(1, remaining / 40_000));
      const connectedMs = between(2_000, 8_000) * scale;
      const outageMs = between(4_000, 20_000) * scale;
      const cycleStart = Date.now();
      const killAt = cycleStart + between(0, connectedMs + outageMs);
      const mode: ProxyMode = outages.length % 2 === 0 ? 'drop' : 'blackhole';
      let killed = false;
      // Runs the cycle's kill if it falls before `until`, then waits for `until`.
      const phase = async (until: number) => {
        if (!killed && killAt < until) {
          await sleepUntil(killAt);
          killed = true;
          await killAndRestart();
        }
        await sleepUntil(until);
      };
      await phase(cycleStart + connectedMs);
      proxy.setMode(mode);
      const outageStart = Date.now();
      await phase(outageStart + outageMs);
      // No kill yet this cycle: kill now, while offline with a backlog in the buffer.
      if (!killed) await killAndRestart();
      depthAtLastHeal = poller.depth();
      proxy.setMode('forward');
      lastHealAt = Date.now();
      outages.push({ mode, ms: lastHealAt - outageStart });
      log('info', 'outage over', { outage: outages.length, mode, seconds: Number((outages.at(-1)!.ms / 1000).toFixed(1)), acknowledged: ledger.valid.size });
    }

    // Faults over: devices stop, the gateway drains through the healed proxy.
    const healedAt = lastHealAt;
    await fleet.stop();
    const stats = fleet.stats();
    const acked = new Set(ledger.valid.keys());
    log('info', 'faults over; reading Kafka back', { sent: stats.published, acknowledged: acked.size });

    const seen = new Map<string, number>();
    const readUpTo = new Map<string, number>();
    let recordsRead = 0;
    let recordsWithoutId = 0;
    let missing = acked.size;
    let allSeenAt: number | undefined;
    const client = new kafkajs.Kafka({ clientId: `soak-reader-${suffix}`, brokers: viaProxy, logLevel: kafkajs.logLevel.NOTHING });
    const consumer = client.consumer({ groupId: `soak-reader-${suffix}` });
    life.defer('kafka reader', () => consumer.disconnect());
    await consumer.connect();
    const allTopics = [...Object.values(topics.events), topics.deadletter];
    await consumer.subscribe({ topics: allTopics, fromBeginning: true });
    await consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          recordsRead++;
          const id = headerText(message.headers, HEADERS.eventId);
          if (id === undefined) {
            recordsWithoutId++;
            continue;
          }
          const n = seen.get(id) ?? 0;
          seen.set(id, n + 1);
          if (n === 0 && acked.has(id)) missing--;
        }
        if (batch.messages.length > 0) readUpTo.set(`${batch.topic}/${batch.partition}`, Number(batch.lastOffset()) + 1);
        if (missing === 0 && allSeenAt === undefined) allSeenAt = Date.now();
      },
    });
    // Drained: every acknowledged id read back and the gateway's buffer empty (or the drain time is up,
    // and what is missing is reported as lost).
    await waitFor(() => missing === 0 && poller.bufferEmptyAfter(healedAt) !== undefined, { timeoutMs: drainTimeoutMs, intervalMs: 250, what: 'the drain' }).catch(() => undefined);
    // With the buffer empty the gateway sends nothing more: reading to the end of every partition counts
    // every redelivery as a duplicate.
    const admin = client.admin();
    await admin.connect();
    const ends = new Map<string, number>();
    try {
      for (const topic of allTopics) for (const p of await admin.fetchTopicOffsets(topic)) if (Number(p.high) > 0) ends.set(`${topic}/${p.partition}`, Number(p.high));
    } finally {
      await admin.disconnect();
    }
    await waitFor(() => [...ends].every(([key, high]) => (readUpTo.get(key) ?? 0) >= high), { timeoutMs: 60_000, intervalMs: 100, what: 'reading every partition to its end' });
    sampleBuffer();

    let duplicates = 0;
    let unacknowledgedDelivered = 0;
    for (const [id, n] of seen) {
      duplicates += n - 1;
      if (!acked.has(id)) unacknowledgedDelivered++;
    }
    return {
      suffix,
      seed,
      sent: stats.published,
      acknowledged: acked.size,
      delivered: acked.size - missing,
      lost: missing,
      duplicates,
      unacknowledgedDelivered,
      recordsRead,
      recordsWithoutId,
      outages,
      kills,
      evicted: poller.evicted(),
      bufferDepthHighWater: poller.depthHighWater(),
      depthAtLastHeal,
      bufferEmptyMs: ((at) => (at === undefined ? undefined : at - healedAt))(poller.bufferEmptyAfter(healedAt)),
      bufferHighWaterBytes: highWater,
      longestOfflineMs: Math.max(0, ...outages.map((o) => o.ms)),
      drainMs: allSeenAt === undefined ? undefined : allSeenAt - healedAt,
      deviceReconnects: stats.reconnects,
      gatewayLog,
    };
  } finally {
    await life.close();
  }
}

interface MetricsPoller {
  /** A kill -9 ends a process and its counters: fold them into the totals. */
  processEnded(): void;
  evicted(): Record<string, number> | 'n/a';
  depthHighWater(): number | undefined;
  /** Last buffer_depth read. */
  depth(): number | undefined;
  /** First time at or after `since` that the buffer showed depth 0. */
  bufferEmptyAfter(since: number): number | undefined;
  stop(): void;
}

/**
 * Polls the gateway's Prometheus /metrics: buffer depth and the per-lane eviction counters. Counters
 * restart at 0 with each process, so the last value read before a kill is added to the totals
 * (evictions in the last half second before a kill can be missed; the figure is a lower bound).
 */
function pollMetrics(url: string): MetricsPoller {
  const totals = new Map<string, number>();
  let current = new Map<string, number>();
  let sawEviction = false;
  let depthMax: number | undefined;
  let depthLast: number | undefined;
  const empties: number[] = [];
  const tick = async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (!res.ok) return;
      const text = await res.text();
      const next = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (line.startsWith('#')) continue;
        const m = /^([a-z_:]+)(?:\{([^}]*)\})?\s+(\S+)/i.exec(line);
        if (m === null) continue;
        const [, name = '', labels = '', raw = ''] = m;
        const value = Number(raw);
        if (!Number.isFinite(value)) continue;
        if (/buffer_depth$/.test(name)) {
          depthMax = Math.max(depthMax ?? 0, value);
          depthLast = value;
          if (value === 0) empties.push(Date.now());
        } else if (/evict/.test(name)) {
          sawEviction = true;
          const lane = /lane="([^"]*)"/.exec(labels)?.[1] ?? 'all';
          next.set(lane, (next.get(lane) ?? 0) + value);
        }
      }
      current = next;
    } catch {
      // Killed or busy: the next tick tries again.
    }
  };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void tick().finally(() => (busy = false));
  }, 500);
  timer.unref();
  return {
    processEnded() {
      for (const [lane, n] of current) totals.set(lane, (totals.get(lane) ?? 0) + n);
      current = new Map();
    },
    evicted() {
      if (!sawEviction) return 'n/a';
      const out: Record<string, number> = {};
      for (const map of [totals, current]) for (const [lane, n] of map) out[lane] = (out[lane] ?? 0) + n;
      return out;
    },
    depthHighWater: () => depthMax,
    depth: () => depthLast,
    bufferEmptyAfter: (since) => empties.find((t) => t >= since),
    stop: () => clearInterval(timer),
  };
}

export function formatReport(r: SoakReport): string {
  const s = (ms: number | undefined) => (ms === undefined ? 'not reached' : `${(ms / 1000).toFixed(1)} s`);
  return [
    `seed                     ${r.seed} (topics *.${r.suffix})`,
    `sent                     ${r.sent}`,
    `acknowledged             ${r.acknowledged}`,
    `delivered                ${r.delivered}`,
    `lost                     ${r.lost}`,
    `duplicates               ${r.duplicates} (records repeating an event id)`,
    `delivered, never acked   ${r.unacknowledgedDelivered} (PUBACK died with the process; the device re-sent)`,
    `records read             ${r.recordsRead} (${r.recordsWithoutId} without an event id)`,
    `evicted (by lane)        ${r.evicted === 'n/a' ? 'n/a (the gateway reports no evictions yet)' : JSON.stringify(r.evicted)}`,
    `buffer high-water mark   ${r.bufferDepthHighWater ?? 'n/a'} records (/metrics buffer_depth), ${(r.bufferHighWaterBytes / 1e6).toFixed(1)} MB (db + wal files)`,
    `outages                  ${r.outages.length} (${r.outages.map((o) => `${o.mode} ${s(o.ms)}`).join(', ')})`,
    `kill -9                  ${r.kills}`,
    `longest offline span     ${s(r.longestOfflineMs)}`,
    `drain after reconnect    ${s(r.bufferEmptyMs)} (last heal → buffer_depth 0, from ${r.depthAtLastHeal ?? 'n/a'} records); ${s(r.drainMs)} (last heal → every acknowledged id read back)`,
    `device reconnects        ${r.deviceReconnects}`,
  ].join('\n');
}

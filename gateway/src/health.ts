// Gateway health: system figures sampled off the hot path and cached, combined with the gateway's own
// counters into gateway_health events, /healthz and /metrics.
import { randomUUID } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { availableParallelism, freemem, loadavg, totalmem, uptime } from 'node:os';
import { Worker } from 'node:worker_threads';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayHealth, Location } from '@city/protocol';
import { gatewayErrors } from './errors.ts';
import type { Settled, SystemWorkerReply } from './system-worker.ts';

/** One reading of the machine the gateway runs on. */
export interface SystemSample {
  /** Epoch ms when the sample was complete. */
  at: number;
  /** How long sampling took. */
  durationMs: number;
  /** CPU load, 0 to 1. */
  cpuLoad: number;
  memoryUsed: number;
  memoryTotal: number;
  /** Board temperature in °C; absent when the board has no sensor. */
  temperature?: number;
  /** Free and total bytes of the filesystem that holds the buffer. */
  diskFree: number;
  diskTotal: number;
  /** Seconds since the machine booted. */
  systemUptime: number;
  /** Parts that could not be read this time (a fallback value stands in). */
  errors: string[];
}

export type SystemReading = Omit<SystemSample, 'at' | 'durationMs'>;
/** Reads the system; injectable so tests can stand in a board with or without a sensor. */
export type SystemProbe = (bufferDir: string) => Promise<SystemReading>;

const message = (reason: unknown): string => (reason instanceof Error ? reason.message : String(reason));

let worker: Worker | undefined;
let nextRequest = 0;
const waiting = new Map<number, (reply: SystemWorkerReply) => void>();

/** systeminformation's readings, from a worker thread shared by every gateway in the process. */
function readSystem(): Promise<SystemWorkerReply> {
  if (worker === undefined) {
    // Same extension as this module: .ts from source, .js once built.
    // A few readings every interval: a small heap keeps the reader's share of a small board's memory small.
    const w = new Worker(new URL(`./system-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
    });
    w.on('message', (reply: SystemWorkerReply) => {
      waiting.get(reply.id)?.(reply);
      waiting.delete(reply.id);
      if (waiting.size === 0) w.unref();
    });
    w.on('error', () => {
      if (worker === w) worker = undefined;
    });
    w.on('exit', () => {
      if (worker === w) worker = undefined;
      const failed = (id: number): SystemWorkerReply => {
        const error = { ok: false as const, error: 'system reader stopped' };
        return { id, load: error, mem: error, temp: error };
      };
      for (const [id, resolve] of waiting) resolve(failed(id));
      waiting.clear();
    });
    // Referenced only while a reading is awaited: an idle reader never keeps the process alive.
    w.unref();
    worker = w;
  }
  const id = nextRequest++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    worker!.ref();
    worker!.postMessage({ id });
  });
}

const fromWorker = <T>(settled: Settled<T>): PromiseSettledResult<T> =>
  settled.ok ? { status: 'fulfilled', value: settled.value } : { status: 'rejected', reason: new Error(settled.error) };

/** The real probe: systeminformation (in a worker) for CPU, memory and temperature; statfs for the buffer's own filesystem. */
export const systemProbe: SystemProbe = async (bufferDir) => {
  // statfs asks exactly the buffer's filesystem; si.fsSize() would spawn df for every mount.
  const [system, disk] = await Promise.all([readSystem(), statfs(bufferDir).then(
    (value) => ({ status: 'fulfilled', value }) as const,
    (reason: unknown) => ({ status: 'rejected', reason }) as const,
  )]);
  const load = fromWorker(system.load);
  const mem = fromWorker(system.mem);
  const temp = fromWorker(system.temp);
  const errors: string[] = [];
  let cpuLoad: number;
  if (load.status === 'fulfilled' && Number.isFinite(load.value.currentLoad)) {
    cpuLoad = load.value.currentLoad / 100;
  } else {
    errors.push(`cpu: ${load.status === 'rejected' ? message(load.reason) : 'no reading'}`);
    cpuLoad = loadavg()[0]! / availableParallelism();
  }
  let memoryTotal = totalmem();
  let memoryUsed = memoryTotal - freemem();
  if (mem.status === 'fulfilled' && mem.value.total > 0) {
    memoryTotal = mem.value.total;
    // "available" leaves out the page cache the kernel gives back on demand.
    memoryUsed = Math.max(0, mem.value.total - (mem.value.available || mem.value.free));
  } else if (mem.status === 'rejected') {
    errors.push(`memory: ${message(mem.reason)}`);
  }
  let diskFree = 0;
  let diskTotal = 0;
  if (disk.status === 'fulfilled') {
    diskFree = disk.value.bavail * disk.value.bsize;
    diskTotal = disk.value.blocks * disk.value.bsize;
  } else {
    errors.push(`disk: ${message(disk.reason)}`);
  }
  const reading: SystemReading = {
    cpuLoad: Math.min(1, Math.max(0, cpuLoad)),
    memoryUsed: Math.round(memoryUsed),
    memoryTotal: Math.round(memoryTotal),
    diskFree,
    diskTotal,
    systemUptime: uptime(),
    errors,
  };
  // No sensor reads as null (or -1 on some boards): leave the field out rather than report 0.
  const celsius = temp.status === 'fulfilled' ? temp.value.main : null;
  if (typeof celsius === 'number' && Number.isFinite(celsius) && celsius > -60 && celsius < 150) reading.temperature = celsius;
  else if (temp.status === 'rejected') errors.push(`temperature: ${message(temp.reason)}`);
  return reading;
};

export interface HealthMonitorOptions {
  bufferPath: string;
  sampleIntervalMs: number;
  sampleTimeoutMs: number;
  probe?: SystemProbe;
  warn?: (message: string, fields?: Record<string, unknown>) => void;
  /** Called after each successful sample (the gateway updates its scrape-independent rates here). */
  onSample?: (sample: SystemSample) => void;
}

export interface HealthMonitor {
  /** Samples now and then every interval (timer unref'd). */
  start(): void;
  /** Takes a sample; callers during one sampling share its promise. */
  sample(): Promise<SystemSample>;
  /** The last sample, if any: what /metrics and /healthz serve. */
  latest(): SystemSample | undefined;
  /** The last sample, or the first one once it is taken. */
  current(): Promise<SystemSample>;
  /** Samples that failed or timed out (the previous sample stays). */
  failures(): number;
  close(): void;
}

export function createHealthMonitor(options: HealthMonitorOptions): HealthMonitor {
  const probe = options.probe ?? systemProbe;
  const bufferDir = dirname(resolve(options.bufferPath));
  let last: SystemSample | undefined;
  let inFlight: Promise<SystemSample> | undefined;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const sample = (): Promise<SystemSample> => {
    if (inFlight) return inFlight;
    const started = performance.now();
    let deadline: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      deadline = setTimeout(
        () => reject(gatewayErrors.create('GW_HEALTH_SAMPLE', `no reading within ${options.sampleTimeoutMs} ms`)),
        options.sampleTimeoutMs,
      );
      deadline.unref();
    });
    inFlight = Promise.race([probe(bufferDir), timeout])
      .then(
        (reading) => {
          last = { ...reading, at: Date.now(), durationMs: Math.round(performance.now() - started) };
          if (reading.errors.length > 0) options.warn?.('some health figures could not be read', { errors: reading.errors });
          options.onSample?.(last);
          return last;
        },
        (err: unknown) => {
          failures++;
          throw err instanceof Error && 'code' in err ? err : gatewayErrors.create('GW_HEALTH_SAMPLE', message(err), err);
        },
      )
      .finally(() => {
        clearTimeout(deadline);
        inFlight = undefined;
      });
    return inFlight;
  };

  const sampleQuietly = (): void => {
    sample().catch((err: Error) => options.warn?.('health sample failed; serving the previous one', { error: err.message }));
  };

  return {
    start() {
      if (closed || timer) return;
      sampleQuietly();
      timer = setInterval(sampleQuietly, options.sampleIntervalMs);
      timer.unref();
    },
    sample,
    latest: () => last,
    current: () => (last ? Promise.resolve(last) : sample()),
    failures: () => failures,
    close() {
      closed = true;
      clearInterval(timer);
      timer = undefined;
    },
  };
}

/** Messages per second between two readings of a counter. */
export interface RateMeter {
  /** Rate since the previous call (the first call measures from creation). */
  next(count: number, now?: number): number;
}

export function createRateMeter(initial = 0, startedAt = Date.now()): RateMeter {
  let previous = { at: startedAt, count: initial };
  return {
    next(count, now = Date.now()) {
      const seconds = Math.max(0.001, (now - previous.at) / 1000);
      // A counter that went backwards (a restart of its source) counts as no traffic, never negative.
      const rate = Math.max(0, count - previous.count) / seconds;
      previous = { at: now, count };
      return rate;
    },
  };
}

export interface HealthEventInput {
  gatewayId: string;
  seq: number;
  sample: SystemSample;
  bufferDepth: number;
  bufferBytes: number;
  oldestUnsentAgeMs: number | null;
  connectedDevices: number;
  inRate: number;
  outRate: number;
  /** Buffer counters since start, so nothing the buffer dropped or refused goes unreported. */
  totals?: { evicted: number; expired: number; refused: number; replayed: number; bufferCorrupt: number };
  location?: Location;
  now?: number;
}

export function buildHealthEvent(input: HealthEventInput): GatewayHealth {
  const now = input.now ?? Date.now();
  const { sample } = input;
  const event: GatewayHealth = {
    kind: 'gateway_health',
    // Stored once and resent as stored, so a random id stays stable across retries and replays.
    eventId: randomUUID(),
    deviceId: input.gatewayId,
    seq: input.seq,
    dateObserved: new Date(now).toISOString(),
    cpuLoad: sample.cpuLoad,
    memoryUsed: sample.memoryUsed,
    memoryTotal: sample.memoryTotal,
    diskFree: sample.diskFree,
    uptime: process.uptime(),
    bufferDepth: input.bufferDepth,
    bufferBytes: input.bufferBytes,
    connectedDevices: input.connectedDevices,
    inRate: input.inRate,
    outRate: input.outRate,
  };
  if (input.totals !== undefined) {
    event.evictedTotal = input.totals.evicted;
    event.expiredTotal = input.totals.expired;
    event.refusedTotal = input.totals.refused;
    event.replayedTotal = input.totals.replayed;
    event.bufferCorruptTotal = input.totals.bufferCorrupt;
  }
  if (sample.temperature !== undefined) event.temperature = sample.temperature;
  if (input.oldestUnsentAgeMs !== null) event.oldestUnsentAge = input.oldestUnsentAgeMs / 1000;
  if (input.location !== undefined) event.location = input.location;
  return event;
}

/** Everything /healthz, /metrics and `gateway status` report, taken at one moment. */
export interface StatusSnapshot {
  gatewayId: string;
  state: string;
  /** False after a group commit failed, until one succeeds again. */
  bufferWritable: boolean;
  bufferError?: string;
  /** Last known: unreachable after a Kafka error, reachable after Kafka acknowledged a batch. */
  kafka: 'unknown' | 'reachable' | 'unreachable';
  /** gateway.stats(), with whatever counters the buffer adds (evictions, expiries, refusals). */
  stats: Readonly<Record<string, unknown>>;
  sample?: SystemSample;
  sampleFailures: number;
  inRate: number;
  outRate: number;
  uptime: number;
}

export interface HealthVerdict {
  healthy: boolean;
  reasons: string[];
}

/** Healthy = serving and the buffer takes writes. Kafka being away is normal (that is what the buffer is for). */
export function judgeHealth(snapshot: StatusSnapshot): HealthVerdict {
  const reasons: string[] = [];
  if (snapshot.state !== 'running') reasons.push(`not serving (state ${snapshot.state})`);
  if (!snapshot.bufferWritable) reasons.push(`buffer not writable${snapshot.bufferError ? `: ${snapshot.bufferError}` : ''}`);
  return { healthy: reasons.length === 0, reasons };
}

// System sampling: CPU, memory and temperature from systeminformation in a worker thread (its readings
// spawn processes and block), disk from statfs of the buffer's own file system.
import { statfs } from 'node:fs/promises';
import { availableParallelism, freemem, loadavg, totalmem, uptime } from 'node:os';
import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Settled, SystemWorkerReply } from './system-worker.ts';

const message = (reason: unknown): string => (reason instanceof Error ? reason.message : String(reason));

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


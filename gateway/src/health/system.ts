// System sampling, read straight from the kernel on the gateway's own thread: CPU load from the
// counters behind os.cpus() (the change since the previous sample), memory from /proc/meminfo,
// temperature from the thermal zones in /sys, disk from statfs of the buffer's own file system. No
// process is spawned and no second V8 isolate is kept: a systeminformation worker thread cost the
// gateway ~15 MB of resident memory and a few spawned commands per sample.
import { readFile, readdir, statfs } from 'node:fs/promises';
import { availableParallelism, cpus, freemem, loadavg, totalmem, uptime } from 'node:os';
import { join } from 'node:path';

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

/** Busy and total CPU time of every core together (ms), as the kernel counts them. */
function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

let previousCpu: { busy: number; total: number } | undefined;

/** Load since the previous sample in this process (since boot for the first one). */
function cpuLoadSincePrevious(): number {
  const now = cpuTimes();
  if (now.total === 0) throw new Error('no CPU counters');
  const before = previousCpu ?? { busy: 0, total: 0 };
  previousCpu = now;
  const total = now.total - before.total;
  return total > 0 ? (now.busy - before.busy) / total : now.busy / now.total;
}

/** MemAvailable leaves out the page cache the kernel gives back on demand; elsewhere node's own figures. */
async function memory(): Promise<{ total: number; available: number }> {
  let text: string;
  try {
    text = await readFile('/proc/meminfo', 'latin1');
  } catch {
    return { total: totalmem(), available: freemem() };
  }
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  if (!(total > 0) || !Number.isFinite(available)) throw new Error('/proc/meminfo lacks MemTotal or MemAvailable');
  return { total, available };
}

const THERMAL = '/sys/class/thermal';
/** Zone types that name the processor (Raspberry Pi: cpu-thermal; x86: x86_pkg_temp); else the first zone. */
const CPU_ZONE = /cpu|soc|pkg|core/i;

/** °C of the processor's thermal zone, or null when the board exposes none. */
async function temperature(): Promise<number | null> {
  let zones: string[];
  try {
    zones = (await readdir(THERMAL)).filter((z) => z.startsWith('thermal_zone')).sort();
  } catch {
    return null;
  }
  let chosen: string | undefined;
  for (const zone of zones) {
    const type = await readFile(join(THERMAL, zone, 'type'), 'latin1').catch(() => '');
    chosen ??= zone;
    if (CPU_ZONE.test(type)) {
      chosen = zone;
      break;
    }
  }
  if (chosen === undefined) return null;
  const milli = Number((await readFile(join(THERMAL, chosen, 'temp'), 'latin1')).trim());
  return Number.isFinite(milli) ? milli / 1000 : null;
}

/** The real probe: kernel counters for CPU, memory and temperature; statfs for the buffer's own filesystem. */
export const systemProbe: SystemProbe = async (bufferDir) => {
  const settle = <T>(p: Promise<T>): Promise<PromiseSettledResult<T>> =>
    p.then(
      (value) => ({ status: 'fulfilled', value }) as const,
      (reason: unknown) => ({ status: 'rejected', reason }) as const,
    );
  const errors: string[] = [];
  let cpuLoad: number;
  try {
    cpuLoad = cpuLoadSincePrevious();
  } catch (err) {
    errors.push(`cpu: ${message(err)}`);
    cpuLoad = loadavg()[0]! / availableParallelism();
  }
  const [mem, temp, disk] = await Promise.all([settle(memory()), settle(temperature()), settle(statfs(bufferDir))]);
  let memoryTotal = totalmem();
  let memoryUsed = memoryTotal - freemem();
  if (mem.status === 'fulfilled') {
    memoryTotal = mem.value.total;
    memoryUsed = Math.max(0, mem.value.total - mem.value.available);
  } else {
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
  // No sensor: leave the field out rather than report 0.
  const celsius = temp.status === 'fulfilled' ? temp.value : null;
  if (typeof celsius === 'number' && Number.isFinite(celsius) && celsius > -60 && celsius < 150) reading.temperature = celsius;
  else if (temp.status === 'rejected') errors.push(`temperature: ${message(temp.reason)}`);
  return reading;
};

// What the city's parts that run as processes of their own share: figures from /proc, free ports, and a
// stop that asks first (SIGTERM) and forces after a deadline.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const STOP_DEADLINE_MS = 45_000;
const TICKS_PER_S = 100; // USER_HZ on Linux

export interface ProcessFigures {
  pid: number;
  /** CPU time (user + system) since the process started; NaN where /proc cannot be read. */
  cpuSeconds: number;
  rssMb: number;
  running: boolean;
}

export const exitedOf = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

export function procFigures(child: ChildProcess | undefined): ProcessFigures {
  const pid = child?.pid ?? 0;
  const running = child !== undefined && !exitedOf(child);
  if (!running) return { pid, cpuSeconds: NaN, rssMb: 0, running };
  return pidFigures(pid);
}

/** Figures of any process by id (e.g. the Kafka broker's JVM); not running when /proc has no such process. */
export function pidFigures(pid: number): ProcessFigures {
  const running = true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // utime and stime: fields 14 and 15, i.e. 12th and 13th after the command name.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
    return { pid, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S, rssMb: rssKb / 1024, running };
  } catch {
    return { pid, cpuSeconds: NaN, rssMb: NaN, running: false };
  }
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => done(true)));
  });
}

/** SIGTERM, then SIGKILL after the deadline; resolves once the process is gone. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || exitedOf(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts a part (a Node script with its arguments) in a process group of its own — a Ctrl-C reaches only
 * the city, which closes the parts in order — appending its output to logPath; each JSON log line of its
 * stderr is handed to onEntry. `logRead` settles once the log has all of its output.
 */
export function spawnPart(args: readonly string[], logPath: string, onEntry: (entry: Record<string, unknown>) => void): { child: ChildProcess; logRead: Promise<unknown> } {
  const out = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out, { end: false });
  const lines = createInterface({ input: child.stderr! });
  const logRead = once(lines, 'close').then(() => out.end());
  lines.on('line', (line) => {
    out.write(`${line}\n`);
    if (!line.startsWith('{')) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // Not a log line.
    }
    onEntry(entry);
  });
  return { child, logRead };
}

// The city's sink as a process of its own: the sink CLI (`sink run`, as the sink image runs it) with the
// city's topics, live tables and processing schedule. In the city's process the sink shared one event
// loop with the live engine, the dashboard and PGlite: every await of a flush (DuckDB, fsync, rename)
// waited behind their work, so at a few thousand events/s a flush of 622 rows took 51 s and the lake
// fell behind with the sink's CPU idle. Its figures come from its /healthz; the final ones from the
// "sink closed" line of its log, which the city reads (and copies to <dir>/logs/sink.log).
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, type Log } from '@city/protocol';
import { emptyStats as emptySinkStats, type SinkStats } from '@city/cloud';
import { cityErrors } from './errors.ts';
import { exitedOf, freePort, procFigures, spawnPart, stopChild, type ProcessFigures } from './processes.ts';

const SINK_CLI = fileURLToPath(import.meta.resolve('@city/cloud/cli'));
const POLL_EVERY_MS = 1_000;

export interface CitySinkOptions {
  brokers: readonly string[];
  lakeDir: string;
  logDir: string;
  topicSuffix?: string | undefined;
  /** Files cut after this much record time and wall time. */
  maxSpanMs: number;
  maxAgeMs: number;
  /** Processed zone rebuilt this often (0: not). */
  processEveryMs: number;
  log: Log;
}

export interface CitySink {
  readonly groupId: string;
  /** Starts the process and resolves once its consumer joined the group. */
  start(): Promise<void>;
  /** SIGTERM (it writes and commits what it holds, then exits); SIGKILL past the deadline. */
  close(): Promise<void>;
  /** The last figures it reported (empty until the first), final once it has closed. */
  stats(): SinkStats;
  process(): ProcessFigures;
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

export function createCitySink(options: CitySinkOptions): CitySink {
  const { log } = options;
  const groupId = options.topicSuffix === undefined ? 'city-sink' : `city-sink-${options.topicSuffix}`;
  let child: ChildProcess | undefined;
  let httpPort = 0;
  let stats = emptySinkStats();
  let state = 'starting';
  let final = false;
  let poller: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let logRead: Promise<unknown> = Promise.resolve();
  const logPath = join(options.logDir, 'sink.log');
  // A city that exits without close() (an uncaught error) still asks its sink to write, commit and stop.
  const onExit = () => {
    if (child !== undefined && !exitedOf(child)) child.kill('SIGTERM');
  };

  const poll = async () => {
    if (child === undefined || exitedOf(child) || final) return;
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { state: string; stats: SinkStats };
      if (!final) {
        stats = body.stats;
        state = body.state;
      }
    } catch {
      // Busy or not listening yet: the last figures stand.
    }
  };

  return {
    groupId,
    async start() {
      httpPort = await freePort();
      process.on('exit', onExit);
      const args = [
        SINK_CLI, 'run',
        '--brokers', options.brokers.join(','),
        '--lake', options.lakeDir,
        '--group', groupId,
        '--client-id', groupId,
        '--max-span-ms', String(options.maxSpanMs),
        '--max-age-ms', String(options.maxAgeMs),
        '--live-tables',
        // Well under the city's own deadline (60 s, which the gateways' closing also spends — at 10,000
        // devices a 40 s drain overran it): what is not committed by then stays in Kafka for the next run.
        '--close-timeout-ms', '25000',
        '--process-every-ms', String(options.processEveryMs),
        '--http', `127.0.0.1:${httpPort}`,
        // Info: each flush is a line in sink.log, and the closing totals are read from the last one.
        '--log-level', 'info',
        ...(options.topicSuffix === undefined ? [] : ['--topic-suffix', options.topicSuffix]),
      ];
      const part = spawnPart(args, logPath, ({ level, message, time: _time, ...fields }) => {
        if (message === 'sink closed') {
          // The totals after its last flush and commit.
          const { buffered: _b, ...rest } = fields as unknown as SinkStats;
          stats = { ...emptySinkStats(), ...rest, buffered: (fields as { buffered?: number }).buffered ?? 0 };
          final = true;
        }
        // The city's log gets the sink's warnings and errors, as the in-process sink gave them.
        if ((level === 'warn' || level === 'error') && LEVELS.has(level)) log(level, String(message), { part: 'sink', ...fields });
      });
      const c = part.child;
      child = c;
      logRead = part.logRead;
      c.once('exit', (code, signal) => {
        if (closing === undefined) log('error', 'the city sink exited', { code, signal, log: logPath });
      });
      await waitFor(
        async () => {
          if (exitedOf(c)) throw cityErrors.create('CITY_PART_FAILED', `the sink exited with ${c.exitCode ?? c.signalCode} before joining its group; see ${logPath}`);
          await poll();
          return state === 'running';
        },
        { timeoutMs: 120_000, intervalMs: 200, what: 'the city sink joining its consumer group' },
      );
      poller = setInterval(() => void poll(), POLL_EVERY_MS);
      poller.unref();
    },
    close() {
      closing ??= (async () => {
        clearInterval(poller);
        await poll();
        await stopChild(child);
        await logRead;
        process.off('exit', onExit);
      })();
      return closing;
    },
    stats: () => ({ ...stats, rows: { ...stats.rows } }),
    process: () => procFigures(child),
  };
}

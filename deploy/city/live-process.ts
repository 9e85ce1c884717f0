// The city's live engine (KPIs and alerts) as a process of its own: the sink CLI's `live` command. In the
// city's process its record batches (decode, window, merge) ran 2.5–4.7 s without a break under load,
// which the dashboard's page updates and stats polls waited behind. Its log goes to <dir>/logs/live.log;
// the city's log gets its warnings and errors.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor, type Log } from '@city/protocol';
import { cityErrors } from './errors.ts';
import { exitedOf, procFigures, spawnPart, stopChild, type ProcessFigures } from './processes.ts';

const CLI = fileURLToPath(import.meta.resolve('@city/cloud/cli'));

export interface CityLive {
  /** Starts the process and resolves once the engine has started (its consumer group joined). */
  start(): Promise<void>;
  /** SIGTERM (it emits what it holds and commits), SIGKILL past the deadline. */
  close(): Promise<void>;
  process(): ProcessFigures;
}

export function createCityLive(options: { brokers: readonly string[]; logDir: string; topicSuffix?: string | undefined; log: Log }): CityLive {
  const { log } = options;
  const id = options.topicSuffix === undefined ? 'city-live' : `city-live-${options.topicSuffix}`;
  const logPath = join(options.logDir, 'live.log');
  let child: ChildProcess | undefined;
  let started = false;
  let closing: Promise<void> | undefined;
  let logRead: Promise<unknown> = Promise.resolve();
  const onExit = () => {
    if (child !== undefined && !exitedOf(child)) child.kill('SIGTERM');
  };
  return {
    async start() {
      const args = [CLI, 'live', '--brokers', options.brokers.join(','), '--group', id, '--client-id', id, '--log-level', 'info', ...(options.topicSuffix === undefined ? [] : ['--topic-suffix', options.topicSuffix])];
      process.on('exit', onExit);
      const part = spawnPart(args, logPath, ({ level, message, time: _time, ...fields }) => {
        if (message === 'live started') started = true;
        if (level === 'warn' || level === 'error') log(level, String(message), { part: 'live', ...fields });
      });
      const c = part.child;
      child = c;
      logRead = part.logRead;
      c.once('exit', (code, signal) => {
        if (closing === undefined) log('error', 'the city live engine exited', { code, signal, log: logPath });
      });
      await waitFor(
        () => {
          if (exitedOf(c)) throw cityErrors.create('CITY_PART_FAILED', `the live engine exited with ${c.exitCode ?? c.signalCode} before starting; see ${logPath}`);
          return started;
        },
        { timeoutMs: 120_000, intervalMs: 100, what: 'the city live engine starting' },
      );
    },
    close() {
      closing ??= (async () => {
        await stopChild(child);
        await logRead;
        process.off('exit', onExit);
      })();
      return closing;
    },
    process: () => procFigures(child),
  };
}

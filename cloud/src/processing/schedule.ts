// The processing job on a schedule, beside the sink in its process (sink run --process-every-ms, the
// local city) or on its own (cloud process --every-ms): every round builds what changed (the open hour,
// hours just closed, late rows), so the processed tables trail the lake by about one interval.
// The DuckDB engine and its views stay open from round to round: a round re-creates only the views
// whose files changed (runProcessing refreshes first), then pays its SELECTs and COPYs. A failed round
// closes the engine; the next opens a fresh one. Rounds never overlap; close() stops the timer, waits
// for the round under way to reach a consistent point (a build switches or is abandoned), then closes
// the engine.
import type { Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { createLocalCatalog, type LocalCatalog } from '../ports/catalog/local.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import type { ObjectStore } from '../ports/store/port.ts';
import type { ProcessedTableName } from './definitions.ts';
import { createDuckDBProcessing, type ProcessingEngine } from './engine.ts';
import { runProcessing, type ProcessOptions, type ProcessReport } from './job.ts';

export interface ProcessingScheduleOptions {
  lakeDir: string;
  /** Milliseconds between the end of one round and the start of the next. */
  everyMs: number;
  graceMs?: number;
  /** Tables and inclusive UTC date range each round considers (all by default). */
  tables?: readonly ProcessedTableName[];
  from?: string;
  to?: string;
  /** The lake's store (a local folder by default; not closed by the schedule). */
  store?: ObjectStore;
  now?: () => number;
  log: Log;
  /** After each round (tests, the city's stats). */
  processed?: (report: ProcessReport) => void;
}

export interface ProcessingSchedule {
  start(): void;
  /** Runs a round now (after the one under way, if any): its report, or undefined if it failed or the schedule is closing. */
  round(): Promise<ProcessReport | undefined>;
  /** Rounds run so far and partitions they built. */
  stats(): { rounds: number; built: number; late: number; errors: number };
  close(): Promise<void>;
}

/**
 * A round looks for orphaned version folders (a listing of every table's versions) on the schedule's first
 * round, after a failed one, and then at most this often: only a run killed or failed before its switch
 * leaves them, and one younger than the grace period is kept anyway.
 */
export const SWEEP_EVERY_MS = 10 * 60_000;

interface Opened {
  store: ObjectStore;
  catalog: LocalCatalog;
  engine: ProcessingEngine;
}

export function createProcessingSchedule(options: ProcessingScheduleOptions): ProcessingSchedule {
  if (!Number.isInteger(options.everyMs) || options.everyMs < 1) throw cloudErrors.create('CLD_INVALID_OPTIONS', '/everyMs must be a positive integer');
  const stats = { rounds: 0, built: 0, late: 0, errors: 0 };
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let opened: Opened | undefined;
  // Rounds run one after the other: a timer round and a round() call never overlap.
  let rounds: Promise<unknown> = Promise.resolve();
  let closing: Promise<void> | undefined;
  /** When the last round that swept for orphans started; undefined: the next round sweeps. */
  let sweptAt: number | undefined;
  const now = options.now ?? Date.now;

  const open = async (): Promise<Opened> => {
    const store = options.store ?? createLocalFolderStore(options.lakeDir);
    const catalog = createLocalCatalog(options.lakeDir);
    try {
      return { store, catalog, engine: await createDuckDBProcessing(options.lakeDir, store, catalog) };
    } catch (err) {
      await shut({ store, catalog });
      throw err;
    }
  };
  const shut = async (o: Partial<Opened> & Pick<Opened, 'store' | 'catalog'>): Promise<void> => {
    await o.engine?.close().catch(() => undefined);
    await o.catalog.close().catch(() => undefined);
    if (options.store === undefined) await o.store.close().catch(() => undefined);
  };

  const once = async (): Promise<ProcessReport | undefined> => {
    if (closing !== undefined) return undefined;
    try {
      opened ??= await open();
      const { store, catalog, engine } = opened;
      const scope: Partial<ProcessOptions> = {
        ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
        ...(options.tables === undefined ? {} : { tables: options.tables }),
        ...(options.from === undefined ? {} : { from: options.from }),
        ...(options.to === undefined ? {} : { to: options.to }),
        ...(options.now === undefined ? {} : { now: options.now }),
      };
      const startedAt = now();
      const sweep = sweptAt === undefined || startedAt - sweptAt >= SWEEP_EVERY_MS;
      const report = await runProcessing({ store, catalog, engine, signal: abort.signal, log: options.log, sweepOrphans: sweep, ...scope });
      if (sweep) sweptAt = startedAt;
      stats.rounds++;
      stats.built += report.built.length;
      stats.late += report.late.partitions;
      options.log(report.built.length > 0 ? 'info' : 'debug', 'processed', { built: report.built.length, late: report.late, retired: report.retired });
      options.processed?.(report);
      return report;
    } catch (err) {
      stats.errors++;
      options.log('warn', 'processing round failed; the next round tries again', { error: cloudErrors.create('CLD_PROCESSING', errorMessage(err), err) });
      // Whatever state the engine was left in, the next round starts from a fresh one.
      const failed = opened;
      opened = undefined;
      // A failed round may have left version folders that nothing references.
      sweptAt = undefined;
      if (failed !== undefined) await shut(failed);
      return undefined;
    }
  };

  const enqueue = (): Promise<ProcessReport | undefined> => {
    const run = rounds.then(once);
    rounds = run;
    return run;
  };

  const schedule = (): void => {
    if (closing !== undefined) return;
    timer = setTimeout(() => {
      void enqueue().finally(schedule);
    }, options.everyMs);
    timer.unref();
  };

  return {
    start: schedule,
    round: enqueue,
    stats: () => ({ ...stats }),
    close() {
      closing ??= (async () => {
        clearTimeout(timer);
        abort.abort();
        await rounds;
        const last = opened;
        opened = undefined;
        if (last !== undefined) await shut(last);
      })();
      return closing;
    },
  };
}

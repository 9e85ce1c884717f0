// The processing job on a schedule, beside the sink in its process (sink run --process-every-ms, the
// local city): every round builds what changed (the open hour, hours just closed, late rows), so the
// processed tables trail the lake by about one interval. Rounds never overlap; close() stops the timer
// and waits for the round under way to reach a consistent point (a build switches or is abandoned).
import type { Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { createLocalCatalog } from '../ports/catalog/local.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import type { ObjectStore } from '../ports/store/port.ts';
import { createDuckDBProcessing } from './engine.ts';
import { runProcessing, type ProcessReport } from './job.ts';

export interface ProcessingScheduleOptions {
  lakeDir: string;
  /** Milliseconds between the end of one round and the start of the next. */
  everyMs: number;
  graceMs?: number;
  /** The lake's store (a local folder by default; not closed by the schedule). */
  store?: ObjectStore;
  log: Log;
  /** After each round (tests, the city's stats). */
  processed?: (report: ProcessReport) => void;
}

export interface ProcessingSchedule {
  start(): void;
  /** Rounds run so far and partitions they built. */
  stats(): { rounds: number; built: number; late: number; errors: number };
  close(): Promise<void>;
}

export function createProcessingSchedule(options: ProcessingScheduleOptions): ProcessingSchedule {
  if (!Number.isInteger(options.everyMs) || options.everyMs < 1) throw cloudErrors.create('CLD_INVALID_OPTIONS', '/everyMs must be a positive integer');
  const stats = { rounds: 0, built: 0, late: 0, errors: 0 };
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const once = async (): Promise<void> => {
    const store = options.store ?? createLocalFolderStore(options.lakeDir);
    const catalog = createLocalCatalog(options.lakeDir);
    try {
      const engine = await createDuckDBProcessing(options.lakeDir, store, catalog);
      try {
        const report = await runProcessing({ store, catalog, engine, signal: abort.signal, log: options.log, ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }) });
        stats.rounds++;
        stats.built += report.built.length;
        stats.late += report.late.partitions;
        options.log(report.built.length > 0 ? 'info' : 'debug', 'processed', { built: report.built.length, late: report.late, retired: report.retired });
        options.processed?.(report);
      } finally {
        await engine.close();
      }
    } catch (err) {
      stats.errors++;
      options.log('warn', 'processing round failed; the next round tries again', { error: cloudErrors.create('CLD_PROCESSING', errorMessage(err), err) });
    } finally {
      await catalog.close();
      if (options.store === undefined) await store.close();
    }
  };

  const schedule = (): void => {
    if (closing !== undefined) return;
    timer = setTimeout(() => {
      round = once().finally(() => {
        round = undefined;
        schedule();
      });
    }, options.everyMs);
    timer.unref();
  };

  return {
    start: schedule,
    stats: () => ({ ...stats }),
    close() {
      closing ??= (async () => {
        clearTimeout(timer);
        abort.abort();
        await round;
      })();
      return closing;
    },
  };
}

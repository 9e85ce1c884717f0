// The city's warehouse: PGlite in <dir>/warehouse, loaded from the lake on a timer, in a process of its
// own (warehouse-child.ts): PGlite is synchronous WebAssembly, and in the city's process its start and
// loads held the event loop for seconds at a time. It starts in the background (PGlite and the tables
// take a few seconds), so the city is up before its warehouse is; a load that fails is logged and tried
// again next round (nothing half-loads). Each round loads the processed zone too: partitions the
// processing schedule rebuilt replace their rows in PGlite. The dashboard reads the load ledger through
// a Warehouse that forwards its queries to that process.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { type Log, type LogLevel } from '@city/protocol';
import {
  createLocalCatalog,
  createLocalFolderStore,
  createPgliteWarehouse,
  createWarehouseLoader,
  type QueryResult,
  type Warehouse,
  type WarehouseLoader,
} from '@city/cloud';
import { cityErrors } from './errors.ts';
import { exitedOf, procFigures, stopChild, type ProcessFigures } from './processes.ts';

const CHILD = join(import.meta.dirname, 'warehouse-child.ts');
/** A query the loader's process has not answered by then fails (the dashboard asks again later). */
const QUERY_TIMEOUT_MS = 30_000;

export type WarehouseTotals = { objects: number; rows: number; processedPartitions: number; processedRows: number; rounds: number; lastError?: string };

export interface CityWarehouse {
  /** Objects and rows loaded since start, processed partitions replaced, and the last error if the last round failed. */
  stats(): WarehouseTotals;
  /** The warehouse once opened (the dashboard reads its load ledger for its freshness); reads only. */
  warehouse(): Warehouse | undefined;
  /** The loader's process. */
  process(): ProcessFigures;
  /** Stops the timer, waits for the round under way, closes PGlite, and the process exits. */
  close(): Promise<void>;
}

export type WarehouseChildMessage =
  | { type: 'ready'; engine: Warehouse['engine']; dialect: Warehouse['dialect']; schema: string; canCopyCsv: boolean }
  | { type: 'stats'; stats: WarehouseTotals; final?: boolean }
  | { type: 'log'; level: LogLevel; message: string; fields?: Record<string, unknown> }
  | { type: 'result'; id: number; result: QueryResult }
  | { type: 'error'; id: number; message: string };

export type WarehouseParentMessage = { type: 'query'; id: number; sql: string } | { type: 'close' };

export interface WarehouseRounds {
  stats(): WarehouseTotals;
  warehouse(): Warehouse | undefined;
  close(): Promise<void>;
}

/** The loading loop itself (run by warehouse-child.ts): a round at once, then one every `everyMs` after the last ended. */
export function runWarehouseRounds(options: {
  lakeDir: string;
  dataDir: string;
  everyMs: number;
  log: Log;
  opened?: (warehouse: Warehouse) => void;
  loaded?: (totals: WarehouseTotals) => void;
}): WarehouseRounds {
  const store = createLocalFolderStore(options.lakeDir);
  const catalog = createLocalCatalog(options.lakeDir);
  let warehouse: Warehouse | undefined;
  let loader: WarehouseLoader | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let current: Promise<void> = Promise.resolve();
  const totals: WarehouseTotals = { objects: 0, rows: 0, processedPartitions: 0, processedRows: 0, rounds: 0 };

  const round = async () => {
    try {
      if (loader === undefined) {
        warehouse = await createPgliteWarehouse({ dataDir: options.dataDir });
        options.opened?.(warehouse);
        loader = createWarehouseLoader({ warehouse, store, liveTables: true, processed: { catalog }, log: options.log });
        await loader.init();
      }
      const result = await loader.load();
      totals.objects += result.objects;
      totals.rows += result.rows;
      totals.processedPartitions += result.processed?.partitions ?? 0;
      totals.processedRows += result.processed?.rows ?? 0;
      totals.rounds++;
      delete totals.lastError;
    } catch (err) {
      totals.lastError = err instanceof Error ? err.message : String(err);
      options.log('warn', 'warehouse load failed; trying again next round', { error: totals.lastError });
    }
    options.loaded?.({ ...totals });
  };

  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      current = round().finally(schedule);
    }, options.everyMs);
  };
  current = round().finally(schedule);

  let closing: Promise<void> | undefined;
  return {
    stats: () => ({ ...totals }),
    warehouse: () => (closed ? undefined : warehouse),
    close() {
      closing ??= (async () => {
        closed = true;
        clearTimeout(timer);
        await current;
        await loader?.close();
        await warehouse?.close();
        await catalog.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/** Starts the loader's process; figures arrive after each round. */
export function startCityWarehouse(options: { lakeDir: string; dataDir: string; everyMs: number; logDir: string; log: Log }): CityWarehouse {
  const { log } = options;
  let totals: WarehouseTotals = { objects: 0, rows: 0, processedPartitions: 0, processedRows: 0, rounds: 0 };
  let remote: Warehouse | undefined;
  let closing: Promise<void> | undefined;
  let nextId = 1;
  const waiting = new Map<number, { done: (r: QueryResult) => void; fail: (e: Error) => void; timer: NodeJS.Timeout }>();
  const logPath = join(options.logDir, 'warehouse.log');
  const out = createWriteStream(logPath, { flags: 'a' });
  // Its own process group: a Ctrl-C reaches only the city, which closes the parts in order.
  const child: ChildProcess = fork(CHILD, [JSON.stringify({ lakeDir: options.lakeDir, dataDir: options.dataDir, everyMs: options.everyMs })], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  const outputRead = Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]).then(() => out.end());
  const failAll = (why: string) => {
    for (const [id, w] of waiting) {
      clearTimeout(w.timer);
      w.fail(cityErrors.create('CITY_PART_FAILED', why));
      waiting.delete(id);
    }
  };
  child.once('exit', (code, signal) => {
    failAll(`the warehouse loader's process exited (${code ?? signal}); see ${logPath}`);
    if (closing === undefined) log('error', "the city warehouse loader's process exited", { code, signal, log: logPath });
  });

  const ask = (sql: string) =>
    new Promise<QueryResult>((done, fail) => {
      if (exitedOf(child) || !child.connected) {
        fail(cityErrors.create('CITY_PART_FAILED', `the warehouse loader's process is not running; see ${logPath}`));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        fail(cityErrors.create('CITY_PART_FAILED', `the warehouse did not answer within ${QUERY_TIMEOUT_MS} ms`));
      }, QUERY_TIMEOUT_MS);
      timer.unref();
      waiting.set(id, { done, fail, timer });
      child.send({ type: 'query', id, sql } satisfies WarehouseParentMessage);
    });

  child.on('message', (m: WarehouseChildMessage) => {
    switch (m.type) {
      case 'ready':
        remote = {
          engine: m.engine,
          dialect: m.dialect,
          schema: m.schema,
          canCopyCsv: m.canCopyCsv,
          transaction: () => Promise.reject(cityErrors.create('CITY_CLOSED', "the city's warehouse is loaded by its own process; this handle reads only")),
          query: ask,
          // The loader's process owns PGlite; the city closes it with the loader.
          close: () => Promise.resolve(),
        };
        return;
      case 'stats':
        totals = m.stats;
        return;
      case 'log':
        log(m.level, m.message, { part: 'warehouse', ...m.fields });
        return;
      case 'result':
      case 'error': {
        const w = waiting.get(m.id);
        if (w === undefined) return;
        waiting.delete(m.id);
        clearTimeout(w.timer);
        if (m.type === 'result') w.done(m.result);
        else w.fail(cityErrors.create('CITY_PART_FAILED', `warehouse query failed: ${m.message}`));
      }
    }
  });

  return {
    stats: () => ({ ...totals }),
    warehouse: () => (closing === undefined ? remote : undefined),
    process: () => procFigures(child),
    close() {
      closing ??= (async () => {
        // Its last round finishes and PGlite closes before it exits (the final totals come just before).
        if (child.connected) child.send({ type: 'close' } satisfies WarehouseParentMessage);
        await stopChildAfter(child);
        await outputRead;
        failAll('the city is stopping');
      })();
      return closing;
    },
  };
}

/** Waits for the process asked to close to exit; a signal (then SIGKILL) only when it does not. */
async function stopChildAfter(child: ChildProcess): Promise<void> {
  if (exitedOf(child)) return;
  const exited = once(child, 'exit');
  const nudge = setTimeout(() => void stopChild(child), 30_000);
  await exited;
  clearTimeout(nudge);
}

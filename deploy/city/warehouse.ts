// The city's warehouse: PGlite in <dir>/warehouse, loaded from the lake on a timer. It starts in the
// background (PGlite and the tables take a few seconds), so the city is up before its warehouse is; a
// load that fails is logged and tried again next round (nothing half-loads). Each round loads the
// processed zone too: partitions the processing schedule rebuilt replace their rows in PGlite.
import { type Log } from '@city/protocol';
import { createLocalCatalog, createLocalFolderStore, createPgliteWarehouse, createWarehouseLoader, type Warehouse, type WarehouseLoader } from '@city/cloud';

export interface CityWarehouse {
  /** Objects and rows loaded since start, processed partitions replaced, and the last error if the last round failed. */
  stats(): { objects: number; rows: number; processedPartitions: number; processedRows: number; rounds: number; lastError?: string };
  /** The warehouse once opened (the dashboard reads its load ledger for its freshness). */
  warehouse(): Warehouse | undefined;
  /** Stops the timer, waits for the round under way, closes PGlite. */
  close(): Promise<void>;
}

export function startCityWarehouse(options: { lakeDir: string; dataDir: string; everyMs: number; log: Log }): CityWarehouse {
  const store = createLocalFolderStore(options.lakeDir);
  const catalog = createLocalCatalog(options.lakeDir);
  let warehouse: Warehouse | undefined;
  let loader: WarehouseLoader | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let current: Promise<void> = Promise.resolve();
  const totals: ReturnType<CityWarehouse['stats']> = { objects: 0, rows: 0, processedPartitions: 0, processedRows: 0, rounds: 0 };

  const round = async () => {
    try {
      if (loader === undefined) {
        warehouse = await createPgliteWarehouse({ dataDir: options.dataDir });
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
  };

  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      current = round().finally(schedule);
    }, options.everyMs);
    timer.unref();
  };
  current = round().finally(schedule);

  return {
    stats: () => ({ ...totals }),
    warehouse: () => (closed ? undefined : warehouse),
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      await current;
      await loader?.close();
      await warehouse?.close();
      await catalog.close();
      await store.close();
    },
  };
}

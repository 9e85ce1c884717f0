// The warehouse tables of the live engine's outputs, from the protocol's lake table schemas (one
// definition for Parquet, catalog and DDL): kpi_windows (finished windows, each final revision) and
// alerts (each transition). No partition columns: the Power BI Lambda reads them by emitted_at, its
// watermark column, which the loader keeps increasing per row written (see live-loader.ts).
// No DuckDB here: the Lambda's bundle imports these definitions.
import { ALERTS_LAKE_TABLE, KPI_WINDOWS_LAKE_TABLE, type TableSchema } from '@city/protocol';
import type { WarehouseColumn, WarehouseTable } from './schema.ts';

function liveTable(schema: TableSchema, key: readonly string[], lengths: Readonly<Record<string, number>>): WarehouseTable {
  return {
    name: schema.name,
    columns: schema.columns.map((c): WarehouseColumn => (c.type === 'string' && lengths[c.name] !== undefined ? { name: c.name, type: c.type, maxLength: lengths[c.name] as number } : { name: c.name, type: c.type })),
    fileColumns: schema.columns.map((c) => c.name),
    key: [...key],
    sortKey: 'emitted_at',
  };
}

/** One row per final revision of a KPI window. */
export const KPI_WINDOWS_TABLE: WarehouseTable = liveTable(KPI_WINDOWS_LAKE_TABLE, ['kpi', 'key', 'window_start', 'revision'], {
  kpi: 64,
  key: 128,
  values_json: 4096,
  partial_json: 4096,
});

/** One row per alert transition (raised — again when it escalates — then cleared). */
export const ALERTS_TABLE: WarehouseTable = liveTable(ALERTS_LAKE_TABLE, ['alert_id', 'state'], {
  alert_id: 128,
  rule: 64,
  key: 128,
  state: 16,
  severity: 16,
  message: 1024,
});

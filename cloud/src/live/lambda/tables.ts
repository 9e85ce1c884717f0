// The warehouse tables the Power BI Lambda reads, in the warehouse's DDL style (WarehouseTable →
// createTableSql): finished KPI windows and alert events as the live engine emits them, and the Lambda's
// own watermark per source table. The warehouse loader does not fill kpi_windows/alerts yet; whatever
// writes them (the live engine's Kafka topics through a loader, or COPY from the lake) keeps emitted_at
// increasing per row written, which is what the watermark follows.
import { createTableSql, type WarehouseColumn, type WarehouseDialect, type WarehouseTable } from '../../warehouse/schema.ts';
import type { Warehouse } from '../../warehouse/port.ts';

const col = (name: string, type: WarehouseColumn['type'], maxLength?: number): WarehouseColumn => (maxLength === undefined ? { name, type } : { name, type, maxLength });

export const KPI_WINDOWS = 'kpi_windows';
export const ALERTS = 'alerts';
export const POWERBI_WATERMARK = 'powerbi_watermark';

/** One row per KPI window revision: the window, its key and its finished figures as JSON (one shape for every KPI). */
export const KPI_WINDOWS_TABLE: WarehouseTable = {
  name: KPI_WINDOWS,
  columns: [
    col('kpi', 'string', 64),
    col('key', 'string', 128),
    col('window_start', 'timestamp'),
    col('window_end', 'timestamp'),
    col('revision', 'int64'),
    col('final', 'boolean'),
    col('emitted_at', 'timestamp'),
    col('values_json', 'string', 4096),
  ],
  fileColumns: [],
  key: ['kpi', 'key', 'window_start', 'revision'],
  sortKey: 'emitted_at',
};

/** One row per alert transition (raised, then cleared). */
export const ALERTS_TABLE: WarehouseTable = {
  name: ALERTS,
  columns: [
    col('alert_id', 'string', 128),
    col('rule', 'string', 64),
    col('key', 'string', 128),
    col('state', 'string', 16),
    col('severity', 'string', 16),
    col('raised_at', 'timestamp'),
    col('cleared_at', 'timestamp'),
    col('value', 'double'),
    col('threshold', 'double'),
    col('message', 'string', 1024),
    col('emitted_at', 'timestamp'),
  ],
  fileColumns: [],
  key: ['alert_id', 'state'],
  sortKey: 'emitted_at',
};

/** Up to where each source table has been accepted by Power BI. */
export const POWERBI_WATERMARK_TABLE: WarehouseTable = {
  name: POWERBI_WATERMARK,
  columns: [col('source_table', 'string', 64), col('watermark', 'timestamp'), col('rows_pushed', 'int64'), col('updated_at', 'timestamp')],
  fileColumns: [],
  key: ['source_table'],
};

export const LIVE_WAREHOUSE_TABLES: readonly WarehouseTable[] = [KPI_WINDOWS_TABLE, ALERTS_TABLE, POWERBI_WATERMARK_TABLE];

/** CREATE TABLE IF NOT EXISTS for the three tables, in the warehouse's schema. */
export function liveWarehouseDdl(dialect: WarehouseDialect, schema: string): string[] {
  return LIVE_WAREHOUSE_TABLES.map((t) => createTableSql(t, dialect, schema));
}

export async function ensureLiveWarehouseTables(warehouse: Warehouse): Promise<void> {
  for (const sql of liveWarehouseDdl(warehouse.dialect, warehouse.schema)) await warehouse.transaction([{ sql }]);
}

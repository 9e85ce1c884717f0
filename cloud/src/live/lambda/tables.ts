// The warehouse tables the Power BI Lambda reads, in the warehouse's DDL style (WarehouseTable →
// createTableSql): finished KPI windows and alert events as the live engine emits them, and the Lambda's
// own watermark per source table. The warehouse loader fills kpi_windows/alerts from the lake tables the
// sink writes from the live topics (warehouse/live-loader.ts), keeping emitted_at increasing per row
// written, which is what the watermark follows.
import { createTableSql, type WarehouseColumn, type WarehouseDialect, type WarehouseTable } from '../../warehouse/schema.ts';
import type { Warehouse } from '../../warehouse/port.ts';
import { ALERTS_TABLE, KPI_WINDOWS_TABLE } from '../../warehouse/live-tables.ts';

const col = (name: string, type: WarehouseColumn['type'], maxLength?: number): WarehouseColumn => (maxLength === undefined ? { name, type } : { name, type, maxLength });

export const KPI_WINDOWS = 'kpi_windows';
export const ALERTS = 'alerts';
export const POWERBI_WATERMARK = 'powerbi_watermark';

export { ALERTS_TABLE, KPI_WINDOWS_TABLE };

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

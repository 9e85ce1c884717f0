// The live engine's outputs as lake and warehouse tables: the records of the KPI topic (window updates)
// and of the alerts topic (raise/clear transitions), their wire shape (checked where the sink reads them)
// and one table schema each, which the Parquet files, the catalog and the warehouse DDL all derive from.
import { Type, type Static } from '@sinclair/typebox';
import { PARTITION_KEYS, type CellValue, type Column, type TableSchema } from './table.ts';
import { parseEventTime } from './validate.ts';

const Iso = Type.String({ minLength: 1, description: 'UTC time, RFC 3339' });
const Figures = Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean(), Type.Null()]));

/** A record of the KPI topic (key `<kpi>|<key>|<windowStart>`), as the live engine publishes it. */
export const LiveKpiRecord = Type.Object(
  {
    kpi: Type.String({ minLength: 1, maxLength: 64 }),
    key: Type.String({ maxLength: 128 }),
    windowStart: Iso,
    windowEnd: Iso,
    final: Type.Boolean(),
    emittedAt: Iso,
    partial: Figures,
    values: Figures,
    sources: Type.Integer({ minimum: 0 }),
    revision: Type.Integer({ minimum: 0 }),
  },
  // The engine may add fields; the table keeps the ones it knows.
  { additionalProperties: true },
);
export type LiveKpiRecord = Static<typeof LiveKpiRecord>;

/** A record of the alerts topic (key = alert id): one raise, escalation or clear. */
export const LiveAlertRecord = Type.Object(
  {
    alertId: Type.String({ minLength: 1, maxLength: 128 }),
    rule: Type.String({ minLength: 1, maxLength: 64 }),
    key: Type.String({ maxLength: 128 }),
    state: Type.Union([Type.Literal('raised'), Type.Literal('cleared')]),
    raisedAt: Iso,
    clearedAt: Type.Union([Iso, Type.Null()]),
    value: Type.Number(),
    threshold: Type.Number(),
    severity: Type.Union([Type.Literal('warning'), Type.Literal('critical')]),
    message: Type.String({ maxLength: 1024 }),
  },
  { additionalProperties: true },
);
export type LiveAlertRecord = Static<typeof LiveAlertRecord>;

const c = (name: string, type: Column['type'], nullable: boolean, description: string, source: readonly string[] = []): Column => ({
  name,
  type,
  nullable,
  description,
  source,
  ...(type === 'timestamp' ? { unit: 'UTC' } : {}),
});

/**
 * Every KPI window update (early ones and finals, revisions counted per window), partitioned by the
 * window's start. The first eight columns are the warehouse table's (the Power BI Lambda reads them).
 */
export const KPI_WINDOWS_LAKE_TABLE: TableSchema = {
  name: 'kpi_windows',
  columns: [
    c('kpi', 'string', false, 'KPI name (the processed table it matches)', ['kpi']),
    c('key', 'string', false, 'what the window is of: district, road, station, camera', ['key']),
    c('window_start', 'timestamp', false, 'window start (event time)', ['windowStart']),
    c('window_end', 'timestamp', false, 'window end, exclusive', ['windowEnd']),
    c('revision', 'int64', false, 'counts the updates of one window', ['revision']),
    c('final', 'boolean', false, 'the watermark passed the window end', ['final']),
    c('emitted_at', 'timestamp', false, 'when the live engine published it (wall clock)', ['emittedAt']),
    c('values_json', 'string', false, 'JSON object of the finished figures', ['values']),
    c('sources', 'int64', false, 'source partitions merged into it', ['sources']),
    c('partial_json', 'string', false, 'JSON object of the mergeable partial aggregates (sums, counts, min/max)', ['partial']),
  ],
  partitionKeys: PARTITION_KEYS,
};

/** Every alert transition, partitioned by its time (raised_at, or cleared_at for a clear). */
export const ALERTS_LAKE_TABLE: TableSchema = {
  name: 'alerts',
  columns: [
    c('alert_id', 'string', false, 'rule|key|start of the condition: a replay raises the same id', ['alertId']),
    c('rule', 'string', false, 'congestion, aqi, wind, gust, heat, fog, backlog, incident, gateway_offline', ['rule']),
    c('key', 'string', false, 'district, station, incident or gateway', ['key']),
    c('state', 'string', false, 'raised or cleared', ['state']),
    c('severity', 'string', false, 'warning or critical', ['severity']),
    c('raised_at', 'timestamp', false, 'when it was raised', ['raisedAt']),
    c('cleared_at', 'timestamp', true, 'when it cleared (cleared rows only)', ['clearedAt']),
    c('value', 'double', false, 'the value that triggered the transition', ['value']),
    c('threshold', 'double', false, 'the threshold it was held against', ['threshold']),
    c('message', 'string', false, 'one line for people', ['message']),
    c('emitted_at', 'timestamp', false, 'when the live engine published it (the Kafka record timestamp)', []),
  ],
  partitionKeys: PARTITION_KEYS,
};

export type LiveLakeTableName = 'kpi_windows' | 'alerts';
export const LIVE_LAKE_TABLES: readonly LiveLakeTableName[] = ['kpi_windows', 'alerts'];

export function liveLakeTable(name: LiveLakeTableName): TableSchema {
  return name === 'alerts' ? ALERTS_LAKE_TABLE : KPI_WINDOWS_LAKE_TABLE;
}

function cellOf(column: Column, value: unknown): CellValue {
  if (value === undefined || value === null) return null;
  if (column.type === 'timestamp') {
    const parsed = parseEventTime(value);
    return 'ms' in parsed ? parsed.ms : null;
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return value as CellValue;
}

/** Column values of a KPI record in table order (timestamps as epoch ms). */
export function kpiWindowLakeRow(record: LiveKpiRecord): CellValue[] {
  return KPI_WINDOWS_LAKE_TABLE.columns.map((column) => cellOf(column, (record as Record<string, unknown>)[column.source[0] as string]));
}

/** Column values of an alert record in table order; `emittedAtMs` is its Kafka record timestamp. */
export function alertLakeRow(record: LiveAlertRecord, emittedAtMs: number): CellValue[] {
  return ALERTS_LAKE_TABLE.columns.map((column) => (column.source.length === 0 ? emittedAtMs : cellOf(column, (record as Record<string, unknown>)[column.source[0] as string])));
}

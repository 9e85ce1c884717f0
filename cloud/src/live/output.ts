// The "live output" port: where finished KPI windows and alerts go besides Kafka. Adapters: Power BI
// push datasets (REST), Power BI streaming datasets (push URL), Fabric Eventstream (its Kafka endpoint).
// Only aggregates and alerts pass through it, never raw events. Rows are flat, typed as the tables
// below say, so every adapter (and the Power BI dataset definition) derives from one place.
import type { PartialState, Values } from './aggregate.ts';
import type { Alert } from './alerts.ts';
import { KPI_DEFINITIONS } from './definitions.ts';
import { processedTable } from '../processing/definitions.ts';

/** A KPI window update as published on the KPI topic (the dashboard's contract). */
export interface KpiUpdate {
  kpi: string;
  key: string;
  windowStart: string;
  windowEnd: string;
  final: boolean;
  emittedAt: string;
  partial: PartialState;
  values: Values;
  /** Source partitions merged into it. */
  sources: number;
  revision: number;
}

export type OutputColumnType = 'Int64' | 'Double' | 'Boolean' | 'DateTime' | 'String';
export interface OutputColumn {
  name: string;
  dataType: OutputColumnType;
}
export interface OutputTable {
  name: string;
  columns: OutputColumn[];
}
export type OutputRow = Record<string, string | number | boolean | null>;

const OUTPUT_TYPES = { string: 'String', int64: 'Int64', double: 'Double', boolean: 'Boolean', timestamp: 'DateTime' } as const;

/** A figure's type: its processed table column's (the same definition), Double otherwise. */
function figureType(kpi: string, figure: string): OutputColumnType {
  const type = processedTable(kpi)?.schema.columns.find((c) => c.name === figure)?.type;
  return type === undefined ? 'Double' : OUTPUT_TYPES[type];
}

/** One table per KPI (window, key and its finished figures) and one for alerts. */
export function outputTables(): OutputTable[] {
  const kpis = KPI_DEFINITIONS.map((d) => ({
    name: d.name,
    columns: [
      { name: 'window_start', dataType: 'DateTime' as const },
      { name: 'window_end', dataType: 'DateTime' as const },
      { name: 'key', dataType: 'String' as const },
      { name: 'final', dataType: 'Boolean' as const },
      { name: 'emitted_at', dataType: 'DateTime' as const },
      ...Object.keys(d.values).map((v) => ({ name: v, dataType: figureType(d.name, v) })),
    ],
  }));
  return [
    ...kpis,
    {
      name: 'alerts',
      columns: [
        { name: 'alert_id', dataType: 'String' },
        { name: 'rule', dataType: 'String' },
        { name: 'key', dataType: 'String' },
        { name: 'state', dataType: 'String' },
        { name: 'severity', dataType: 'String' },
        { name: 'raised_at', dataType: 'DateTime' },
        { name: 'cleared_at', dataType: 'DateTime' },
        { name: 'value', dataType: 'Double' },
        { name: 'threshold', dataType: 'Double' },
        { name: 'message', dataType: 'String' },
      ],
    },
  ];
}

export function kpiRow(u: KpiUpdate): OutputRow {
  return { window_start: u.windowStart, window_end: u.windowEnd, key: u.key, final: u.final, emitted_at: u.emittedAt, ...u.values };
}

export function alertRow(a: Alert): OutputRow {
  return {
    alert_id: a.alertId, rule: a.rule, key: a.key, state: a.state, severity: a.severity, raised_at: a.raisedAt, cleared_at: a.clearedAt,
    value: a.value, threshold: a.threshold, message: a.message,
  };
}

export interface OutputStats {
  /** Rows accepted by the far side. */
  delivered: number;
  /** Rows not sent because a limit would have been crossed (coarser data went instead), or refused. */
  dropped: number;
  /** Rows waiting. */
  queued: number;
  requests: number;
  throttled: number;
  retried: number;
  failed: number;
}

export interface LiveOutput {
  readonly name: string;
  /** Creates what must exist ahead (datasets, tables) and connects. */
  start(): Promise<void>;
  /** Queues rows of one table; never blocks the engine (limits are the adapter's business). */
  write(table: string, rows: readonly OutputRow[]): void;
  /** Sends what is queued (close calls it too). */
  flush(): Promise<void>;
  close(): Promise<void>;
  stats(): OutputStats;
}

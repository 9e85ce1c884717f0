// Table schemas derived from the event schemas: what the sink writes as Parquet columns, and what a
// catalog registers. Nested objects flatten to prefix_field; names are snake_case for SQL engines.
import type { TSchema } from '@sinclair/typebox';
import { EVENT_SCHEMAS, type CityEvent, type EventKind } from './schemas.ts';
import { parseEventTime } from './validate.ts';

export type ColumnType = 'string' | 'int64' | 'double' | 'boolean' | 'timestamp';

export interface Column {
  name: string;
  type: ColumnType;
  nullable: boolean;
  unit?: string;
  description?: string;
  /** Path of the value in the event; empty for columns the sink adds. */
  source: readonly string[];
}

export interface TableSchema {
  name: string;
  columns: readonly Column[];
  /** Hive-style partition columns, in path order. */
  partitionKeys: readonly Column[];
}

/** Columns the sink adds to every event row from the gateway's record headers. */
export const GATEWAY_COLUMNS: readonly Column[] = [
  { name: 'gateway_id', type: 'string', nullable: false, description: 'gateway that received the event', source: [] },
  { name: 'received_at', type: 'timestamp', nullable: false, unit: 'UTC', description: 'gateway receive time', source: [] },
];

export const PARTITION_KEYS: readonly Column[] = [
  { name: 'event_date', type: 'string', nullable: false, description: 'UTC date of the event time, YYYY-MM-DD', source: [] },
  { name: 'event_hour', type: 'int64', nullable: false, description: 'UTC hour of the event time, 0-23', source: [] },
];

export function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

interface JsonSchemaNode {
  type?: string | string[];
  eventTime?: boolean;
  unit?: string;
  description?: string;
  properties?: Record<string, TSchema>;
  required?: string[];
}

function columnType(node: JsonSchemaNode, path: string): ColumnType {
  if (node.eventTime) return 'timestamp';
  switch (node.type) {
    case 'string':
      return 'string';
    case 'integer':
      return 'int64';
    case 'number':
      return 'double';
    case 'boolean':
      return 'boolean';
    default:
      throw new TypeError(`no column type for schema at ${path} (type ${JSON.stringify(node.type)})`);
  }
}

function flatten(node: JsonSchemaNode, path: string[], nullable: boolean, out: Column[]): void {
  for (const [field, child] of Object.entries(node.properties ?? {})) {
    if (path.length === 0 && field === 'kind') continue; // the table is per kind
    const childNode = child as JsonSchemaNode;
    const childPath = [...path, field];
    const childNullable = nullable || !(node.required ?? []).includes(field);
    if (childNode.type === 'object') {
      flatten(childNode, childPath, childNullable, out);
      continue;
    }
    const column: Column = {
      name: childPath.map(snakeCase).join('_'),
      type: columnType(childNode, childPath.join('.')),
      nullable: childNullable,
      source: childPath,
    };
    if (childNode.unit !== undefined) column.unit = childNode.unit;
    if (childNode.description !== undefined) column.description = childNode.description;
    out.push(column);
  }
}

const TABLES = new Map<EventKind, TableSchema>();

/** The table of one event kind: event fields flattened, then the gateway columns. */
export function eventTable(kind: EventKind): TableSchema {
  let table = TABLES.get(kind);
  if (table === undefined) {
    const columns: Column[] = [];
    flatten(EVENT_SCHEMAS[kind] as JsonSchemaNode, [], false, columns);
    table = { name: kind, columns: [...columns, ...GATEWAY_COLUMNS], partitionKeys: PARTITION_KEYS };
    TABLES.set(kind, table);
  }
  return table;
}

export const DEADLETTER_TABLE: TableSchema = {
  name: 'deadletter',
  columns: [
    { name: 'stage', type: 'string', nullable: false, description: 'gateway or sink', source: ['stage'] },
    { name: 'reason', type: 'string', nullable: false, source: ['reason'] },
    { name: 'problems', type: 'string', nullable: false, description: 'JSON array of {path, rule, message}', source: ['problems'] },
    { name: 'payload', type: 'string', nullable: false, source: ['payload'] },
    { name: 'payload_encoding', type: 'string', nullable: false, source: ['payloadEncoding'] },
    { name: 'mqtt_topic', type: 'string', nullable: false, source: ['mqttTopic'] },
    { name: 'client_id', type: 'string', nullable: false, source: ['clientId'] },
    { name: 'device_id', type: 'string', nullable: true, source: ['deviceId'] },
    { name: 'kind', type: 'string', nullable: true, source: ['kind'] },
    { name: 'event_id', type: 'string', nullable: true, source: ['eventId'] },
    { name: 'gateway_id', type: 'string', nullable: false, source: ['gatewayId'] },
    { name: 'received_at', type: 'timestamp', nullable: false, unit: 'UTC', source: ['receivedAt'] },
  ],
  partitionKeys: PARTITION_KEYS,
};

export type CellValue = string | number | boolean | null;

/** Column values of one event, in table order; timestamps as epoch milliseconds. */
export function eventRow(kind: EventKind, event: CityEvent, meta: { gatewayId: string; receivedAt: number }): CellValue[] {
  const row: CellValue[] = [];
  for (const column of eventTable(kind).columns) {
    if (column.source.length === 0) {
      row.push(column.name === 'gateway_id' ? meta.gatewayId : meta.receivedAt);
      continue;
    }
    row.push(cell(column, pick(event, column.source)));
  }
  return row;
}

/** Column values of a dead-letter record, in table order. */
export function deadLetterRow(record: Record<string, unknown>): CellValue[] {
  return DEADLETTER_TABLE.columns.map((column) => {
    const value = pick(record, column.source);
    return column.name === 'problems' ? JSON.stringify(value ?? []) : cell(column, value);
  });
}

function pick(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function cell(column: Column, value: unknown): CellValue {
  if (value === undefined || value === null) return null;
  if (column.type === 'timestamp') {
    const parsed = parseEventTime(value);
    return 'ms' in parsed ? parsed.ms : null;
  }
  return value as CellValue;
}

/** Hive partition values for an event time. */
export function partitionOf(eventTimeMs: number): { event_date: string; event_hour: number } {
  // Consecutive events mostly share an hour: reuse the last one's values.
  const hour = Math.floor(eventTimeMs / 3_600_000);
  if (hour !== lastPartition.hour) {
    const iso = new Date(hour * 3_600_000).toISOString();
    lastPartition = { hour, value: { event_date: iso.slice(0, 10), event_hour: Number(iso.slice(11, 13)) } };
  }
  return { ...lastPartition.value };
}
let lastPartition = { hour: Number.NaN, value: { event_date: '', event_hour: 0 } };

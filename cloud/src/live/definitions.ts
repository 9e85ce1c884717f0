// The live KPIs as data, in a shape a SQL engine can run as well as the live engine: each KPI reads
// one lake table (the event kind), groups by a key and a time bucket of `date_observed`, and computes
// mergeable aggregates (sum, count, min, max, distinct count) of named columns. Column names are the
// lake's (protocol's table schemas), so `kpiSql` renders the same definition as SQL over the lake.
// Finished figures (`values`) are arithmetic over the aggregates only, so they can be recomputed from
// merged partial state by anyone.
import { eventTable, type EventKind } from '@city/protocol';
import { DISTRICT_BOXES, districtSql } from '../ports/query/named.ts';

/** The district of a point, by the named queries' boxes (first match wins); districtSql is its SQL. */
export function districtOf(lat: number | null, lon: number | null): string | null {
  if (lat === null || lon === null) return null;
  for (const d of DISTRICT_BOXES) if (lat >= d.latMin && lat <= d.latMax && lon >= d.lonMin && lon <= d.lonMax) return d.name;
  return 'outside';
}

/** The group key: a column as it is, or the district of a location's columns. */
export type KeyDefinition = { column: string } | { district: { lat: string; lon: string } };

/**
 * A mergeable aggregate of one column. `count_distinct` is merged by summing partial counts, which is
 * exact because every partial comes from one Kafka partition and the topics are partitioned by device
 * id: the same device never counts in two partials.
 */
export type AggregateDefinition =
  | { name: string; fn: 'count' }
  | { name: string; fn: 'sum' | 'min' | 'max' | 'count_nonnull'; column: string }
  | { name: string; fn: 'count_if'; column: string }
  | { name: string; fn: 'count_distinct'; column: string };

/** A finished figure: arithmetic over aggregates (`a / b` is null when b is 0 or null). */
export type ValueExpr =
  | { agg: string }
  | { const: number }
  | { op: '+' | '-' | '*' | '/'; left: ValueExpr; right: ValueExpr }
  | { aqiPm25: ValueExpr }
  | { round: ValueExpr; digits: number };

export interface KpiDefinition {
  name: string;
  description: string;
  /** Lake table / event kind read. */
  source: EventKind;
  key: KeyDefinition;
  /** Bucket of `date_observed`: tumbling windows of sizeMs, or hopping ones every hopMs. */
  bucket: { sizeMs: number; hopMs?: number };
  aggregates: readonly AggregateDefinition[];
  values: Readonly<Record<string, ValueExpr>>;
  /** Text values derived from numeric ones (e.g. the AQI category), computed after `values`. */
  labels?: Readonly<Record<string, { aqiCategoryOf: string }>>;
}

/** How far events of a kind may arrive out of order (watermark = max event time − this). */
export const OUT_OF_ORDERNESS_MS: Readonly<Record<EventKind, number>> = {
  vehicle: 5_000,
  gps: 5_000,
  weather: 30_000,
  air_quality: 30_000,
  traffic_camera: 15_000,
  emergency: 5_000,
  phone: 10_000,
  gateway_health: 60_000,
};

/** Free-flow speed the travel-time index is measured against (km/h): TTI = free-flow / mean speed. */
export const FREE_FLOW_SPEED_KMH = 50;

const agg = (name: string): ValueExpr => ({ agg: name });
const div = (left: ValueExpr, right: ValueExpr): ValueExpr => ({ op: '/', left, right });
const mul = (left: ValueExpr, right: ValueExpr): ValueExpr => ({ op: '*', left, right });
const round = (value: ValueExpr, digits = 2): ValueExpr => ({ round: value, digits });
const mean = (sum: string, count: string) => round(div(agg(sum), agg(count)));

export const KPI_DEFINITIONS: readonly KpiDefinition[] = [
  {
    name: 'traffic_district_5m',
    description: 'vehicles seen, samples, mean speed (km/h) and travel-time index per district per 5 minutes',
    source: 'vehicle',
    key: { district: { lat: 'location_lat', lon: 'location_lon' } },
    bucket: { sizeMs: 300_000 },
    aggregates: [
      { name: 'samples', fn: 'count' },
      { name: 'vehicles', fn: 'count_distinct', column: 'device_id' },
      { name: 'speed_sum', fn: 'sum', column: 'speed' },
    ],
    values: {
      vehicles: agg('vehicles'),
      samples: agg('samples'),
      mean_speed_kmh: round(mul(div(agg('speed_sum'), agg('samples')), { const: 3.6 })),
      // free-flow speed / mean speed: 1 at free flow, 2 when a trip takes twice as long
      travel_time_index: round(div({ const: FREE_FLOW_SPEED_KMH }, mul(div(agg('speed_sum'), agg('samples')), { const: 3.6 }))),
    },
  },
  {
    name: 'camera_flow_15m',
    description: 'vehicles counted, mean occupancy, mean speed (km/h) and congested periods per camera per 15 minutes',
    source: 'traffic_camera',
    key: { column: 'device_id' },
    bucket: { sizeMs: 900_000 },
    aggregates: [
      { name: 'periods', fn: 'count' },
      { name: 'intensity_sum', fn: 'sum', column: 'intensity' },
      { name: 'occupancy_sum', fn: 'sum', column: 'occupancy' },
      { name: 'speed_sum', fn: 'sum', column: 'average_vehicle_speed' },
      { name: 'speed_samples', fn: 'count_nonnull', column: 'average_vehicle_speed' },
      { name: 'congested_periods', fn: 'count_if', column: 'congested' },
    ],
    values: {
      vehicles: agg('intensity_sum'),
      periods: agg('periods'),
      mean_occupancy: round(div(agg('occupancy_sum'), agg('periods')), 3),
      mean_speed_kmh: round(mul(div(agg('speed_sum'), agg('speed_samples')), { const: 3.6 })),
      congested_periods: agg('congested_periods'),
    },
  },
  {
    name: 'air_quality_station_1h',
    description: 'mean PM2.5, PM10 and NO2 per station per hour, with the US EPA (2024) PM2.5 AQI of the hourly mean and its category',
    source: 'air_quality',
    key: { column: 'device_id' },
    bucket: { sizeMs: 3_600_000 },
    aggregates: [
      { name: 'samples', fn: 'count' },
      { name: 'pm25_sum', fn: 'sum', column: 'pm25' },
      { name: 'pm10_sum', fn: 'sum', column: 'pm10' },
      { name: 'no2_sum', fn: 'sum', column: 'no2' },
      { name: 'pm25_max', fn: 'max', column: 'pm25' },
    ],
    values: {
      samples: agg('samples'),
      pm25: mean('pm25_sum', 'samples'),
      pm10: mean('pm10_sum', 'samples'),
      no2: mean('no2_sum', 'samples'),
      pm25_max: agg('pm25_max'),
      aqi: { aqiPm25: div(agg('pm25_sum'), agg('samples')) },
    },
    labels: { aqi_category: { aqiCategoryOf: 'aqi' } },
  },
  {
    name: 'weather_station_1h',
    description: 'min/max/mean temperature, mean and max wind, rain and mean humidity per station per hour',
    source: 'weather',
    key: { column: 'device_id' },
    bucket: { sizeMs: 3_600_000 },
    aggregates: [
      { name: 'samples', fn: 'count' },
      { name: 'temperature_sum', fn: 'sum', column: 'temperature' },
      { name: 'temperature_min', fn: 'min', column: 'temperature' },
      { name: 'temperature_max', fn: 'max', column: 'temperature' },
      { name: 'wind_sum', fn: 'sum', column: 'wind_speed' },
      { name: 'wind_max', fn: 'max', column: 'wind_speed' },
      { name: 'rain_sum', fn: 'sum', column: 'precipitation' },
      { name: 'humidity_sum', fn: 'sum', column: 'relative_humidity' },
    ],
    values: {
      samples: agg('samples'),
      temperature_min_c: agg('temperature_min'),
      temperature_max_c: agg('temperature_max'),
      temperature_mean_c: mean('temperature_sum', 'samples'),
      wind_mean_ms: mean('wind_sum', 'samples'),
      // No gust field on the wire: the strongest wind sample of the hour stands for the gust.
      gust_ms: agg('wind_max'),
      rain_mm: round(agg('rain_sum')),
      humidity_mean: round(div(agg('humidity_sum'), agg('samples')), 3),
    },
  },
];

export type KpiName = string;

export function kpiDefinition(name: string): KpiDefinition | undefined {
  return KPI_DEFINITIONS.find((d) => d.name === name);
}

/** US EPA PM2.5 AQI breakpoints (2024 revision; concentrations truncated to 0.1 µg/m³). */
export const PM25_AQI_BREAKPOINTS = [
  { cLow: 0.0, cHigh: 9.0, iLow: 0, iHigh: 50, category: 'good' },
  { cLow: 9.1, cHigh: 35.4, iLow: 51, iHigh: 100, category: 'moderate' },
  { cLow: 35.5, cHigh: 55.4, iLow: 101, iHigh: 150, category: 'unhealthy_for_sensitive_groups' },
  { cLow: 55.5, cHigh: 125.4, iLow: 151, iHigh: 200, category: 'unhealthy' },
  { cLow: 125.5, cHigh: 225.4, iLow: 201, iHigh: 300, category: 'very_unhealthy' },
  { cLow: 225.5, cHigh: 325.4, iLow: 301, iHigh: 500, category: 'hazardous' },
] as const;

export type AqiCategory = (typeof PM25_AQI_BREAKPOINTS)[number]['category'];

/** The AQI of a PM2.5 concentration (µg/m³); above the table it is 500. */
export function aqiOfPm25(concentration: number): number {
  const c = Math.floor(Math.max(0, concentration) * 10) / 10;
  for (const b of PM25_AQI_BREAKPOINTS) {
    if (c <= b.cHigh) return Math.round(((b.iHigh - b.iLow) / (b.cHigh - b.cLow)) * (c - b.cLow) + b.iLow);
  }
  return 500;
}

export function aqiCategory(aqi: number): AqiCategory {
  for (const b of PM25_AQI_BREAKPOINTS) if (aqi <= b.iHigh) return b.category;
  return 'hazardous';
}

/** Checks every definition against its table's columns, so a renamed field fails loudly at start. */
export function checkDefinitions(definitions: readonly KpiDefinition[]): string[] {
  const problems: string[] = [];
  for (const d of definitions) {
    const columns = new Set(eventTable(d.source).columns.map((c) => c.name));
    const need = (column: string) => {
      if (!columns.has(column)) problems.push(`${d.name}: ${d.source} has no column ${column}`);
    };
    if ('column' in d.key) need(d.key.column);
    else {
      need(d.key.district.lat);
      need(d.key.district.lon);
    }
    const aggs = new Set<string>();
    for (const a of d.aggregates) {
      if ('column' in a) need(a.column);
      aggs.add(a.name);
    }
    const walk = (e: ValueExpr, where: string): void => {
      if ('agg' in e) {
        if (!aggs.has(e.agg)) problems.push(`${d.name}.${where}: unknown aggregate ${e.agg}`);
      } else if ('op' in e) {
        walk(e.left, where);
        walk(e.right, where);
      } else if ('aqiPm25' in e) walk(e.aqiPm25, where);
      else if ('round' in e) walk(e.round, where);
    };
    for (const [name, e] of Object.entries(d.values)) walk(e, name);
    if (d.bucket.hopMs !== undefined && (d.bucket.sizeMs % d.bucket.hopMs !== 0 || d.bucket.hopMs <= 0)) {
      problems.push(`${d.name}: bucket.sizeMs must be a multiple of bucket.hopMs`);
    }
  }
  return problems;
}

/**
 * The definition as SQL over the lake (DuckDB dialect; tumbling buckets only): one row per window
 * and key with every aggregate, the same figures the live engine's finals carry in `partial`.
 */
export function kpiSql(d: KpiDefinition): string {
  if (d.bucket.hopMs !== undefined && d.bucket.hopMs !== d.bucket.sizeMs) throw new TypeError(`${d.name}: kpiSql renders tumbling buckets only`);
  const sizeS = d.bucket.sizeMs / 1000;
  const bucket = `to_timestamp(floor(epoch(date_observed) / ${sizeS}) * ${sizeS})`;
  const key = 'column' in d.key ? d.key.column : districtSql(d.key.district.lat, d.key.district.lon);
  const aggs = d.aggregates.map((a) => {
    switch (a.fn) {
      case 'count':
        return `count(*) AS ${a.name}`;
      case 'count_nonnull':
        return `count(${a.column}) AS ${a.name}`;
      case 'count_if':
        return `count(*) FILTER (WHERE ${a.column}) AS ${a.name}`;
      case 'count_distinct':
        return `count(DISTINCT ${a.column}) AS ${a.name}`;
      default:
        return `${a.fn}(${a.column}) AS ${a.name}`;
    }
  });
  return `SELECT ${bucket} AS window_start, ${key} AS key, ${aggs.join(', ')} FROM ${d.source} GROUP BY 1, 2 HAVING key IS NOT NULL ORDER BY 1, 2`;
}

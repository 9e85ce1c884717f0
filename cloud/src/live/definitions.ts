// The city's windowed figures, defined once and run twice: by the live engine (aggregate.ts evaluates
// them over Kafka records) and by the processing job (processing/sql.ts renders them as SQL over the
// lake into the processed tables of the same name and columns). Each figure reads one or more lake
// tables, groups by keys and a time bucket of `date_observed`, and computes mergeable aggregates (sum,
// count, min, max, distinct devices) of row expressions; the finished figures (`values`) are
// expressions over the aggregates only, so anyone holding merged partial state can recompute them.
// Thresholds, bands, free-flow speeds and breakpoints come from processing/definitions.ts.
import { eventTable, type EventKind } from '@city/protocol';
import {
  DISTRICT_FREE_FLOW_KMH,
  EEA_BANDS,
  EEA_LEVELS,
  EPA_PM25_BREAKPOINTS,
  processedTable,
  ROUTE_FREE_FLOW_KMH,
  TTI_BANDS,
  URBAN_FREE_FLOW_KMH,
  WEATHER_THRESHOLDS,
  type Band,
} from '../processing/definitions.ts';
import { DISTRICT_BOXES } from '../ports/query/named.ts';

/** The district of a point, by the named queries' boxes (first match wins); districtSql is its SQL. */
export function districtOf(lat: number | null, lon: number | null): string | null {
  if (lat === null || lon === null) return null;
  for (const d of DISTRICT_BOXES) if (lat >= d.latMin && lat <= d.latMax && lon >= d.lonMin && lon <= d.lonMax) return d.name;
  return 'outside';
}

/** An expression over one row's columns (SQL null semantics: a null operand gives null). */
export type RowExpr =
  | { col: string }
  | { num: number }
  | { str: string }
  | { op: '+' | '-' | '*'; left: RowExpr; right: RowExpr }
  | { cmp: '=' | '>=' | '<='; left: RowExpr; right: RowExpr }
  | { and: readonly RowExpr[] }
  | { notNull: RowExpr }
  | { isTrue: RowExpr }
  | { coalesce: readonly RowExpr[] }
  /** A number looked up by a string (null when absent). */
  | { lookup: RowExpr; table: Readonly<Record<string, number>> }
  | { district: { lat: string; lon: string } }
  /** NWS heat index (Rothfusz) of a temperature (°C) and relative humidity (0–1), in °C. */
  | { heatIndex: { tempC: RowExpr; rh: RowExpr } };

/**
 * A mergeable aggregate of a row expression over the rows where `where` holds. `count` without `of`
 * counts rows, with `of` the non-null values. `count_distinct` is merged by summing partial counts,
 * exact because every partial comes from one Kafka partition and topics are partitioned by device id;
 * so it may count only `device_id` (checkDefinitions says so).
 */
export interface AggregateDefinition {
  name: string;
  fn: 'count' | 'sum' | 'min' | 'max' | 'count_distinct';
  of?: RowExpr;
  where?: RowExpr;
}

/** A finished figure: an expression over aggregates (`a / b` is null when b is 0 or null). */
export type ValueExpr =
  | { agg: string }
  | { num: number }
  | { op: '+' | '-' | '*' | '/'; left: ValueExpr; right: ValueExpr }
  | { cmp: '>=' | '>'; left: ValueExpr; right: ValueExpr }
  | { round: ValueExpr; digits: number }
  | { aqiPm25: ValueExpr }
  | { aqiCategory: ValueExpr }
  | { band: ValueExpr; bands: readonly Band[] }
  /** The worst EEA level over pollutant means (a null mean counts as the best level); null when `when` is 0. */
  | { eeaBand: Readonly<Partial<Record<keyof typeof EEA_BANDS, ValueExpr>>>; when: ValueExpr };

/** One lake table read by a figure: its rows' keys (in the figure's key order) and aggregates. */
export interface InputDefinition {
  source: EventKind;
  where?: RowExpr;
  keys: readonly RowExpr[];
  aggregates: readonly AggregateDefinition[];
}

export interface KpiDefinition {
  /** Also the processed table holding the same figures. */
  name: string;
  description: string;
  /** Tumbling windows of sizeMs (or hopping ones every hopMs: live only) of `date_observed`. */
  bucket: { sizeMs: number; hopMs?: number };
  /** Output column of the window start, and of each key. */
  bucketColumn: string;
  keyColumns: readonly string[];
  /**
   * The first input decides which windows exist (its first aggregate counts its rows); later ones
   * join by window and key, their counts 0 where they have no rows.
   */
  inputs: readonly InputDefinition[];
  values: Readonly<Record<string, ValueExpr>>;
}

/** Joins a composite key's parts into the live key string. */
export const KEY_SEPARATOR = ' / ';

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

const col = (name: string): RowExpr => ({ col: name });
const num = (n: number): RowExpr => ({ num: n });
const rmul = (left: RowExpr, right: RowExpr): RowExpr => ({ op: '*', left, right });
const DISTRICT: RowExpr = { district: { lat: 'location_lat', lon: 'location_lon' } };
const agg = (name: string): ValueExpr => ({ agg: name });
const div = (left: ValueExpr, right: ValueExpr): ValueExpr => ({ op: '/', left, right });
const round = (value: ValueExpr, digits = 2): ValueExpr => ({ round: value, digits });
const atLeast = (value: ValueExpr, threshold: number): ValueExpr => ({ cmp: '>=', left: value, right: { num: threshold } });
const mean = (sum: string, count: string, digits = 2) => round(div(agg(sum), agg(count)), digits);

const onRoute: RowExpr = { cmp: '=', left: col('service_status'), right: { str: 'onRoute' } };
const kmh: RowExpr = rmul(col('speed'), num(3.6));
// Free flow of the road driven: the route's when known, else the district's, else the urban default.
const freeFlow: RowExpr = { coalesce: [{ lookup: col('route_id'), table: ROUTE_FREE_FLOW_KMH }, { lookup: DISTRICT, table: DISTRICT_FREE_FLOW_KMH }, num(URBAN_FREE_FLOW_KMH)] };
const T = WEATHER_THRESHOLDS;
const fogObservation: RowExpr = { and: [{ cmp: '>=', left: col('relative_humidity'), right: num(T.fogMinHumidity) }, { cmp: '<=', left: col('wind_speed'), right: num(T.fogMaxWindMs) }] };
const meanSpeed = div(agg('speed_kmh_sum'), agg('speed_kmh_n'));
const meanFreeFlow = div(agg('free_flow_sum'), agg('moving_samples'));

export const KPI_DEFINITIONS: readonly KpiDefinition[] = [
  {
    name: 'traffic_district_5m',
    description: 'vehicles, samples, mean speed of moving samples, free-flow speed, travel-time index and band, camera congestion per district per 5 minutes',
    bucket: { sizeMs: 300_000 },
    bucketColumn: 'bucket_start',
    keyColumns: ['district'],
    inputs: [
      {
        source: 'vehicle',
        keys: [DISTRICT],
        aggregates: [
          { name: 'samples', fn: 'count' },
          { name: 'vehicles', fn: 'count_distinct', of: col('device_id') },
          { name: 'moving_samples', fn: 'count', where: onRoute },
          { name: 'speed_kmh_sum', fn: 'sum', of: kmh, where: onRoute },
          { name: 'speed_kmh_n', fn: 'count', of: kmh, where: onRoute },
          { name: 'free_flow_sum', fn: 'sum', of: freeFlow, where: onRoute },
        ],
      },
      {
        source: 'traffic_camera',
        keys: [DISTRICT],
        aggregates: [
          { name: 'camera_periods', fn: 'count' },
          { name: 'camera_congested', fn: 'count', where: { isTrue: col('congested') } },
        ],
      },
    ],
    values: {
      vehicles: agg('vehicles'),
      samples: agg('samples'),
      moving_samples: agg('moving_samples'),
      mean_speed_kmh: round(meanSpeed),
      free_flow_kmh: round(meanFreeFlow),
      // free-flow speed / mean speed: 1 at free flow, 2 when a trip takes twice as long
      travel_time_index: round(div(meanFreeFlow, meanSpeed), 3),
      tti_band: { band: div(meanFreeFlow, meanSpeed), bands: TTI_BANDS },
      camera_periods: agg('camera_periods'),
      congested_share: mean('camera_congested', 'camera_periods', 3),
    },
  },
  {
    name: 'camera_flow_15m',
    description: 'counting periods, vehicles counted, mean occupancy, mean speed (weighted by vehicles) and congested periods per camera per 15 minutes',
    bucket: { sizeMs: 900_000 },
    bucketColumn: 'bucket_start',
    keyColumns: ['camera'],
    inputs: [
      {
        source: 'traffic_camera',
        keys: [col('device_id')],
        aggregates: [
          { name: 'periods', fn: 'count' },
          { name: 'district', fn: 'min', of: DISTRICT },
          { name: 'intensity', fn: 'sum', of: col('intensity') },
          { name: 'occupancy_sum', fn: 'sum', of: col('occupancy') },
          { name: 'occupancy_n', fn: 'count', of: col('occupancy') },
          { name: 'speed_x_intensity', fn: 'sum', of: rmul(col('average_vehicle_speed'), col('intensity')) },
          { name: 'intensity_with_speed', fn: 'sum', of: col('intensity'), where: { notNull: col('average_vehicle_speed') } },
          { name: 'congested_periods', fn: 'count', where: { isTrue: col('congested') } },
        ],
      },
    ],
    values: {
      district: agg('district'),
      periods: agg('periods'),
      intensity: agg('intensity'),
      mean_occupancy: mean('occupancy_sum', 'occupancy_n', 4),
      mean_speed_kmh: round({ op: '*', left: div(agg('speed_x_intensity'), agg('intensity_with_speed')), right: { num: 3.6 } }),
      congested_periods: agg('congested_periods'),
    },
  },
  {
    name: 'air_quality_station_hour',
    description: 'mean PM2.5, PM10, NO2 and O3 per station per hour, the US EPA (2024) PM2.5 AQI of the hourly mean, its category and the EEA band',
    bucket: { sizeMs: 3_600_000 },
    bucketColumn: 'hour_start',
    keyColumns: ['station'],
    inputs: [
      {
        source: 'air_quality',
        keys: [col('device_id')],
        aggregates: [
          { name: 'samples', fn: 'count' },
          { name: 'district', fn: 'min', of: DISTRICT },
          ...(['pm25', 'pm10', 'no2', 'o3'] as const).flatMap((p): AggregateDefinition[] => [
            { name: `${p}_sum`, fn: 'sum', of: col(p) },
            { name: `${p}_n`, fn: 'count', of: col(p) },
          ]),
        ],
      },
    ],
    values: {
      district: agg('district'),
      samples: agg('samples'),
      pm25: mean('pm25_sum', 'pm25_n'),
      pm10: mean('pm10_sum', 'pm10_n'),
      no2: mean('no2_sum', 'no2_n'),
      o3: mean('o3_sum', 'o3_n'),
      aqi_pm25: { aqiPm25: div(agg('pm25_sum'), agg('pm25_n')) },
      aqi_category: { aqiCategory: { aqiPm25: div(agg('pm25_sum'), agg('pm25_n')) } },
      eea_band: {
        eeaBand: {
          pm25: div(agg('pm25_sum'), agg('pm25_n')),
          pm10: div(agg('pm10_sum'), agg('pm10_n')),
          no2: div(agg('no2_sum'), agg('no2_n')),
          o3: div(agg('o3_sum'), agg('o3_n')),
        },
        when: agg('samples'),
      },
    },
  },
  {
    name: 'weather_station_hour',
    description: 'temperature range and mean, strongest wind, rain, highest heat index and NWS-style flags per station per hour',
    bucket: { sizeMs: 3_600_000 },
    bucketColumn: 'hour_start',
    keyColumns: ['station'],
    inputs: [
      {
        source: 'weather',
        keys: [col('device_id')],
        aggregates: [
          { name: 'samples', fn: 'count' },
          { name: 'district', fn: 'min', of: DISTRICT },
          { name: 'min_temperature', fn: 'min', of: col('temperature') },
          { name: 'max_temperature', fn: 'max', of: col('temperature') },
          { name: 'temperature_sum', fn: 'sum', of: col('temperature') },
          { name: 'temperature_n', fn: 'count', of: col('temperature') },
          // No gust field on the wire: the strongest wind sample of the hour stands for the gust.
          { name: 'max_wind_speed', fn: 'max', of: col('wind_speed') },
          { name: 'rain_sum', fn: 'sum', of: col('precipitation') },
          { name: 'max_heat_index', fn: 'max', of: { heatIndex: { tempC: col('temperature'), rh: col('relative_humidity') } } },
          { name: 'fog_observations', fn: 'count', where: fogObservation },
        ],
      },
    ],
    values: {
      district: agg('district'),
      samples: agg('samples'),
      min_temperature: agg('min_temperature'),
      max_temperature: agg('max_temperature'),
      mean_temperature: mean('temperature_sum', 'temperature_n'),
      max_wind_speed: agg('max_wind_speed'),
      rain_mm: round(agg('rain_sum')),
      max_heat_index: round(agg('max_heat_index')),
      wind_advisory: atLeast(agg('max_wind_speed'), T.windAdvisoryMs),
      high_wind: atLeast(agg('max_wind_speed'), T.highWindMs),
      dense_fog: { cmp: '>', left: agg('fog_observations'), right: { num: 0 } },
      heat: atLeast(agg('max_heat_index'), T.heatIndexC),
    },
  },
  {
    name: 'phone_reports_district_hour',
    description: 'citizen issue reports and distinct reporting phones per district, category and platform per hour',
    bucket: { sizeMs: 3_600_000 },
    bucketColumn: 'hour_start',
    keyColumns: ['district', 'report_category', 'platform'],
    inputs: [
      {
        source: 'phone',
        where: { cmp: '=', left: col('event_type'), right: { str: 'issueReport' } },
        keys: [{ coalesce: [DISTRICT, { str: 'unknown' }] }, { coalesce: [col('report_category'), { str: 'other' }] }, col('platform')],
        aggregates: [
          { name: 'reports', fn: 'count' },
          { name: 'reporters', fn: 'count_distinct', of: col('device_id') },
        ],
      },
    ],
    values: {
      reports: agg('reports'),
      reporters: agg('reporters'),
    },
  },
];

export type KpiName = string;

export function kpiDefinition(name: string): KpiDefinition | undefined {
  return KPI_DEFINITIONS.find((d) => d.name === name);
}

/** Every aggregate of a definition, over all its inputs. */
export function aggregatesOf(d: KpiDefinition): AggregateDefinition[] {
  return d.inputs.flatMap((i) => i.aggregates);
}

/** US EPA PM2.5 AQI breakpoints (2024 revision; concentrations truncated to 0.1 µg/m³). */
export const PM25_AQI_BREAKPOINTS = EPA_PM25_BREAKPOINTS;

export type AqiCategory = 'good' | 'moderate' | 'unhealthy_for_sensitive_groups' | 'unhealthy' | 'very_unhealthy' | 'hazardous';

/** The AQI of a PM2.5 concentration (µg/m³); above the table it is 500. Same arithmetic as aqiPm25Sql. */
export function aqiOfPm25(concentration: number): number {
  const c = Math.floor(concentration * 10) / 10;
  for (const b of EPA_PM25_BREAKPOINTS) {
    if (c <= b.cHigh) return Math.round(((b.iHigh - b.iLow) / (b.cHigh - b.cLow)) * (c - b.cLow) + b.iLow);
  }
  return EPA_PM25_BREAKPOINTS.at(-1)?.iHigh ?? 500;
}

export function aqiCategory(aqi: number): AqiCategory {
  for (const b of EPA_PM25_BREAKPOINTS) if (aqi <= b.iHigh) return b.category as AqiCategory;
  return 'hazardous';
}

/** The EEA level (index into EEA_LEVELS) of a pollutant mean; null counts as the best level. */
export function eeaLevel(pollutant: keyof typeof EEA_BANDS, value: number | null): number {
  if (value === null) return 0;
  const bounds = EEA_BANDS[pollutant];
  const i = bounds.findIndex((b) => value <= b);
  return i === -1 ? bounds.length : i;
}
export { EEA_LEVELS };

function rowColumns(e: RowExpr, out: string[]): string[] {
  if ('col' in e) out.push(e.col);
  else if ('op' in e || 'cmp' in e) {
    rowColumns(e.left, out);
    rowColumns(e.right, out);
  } else if ('and' in e) e.and.forEach((x) => rowColumns(x, out));
  else if ('coalesce' in e) e.coalesce.forEach((x) => rowColumns(x, out));
  else if ('notNull' in e) rowColumns(e.notNull, out);
  else if ('isTrue' in e) rowColumns(e.isTrue, out);
  else if ('lookup' in e) rowColumns(e.lookup, out);
  else if ('district' in e) out.push(e.district.lat, e.district.lon);
  else if ('heatIndex' in e) {
    rowColumns(e.heatIndex.tempC, out);
    rowColumns(e.heatIndex.rh, out);
  }
  return out;
}

/**
 * Checks every definition against its tables' columns and against the processed table of the same
 * name (when there is one: the same columns, bucket, keys and figures), so a renamed field or a figure
 * only one execution has fails loudly at start.
 */
export function checkDefinitions(definitions: readonly KpiDefinition[]): string[] {
  const problems: string[] = [];
  for (const d of definitions) {
    const aggs = new Set<string>();
    if (d.inputs.length === 0) problems.push(`${d.name}: no input`);
    d.inputs.forEach((input, n) => {
      const columns = new Set(eventTable(input.source).columns.map((c) => c.name));
      const need = (e: RowExpr, where: string) => {
        for (const c of rowColumns(e, [])) if (!columns.has(c)) problems.push(`${d.name}.${where}: ${input.source} has no column ${c}`);
      };
      if (input.keys.length !== d.keyColumns.length) problems.push(`${d.name}: input ${input.source} has ${input.keys.length} keys, the figure ${d.keyColumns.length}`);
      input.keys.forEach((k, i) => need(k, `key ${i}`));
      if (input.where !== undefined) need(input.where, 'where');
      const first = input.aggregates[0];
      if (n === 0 && (first === undefined || first.fn !== 'count' || first.of !== undefined || first.where !== undefined)) {
        problems.push(`${d.name}: the first aggregate of the first input must count its rows`);
      }
      for (const a of input.aggregates) {
        if (aggs.has(a.name)) problems.push(`${d.name}: aggregate ${a.name} defined twice`);
        aggs.add(a.name);
        if (a.of !== undefined) need(a.of, a.name);
        if (a.where !== undefined) need(a.where, a.name);
        if (a.fn !== 'count' && a.of === undefined) problems.push(`${d.name}.${a.name}: ${a.fn} needs "of"`);
        if (a.fn === 'count_distinct' && !(a.of !== undefined && 'col' in a.of && a.of.col === 'device_id')) {
          problems.push(`${d.name}.${a.name}: count_distinct merges exactly only over device_id (the Kafka key)`);
        }
      }
    });
    const walk = (e: ValueExpr, where: string): void => {
      if ('agg' in e) {
        if (!aggs.has(e.agg)) problems.push(`${d.name}.${where}: unknown aggregate ${e.agg}`);
      } else if ('op' in e || 'cmp' in e) {
        walk(e.left, where);
        walk(e.right, where);
      } else if ('aqiPm25' in e) walk(e.aqiPm25, where);
      else if ('aqiCategory' in e) walk(e.aqiCategory, where);
      else if ('round' in e) walk(e.round, where);
      else if ('band' in e) walk(e.band, where);
      else if ('eeaBand' in e) {
        Object.values(e.eeaBand).forEach((x) => walk(x, where));
        walk(e.when, where);
      }
    };
    for (const [name, e] of Object.entries(d.values)) walk(e, name);
    if (d.bucket.hopMs !== undefined && (d.bucket.hopMs <= 0 || d.bucket.sizeMs % d.bucket.hopMs !== 0)) {
      problems.push(`${d.name}: bucket.sizeMs must be a multiple of bucket.hopMs`);
    }
    const table = processedTable(d.name);
    if (table !== undefined) {
      const mine = [d.bucketColumn, ...d.keyColumns, ...Object.keys(d.values)];
      const theirs = table.schema.columns.map((c) => c.name).filter((c) => c !== 'is_final');
      if (mine.join() !== theirs.join()) problems.push(`${d.name}: columns ${mine.join(', ')} differ from the processed table's ${theirs.join(', ')}`);
      if (d.bucket.hopMs !== undefined && d.bucket.hopMs !== d.bucket.sizeMs) problems.push(`${d.name}: a processed table takes tumbling buckets only`);
      if (3_600_000 % d.bucket.sizeMs !== 0) problems.push(`${d.name}: a processed table's bucket must divide the hour`);
    }
  }
  return problems;
}

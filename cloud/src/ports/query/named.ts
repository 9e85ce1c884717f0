// Named city queries, runnable on DuckDB (local lake) and Athena (Trino SQL). The SQL keeps to what both
// dialects share; where they differ (time buckets finer than date_trunc) a dialect helper gives each
// engine its own form, side by side. Parameters are checked against a pattern, then inlined as literals.
import { cloudErrors } from '../../errors.ts';
import type { QueryEngineName } from './port.ts';

/** The places where DuckDB, Trino and the warehouses' SQL differ for these queries. */
interface Dialect {
  /** Start of the `minutes`-long bucket holding `ts` (a UTC timestamp). */
  bucket(ts: string, minutes: number): string;
  /** `x` rounded to `digits` decimals (PostgreSQL rounds NUMERIC only). */
  round(x: string, digits: number): string;
  /** The `value` of the row with the smallest / largest `key` (an aggregate). */
  minBy(value: string, key: string): string;
  maxBy(value: string, key: string): string;
}

/** Engines with SQL for the named queries: the lake's (DuckDB, Athena) and the warehouse's. */
export type SqlDialectName = QueryEngineName | 'postgres' | 'redshift';

const plain: Pick<Dialect, 'round' | 'minBy' | 'maxBy'> = {
  round: (x, digits) => `round(${x}, ${digits})`,
  minBy: (v, k) => `min_by(${v}, ${k})`,
  maxBy: (v, k) => `max_by(${v}, ${k})`,
};

/** The first value of a list ordered by `order`, rows without a key left out (as min_by/max_by do). */
const firstOf = (v: string, k: string, order: string) => `(array_agg(${v} ORDER BY ${k} ${order}) FILTER (WHERE ${k} IS NOT NULL))[1]`;
/** Redshift has no array_agg: the first of a LISTAGG in key order (fine for the few stations a day has). */
const firstListed = (v: string, k: string, order: string) =>
  `split_part(listagg(CASE WHEN ${k} IS NOT NULL THEN ${v} END, '|') WITHIN GROUP (ORDER BY CASE WHEN ${k} IS NULL THEN 1 ELSE 0 END, ${k} ${order}), '|', 1)`;

export const DIALECTS: { readonly [E in SqlDialectName]: Dialect } = {
  duckdb: { ...plain, bucket: (ts, minutes) => `time_bucket(INTERVAL '${minutes} minutes', ${ts})` },
  athena: { ...plain, bucket: (ts, minutes) => `from_unixtime(floor(to_unixtime(${ts}) / ${minutes * 60}) * ${minutes * 60})` },
  postgres: {
    bucket: (ts, minutes) => `to_timestamp(floor(extract(epoch FROM ${ts}) / ${minutes * 60}) * ${minutes * 60})`,
    round: (x, digits) => `round(CAST(${x} AS NUMERIC), ${digits})`,
    minBy: (v, k) => firstOf(v, k, 'ASC'),
    maxBy: (v, k) => firstOf(v, k, 'DESC'),
  },
  redshift: {
    bucket: (ts, minutes) => `TIMESTAMP 'epoch' + floor(extract(epoch FROM ${ts}) / ${minutes * 60}) * ${minutes * 60} * INTERVAL '1 second'`,
    round: (x, digits) => `round(CAST(${x} AS DECIMAL(38, 10)), ${digits})`,
    minBy: (v, k) => firstListed(v, k, 'ASC'),
    maxBy: (v, k) => firstListed(v, k, 'DESC'),
  },
};

export interface NamedQueryParam {
  name: string;
  description: string;
  pattern: RegExp;
  default: string;
}

export interface NamedQuery {
  name: string;
  description: string;
  params: readonly NamedQueryParam[];
  /** Result columns, in order: both engines' SQL must return exactly these. */
  columns: readonly string[];
  sql(dialect: Dialect, params: Readonly<Record<string, string>>): string;
}

/**
 * District bounding boxes of the simulated city (device-sim's DISTRICTS, circles projected around
 * 52.37 N 4.89 E, as boxes). Copied, not imported: the cloud does not depend on the simulator. Smaller
 * districts come first so they win where boxes overlap.
 */
export const DISTRICT_BOXES = [
  { name: 'Spoorzijde', latMin: 52.37135, latMax: 52.38033, lonMin: 4.87238, lonMax: 4.88706 },
  { name: 'Oude Haven', latMin: 52.37584, latMax: 52.38663, lonMin: 4.89514, lonMax: 4.91276 },
  { name: 'Centrum', latMin: 52.36281, latMax: 52.37719, lonMin: 4.87825, lonMax: 4.90175 },
  { name: 'Oostpark', latMin: 52.35877, latMax: 52.37494, lonMin: 4.91349, lonMax: 4.93992 },
  { name: 'Noordoever', latMin: 52.38483, latMax: 52.4028, lonMin: 4.87899, lonMax: 4.90835 },
  { name: 'Westpoort', latMin: 52.3709, latMax: 52.38887, lonMin: 4.83127, lonMax: 4.86064 },
  { name: 'Lindenhof', latMin: 52.34753, latMax: 52.36551, lonMin: 4.83861, lonMax: 4.86798 },
  { name: 'Zuidveld', latMin: 52.33765, latMax: 52.35742, lonMin: 4.86945, lonMax: 4.90175 },
] as const;

/** SQL CASE naming the district of a point; 'outside' beyond every box, NULL without a location. */
export function districtSql(lat: string, lon: string): string {
  const whens = DISTRICT_BOXES.map(
    (d) => `WHEN ${lat} BETWEEN ${d.latMin} AND ${d.latMax} AND ${lon} BETWEEN ${d.lonMin} AND ${d.lonMax} THEN '${d.name}'`,
  );
  return `CASE WHEN ${lat} IS NULL OR ${lon} IS NULL THEN NULL ${whens.join(' ')} ELSE 'outside' END`;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const dateRange: readonly NamedQueryParam[] = [
  { name: 'from', description: 'first UTC date (YYYY-MM-DD), inclusive', pattern: DATE, default: '2000-01-01' },
  { name: 'to', description: 'last UTC date (YYYY-MM-DD), inclusive', pattern: DATE, default: '2099-12-31' },
];
/** Filter on the partition column, so both engines read only the days asked for. */
const inRange = (p: Readonly<Record<string, string>>) => `event_date BETWEEN '${p.from}' AND '${p.to}'`;

export const NAMED_QUERIES: readonly NamedQuery[] = [
  {
    name: 'speed_by_district_5m',
    description: 'Average vehicle speed (km/h) per district per 5 minutes',
    params: dateRange,
    columns: ['bucket_start', 'district', 'vehicles', 'samples', 'avg_speed_kmh'],
    sql: (d, p) => `
SELECT bucket_start, district, count(DISTINCT device_id) AS vehicles, count(*) AS samples,
       ${d.round('avg(speed) * 3.6', 2)} AS avg_speed_kmh
FROM (
  SELECT ${d.bucket('date_observed', 5)} AS bucket_start, ${districtSql('location_lat', 'location_lon')} AS district,
         device_id, speed
  FROM vehicle
  WHERE ${inRange(p)}
) t
GROUP BY bucket_start, district
ORDER BY bucket_start, district`,
  },
  {
    name: 'air_quality_by_station_hour',
    description: 'Mean PM2.5, PM10 and NO2 and the worst AQI per station per hour',
    params: dateRange,
    columns: ['hour_start', 'station', 'samples', 'pm25', 'pm10', 'no2', 'max_aqi'],
    sql: (d, p) => `
SELECT date_trunc('hour', date_observed) AS hour_start, device_id AS station, count(*) AS samples,
       ${d.round('avg(pm25)', 2)} AS pm25, ${d.round('avg(pm10)', 2)} AS pm10, ${d.round('avg(no2)', 2)} AS no2,
       max(air_quality_index) AS max_aqi
FROM air_quality
WHERE ${inRange(p)}
GROUP BY date_trunc('hour', date_observed), device_id
ORDER BY hour_start, station`,
  },
  {
    name: 'open_incidents',
    description: 'Incidents whose latest report is not closed, with their district',
    params: dateRange,
    columns: ['incident_id', 'category', 'sub_category', 'severity', 'incident_status', 'last_report', 'reports', 'district'],
    // Latest report per incident by event time, then sequence number (a device's own order) on ties.
    sql: (_d, p) => `
SELECT incident_id, category, sub_category, severity, incident_status, date_observed AS last_report, reports,
       ${districtSql('location_lat', 'location_lon')} AS district
FROM (
  SELECT *, row_number() OVER (PARTITION BY incident_id ORDER BY date_observed DESC, seq DESC) AS rn,
         count(*) OVER (PARTITION BY incident_id) AS reports
  FROM emergency
  WHERE ${inRange(p)}
) t
WHERE rn = 1 AND incident_status <> 'closed'
ORDER BY last_report DESC, incident_id`,
  },
  {
    name: 'weather_extremes',
    description: 'Per UTC day: coldest and hottest reading, strongest wind (with station) and rain per station',
    params: dateRange,
    columns: [
      'event_date', 'min_temperature', 'coldest_station', 'max_temperature', 'hottest_station',
      'max_wind_speed', 'windiest_station', 'max_station_precipitation_mm',
    ],
    sql: (d, p) => `
SELECT event_date, min(min_t) AS min_temperature, ${d.minBy('device_id', 'min_t')} AS coldest_station,
       max(max_t) AS max_temperature, ${d.maxBy('device_id', 'max_t')} AS hottest_station,
       max(max_wind) AS max_wind_speed, ${d.maxBy('device_id', 'max_wind')} AS windiest_station,
       ${d.round('max(rain)', 2)} AS max_station_precipitation_mm
FROM (
  SELECT event_date, device_id, min(temperature) AS min_t, max(temperature) AS max_t,
         max(wind_speed) AS max_wind, sum(precipitation) AS rain
  FROM weather
  WHERE ${inRange(p)}
  GROUP BY event_date, device_id
) t
GROUP BY event_date
ORDER BY event_date`,
  },
  {
    name: 'traffic_per_camera_hour',
    description: 'Vehicles counted, mean occupancy and congested periods per traffic camera per hour',
    params: dateRange,
    columns: ['hour_start', 'camera', 'periods', 'vehicles', 'avg_occupancy', 'congested_periods'],
    sql: (d, p) => `
SELECT date_trunc('hour', date_observed) AS hour_start, device_id AS camera, count(*) AS periods,
       sum(intensity) AS vehicles, ${d.round('avg(occupancy)', 3)} AS avg_occupancy,
       sum(CASE WHEN congested THEN 1 ELSE 0 END) AS congested_periods
FROM traffic_camera
WHERE ${inRange(p)}
GROUP BY date_trunc('hour', date_observed), device_id
ORDER BY hour_start, camera`,
  },
];

/**
 * Queries of the live engine's lake tables (DuckDB and Athena; the warehouse holds the same rows in its
 * own kpi_windows and alerts tables, which the Power BI Lambda reads).
 */
export const LIVE_NAMED_QUERIES: readonly NamedQuery[] = [
  {
    name: 'alerts',
    description: 'Alerts, open ones first: each alert\'s latest transition (raised, escalated or cleared) and how many it had',
    params: [...dateRange, { name: 'open', description: 'true: only alerts not cleared yet', pattern: /^(true|false)$/, default: 'false' }],
    columns: ['alert_id', 'rule', 'key', 'state', 'severity', 'raised_at', 'cleared_at', 'value', 'threshold', 'message', 'last_change', 'transitions'],
    // DISTINCT first: a replayed transition repeats the same content (its Kafka timestamp aside). A clear
    // ends an alert; among raises, the escalated (critical) one is the later.
    sql: (_d, p) => `
SELECT alert_id, rule, key, state, severity, raised_at, cleared_at, value, threshold, message,
       coalesce(cleared_at, raised_at) AS last_change, transitions
FROM (
  SELECT d.*,
         row_number() OVER (PARTITION BY alert_id ORDER BY CASE WHEN state = 'cleared' THEN 1 ELSE 0 END DESC,
                                                     CASE WHEN severity = 'critical' THEN 1 ELSE 0 END DESC, value DESC) AS rn,
         count(*) OVER (PARTITION BY alert_id) AS transitions
  FROM (
    SELECT DISTINCT alert_id, rule, key, state, severity, raised_at, cleared_at, value, threshold, message
    FROM alerts
    WHERE ${inRange(p)}
  ) d
) t
WHERE rn = 1${p.open === 'true' ? ` AND state = 'raised'` : ''}
ORDER BY CASE WHEN state = 'raised' THEN 0 ELSE 1 END, last_change DESC, alert_id`,
  },
];

export function namedQuery(name: string): NamedQuery {
  const query = [...NAMED_QUERIES, ...LIVE_NAMED_QUERIES].find((q) => q.name === name);
  if (query === undefined) {
    throw cloudErrors.create('CLD_NAMED_QUERY', `unknown query "${name}"; known: ${[...NAMED_QUERIES, ...LIVE_NAMED_QUERIES].map((q) => q.name).join(', ')}`);
  }
  return query;
}

/** The SQL of a named query for one engine, with its parameters checked and defaulted. */
export function namedQuerySql(name: string, engine: SqlDialectName, params: Readonly<Record<string, string>> = {}): string {
  const query = namedQuery(name);
  const known = new Set(query.params.map((p) => p.name));
  for (const key of Object.keys(params)) {
    if (!known.has(key)) {
      throw cloudErrors.create('CLD_NAMED_QUERY', `${name}: unknown parameter "${key}"; known: ${[...known].join(', ') || 'none'}`);
    }
  }
  const values: Record<string, string> = {};
  for (const p of query.params) {
    const value = params[p.name] ?? p.default;
    // The pattern is what makes inlining safe: values never carry quotes or SQL.
    if (!p.pattern.test(value)) throw cloudErrors.create('CLD_NAMED_QUERY', `${name}: parameter ${p.name}="${value}" must match ${p.pattern}`);
    values[p.name] = value;
  }
  return query.sql(DIALECTS[engine], values).trim();
}

// The processed tables' SQL, written once. Where DuckDB (local) and Athena/Trino (AWS) differ, a dialect
// gives each engine its form: time buckets, epoch seconds, timestamp literals and the output casts.
// Everything else keeps to what DuckDB, Trino and Spark SQL share: CASE instead of FILTER or IF,
// numeric literals as doubles (`45.4E0`: DECIMAL in Trino otherwise), no integer division, STRING for
// DuckDB's casts (Spark's name) and VARCHAR for Trino's (Trino has no STRING).
import type { ColumnType } from '@city/protocol';
import { districtSql } from '../ports/query/named.ts';
import {
  DISTRICT_FREE_FLOW_KMH,
  EEA_BANDS,
  EEA_LEVELS,
  EPA_PM25_BREAKPOINTS,
  GATEWAY_OFFLINE,
  ROUTE_FREE_FLOW_KMH,
  SEVERITY_ORDER,
  TTI_BANDS,
  URBAN_FREE_FLOW_KMH,
  WEATHER_THRESHOLDS,
  type ProcessedTable,
  type ProcessedTableName,
} from './definitions.ts';

export type ProcessingEngineName = 'duckdb' | 'athena';

export interface ProcessingDialect {
  readonly name: ProcessingEngineName;
  /** Start of the `minutes`-long bucket holding `ts`. */
  bucket(ts: string, minutes: number): string;
  /** Seconds since the epoch of a timestamp, as a double. */
  epochSeconds(ts: string): string;
  /** A UTC instant as a literal comparable with the lake's timestamps. */
  timestamp(at: Date): string;
  /** Output type of a column (the Parquet type the files get). */
  type(type: ColumnType): string;
}

const stamp = (at: Date): string => at.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');

export const PROCESSING_DIALECTS: { readonly [E in ProcessingEngineName]: ProcessingDialect } = {
  duckdb: {
    name: 'duckdb',
    bucket: (ts, minutes) => `time_bucket(INTERVAL '${minutes} minutes', ${ts})`,
    epochSeconds: (ts) => `epoch(${ts})`,
    timestamp: (at) => `TIMESTAMPTZ '${stamp(at)}+00'`,
    // TIMESTAMPTZ: Parquet isAdjustedToUTC, as the sink writes the lake.
    type: (t) => ({ string: 'STRING', int64: 'BIGINT', double: 'DOUBLE', boolean: 'BOOLEAN', timestamp: 'TIMESTAMPTZ' })[t],
  },
  athena: {
    name: 'athena',
    // from_unixtime gives a timestamp with time zone; the lake's (and Glue's) type is a plain timestamp.
    bucket: (ts, minutes) => `CAST(from_unixtime(floor(to_unixtime(${ts}) / ${minutes * 60}) * ${minutes * 60}) AS TIMESTAMP)`,
    epochSeconds: (ts) => `to_unixtime(${ts})`,
    timestamp: (at) => `TIMESTAMP '${stamp(at)}'`,
    type: (t) => ({ string: 'VARCHAR', int64: 'BIGINT', double: 'DOUBLE', boolean: 'BOOLEAN', timestamp: 'TIMESTAMP' })[t],
  },
};

/** What one build of one partition reads and stamps. */
export interface BuildWindow {
  /** The partition's span: [start, end). */
  start: Date;
  end: Date;
  /** Whether the partition is final at this build (is_final column). */
  final: boolean;
}

const HOUR_MS = 3_600_000;
const num = (x: number): string => `${x}E0`;
const str = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const district = districtSql('location_lat', 'location_lon');

/** Rows of `kind` with event time in [from, to): the date list lets both engines prune partitions. */
function source(d: ProcessingDialect, kind: string, from: Date, to: Date): string {
  const dates: string[] = [];
  for (let t = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()); t < to.getTime(); t += 24 * HOUR_MS) {
    dates.push(new Date(t).toISOString().slice(0, 10));
  }
  return `${kind} WHERE event_date IN (${dates.map(str).join(', ')}) AND date_observed >= ${d.timestamp(from)} AND date_observed < ${d.timestamp(to)}`;
}

/** The source window of a build: the partition widened by the table's look-back and follow hours. */
export function sourceWindow(t: ProcessedTable, w: Pick<BuildWindow, 'start' | 'end'>): { from: Date; to: Date } {
  return { from: new Date(w.start.getTime() - t.lookbackHours * HOUR_MS), to: new Date(w.end.getTime() + t.followHours * HOUR_MS) };
}

function bandCase(value: string, bands: readonly { upTo: number | null; label: string }[]): string {
  const whens = bands.map((b) => (b.upTo === null ? `ELSE ${str(b.label)}` : `WHEN ${value} <= ${num(b.upTo)} THEN ${str(b.label)}`));
  return `CASE WHEN ${value} IS NULL THEN NULL ${whens.join(' ')} END`;
}

/** US EPA AQI of a PM2.5 concentration: truncated to 0.1, then linear within its breakpoint row. */
export function aqiPm25Sql(pm25: string): string {
  const c = `(floor(${pm25} * 10) / 10)`;
  const rows = EPA_PM25_BREAKPOINTS.map(
    (b) => `WHEN ${c} <= ${num(b.cHigh)} THEN round(${num((b.iHigh - b.iLow) / (b.cHigh - b.cLow))} * (${c} - ${num(b.cLow)}) + ${num(b.iLow)})`,
  );
  const top = EPA_PM25_BREAKPOINTS[EPA_PM25_BREAKPOINTS.length - 1]?.iHigh ?? 500;
  return `CASE WHEN ${pm25} IS NULL THEN NULL ${rows.join(' ')} ELSE ${num(top)} END`;
}

function aqiCategorySql(aqi: string): string {
  return `CASE WHEN ${aqi} IS NULL THEN NULL ${EPA_PM25_BREAKPOINTS.map((b) => `WHEN ${aqi} <= ${b.iHigh} THEN ${str(b.category)}`).join(' ')} ELSE ${str('hazardous')} END`;
}

function eeaLevelSql(value: string, bounds: readonly number[]): string {
  return `CASE WHEN ${value} IS NULL THEN 0 ${bounds.map((b, i) => `WHEN ${value} <= ${num(b)} THEN ${i}`).join(' ')} ELSE ${bounds.length} END`;
}

/** NWS heat index (Rothfusz regression, in °F) of a temperature (°C) and relative humidity (0–1), back in °C. */
export function heatIndexSql(tempC: string, rh: string): string {
  const t = `(${tempC} * 1.8E0 + 32E0)`;
  const h = `(${rh} * 100E0)`;
  const hi =
    `(-42.379E0 + 2.04901523E0 * ${t} + 10.14333127E0 * ${h} - 0.22475541E0 * ${t} * ${h} - 0.00683783E0 * ${t} * ${t}` +
    ` - 0.05481717E0 * ${h} * ${h} + 0.00122874E0 * ${t} * ${t} * ${h} + 0.00085282E0 * ${t} * ${h} * ${h} - 0.00000199E0 * ${t} * ${t} * ${h} * ${h})`;
  return `CASE WHEN ${t} < 80E0 THEN ${tempC} ELSE (${hi} - 32E0) / 1.8E0 END`;
}

function freeFlowSql(route: string, districtColumn: string): string {
  const byRoute = Object.entries(ROUTE_FREE_FLOW_KMH).map(([id, v]) => `WHEN ${str(id)} THEN ${num(v)}`).join(' ');
  const byDistrict = Object.entries(DISTRICT_FREE_FLOW_KMH).map(([id, v]) => `WHEN ${str(id)} THEN ${num(v)}`).join(' ');
  return `COALESCE(CASE ${route} ${byRoute} END, CASE ${districtColumn} ${byDistrict} END, ${num(URBAN_FREE_FLOW_KMH)})`;
}

const T = WEATHER_THRESHOLDS;
const weatherFlags = (wind: string, heat: string, fog: string) => `
       ${wind} >= ${num(T.windAdvisoryMs)} AS wind_advisory, ${wind} >= ${num(T.highWindMs)} AS high_wind,
       ${fog} AS dense_fog, ${heat} >= ${num(T.heatIndexC)} AS heat`;
const fogObservation = `CASE WHEN relative_humidity >= ${num(T.fogMinHumidity)} AND wind_speed <= ${num(T.fogMaxWindMs)} THEN 1 ELSE 0 END`;

type Body = (d: ProcessingDialect, w: BuildWindow, t: ProcessedTable) => string;

const BODIES: { readonly [N in ProcessedTableName]: Body } = {
  traffic_district_5m: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    return `
WITH v AS (
  SELECT bucket_start, district, device_id, speed * 3.6E0 AS kmh,
         CASE WHEN service_status = 'onRoute' THEN 1 ELSE 0 END AS moving, ${freeFlowSql('route_id', 'district')} AS ff_kmh
  FROM (SELECT ${d.bucket('date_observed', 5)} AS bucket_start, ${district} AS district, device_id, speed, service_status, route_id
        FROM ${source(d, 'vehicle', from, to)}) s
), agg AS (
  SELECT bucket_start, district, count(DISTINCT device_id) AS vehicles, count(*) AS samples, sum(moving) AS moving_samples,
         avg(CASE WHEN moving = 1 THEN kmh END) AS mean_speed, avg(CASE WHEN moving = 1 THEN ff_kmh END) AS ff
  FROM v GROUP BY bucket_start, district
), cam AS (
  SELECT bucket_start, district, count(*) AS periods, sum(CASE WHEN congested THEN 1 ELSE 0 END) AS congested
  FROM (SELECT ${d.bucket('date_observed', 5)} AS bucket_start, ${district} AS district, congested
        FROM ${source(d, 'traffic_camera', from, to)}) s
  GROUP BY bucket_start, district
)
SELECT a.bucket_start, a.district, a.vehicles, a.samples, a.moving_samples,
       round(a.mean_speed, 2) AS mean_speed_kmh, round(a.ff, 2) AS free_flow_kmh,
       CASE WHEN a.mean_speed > 0E0 THEN round(a.ff / a.mean_speed, 3) END AS travel_time_index,
       CASE WHEN a.mean_speed > 0E0 THEN ${bandCase('a.ff / a.mean_speed', TTI_BANDS)} END AS tti_band,
       COALESCE(c.periods, 0) AS camera_periods,
       CASE WHEN c.periods > 0 THEN round(CAST(c.congested AS DOUBLE) / c.periods, 3) END AS congested_share
FROM agg a LEFT JOIN cam c ON c.bucket_start = a.bucket_start AND c.district = a.district`;
  },

  camera_flow_15m: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    return `
SELECT bucket_start, camera, min(district) AS district, count(*) AS periods, sum(intensity) AS intensity,
       round(avg(occupancy), 4) AS mean_occupancy,
       round(sum(average_vehicle_speed * intensity) / CAST(NULLIF(sum(CASE WHEN average_vehicle_speed IS NOT NULL THEN intensity ELSE 0 END), 0) AS DOUBLE) * 3.6E0, 2) AS mean_speed_kmh,
       sum(CASE WHEN congested THEN 1 ELSE 0 END) AS congested_periods
FROM (SELECT ${d.bucket('date_observed', 15)} AS bucket_start, device_id AS camera, ${district} AS district,
             intensity, occupancy, average_vehicle_speed, congested
      FROM ${source(d, 'traffic_camera', from, to)}) s
GROUP BY bucket_start, camera`;
  },

  air_quality_station_hour: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    const b = EEA_BANDS;
    const level = `greatest(${eeaLevelSql('pm25', b.pm25)}, ${eeaLevelSql('pm10', b.pm10)}, ${eeaLevelSql('no2', b.no2)}, ${eeaLevelSql('o3', b.o3)})`;
    const label = `CASE ${EEA_LEVELS.map((l, i) => `WHEN ${level} = ${i} THEN ${str(l)}`).join(' ')} END`;
    return `
SELECT hour_start, station, district, samples, round(pm25, 2) AS pm25, round(pm10, 2) AS pm10, round(no2, 2) AS no2, round(o3, 2) AS o3,
       aqi_pm25, ${aqiCategorySql('aqi_pm25')} AS aqi_category, CASE WHEN samples > 0 THEN ${label} END AS eea_band
FROM (
  SELECT hour_start, station, district, samples, pm25, pm10, no2, o3, ${aqiPm25Sql('pm25')} AS aqi_pm25
  FROM (
    SELECT date_trunc('hour', date_observed) AS hour_start, device_id AS station, min(${district}) AS district, count(*) AS samples,
           avg(pm25) AS pm25, avg(pm10) AS pm10, avg(no2) AS no2, avg(o3) AS o3
    FROM ${source(d, 'air_quality', from, to)}
    GROUP BY date_trunc('hour', date_observed), device_id
  ) m
) a`;
  },

  weather_station_hour: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    return `
SELECT hour_start, station, district, samples, min_temperature, max_temperature, round(mean_temperature, 2) AS mean_temperature,
       max_wind_speed, round(rain_mm, 2) AS rain_mm, round(max_heat_index, 2) AS max_heat_index,${weatherFlags('max_wind_speed', 'max_heat_index', 'fog > 0')}
FROM (
  SELECT date_trunc('hour', date_observed) AS hour_start, device_id AS station, min(${district}) AS district, count(*) AS samples,
         min(temperature) AS min_temperature, max(temperature) AS max_temperature, avg(temperature) AS mean_temperature,
         max(wind_speed) AS max_wind_speed, sum(precipitation) AS rain_mm,
         max(${heatIndexSql('temperature', 'relative_humidity')}) AS max_heat_index, max(${fogObservation}) AS fog
  FROM ${source(d, 'weather', from, to)}
  GROUP BY date_trunc('hour', date_observed), device_id
) s`;
  },

  weather_district_day: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    return `
SELECT day, district, count(*) AS stations, sum(samples) AS samples, min(min_t) AS min_temperature, max(max_t) AS max_temperature,
       round(sum(sum_t) / CAST(sum(samples) AS DOUBLE), 2) AS mean_temperature, max(max_wind) AS max_wind_speed,
       round(avg(rain), 2) AS rain_mm, round(max(max_hi), 2) AS max_heat_index,${weatherFlags('max(max_wind)', 'max(max_hi)', 'max(fog) > 0')}
FROM (
  SELECT event_date AS day, device_id, min(${district}) AS district, count(*) AS samples, min(temperature) AS min_t, max(temperature) AS max_t,
         sum(temperature) AS sum_t, max(wind_speed) AS max_wind, sum(precipitation) AS rain,
         max(${heatIndexSql('temperature', 'relative_humidity')}) AS max_hi, max(${fogObservation}) AS fog
  FROM ${source(d, 'weather', from, to)}
  GROUP BY event_date, device_id
) s
GROUP BY day, district`;
  },

  incidents: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    const rank = `CASE severity ${SEVERITY_ORDER.map((s, i) => `WHEN ${str(s)} THEN ${i}`).join(' ')} ELSE -1 END`;
    const back = `CASE max_rank ${SEVERITY_ORDER.map((s, i) => `WHEN ${i} THEN ${str(s)}`).join(' ')} END`;
    return `
WITH r AS (
  SELECT incident_id, date_observed, category, sub_category, incident_status, units_assigned, ${rank} AS sev_rank, ${district} AS district,
         row_number() OVER (PARTITION BY incident_id ORDER BY date_observed, seq, event_id) AS rn,
         min(date_observed) OVER (PARTITION BY incident_id) AS opened_at
  FROM ${source(d, 'emergency', from, to)}
), mine AS (
  SELECT * FROM r
  WHERE opened_at >= ${d.timestamp(w.start)} AND opened_at < ${d.timestamp(w.end)}
    AND ${d.epochSeconds('date_observed')} < ${d.epochSeconds('opened_at')} + 86400E0
), agg AS (
  SELECT incident_id, min(opened_at) AS opened_at,
         min(CASE WHEN incident_status = 'inProgress' OR units_assigned > 0 THEN date_observed END) AS dispatched_at,
         min(CASE WHEN incident_status = 'closed' THEN date_observed END) AS closed_at,
         max(CASE WHEN rn = 1 THEN category END) AS category, max(CASE WHEN rn = 1 THEN sub_category END) AS sub_category,
         max(sev_rank) AS max_rank, max(CASE WHEN rn = 1 THEN district END) AS district, count(*) AS reports
  FROM mine GROUP BY incident_id
)
SELECT incident_id, opened_at, dispatched_at, closed_at,
       round(${d.epochSeconds('closed_at')} - ${d.epochSeconds('opened_at')}, 3) AS time_to_close_s,
       category, sub_category, ${back} AS severity, district, reports
FROM agg`;
  },

  phone_reports_district_hour: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    return `
SELECT hour_start, district, report_category, platform, count(*) AS reports, count(DISTINCT device_id) AS reporters
FROM (
  SELECT date_trunc('hour', date_observed) AS hour_start, COALESCE(${district}, 'unknown') AS district,
         COALESCE(report_category, 'other') AS report_category, platform, device_id
  FROM ${source(d, 'phone', from, to)} AND event_type = 'issueReport'
) s
GROUP BY hour_start, district, report_category, platform`;
  },

  gateway_health_hour: (d, w, t) => {
    const { from, to } = sourceWindow(t, w);
    const o = GATEWAY_OFFLINE;
    const over = 'OVER (PARTITION BY device_id ORDER BY date_observed, seq)';
    return `
WITH g AS (
  SELECT device_id, date_observed, buffer_depth, buffer_bytes, COALESCE(evicted_total, 0) AS evicted, uptime, cpu_load, temperature,
         lag(date_observed) ${over} AS prev_at, lag(COALESCE(evicted_total, 0)) ${over} AS prev_evicted, lag(uptime) ${over} AS prev_uptime
  FROM ${source(d, 'gateway_health', from, to)}
), h AS (
  SELECT *, CASE WHEN prev_at IS NULL THEN 0E0 ELSE ${d.epochSeconds('date_observed')} - ${d.epochSeconds('prev_at')} END AS gap_s,
         CASE WHEN prev_uptime IS NOT NULL AND uptime < prev_uptime THEN 1 ELSE 0 END AS restarted
  FROM g WHERE date_observed >= ${d.timestamp(w.start)}
)
SELECT date_trunc('hour', date_observed) AS hour_start, device_id AS gateway, count(*) AS reports,
       max(buffer_depth) AS max_buffer_depth, max(buffer_bytes) AS max_buffer_bytes,
       round(sum(CASE WHEN gap_s > ${num(o.offlineAfterS)} THEN gap_s - ${num(o.expectedIntervalS)} ELSE 0E0 END) / 60E0, 2) AS offline_minutes,
       sum(CASE WHEN prev_evicted IS NULL THEN 0 WHEN restarted = 1 OR evicted < prev_evicted THEN evicted ELSE evicted - prev_evicted END) AS evictions,
       sum(restarted) AS restarts, round(avg(cpu_load), 4) AS mean_cpu_load, max(cpu_load) AS max_cpu_load, max(temperature) AS max_temperature
FROM h
GROUP BY date_trunc('hour', date_observed), device_id`;
  },
};

/**
 * The SELECT building one partition of a processed table: the table's columns in schema order, each
 * cast to its type, is_final as a literal, rows in a stable order. No partition columns: they are the
 * location's (Hive path and catalog), as in the rest of the lake.
 */
export function processedSql(t: ProcessedTable, dialect: ProcessingEngineName | ProcessingDialect, w: BuildWindow): string {
  const d = typeof dialect === 'string' ? PROCESSING_DIALECTS[dialect] : dialect;
  const columns = t.schema.columns.map((c) =>
    c.name === 'is_final' ? `${w.final ? 'true' : 'false'} AS is_final` : `CAST(${c.name} AS ${d.type(c.type)}) AS ${c.name}`,
  );
  const keys = t.schema.columns.filter((c) => c.name !== 'is_final' && !c.nullable).map((c) => c.name);
  return `SELECT ${columns.join(', ')}\nFROM (${BODIES[t.name](d, w, t)}\n) q\nORDER BY ${keys.join(', ')}`;
}

// The processed tables' SQL, written once. Where DuckDB (local) and Athena/Trino (AWS) differ, a dialect
// gives each engine its form: time buckets, epoch seconds, timestamp literals and the output casts.
// Everything else keeps to what DuckDB, Trino and Spark SQL share: CASE instead of FILTER or IF,
// numeric literals as doubles (`45.4E0`: DECIMAL in Trino otherwise), no integer division, STRING for
// DuckDB's casts (Spark's name) and VARCHAR for Trino's (Trino has no STRING).
// The windowed tables (traffic, cameras, air quality, weather per station, phone reports) are rendered
// from the live engine's KPI definitions (live/definitions.ts): one definition, two executions.
import type { ColumnType } from '@city/protocol';
import { districtSql } from '../ports/query/named.ts';
import { aggregatesOf, kpiDefinition, type AggregateDefinition, type KpiDefinition, type RowExpr, type ValueExpr } from '../live/definitions.ts';
import {
  EEA_BANDS,
  EEA_LEVELS,
  EPA_PM25_BREAKPOINTS,
  GATEWAY_OFFLINE,
  SEVERITY_ORDER,
  WEATHER_THRESHOLDS,
  type ProcessedTable,
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

const T = WEATHER_THRESHOLDS;
const weatherFlags = (wind: string, heat: string, fog: string) => `
       ${wind} >= ${num(T.windAdvisoryMs)} AS wind_advisory, ${wind} >= ${num(T.highWindMs)} AS high_wind,
       ${fog} AS dense_fog, ${heat} >= ${num(T.heatIndexC)} AS heat`;
const fogObservation = `CASE WHEN relative_humidity >= ${num(T.fogMinHumidity)} AND wind_speed <= ${num(T.fogMaxWindMs)} THEN 1 ELSE 0 END`;

type Body = (d: ProcessingDialect, w: BuildWindow, t: ProcessedTable) => string;

/** Tables whose rows are not windowed mergeable aggregates: written as SQL here. */
type OwnBodyTable = 'weather_district_day' | 'incidents' | 'gateway_health_hour';

const BODIES: { readonly [N in OwnBodyTable]: Body } = {
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
  const figure = kpiDefinition(t.name);
  const body = figure !== undefined ? figureSql(figure, d, sourceWindow(t, w)) : BODIES[t.name as OwnBodyTable](d, w, t);
  return `SELECT ${columns.join(', ')}\nFROM (${body}\n) q\nORDER BY ${keys.join(', ')}`;
}

/** A row expression as SQL over the lake table's columns. */
export function rowSql(e: RowExpr): string {
  if ('col' in e) return e.col;
  if ('num' in e) return num(e.num);
  if ('str' in e) return str(e.str);
  if ('op' in e) return `(${rowSql(e.left)} ${e.op} ${rowSql(e.right)})`;
  if ('cmp' in e) return `(${rowSql(e.left)} ${e.cmp} ${rowSql(e.right)})`;
  if ('and' in e) return `(${e.and.map(rowSql).join(' AND ')})`;
  if ('notNull' in e) return `(${rowSql(e.notNull)} IS NOT NULL)`;
  if ('isTrue' in e) return `(${rowSql(e.isTrue)} = true)`;
  if ('coalesce' in e) return `COALESCE(${e.coalesce.map(rowSql).join(', ')})`;
  if ('lookup' in e) return `CASE ${rowSql(e.lookup)} ${Object.entries(e.table).map(([k, v]) => `WHEN ${str(k)} THEN ${num(v)}`).join(' ')} END`;
  if ('district' in e) return districtSql(e.district.lat, e.district.lon);
  return heatIndexSql(rowSql(e.heatIndex.tempC), rowSql(e.heatIndex.rh));
}

function aggregateSql(a: AggregateDefinition): string {
  const of = a.of === undefined ? undefined : rowSql(a.of);
  const w = a.where === undefined ? undefined : rowSql(a.where);
  if (a.fn === 'count' && of === undefined) return w === undefined ? 'count(*)' : `sum(CASE WHEN ${w} THEN 1 ELSE 0 END)`;
  const arg = w === undefined ? of! : `CASE WHEN ${w} THEN ${of!} END`;
  return a.fn === 'count_distinct' ? `count(DISTINCT ${arg})` : `${a.fn}(${arg})`;
}

/** A finished figure as SQL over the aggregates' columns. */
export function valueSql(e: ValueExpr): string {
  if ('agg' in e) return e.agg;
  if ('num' in e) return num(e.num);
  if ('round' in e) return `round(${valueSql(e.round)}, ${e.digits})`;
  if ('aqiPm25' in e) return aqiPm25Sql(valueSql(e.aqiPm25));
  if ('aqiCategory' in e) return aqiCategorySql(valueSql(e.aqiCategory));
  if ('band' in e) return bandCase(valueSql(e.band), e.bands);
  if ('eeaBand' in e) {
    const levels = Object.entries(e.eeaBand).map(([p, x]) => eeaLevelSql(valueSql(x), EEA_BANDS[p as keyof typeof EEA_BANDS]));
    const level = levels.length === 1 ? levels[0]! : `greatest(${levels.join(', ')})`;
    return `CASE WHEN ${valueSql(e.when)} > 0 THEN CASE ${EEA_LEVELS.map((l, i) => `WHEN ${level} = ${i} THEN ${str(l)}`).join(' ')} END END`;
  }
  if ('cmp' in e) return `(${valueSql(e.left)} ${e.cmp} ${valueSql(e.right)})`;
  // No integer division in any engine, and null (not an error) for a zero divisor.
  if (e.op === '/') return `(CAST(${valueSql(e.left)} AS DOUBLE) / CAST(NULLIF(${valueSql(e.right)}, 0) AS DOUBLE))`;
  return `(${valueSql(e.left)} ${e.op} ${valueSql(e.right)})`;
}

/**
 * A figure as SQL over the lake: per input, its aggregates per bucket and key over the source rows with
 * event time in [from, to) (rows without a key dropped, as the live engine drops them); the later inputs
 * LEFT JOINed to the first (their counts 0 where they have no rows); then the figures, named as the
 * processed table's columns.
 */
export function figureSql(f: KpiDefinition, dialect: ProcessingEngineName | ProcessingDialect, range: { from: Date; to: Date }): string {
  const d = typeof dialect === 'string' ? PROCESSING_DIALECTS[dialect] : dialect;
  const minutes = f.bucket.sizeMs / 60_000;
  if (!Number.isInteger(minutes) || (f.bucket.hopMs !== undefined && f.bucket.hopMs !== f.bucket.sizeMs)) {
    throw new TypeError(`${f.name}: SQL renders tumbling buckets of whole minutes only`);
  }
  const keys = f.keyColumns.map((_, i) => `k${i}`);
  const inputs = f.inputs.map((input, n) => {
    const filter = input.where === undefined ? '' : ` AND ${rowSql(input.where)}`;
    const select = [`${d.bucket('date_observed', minutes)} AS b`, ...input.keys.map((k, i) => `${rowSql(k)} AS ${keys[i]}`), ...input.aggregates.map((a) => `${aggregateSql(a)} AS ${a.name}`)];
    const groupBy = [1, ...keys.map((_, i) => i + 2)].join(', ');
    return `i${n} AS (\n  SELECT * FROM (SELECT ${select.join(', ')}\n    FROM ${source(d, input.source, range.from, range.to)}${filter}\n    GROUP BY ${groupBy}) g\n  WHERE ${keys.map((k) => `${k} IS NOT NULL`).join(' AND ')}\n)`;
  });
  const counts = new Set(aggregatesOf(f).filter((a) => a.fn === 'count' || a.fn === 'count_distinct').map((a) => a.name));
  const joined = f.inputs.slice(1).map((input, n) => ({ alias: `i${n + 1}`, input }));
  const columns = [
    'i0.*',
    ...joined.flatMap(({ alias, input }) => input.aggregates.map((a) => (counts.has(a.name) ? `COALESCE(${alias}.${a.name}, 0) AS ${a.name}` : `${alias}.${a.name}`))),
  ];
  const joins = joined.map(({ alias }) => `LEFT JOIN ${alias} ON ${alias}.b = i0.b AND ${keys.map((k) => `${alias}.${k} = i0.${k}`).join(' AND ')}`).join('\n  ');
  const figures = [`b AS ${f.bucketColumn}`, ...f.keyColumns.map((c, i) => `${keys[i]} AS ${c}`), ...Object.entries(f.values).map(([name, e]) => `${valueSql(e)} AS ${name}`)];
  return `
WITH ${inputs.join(',\n')}
SELECT ${figures.join(',\n       ')}
FROM (SELECT ${columns.join(', ')} FROM i0
  ${joins}) j`;
}


// The processed zone as data: its tables (schemas the warehouse and the catalog create), the inputs each
// is built from, how late each event kind may arrive, and every breakpoint and threshold the aggregates
// apply. Plain data on purpose: the SQL in sql.ts renders from it, and a second engine (live KPIs) can
// read the same numbers without parsing SQL.
import { PARTITION_KEYS, type Column, type ColumnType, type EventKind, type TableSchema } from '@city/protocol';

/** Key prefix of the processed zone in the object store. */
export const PROCESSED_PREFIX = 'processed';

/**
 * How late an event of each kind may arrive (event time → written to the lake) and still be in its
 * hour's first final build. Past it the partition is final; later rows rebuild it and are counted.
 */
export const ALLOWED_LATENESS_MS: { readonly [K in EventKind]: number } = {
  vehicle: 5 * 60_000,
  gps: 5 * 60_000,
  weather: 10 * 60_000,
  air_quality: 10 * 60_000,
  traffic_camera: 5 * 60_000,
  emergency: 5 * 60_000,
  phone: 10 * 60_000,
  // Gateways report through their own buffer: after an outage the backlog arrives late by design.
  gateway_health: 30 * 60_000,
};

/** A band of a value: applies while value ≤ upTo (the last band has upTo null: no upper bound). */
export interface Band {
  upTo: number | null;
  label: string;
}

/** One row of an AQI breakpoint table: concentrations [cLow, cHigh] map linearly onto [iLow, iHigh]. */
export interface AqiBreakpoint {
  cLow: number;
  cHigh: number;
  iLow: number;
  iHigh: number;
  category: string;
}

/**
 * US EPA AQI for PM2.5 (µg/m³), breakpoints as revised in 2024 (annual NAAQS 9.0). The concentration
 * is truncated to 0.1 µg/m³ before lookup, as the EPA's technical assistance document asks; above the
 * top breakpoint the AQI is 500.
 */
export const EPA_PM25_BREAKPOINTS: readonly AqiBreakpoint[] = [
  { cLow: 0.0, cHigh: 9.0, iLow: 0, iHigh: 50, category: 'good' },
  { cLow: 9.1, cHigh: 35.4, iLow: 51, iHigh: 100, category: 'moderate' },
  { cLow: 35.5, cHigh: 55.4, iLow: 101, iHigh: 150, category: 'unhealthy_for_sensitive_groups' },
  { cLow: 55.5, cHigh: 125.4, iLow: 151, iHigh: 200, category: 'unhealthy' },
  { cLow: 125.5, cHigh: 225.4, iLow: 201, iHigh: 300, category: 'very_unhealthy' },
  { cLow: 225.5, cHigh: 325.4, iLow: 301, iHigh: 500, category: 'hazardous' },
];

/** EEA European Air Quality Index bands per pollutant (µg/m³); a station-hour takes its worst band. */
export const EEA_LEVELS = ['good', 'fair', 'moderate', 'poor', 'very_poor', 'extremely_poor'] as const;
export const EEA_BANDS: { readonly [P in 'pm25' | 'pm10' | 'no2' | 'o3']: readonly number[] } = {
  // Upper bound of each level but the last (which is open-ended), in EEA_LEVELS order.
  pm25: [10, 20, 25, 50, 75],
  pm10: [20, 40, 50, 100, 150],
  no2: [40, 90, 120, 230, 340],
  o3: [50, 100, 130, 240, 380],
};

/** NWS-style weather flags. The lake has no visibility or gust fields: see fog and gust below. */
export const WEATHER_THRESHOLDS = {
  /** Wind advisory: sustained wind at or above this, m/s (≈ 31 mph). */
  windAdvisoryMs: 14,
  /** High wind warning: sustained wind at or above this, m/s (40 mph). */
  highWindMs: 17.9,
  /**
   * Dense fog needs visibility ≤ ¼ mile, which no station measures: flagged when an observation has
   * relative humidity at or above this with wind at or below fogMaxWindMs (saturated, calm air).
   */
  fogMinHumidity: 0.97,
  fogMaxWindMs: 2,
  /** Heat advisory: NWS heat index (Rothfusz regression over temperature and humidity) at or above this, °C (105 °F). */
  heatIndexC: 40.6,
} as const;

/** Travel-time index bands: free-flow speed ÷ mean speed. */
export const TTI_BANDS: readonly Band[] = [
  { upTo: 1.5, label: 'free' },
  { upTo: 2.5, label: 'slow' },
  { upTo: null, label: 'congested' },
];

/**
 * Free-flow speed (km/h) of the roads vehicles drive. Vehicles report no road, only (for public
 * transport and service vehicles) a route id; the city model's routes carry speed limits per segment.
 * Per route: the length-weighted mean limit of its segments. Per district (vehicles without a route):
 * the length-weighted mean limit of every route segment whose midpoint lies in the district's box;
 * districts without a segment take URBAN_FREE_FLOW_KMH. Derived once from device-sim's city model.
 */
export const ROUTE_FREE_FLOW_KMH: Readonly<Record<string, number>> = {
  'ring-a10': 80,
  'arterial-ns': 45.4,
  'arterial-ew': 52.2,
  'centrum-loop': 30,
  harbour: 50,
  'bus-12': 45.7,
  'bus-27': 47.5,
  'bus-40': 50,
  'tram-5': 43.8,
};
export const DISTRICT_FREE_FLOW_KMH: Readonly<Record<string, number>> = {
  Centrum: 32,
  Spoorzijde: 47.6,
  Noordoever: 64.7,
  Oostpark: 54.8,
  Zuidveld: 54.8,
  Westpoort: 61.3,
  Lindenhof: 65.2,
  outside: 59,
};
export const URBAN_FREE_FLOW_KMH = 50;

/** Gateway health: a gap between two reports longer than this counts as offline (beyond the normal interval). */
export const GATEWAY_OFFLINE = { expectedIntervalS: 60, offlineAfterS: 180 } as const;

/** Severity order of emergency reports, lowest first (an incident takes its highest). */
export const SEVERITY_ORDER = ['informational', 'low', 'medium', 'high', 'critical'] as const;

const col = (name: string, type: ColumnType, description: string, unit?: string, nullable = true): Column => ({
  name,
  type,
  nullable,
  description,
  ...(unit === undefined ? {} : { unit }),
  source: [],
});

/** Every processed row says whether its partition was final when built (the catalog says it too). */
const FINAL = col('is_final', 'boolean', 'the partition had closed (hour end + allowed lateness passed) when this row was built', undefined, false);

export type ProcessedTableName =
  | 'traffic_district_5m'
  | 'camera_flow_15m'
  | 'air_quality_station_hour'
  | 'weather_station_hour'
  | 'weather_district_day'
  | 'incidents'
  | 'phone_reports_district_hour'
  | 'gateway_health_hour';

export interface ProcessedTable {
  name: ProcessedTableName;
  description: string;
  schema: TableSchema;
  /** Lake tables read. */
  sources: readonly EventKind[];
  /** Partition grain: an hour (event_hour 0–23) or a UTC day (event_hour always 0). */
  grain: 'hour' | 'day';
  /** Hours before and after the partition whose source rows the partition's rows depend on. */
  lookbackHours: number;
  followHours: number;
}

const table = (
  name: ProcessedTableName,
  description: string,
  sources: readonly EventKind[],
  columns: readonly Column[],
  shape: { grain?: 'hour' | 'day'; lookbackHours?: number; followHours?: number } = {},
): ProcessedTable => ({
  name,
  description,
  sources,
  grain: shape.grain ?? 'hour',
  lookbackHours: shape.lookbackHours ?? 0,
  followHours: shape.followHours ?? 0,
  schema: { name, columns: [...columns, FINAL], partitionKeys: PARTITION_KEYS },
});

export const PROCESSED_TABLES: readonly ProcessedTable[] = [
  table('traffic_district_5m', 'Vehicle traffic per district per 5 minutes of event time', ['vehicle', 'traffic_camera'], [
    col('bucket_start', 'timestamp', 'start of the 5-minute bucket', 'UTC', false),
    col('district', 'string', 'district of the vehicle position (outside: beyond every district)', undefined, false),
    col('vehicles', 'int64', 'distinct vehicles seen'),
    col('samples', 'int64', 'vehicle telemetry samples'),
    col('moving_samples', 'int64', 'samples of vehicles on route (service status onRoute)'),
    col('mean_speed_kmh', 'double', 'mean speed of the moving samples', 'km/h'),
    col('free_flow_kmh', 'double', 'mean free-flow speed of the roads the moving samples drove', 'km/h'),
    col('travel_time_index', 'double', 'free_flow_kmh / mean_speed_kmh (1 = free flow)'),
    col('tti_band', 'string', 'free (≤ 1.5), slow (≤ 2.5), congested (> 2.5)'),
    col('camera_periods', 'int64', 'traffic camera counting periods in the district and bucket'),
    col('congested_share', 'double', 'share of those periods a camera flagged congested, 0 to 1'),
  ]),
  table('camera_flow_15m', 'Traffic camera flow per camera per 15 minutes', ['traffic_camera'], [
    col('bucket_start', 'timestamp', 'start of the 15-minute bucket', 'UTC', false),
    col('camera', 'string', 'camera device id', undefined, false),
    col('district', 'string', 'district of the camera'),
    col('periods', 'int64', 'counting periods (all lanes)'),
    col('intensity', 'int64', 'vehicles counted'),
    col('mean_occupancy', 'double', 'mean lane occupancy, 0 to 1'),
    col('mean_speed_kmh', 'double', 'mean vehicle speed, weighted by vehicles counted', 'km/h'),
    col('congested_periods', 'int64', 'periods flagged congested'),
  ]),
  table('air_quality_station_hour', 'Air quality per station per hour with US EPA AQI and EEA band', ['air_quality'], [
    col('hour_start', 'timestamp', 'start of the hour', 'UTC', false),
    col('station', 'string', 'air quality sensor device id', undefined, false),
    col('district', 'string', 'district of the station'),
    col('samples', 'int64', 'observations'),
    col('pm25', 'double', 'mean PM2.5', 'ug/m3'),
    col('pm10', 'double', 'mean PM10', 'ug/m3'),
    col('no2', 'double', 'mean NO2', 'ug/m3'),
    col('o3', 'double', 'mean O3 (null when not measured)', 'ug/m3'),
    col('aqi_pm25', 'int64', 'US EPA AQI of the hourly mean PM2.5 (2024 breakpoints)'),
    col('aqi_category', 'string', 'EPA category of aqi_pm25'),
    col('eea_band', 'string', 'EEA European Air Quality Index band, worst of PM2.5, PM10, NO2, O3'),
  ]),
  table('weather_station_hour', 'Weather per station per hour with NWS-style flags', ['weather'], [
    col('hour_start', 'timestamp', 'start of the hour', 'UTC', false),
    col('station', 'string', 'weather station device id', undefined, false),
    col('district', 'string', 'district of the station'),
    col('samples', 'int64', 'observations'),
    col('min_temperature', 'double', 'lowest air temperature', 'Cel'),
    col('max_temperature', 'double', 'highest air temperature', 'Cel'),
    col('mean_temperature', 'double', 'mean air temperature', 'Cel'),
    col('max_wind_speed', 'double', 'highest mean wind speed observed (no gust sensor: the strongest observation stands in)', 'm/s'),
    col('rain_mm', 'double', 'precipitation total', 'mm'),
    col('max_heat_index', 'double', 'highest NWS heat index (Rothfusz), temperature below 26.7 °C', 'Cel'),
    col('wind_advisory', 'boolean', 'wind at or above the advisory threshold (14 m/s)'),
    col('high_wind', 'boolean', 'wind at or above the high-wind threshold (17.9 m/s)'),
    col('dense_fog', 'boolean', 'saturated calm air observed (fog proxy, no visibility sensor)'),
    col('heat', 'boolean', 'heat index at or above the advisory threshold (40.6 °C)'),
  ]),
  table('weather_district_day', 'Weather per district per UTC day with NWS-style flags', ['weather'], [
    col('day', 'string', 'UTC date, YYYY-MM-DD', undefined, false),
    col('district', 'string', 'district of the stations', undefined, false),
    col('stations', 'int64', 'stations reporting'),
    col('samples', 'int64', 'observations'),
    col('min_temperature', 'double', 'lowest air temperature', 'Cel'),
    col('max_temperature', 'double', 'highest air temperature', 'Cel'),
    col('mean_temperature', 'double', 'mean air temperature', 'Cel'),
    col('max_wind_speed', 'double', 'highest mean wind speed observed', 'm/s'),
    col('rain_mm', 'double', 'precipitation total, mean over the district stations', 'mm'),
    col('max_heat_index', 'double', 'highest NWS heat index', 'Cel'),
    col('wind_advisory', 'boolean', 'wind at or above 14 m/s at some station'),
    col('high_wind', 'boolean', 'wind at or above 17.9 m/s at some station'),
    col('dense_fog', 'boolean', 'fog proxy at some station'),
    col('heat', 'boolean', 'heat index at or above 40.6 °C at some station'),
  ], { grain: 'day' }),
  table('incidents', 'One row per emergency incident, in the partition of the hour it opened', ['emergency'], [
    col('incident_id', 'string', 'incident id', undefined, false),
    col('opened_at', 'timestamp', 'first report', 'UTC', false),
    col('dispatched_at', 'timestamp', 'first report in progress or with units assigned', 'UTC'),
    col('closed_at', 'timestamp', 'first closed report (within a day of opening)', 'UTC'),
    col('time_to_close_s', 'double', 'closed_at - opened_at', 's'),
    col('category', 'string', 'category of the first report'),
    col('sub_category', 'string', 'sub-category of the first report'),
    col('severity', 'string', 'highest severity reported'),
    col('district', 'string', 'district of the first report'),
    col('reports', 'int64', 'reports of the incident (within a day of opening)'),
  ], { lookbackHours: 24, followHours: 24 }),
  table('phone_reports_district_hour', 'Citizen issue reports per district per hour by category and platform', ['phone'], [
    col('hour_start', 'timestamp', 'start of the hour', 'UTC', false),
    col('district', 'string', 'district of the report (unknown: no location)', undefined, false),
    col('report_category', 'string', 'issue category (other when not given)', undefined, false),
    col('platform', 'string', 'ios or android', undefined, false),
    col('reports', 'int64', 'issue reports'),
    col('reporters', 'int64', 'distinct phones reporting'),
  ]),
  table('gateway_health_hour', 'Gateway health per gateway per hour', ['gateway_health'], [
    col('hour_start', 'timestamp', 'start of the hour', 'UTC', false),
    col('gateway', 'string', 'gateway id', undefined, false),
    col('reports', 'int64', 'health reports'),
    col('max_buffer_depth', 'int64', 'most messages waiting to be forwarded'),
    col('max_buffer_bytes', 'int64', 'most payload bytes waiting', 'By'),
    col('offline_minutes', 'double', 'time in report gaps longer than 180 s, beyond the normal 60 s interval', 'min'),
    col('evictions', 'int64', 'messages evicted this hour (increase of evicted_total, restarts counted from zero)'),
    col('restarts', 'int64', 'reports whose uptime went down (the gateway process restarted)'),
    col('mean_cpu_load', 'double', 'mean CPU load, 0 to 1'),
    col('max_cpu_load', 'double', 'highest CPU load, 0 to 1'),
    col('max_temperature', 'double', 'highest board temperature', 'Cel'),
  ], { lookbackHours: 1 }),
];

export function processedTable(name: string): ProcessedTable | undefined {
  return PROCESSED_TABLES.find((t) => t.name === name);
}

export function processedTablePrefix(name: ProcessedTableName): string {
  return `${PROCESSED_PREFIX}/${name}/`;
}

/** Allowed lateness of a processed table: the largest of its sources'. */
export function tableLatenessMs(t: ProcessedTable): number {
  return Math.max(...t.sources.map((k) => ALLOWED_LATENESS_MS[k]));
}

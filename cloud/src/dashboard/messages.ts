// What the dashboard's event stream carries: the server's bounded city state as a snapshot, then deltas.
// Shared by the server and the page (types only on the page side), so the two cannot drift.

/** A moving thing on the map: [deviceId, lon, lat, heading deg, speed km/h, vehicleType or 'gps', event time ms]. */
export type VehicleRow = [id: string, lon: number, lat: number, heading: number, speedKmh: number, type: string, t: number];

export interface StationView {
  id: string;
  kind: 'air_quality' | 'weather';
  lon: number;
  lat: number;
  /** Event time of the latest reading, epoch ms. */
  t: number;
  /** Air quality: US EPA AQI (from PM2.5 and PM10, or the sensor's own index) and its category 0..5. */
  aqi?: number;
  aqiBand?: number;
  pm25?: number;
  pm10?: number;
  no2?: number;
  /** Weather. */
  temperature?: number;
  windSpeed?: number;
  precipitation?: number;
  relativeHumidity?: number;
}

export interface CameraView {
  id: string;
  lon: number;
  lat: number;
  t: number;
  /** Lanes reporting congestion among the lanes seen. */
  congestedLanes: number;
  lanes: number;
  /** Highest lane occupancy, 0..1. */
  occupancy: number;
  /** Vehicles per hour over all lanes. */
  flowPerHour: number;
  speedKmh?: number;
}

export interface IncidentView {
  id: string;
  lon: number;
  lat: number;
  t: number;
  category: string;
  subCategory: string;
  severity: string;
  status: string;
}

export interface GatewayView {
  id: string;
  /** Event time of its last health report, epoch ms. */
  lastReport: number;
  offline: boolean;
  bufferDepth: number;
  bufferBytes: number;
  oldestUnsentAge?: number;
  connectedDevices: number;
  inRate: number;
  outRate: number;
}

/** A KPI's latest window per key, as the live engine publishes it (only the fields the screen shows). */
export interface KpiView {
  kpi: string;
  key: string;
  windowStart: string;
  windowEnd: string;
  final: boolean;
  values: Record<string, number | string | boolean | null>;
  /**
   * The newest final window of this KPI and key when the window shown is not it: a window's final comes
   * once the watermark passes its end, after the next window's early updates, and would be hidden.
   */
  lastFinal?: { windowStart: string; windowEnd: string; values: Record<string, number | string | boolean | null> };
}

/** An alert transition as the live engine publishes it (LiveAlertRecord; the page cannot import the protocol). */
export interface AlertView {
  alertId: string;
  rule: string;
  key: string;
  state: 'raised' | 'cleared';
  raisedAt: string;
  clearedAt: string | null;
  value: number;
  threshold: number;
  severity: 'warning' | 'critical';
  message: string;
}

export interface HealthView {
  /** Server wall clock, epoch ms. */
  now: number;
  /** The dashboard's own records behind the end of each topic, summed over its partitions (as of its last fetch). */
  lag: Record<string, number>;
  /** The sink's group and its records behind the end per topic (committed offsets, polled every few seconds). */
  sinkGroup: string;
  sinkLag: Record<string, number>;
  /** Records read per topic since start. */
  consumed: Record<string, number>;
  /** Records per second per topic over the last few seconds. */
  rate: Record<string, number>;
  /** Records that did not decode, per topic. */
  invalid: Record<string, number>;
  /** Age of the newest curated lake file in seconds (null: no lake configured or empty). */
  lakeFreshnessS: number | null;
  /** A warehouse is configured (its freshness is asked for). */
  warehouseConfigured: boolean;
  /** Age of the warehouse's latest load by its ledger, seconds (null: no warehouse configured or nothing loaded). */
  warehouseFreshnessS: number | null;
  /** How much older the latest load is than the newest lake file, seconds, 0 when it is not older (null: unknown). */
  warehouseBehindLakeS: number | null;
  /** Why the warehouse figures are missing when a warehouse is configured (its last error). */
  warehouseError?: string;
  /** Topics the dashboard would read but the cluster lacked when it started. */
  missing: string[];
  vehicles: number;
  clients: number;
}

export interface CityState {
  vehicles: VehicleRow[];
  stations: StationView[];
  cameras: CameraView[];
  incidents: IncidentView[];
  gateways: GatewayView[];
  kpis: KpiView[];
  /** Alerts currently raised. */
  activeAlerts: AlertView[];
  /** The latest alert transitions (raise and clear), oldest first. */
  alertFeed: AlertView[];
  health: HealthView;
}

export interface SnapshotMessage {
  type: 'snapshot';
  seq: number;
  state: CityState;
}

export interface DeltaMessage {
  type: 'delta';
  seq: number;
  vehicles: VehicleRow[];
  /** Vehicles gone quiet past the time-to-live, or evicted by the size bound. */
  removedVehicles: string[];
  stations: StationView[];
  cameras: CameraView[];
  incidents: IncidentView[];
  /** Incidents closed. */
  removedIncidents: string[];
  gateways: GatewayView[];
  kpis: KpiView[];
  /** Alert transitions in the order they arrived. */
  alerts: AlertView[];
  health?: HealthView;
}

export type StreamMessage = SnapshotMessage | DeltaMessage;

/** SSE event ids: `<run>-<seq>`, so a page that outlived a server restart gets a snapshot, not a replay. */
export function eventId(run: string, seq: number): string {
  return `${run}-${seq}`;
}

export function parseEventId(id: string | undefined): { run: string; seq: number } | undefined {
  const m = id === undefined ? null : /^([A-Za-z0-9]+)-(\d{1,15})$/.exec(id);
  return m === null ? undefined : { run: m[1] as string, seq: Number(m[2]) };
}

/** US EPA AQI category (0 good … 5 hazardous) of an index value. */
export function aqiBand(aqi: number): number {
  return aqi <= 50 ? 0 : aqi <= 100 ? 1 : aqi <= 150 ? 2 : aqi <= 200 ? 3 : aqi <= 300 ? 4 : 5;
}

export const AQI_BANDS = ['good', 'moderate', 'unhealthy for sensitive groups', 'unhealthy', 'very unhealthy', 'hazardous'] as const;

// The event schemas: the one source of truth for TypeScript types, runtime validation and table columns.
// Field names follow FIWARE Smart Data Models where one exists; every quantity states its unit.
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const SCHEMA_VERSION = 1;

/** Epoch milliseconds bounds accepted for event times (2000-01-01 to 2100-01-01, UTC). */
export const EVENT_TIME_MIN_MS = 946_684_800_000;
export const EVENT_TIME_MAX_MS = 4_102_444_800_000;

/** Device, event and incident ids: MQTT-topic safe, at most 64 characters. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

/** An event time: RFC 3339 with a UTC offset, or epoch milliseconds. Never a naive local time. */
const EventTime = (description: string) =>
  Type.Unsafe<string | number>({ type: ['string', 'integer'], eventTime: true, description, unit: 'UTC' });

const Num = (unit: string, minimum: number, maximum: number, description: string) =>
  Type.Number({ unit, minimum, maximum, description });
const Int = (unit: string, minimum: number, maximum: number, description: string) =>
  Type.Integer({ unit, minimum, maximum, description });
const Text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, description });
const Ratio = (description: string) => Num('1', 0, 1, description);
const Degrees = (description: string) => Type.Number({ unit: 'deg', minimum: 0, exclusiveMaximum: 360, description });
/** A string from a fixed list: validates with one clear "must be one of" error, unlike a union of literals. */
export const StringEnum = <const T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description === undefined ? {} : { description }) });
const OneOf = StringEnum;

export const Location = Type.Object(
  {
    lat: Num('deg', -90, 90, 'WGS 84 latitude'),
    lon: Num('deg', -180, 180, 'WGS 84 longitude'),
    alt: Type.Optional(Num('m', -500, 10_000, 'altitude above mean sea level')),
    accuracy: Type.Optional(Num('m', 0, 100_000, 'horizontal accuracy radius')),
  },
  { additionalProperties: false },
);
export type Location = Static<typeof Location>;

const envelope = <K extends string>(kind: K) => ({
  kind: Type.Literal(kind),
  eventId: Type.String({
    pattern: ID_PATTERN,
    description: 'stable id of this event: identical across retries and replays',
  }),
  deviceId: Type.String({ pattern: ID_PATTERN, description: 'id of the publishing device' }),
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'per-device sequence number' }),
  dateObserved: EventTime('when the event happened (event time)'),
});

const event = <K extends string, P extends Record<string, TSchema>>(kind: K, description: string, fields: P) =>
  Type.Object({ ...envelope(kind), ...fields }, { additionalProperties: false, description });

export const VEHICLE_TYPES = [
  'bus', 'car', 'van', 'lorry', 'minibus', 'tram', 'ambulance', 'fireTruck', 'police', 'sweepingMachine',
  'motorcycle', 'bicycle',
] as const;

/** FIWARE Vehicle. */
export const VehicleTelemetry = event('vehicle', 'Vehicle telemetry (FIWARE Vehicle)', {
  location: Location,
  vehicleType: OneOf(VEHICLE_TYPES, 'type of vehicle'),
  speed: Num('m/s', 0, 100, 'ground speed'),
  heading: Degrees('direction of travel, clockwise from true north'),
  mileageFromOdometer: Num('m', 0, 1e10, 'odometer reading'),
  serviceStatus: OneOf(['parked', 'onRoute', 'broken', 'outOfService'] as const, 'service status'),
  fuelLevel: Type.Optional(Ratio('fuel or charge level, 0 to 1')),
  routeId: Type.Optional(Text(32, 'public transport or service route')),
  vehiclePlateIdentifier: Type.Optional(Text(16, 'number plate')),
});

export const GpsPosition = event('gps', 'GPS tracker position fix', {
  location: Location,
  speed: Num('m/s', 0, 150, 'ground speed'),
  heading: Type.Optional(Degrees('course over ground, clockwise from true north')),
  satellites: Type.Optional(Int('1', 0, 64, 'satellites used in the fix')),
  hdop: Type.Optional(Num('1', 0, 99.9, 'horizontal dilution of precision')),
  batteryLevel: Type.Optional(Ratio('battery level, 0 to 1')),
});

/** FIWARE WeatherObserved. */
export const WeatherObservation = event('weather', 'Weather observation (FIWARE WeatherObserved)', {
  location: Location,
  temperature: Num('Cel', -90, 60, 'air temperature'),
  relativeHumidity: Ratio('relative humidity, 0 to 1'),
  atmosphericPressure: Num('hPa', 300, 1100, 'atmospheric pressure'),
  windSpeed: Num('m/s', 0, 120, 'mean wind speed'),
  windDirection: Degrees('direction the wind blows from, clockwise from true north'),
  precipitation: Num('mm', 0, 500, 'precipitation since the previous observation'),
  solarRadiation: Type.Optional(Num('W/m2', 0, 2000, 'global solar irradiance')),
});

/** FIWARE AirQualityObserved. */
export const AirQualityObservation = event('air_quality', 'Air quality observation (FIWARE AirQualityObserved)', {
  location: Location,
  pm25: Num('ug/m3', 0, 2000, 'PM2.5 mass concentration'),
  pm10: Num('ug/m3', 0, 2000, 'PM10 mass concentration'),
  no2: Num('ug/m3', 0, 5000, 'NO2 mass concentration'),
  o3: Type.Optional(Num('ug/m3', 0, 5000, 'O3 mass concentration')),
  so2: Type.Optional(Num('ug/m3', 0, 5000, 'SO2 mass concentration')),
  co: Type.Optional(Num('mg/m3', 0, 1000, 'CO mass concentration')),
  temperature: Type.Optional(Num('Cel', -90, 60, 'air temperature at the sensor')),
  relativeHumidity: Type.Optional(Ratio('relative humidity at the sensor, 0 to 1')),
  airQualityIndex: Type.Optional(Int('1', 0, 500, 'air quality index')),
});

/** FIWARE TrafficFlowObserved, as counted by a traffic camera over one period. */
export const TrafficCameraObservation = event(
  'traffic_camera',
  'Traffic camera observation (FIWARE TrafficFlowObserved)',
  {
    location: Location,
    laneId: Int('1', 1, 16, 'lane number'),
    laneDirection: OneOf(['forward', 'backward'] as const, 'direction of the lane relative to the road'),
    periodDuration: Int('s', 1, 3600, 'length of the counting period ending at dateObserved'),
    intensity: Int('1', 0, 100_000, 'vehicles counted in the period'),
    occupancy: Ratio('fraction of the period the detection zone was occupied'),
    averageVehicleSpeed: Type.Optional(Num('m/s', 0, 100, 'mean speed of counted vehicles; absent when none were counted')),
    averageVehicleLength: Type.Optional(Num('m', 0, 30, 'mean length of counted vehicles')),
    congested: Type.Boolean({ description: 'whether the lane is congested' }),
  },
);

export const ALERT_CATEGORIES = ['traffic', 'fire', 'health', 'security', 'weather', 'environment'] as const;

/** FIWARE Alert, for incidents reported by emergency units. */
export const EmergencyIncident = event('emergency', 'Emergency incident report (FIWARE Alert)', {
  location: Location,
  incidentId: Type.String({ pattern: ID_PATTERN, description: 'id of the incident across its reports' }),
  category: OneOf(ALERT_CATEGORIES, 'incident category'),
  subCategory: Text(64, 'incident sub-category, e.g. carAccident'),
  severity: OneOf(['informational', 'low', 'medium', 'high', 'critical'] as const, 'severity'),
  incidentStatus: OneOf(['open', 'inProgress', 'closed'] as const, 'incident status at dateObserved'),
  unitsAssigned: Type.Optional(Int('1', 0, 1000, 'emergency units assigned')),
  description: Type.Optional(Text(500, 'free-text description')),
});

export const PHONE_EVENT_TYPES = [
  'appOpen', 'appClose', 'locationUpdate', 'issueReport', 'transitCheckIn', 'crash',
] as const;

export const PhoneAppEvent = event('phone', 'Citizen phone app event (iOS and Android)', {
  location: Type.Optional(Location),
  platform: OneOf(['ios', 'android'] as const, 'phone operating system'),
  osVersion: Text(32, 'operating system version'),
  appVersion: Text(32, 'app version'),
  eventType: OneOf(PHONE_EVENT_TYPES, 'what happened in the app'),
  reportCategory: Type.Optional(
    OneOf(['pothole', 'streetlight', 'litter', 'graffiti', 'noise', 'other'] as const, 'category of an issue report'),
  ),
  message: Type.Optional(Text(500, 'free text from the citizen')),
  batteryLevel: Type.Optional(Ratio('battery level, 0 to 1')),
});

export const GatewayHealth = event('gateway_health', 'Gateway health report; deviceId is the gateway id', {
  location: Type.Optional(Location),
  cpuLoad: Ratio('CPU load, 0 to 1'),
  memoryUsed: Int('By', 0, Number.MAX_SAFE_INTEGER, 'memory in use'),
  memoryTotal: Int('By', 0, Number.MAX_SAFE_INTEGER, 'memory installed'),
  temperature: Type.Optional(Num('Cel', -60, 150, 'board temperature')),
  diskFree: Int('By', 0, Number.MAX_SAFE_INTEGER, 'free space on the buffer disk'),
  uptime: Num('s', 0, 1e10, 'gateway process uptime'),
  bufferDepth: Int('1', 0, Number.MAX_SAFE_INTEGER, 'messages waiting to be forwarded'),
  bufferBytes: Int('By', 0, Number.MAX_SAFE_INTEGER, 'payload bytes waiting to be forwarded'),
  oldestUnsentAge: Type.Optional(Num('s', 0, 1e10, 'age of the oldest message waiting')),
  connectedDevices: Int('1', 0, 10_000_000, 'devices connected now'),
  inRate: Num('1/s', 0, 1e9, 'messages accepted per second'),
  outRate: Num('1/s', 0, 1e9, 'messages forwarded per second'),
  // Totals since the gateway process started; nothing leaves the buffer unaccounted for.
  evictedTotal: Type.Optional(Int('1', 0, Number.MAX_SAFE_INTEGER, 'buffered messages evicted to make room (never emergency)')),
  expiredTotal: Type.Optional(Int('1', 0, Number.MAX_SAFE_INTEGER, 'buffered messages dropped past their time-to-live')),
  refusedTotal: Type.Optional(Int('1', 0, Number.MAX_SAFE_INTEGER, 'publishes not acknowledged because the buffer could not store them')),
  replayedTotal: Type.Optional(Int('1', 0, Number.MAX_SAFE_INTEGER, 'messages forwarded as backlog after an outage or restart')),
  bufferCorruptTotal: Type.Optional(Int('1', 0, Number.MAX_SAFE_INTEGER, 'corrupt buffer files moved aside at start')),
  clockSynced: Type.Optional(Type.Boolean({ description: 'whether the gateway clock was synchronised (absent: unknown)' })),
});

export const EVENT_SCHEMAS = {
  vehicle: VehicleTelemetry,
  gps: GpsPosition,
  weather: WeatherObservation,
  air_quality: AirQualityObservation,
  traffic_camera: TrafficCameraObservation,
  emergency: EmergencyIncident,
  phone: PhoneAppEvent,
  gateway_health: GatewayHealth,
} as const;

export type EventKind = keyof typeof EVENT_SCHEMAS;
export const EVENT_KINDS = Object.keys(EVENT_SCHEMAS) as EventKind[];

export type VehicleTelemetry = Static<typeof VehicleTelemetry>;
export type GpsPosition = Static<typeof GpsPosition>;
export type WeatherObservation = Static<typeof WeatherObservation>;
export type AirQualityObservation = Static<typeof AirQualityObservation>;
export type TrafficCameraObservation = Static<typeof TrafficCameraObservation>;
export type EmergencyIncident = Static<typeof EmergencyIncident>;
export type PhoneAppEvent = Static<typeof PhoneAppEvent>;
export type GatewayHealth = Static<typeof GatewayHealth>;

export type EventOf<K extends EventKind> = Static<(typeof EVENT_SCHEMAS)[K]>;
export type CityEvent = { [K in EventKind]: EventOf<K> }[EventKind];

export function isEventKind(value: unknown): value is EventKind {
  return typeof value === 'string' && Object.hasOwn(EVENT_SCHEMAS, value);
}

// Options of a fleet: the schema (type, defaults, rules) resolved once by the protocol's options resolver,
// then laid out as the fleet uses them.
import { defineOptions, EVENT_TIME_MAX_MS, EVENT_TIME_MIN_MS, StringEnum, Type, type Static } from '@city/protocol';
import { checkDeviceIdPrefix, DEFAULT_DEVICE_ID_PREFIX, SIM_KINDS, type SimKind } from './device.ts';
import { simErrors } from './errors.ts';
import { DEFAULT_DEFECTS, INVALID_DEFECTS, type InvalidDefect } from './invalid.ts';

export interface InvalidOptions {
  /**
   * Exactly this many invalid payloads across the fleet, spread over each device's first eventsPerDevice
   * events (or its first max(10, 2 x count / devices) when the run is unbounded).
   */
  count?: number;
  /** Or: this fraction of all publishes is invalid (0 ≤ rate ≤ 0.9). */
  rate?: number;
  /** Defects to draw from; default DEFAULT_DEFECTS. */
  defects?: readonly InvalidDefect[];
}

export interface DeviceCredentials {
  username?: string;
  password?: string;
}

export interface FleetOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  /** Same seed, same events (default 1). */
  seed?: number;
  /** Devices per kind; default DEFAULT_FLEET. Kinds left out get none when this is given. */
  devices?: Partial<Record<SimKind, number>>;
  /** Events per second per device (default 1); 0 publishes as fast as the in-flight window allows. */
  ratePerDevice?: number;
  /** Each device stops after this many valid events; undefined runs until stop(). */
  eventsPerDevice?: number;
  invalid?: InvalidOptions;
  /** When set, event times are simulated: startTime + seq * (1000 / rate), 1 s apart in burst mode. Otherwise the wall clock. */
  startTime?: number;
  /** Device ids are `${prefix}-${kind}-${index}`; default "sim". */
  deviceIdPrefix?: string;
  /** Devices connecting at once (default 50). */
  connectConcurrency?: number;
  /** Unacknowledged QoS 1 publishes per device (default 10). */
  maxInflightPerDevice?: number;
  /** start() fails if a device has not connected by then (default 30 000 ms). */
  connectTimeoutMs?: number;
  /** stop() waits this long for outstanding PUBACKs before closing connections hard (default 5000 ms). */
  stopTimeoutMs?: number;
  /** MQTT keepalive, seconds (default 30). */
  keepalive?: number;
  /** Delay between reconnect attempts, ms (default 1000, as mqtt.js). */
  reconnectPeriod?: number;
  username?: string;
  password?: string;
  /** Per-device credentials; wins over username/password. */
  credentials?: (deviceId: string) => DeviceCredentials;
}

/** A small city's worth of devices (100). */
export const DEFAULT_FLEET: { readonly [K in SimKind]: number } = {
  vehicle: 24,
  gps: 12,
  weather: 5,
  air_quality: 6,
  traffic_camera: 8,
  emergency: 5,
  phone: 40,
};

/** Options after defaults, as the fleet uses them. */
export interface ResolvedFleetOptions {
  url: string;
  seed: number;
  devices: Record<SimKind, number>;
  rate: number;
  eventsPerDevice: number | undefined;
  invalidCount: number | undefined;
  invalidRate: number;
  defects: readonly InvalidDefect[];
  startTime: number | undefined;
  prefix: string;
  connectConcurrency: number;
  maxInflight: number;
  connectTimeoutMs: number;
  stopTimeoutMs: number;
  keepalive: number;
  reconnectPeriod: number;
  credentials: (deviceId: string) => DeviceCredentials;
}

const int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });
const deviceCount = () => Type.Optional(int(0, 100_000));

// One optional count per kind the simulator has.
const devicesPerKind = Object.fromEntries(SIM_KINDS.map((kind) => [kind, deviceCount()])) as { [K in SimKind]: ReturnType<typeof deviceCount> };

const FleetSchema = Type.Object(
  {
    url: Type.String({ pattern: '^(mqtts?|tcp|ssl|wss?)://.+', description: 'broker URL' }),
    seed: int(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    devices: Type.Optional(Type.Object(devicesPerKind, { additionalProperties: false })),
    ratePerDevice: Type.Number({ minimum: 0, maximum: 10_000 }),
    eventsPerDevice: Type.Optional(int(0, Number.MAX_SAFE_INTEGER)),
    invalid: Type.Object(
      {
        count: Type.Optional(int(0, Number.MAX_SAFE_INTEGER)),
        rate: Type.Optional(Type.Number({ minimum: 0, maximum: 0.9 })),
        defects: Type.Optional(Type.Array(StringEnum(INVALID_DEFECTS), { minItems: 1, uniqueItems: true })),
      },
      { additionalProperties: false },
    ),
    startTime: Type.Optional(int(EVENT_TIME_MIN_MS, EVENT_TIME_MAX_MS)),
    deviceIdPrefix: Type.String({ minLength: 1, maxLength: 48 }),
    connectConcurrency: int(1, 100_000),
    maxInflightPerDevice: int(1, 65_535),
    connectTimeoutMs: int(100, 3_600_000),
    stopTimeoutMs: int(0, 3_600_000),
    keepalive: int(0, 65_535),
    reconnectPeriod: int(0, 3_600_000),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const fleetOptions = defineOptions<typeof FleetSchema, Omit<FleetOptions, 'credentials'>>({
  schema: FleetSchema,
  defaults: {
    seed: 1,
    ratePerDevice: 1,
    invalid: {},
    deviceIdPrefix: DEFAULT_DEVICE_ID_PREFIX,
    connectConcurrency: 50,
    maxInflightPerDevice: 10,
    connectTimeoutMs: 30_000,
    stopTimeoutMs: 5000,
    keepalive: 30,
    reconnectPeriod: 1000,
  },
  check: (o: Static<typeof FleetSchema>) => (o.invalid.count !== undefined && o.invalid.rate !== undefined ? '/invalid takes count or rate, not both' : undefined),
  error: (detail) => simErrors.create('SIM_INVALID_OPTIONS', detail),
});

/** Checks options once and fills in defaults; throws SIM_INVALID_OPTIONS naming every bad field. */
export function resolveFleetOptions(options: FleetOptions): ResolvedFleetOptions {
  const { credentials, ...plain } = options;
  const o = fleetOptions.resolve(plain);
  if (credentials !== undefined && typeof credentials !== 'function') {
    throw simErrors.create('SIM_INVALID_OPTIONS', '/credentials must be a function of the device id');
  }
  const devices = Object.fromEntries(SIM_KINDS.map((k) => [k, o.devices === undefined ? DEFAULT_FLEET[k] : (o.devices[k] ?? 0)])) as Record<SimKind, number>;
  checkDeviceIdPrefix(o.deviceIdPrefix, Math.max(9999, ...Object.values(devices)));
  const { username, password } = o;
  return {
    url: o.url,
    seed: o.seed,
    devices,
    rate: o.ratePerDevice,
    eventsPerDevice: o.eventsPerDevice,
    invalidCount: o.invalid.count,
    invalidRate: o.invalid.rate ?? 0,
    defects: o.invalid.defects ?? DEFAULT_DEFECTS,
    startTime: o.startTime,
    prefix: o.deviceIdPrefix,
    connectConcurrency: o.connectConcurrency,
    maxInflight: o.maxInflightPerDevice,
    connectTimeoutMs: o.connectTimeoutMs,
    stopTimeoutMs: o.stopTimeoutMs,
    keepalive: o.keepalive,
    reconnectPeriod: o.reconnectPeriod,
    credentials: credentials ?? (() => ({ ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }) })),
  };
}

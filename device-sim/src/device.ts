// A simulated device: a pure, seeded generator of one device's event sequence. The fleet wraps these
// in MQTT clients; tests and other packages use them directly.
import { ID_PATTERN, mqttTopic, type EventKind, type EventOf } from '@city/protocol';
import { simErrors } from './errors.ts';
import { Rng, stableUuid } from './rng.ts';

export const SIM_KINDS = [
  'vehicle', 'gps', 'weather', 'air_quality', 'traffic_camera', 'emergency', 'phone',
] as const satisfies readonly EventKind[];
/** Every event kind a device sends; gateway_health is reported by the gateway itself. */
export type SimKind = (typeof SIM_KINDS)[number];
export type SimEvent<K extends SimKind = SimKind> = { [P in K]: EventOf<P> }[K];

type EnvelopeKey = 'kind' | 'eventId' | 'deviceId' | 'seq' | 'dateObserved';
/** The fields of an event after the envelope. */
export type EventBody<K extends SimKind> = Omit<EventOf<K>, EnvelopeKey>;

export function isSimKind(value: unknown): value is SimKind {
  return typeof value === 'string' && (SIM_KINDS as readonly string[]).includes(value);
}

/** The short name of a kind inside device ids. */
export const DEVICE_SLUGS: { readonly [K in SimKind]: string } = {
  vehicle: 'vehicle',
  gps: 'gps',
  weather: 'weather',
  air_quality: 'airq',
  traffic_camera: 'camera',
  emergency: 'emergency',
  phone: 'phone',
};

const ID_RE = new RegExp(ID_PATTERN);
export const DEFAULT_DEVICE_ID_PREFIX = 'sim';

export function deviceIdOf(kind: SimKind, index: number, prefix = DEFAULT_DEVICE_ID_PREFIX): string {
  return `${prefix}-${DEVICE_SLUGS[kind]}-${String(index).padStart(4, '0')}`;
}

/** Throws SIM_INVALID_OPTIONS unless every id built from the prefix up to `maxIndex` is a valid device id. */
export function checkDeviceIdPrefix(prefix: string, maxIndex = 9999): void {
  for (const kind of SIM_KINDS) {
    const id = deviceIdOf(kind, maxIndex, prefix);
    if (!ID_RE.test(id)) {
      throw simErrors.create(
        'SIM_INVALID_OPTIONS',
        `deviceIdPrefix "${prefix}" gives device id "${id}": ids must match ${ID_RE.source}`,
      );
    }
  }
}

export interface DeviceContext {
  kind: SimKind;
  index: number;
  seed: number;
  deviceId: string;
  /** The device's own random stream. */
  rng: Rng;
  /** Nominal time between the device's events, ms. */
  intervalMs: number;
}

export interface BodyGenerator<K extends SimKind> {
  /** How the device writes dateObserved; both are allowed by protocol. */
  readonly timeFormat: 'iso' | 'epochMs';
  /** Advances the device's world by `dt` seconds to event time `t` (epoch ms) and describes it. */
  next(t: number, dt: number): EventBody<K>;
}

export type BodyFactory<K extends SimKind> = (ctx: DeviceContext) => BodyGenerator<K>;

export interface DeviceOptions {
  /** Default 1. */
  seed?: number;
  /** Default "sim": ids look like sim-vehicle-0007. */
  deviceIdPrefix?: string;
  /** Nominal time between events, ms (default 1000): the simulated clock step and the first dt. */
  intervalMs?: number;
  /** When set, event times are simulated: startTime + seq * intervalMs. Otherwise the wall clock. */
  startTime?: number;
  /**
   * Tells runs apart, since seq restarts at 0: without it a second run of the same seed would reuse
   * the first run's event ids. Default: startTime when simulated (fully deterministic), else the wall clock now.
   */
  runId?: number;
}

export interface SimDevice<K extends SimKind = SimKind> {
  readonly kind: K;
  readonly index: number;
  readonly seed: number;
  readonly deviceId: string;
  readonly topic: string;
  /** The seq the next event will carry. */
  readonly seq: number;
  /**
   * The device's next event. Times are simulated when the device has a startTime; otherwise the event
   * time is `now` (default Date.now()), never earlier than the previous event's.
   */
  next(now?: number): SimEvent<K>;
}

/** Longest gap integrated in one step: after a longer pause the world resumes, it does not fast-forward. */
const MAX_DT_S = 3600;

/** Event ids derive from seed, run, device and seq: stable for one event, distinct across runs. */
export function eventIdOf(seed: number, run: number, deviceId: string, seq: number): string {
  return stableUuid('event', seed, run, deviceId, seq);
}

export function createDeviceWith<K extends SimKind>(
  kind: K,
  index: number,
  factory: BodyFactory<K>,
  options: DeviceOptions = {},
): SimDevice<K> {
  const seed = options.seed ?? 1;
  const prefix = options.deviceIdPrefix ?? DEFAULT_DEVICE_ID_PREFIX;
  const intervalMs = options.intervalMs ?? 1000;
  if (!Number.isInteger(index) || index < 0) throw simErrors.create('SIM_INVALID_OPTIONS', `device index ${index}`);
  if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
    throw simErrors.create('SIM_INVALID_OPTIONS', `intervalMs must be a positive number, got ${intervalMs}`);
  }
  checkDeviceIdPrefix(prefix, index);
  const deviceId = deviceIdOf(kind, index, prefix);
  const ctx: DeviceContext = { kind, index, seed, deviceId, rng: new Rng(seed, kind, index, 'world'), intervalMs };
  const generator = factory(ctx);
  const startTime = options.startTime;
  const run = options.runId ?? startTime ?? Date.now();
  let seq = 0;
  let lastT: number | undefined;

  return {
    kind,
    index,
    seed,
    deviceId,
    topic: mqttTopic(deviceId, kind),
    get seq() {
      return seq;
    },
    next(now?: number): SimEvent<K> {
      let t = startTime !== undefined ? Math.round(startTime + seq * intervalMs) : Math.round(now ?? Date.now());
      if (lastT !== undefined && t < lastT) t = lastT;
      const dt = lastT === undefined ? 0 : Math.min((t - lastT) / 1000, MAX_DT_S);
      lastT = t;
      const body = generator.next(t, dt);
      const event = {
        kind,
        eventId: eventIdOf(seed, run, deviceId, seq),
        deviceId,
        seq,
        dateObserved: generator.timeFormat === 'epochMs' ? t : new Date(t).toISOString(),
        ...body,
      };
      seq++;
      // The spread of a generic Omit<> is not provably the event type; the body generators are typed per kind.
      return event as unknown as SimEvent<K>;
    },
  };
}

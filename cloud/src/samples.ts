// Deterministic, valid sample events of every kind: for tests, benchmarks and demos. Values vary with
// `n` so files are not trivially compressible and optional fields are sometimes absent (NULL columns).
import type { CityEvent, EventKind, EventOf } from '@city/protocol';

export interface SampleOptions {
  /** Device id; defaults to `<kind>-<n % 50>`. */
  deviceId?: string;
  /** Event time, epoch ms or RFC 3339; defaults to 2024-05-01T00:00:00Z + n seconds. */
  dateObserved?: number | string;
  /** Prefix making event ids unique across runs. */
  idPrefix?: string;
}

const BASE_TIME_MS = Date.UTC(2024, 4, 1);

export function sampleEvent<K extends EventKind>(kind: K, n: number, options: SampleOptions = {}): EventOf<K> {
  const envelope = {
    eventId: `${options.idPrefix ?? 'ev'}-${kind}-${n}`,
    deviceId: options.deviceId ?? `${kind.replace('_', '-')}-${n % 50}`,
    seq: n,
    dateObserved: options.dateObserved ?? BASE_TIME_MS + n * 1000,
  };
  const location = { lat: 52.37 + (n % 1000) / 10_000, lon: 4.89 + (n % 777) / 10_000 };
  const events: { [E in EventKind]: () => EventOf<E> } = {
    vehicle: () => ({
      kind: 'vehicle',
      ...envelope,
      location: n % 3 === 0 ? { ...location, alt: 2 + (n % 10), accuracy: 5 } : location,
      vehicleType: (['bus', 'car', 'tram', 'ambulance'] as const)[n % 4] ?? 'bus',
      speed: (n % 300) / 10,
      heading: (n * 7) % 360,
      mileageFromOdometer: 100_000 + n * 13,
      serviceStatus: n % 10 === 0 ? 'parked' : 'onRoute',
      ...(n % 2 === 0 ? { fuelLevel: (n % 100) / 100 } : {}),
      ...(n % 4 === 0 ? { routeId: `R${n % 40}` } : {}),
    }),
    gps: () => ({
      kind: 'gps',
      ...envelope,
      location,
      speed: (n % 250) / 10,
      ...(n % 2 === 0 ? { heading: (n * 3) % 360, satellites: 4 + (n % 12), hdop: 0.8 } : {}),
    }),
    weather: () => ({
      kind: 'weather',
      ...envelope,
      location,
      temperature: -5 + (n % 400) / 10,
      relativeHumidity: (n % 100) / 100,
      atmosphericPressure: 990 + (n % 40),
      windSpeed: (n % 200) / 10,
      windDirection: (n * 11) % 360,
      precipitation: (n % 7) / 2,
      ...(n % 3 === 0 ? { solarRadiation: 200 + (n % 600) } : {}),
    }),
    air_quality: () => ({
      kind: 'air_quality',
      ...envelope,
      location,
      pm25: (n % 500) / 10,
      pm10: (n % 900) / 10,
      no2: (n % 1200) / 10,
      ...(n % 2 === 0 ? { o3: 40 + (n % 50), airQualityIndex: n % 300 } : {}),
    }),
    traffic_camera: () => ({
      kind: 'traffic_camera',
      ...envelope,
      location,
      laneId: 1 + (n % 4),
      laneDirection: n % 2 === 0 ? 'forward' : 'backward',
      periodDuration: 60,
      intensity: n % 120,
      occupancy: (n % 100) / 100,
      averageVehicleSpeed: (n % 250) / 10,
      congested: n % 5 === 0,
    }),
    emergency: () => ({
      kind: 'emergency',
      ...envelope,
      location,
      incidentId: `inc-${Math.floor(n / 3)}`,
      category: (['traffic', 'fire', 'health'] as const)[n % 3] ?? 'traffic',
      subCategory: 'carAccident',
      severity: (['low', 'medium', 'high'] as const)[n % 3] ?? 'low',
      incidentStatus: 'open',
      ...(n % 2 === 0 ? { unitsAssigned: 1 + (n % 5), description: `report ${n}` } : {}),
    }),
    phone: () => ({
      kind: 'phone',
      ...envelope,
      ...(n % 2 === 0 ? { location } : {}),
      platform: n % 2 === 0 ? 'ios' : 'android',
      osVersion: n % 2 === 0 ? '17.4' : '14',
      appVersion: '3.2.1',
      eventType: (['appOpen', 'locationUpdate', 'issueReport'] as const)[n % 3] ?? 'appOpen',
      ...(n % 3 === 2 ? { reportCategory: 'pothole', message: `hole number ${n}` } : {}),
    }),
    gateway_health: () => ({
      kind: 'gateway_health',
      ...envelope,
      cpuLoad: (n % 100) / 100,
      memoryUsed: 512_000_000 + n,
      memoryTotal: 2_000_000_000,
      diskFree: 10_000_000_000 - n,
      uptime: n * 30,
      bufferDepth: n % 1000,
      bufferBytes: (n % 1000) * 300,
      connectedDevices: 10 + (n % 90),
      inRate: 50.5,
      outRate: 49.5,
      ...(n % 2 === 0 ? { temperature: 45 } : {}),
    }),
  };
  return (events[kind] as () => CityEvent)() as EventOf<K>;
}

// One valid example per event kind: documentation of the wire format and a fixture for tests.
import type { EventKind, EventOf } from './schemas.ts';

const where = { lat: 52.3731, lon: 4.8922 };
const common = { seq: 0, dateObserved: '2026-11-29T08:15:00.000Z' };

export const EXAMPLES: { readonly [K in EventKind]: EventOf<K> } = {
  vehicle: {
    kind: 'vehicle', eventId: '0b7f3c1e-5d2a-4c11-9a7e-1f0c2b3d4e5f', deviceId: 'bus-017', ...common,
    location: { ...where, accuracy: 4 }, vehicleType: 'bus', speed: 11.2, heading: 87.5,
    mileageFromOdometer: 183_442_120, serviceStatus: 'onRoute', fuelLevel: 0.62, routeId: 'L12',
  },
  gps: {
    kind: 'gps', eventId: '1c8a4d2f-6e3b-4d22-8b8f-2a1d3c4e5f60', deviceId: 'tracker-204', ...common,
    location: { ...where, alt: 3.5, accuracy: 6 }, speed: 1.4, heading: 210, satellites: 9, hdop: 0.9, batteryLevel: 0.8,
  },
  weather: {
    kind: 'weather', eventId: '2d9b5e3a-7f4c-4e33-9c90-3b2e4d5f6071', deviceId: 'ws-centrum', ...common,
    location: where, temperature: 6.4, relativeHumidity: 0.86, atmosphericPressure: 1012.3, windSpeed: 4.1,
    windDirection: 240, precipitation: 0.2,
  },
  air_quality: {
    kind: 'air_quality', eventId: '3eac6f4b-8a5d-4f44-8da1-4c3f5e607182', deviceId: 'aq-west-3', ...common,
    location: where, pm25: 14.2, pm10: 22.8, no2: 38.5, o3: 21, airQualityIndex: 42,
  },
  traffic_camera: {
    kind: 'traffic_camera', eventId: '4fbd7a5c-9b6e-4a55-9eb2-5d4a6f708293', deviceId: 'cam-ring-07', ...common,
    location: where, laneId: 1, laneDirection: 'forward', periodDuration: 60, intensity: 23, occupancy: 0.18,
    averageVehicleSpeed: 12.5, averageVehicleLength: 4.6, congested: false,
  },
  emergency: {
    kind: 'emergency', eventId: '5ace8b6d-ac7f-4b66-8fc3-6e5b7081a3b4', deviceId: 'amb-05', ...common,
    location: where, incidentId: 'inc-2026-1129-0042', category: 'traffic', subCategory: 'carAccident',
    severity: 'high', incidentStatus: 'open', unitsAssigned: 2,
  },
  phone: {
    kind: 'phone', eventId: '6bdf9c7e-bd80-4c77-90d4-7f6c8192b4c5', deviceId: 'phone-a91f', ...common,
    dateObserved: 1_795_940_100_000, location: { ...where, accuracy: 12 }, platform: 'ios', osVersion: '19.1',
    appVersion: '3.4.0', eventType: 'issueReport', reportCategory: 'pothole', message: 'Deep pothole by the bus stop',
  },
  gateway_health: {
    kind: 'gateway_health', eventId: '7ce0ad8f-ce91-4d88-81e5-807d92a3c5d6', deviceId: 'gw-north-01', ...common,
    cpuLoad: 0.21, memoryUsed: 512_000_000, memoryTotal: 1_024_000_000, temperature: 48.5, diskFree: 12_000_000_000,
    uptime: 86_400, bufferDepth: 0, bufferBytes: 0, connectedDevices: 140, inRate: 35.2, outRate: 35.1,
  },
};

/** A fresh copy of the example of `kind` with fields replaced. */
export function exampleEvent<K extends EventKind>(kind: K, overrides: Partial<EventOf<K>> = {}): EventOf<K> {
  return { ...structuredClone(EXAMPLES[kind]), ...overrides };
}

// The city as the dashboard holds it: latest value per thing, every map bounded, and what changed since
// the last delta kept as sets of ids (so a vehicle moving ten times between deltas is sent once).
import type { AirQualityObservation, EmergencyIncident, GatewayHealth, GpsPosition, TrafficCameraObservation, VehicleTelemetry, WeatherObservation } from '@city/protocol';
import { aqiBand, type AlertView, type CameraView, type CityState, type DeltaMessage, type GatewayView, type HealthView, type IncidentView, type KpiView, type StationView, type VehicleRow } from './messages.ts';

export interface StateLimits {
  maxVehicles: number;
  maxStations: number;
  maxCameras: number;
  maxIncidents: number;
  maxGateways: number;
  maxKpis: number;
  alertFeed: number;
  /** A vehicle not heard from for this long leaves the map. */
  vehicleTtlMs: number;
  /** A gateway whose last health report is older than this is shown offline. */
  gatewayOfflineMs: number;
}

const round = (v: number, d: number) => {
  const f = 10 ** d;
  return Math.round(v * f) / f;
};

/** Inserting at the end of a Map and dropping its first key: insertion order is recency, the bound is a count. */
function touch<K, V>(map: Map<K, V>, key: K, value: V, max: number, evicted?: (key: K) => void): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next().value as K;
    map.delete(oldest);
    evicted?.(oldest);
  }
}

// US EPA breakpoints (2024 PM2.5 revision): concentration ranges mapped linearly onto index ranges.
const PM25: readonly (readonly [number, number, number, number])[] = [
  [0, 9, 0, 50], [9.1, 35.4, 51, 100], [35.5, 55.4, 101, 150], [55.5, 125.4, 151, 200], [125.5, 225.4, 201, 300], [225.5, 325.4, 301, 500],
];
const PM10: readonly (readonly [number, number, number, number])[] = [
  [0, 54, 0, 50], [55, 154, 51, 100], [155, 254, 101, 150], [255, 354, 151, 200], [355, 424, 201, 300], [425, 604, 301, 500],
];
function subIndex(c: number, table: typeof PM25): number {
  for (const [cl, ch, il, ih] of table) if (c <= ch) return Math.round(((ih - il) / (ch - cl)) * (Math.max(c, cl) - cl) + il);
  return 500;
}

/** The AQI shown for a reading: the sensor's own index when it sends one, else the worse of PM2.5 and PM10. */
export function aqiOf(o: Pick<AirQualityObservation, 'pm25' | 'pm10' | 'airQualityIndex'>): number {
  if (o.airQualityIndex !== undefined) return o.airQualityIndex;
  return Math.max(subIndex(Math.floor(o.pm25 * 10) / 10, PM25), subIndex(Math.floor(o.pm10), PM10));
}

const ms = (t: string | number) => (typeof t === 'number' ? t : Date.parse(t));

export interface CityStateStore {
  vehicle(e: VehicleTelemetry | GpsPosition): void;
  airQuality(e: AirQualityObservation): void;
  weather(e: WeatherObservation): void;
  camera(e: TrafficCameraObservation): void;
  incident(e: EmergencyIncident): void;
  gateway(e: GatewayHealth): void;
  kpi(k: KpiView): void;
  alert(a: AlertView): void;
  /** Drops vehicles past their time-to-live and flips gateways to offline; call on a timer. */
  expire(now: number): void;
  /** What changed since the last call (undefined when nothing did), and forgets it. */
  takeDelta(seq: number, health: HealthView | undefined): DeltaMessage | undefined;
  snapshot(health: HealthView): CityState;
  readonly vehicleCount: number;
}

export function createCityState(limits: StateLimits): CityStateStore {
  // Each with the wall time it was last heard of: the time-to-live runs on receipt, not on event time.
  const vehicles = new Map<string, { row: VehicleRow; seen: number }>();
  const stations = new Map<string, StationView>();
  const cameraLanes = new Map<string, Map<string, TrafficCameraObservation>>();
  const cameras = new Map<string, CameraView>();
  const incidents = new Map<string, IncidentView>();
  const gateways = new Map<string, GatewayView>();
  const kpis = new Map<string, KpiView>();
  const activeAlerts = new Map<string, AlertView>();
  const feed: AlertView[] = [];

  const dirty = {
    vehicles: new Set<string>(),
    removedVehicles: new Set<string>(),
    stations: new Set<string>(),
    cameras: new Set<string>(),
    incidents: new Set<string>(),
    removedIncidents: new Set<string>(),
    gateways: new Set<string>(),
    kpis: new Set<string>(),
    alerts: [] as AlertView[],
  };
  const vehicleGone = (id: string) => {
    dirty.vehicles.delete(id);
    dirty.removedVehicles.add(id);
  };

  const station = (id: string, next: StationView) => {
    touch(stations, id, { ...stations.get(id), ...next }, limits.maxStations, (gone) => dirty.stations.delete(gone));
    dirty.stations.add(id);
  };
  /** Events of one device may arrive out of order (replays): an older reading never overwrites a newer one. */
  const older = (current: { t: number } | VehicleRow | undefined, t: number) =>
    current !== undefined && (Array.isArray(current) ? current[6] : current.t) > t;

  return {
    vehicle(e) {
      const t = ms(e.dateObserved);
      if (older(vehicles.get(e.deviceId)?.row, t)) return;
      const type = e.kind === 'vehicle' ? e.vehicleType : 'gps';
      const row: VehicleRow = [e.deviceId, round(e.location.lon, 6), round(e.location.lat, 6), Math.round(e.heading ?? 0), round(e.speed * 3.6, 1), type, t];
      touch(vehicles, e.deviceId, { row, seen: Date.now() }, limits.maxVehicles, vehicleGone);
      dirty.removedVehicles.delete(e.deviceId);
      dirty.vehicles.add(e.deviceId);
    },
    airQuality(e) {
      const t = ms(e.dateObserved);
      if (older(stations.get(e.deviceId), t)) return;
      const aqi = aqiOf(e);
      station(e.deviceId, { id: e.deviceId, kind: 'air_quality', lon: e.location.lon, lat: e.location.lat, t, aqi, aqiBand: aqiBand(aqi), pm25: e.pm25, pm10: e.pm10, no2: e.no2 });
    },
    weather(e) {
      const t = ms(e.dateObserved);
      if (older(stations.get(e.deviceId), t)) return;
      station(e.deviceId, {
        id: e.deviceId,
        kind: 'weather',
        lon: e.location.lon,
        lat: e.location.lat,
        t,
        temperature: e.temperature,
        windSpeed: e.windSpeed,
        precipitation: e.precipitation,
        relativeHumidity: e.relativeHumidity,
      });
    },
    camera(e) {
      const t = ms(e.dateObserved);
      const lanes = cameraLanes.get(e.deviceId) ?? new Map<string, TrafficCameraObservation>();
      const laneKey = `${e.laneId}/${e.laneDirection}`;
      const previous = lanes.get(laneKey);
      if (previous !== undefined && ms(previous.dateObserved) > t) return;
      // A camera has at most 16 lanes × 2 directions: the lane map is bounded by the schema.
      lanes.set(laneKey, e);
      touch(cameraLanes, e.deviceId, lanes, limits.maxCameras);
      let congested = 0;
      let occupancy = 0;
      let flow = 0;
      let speedSum = 0;
      let speedN = 0;
      for (const lane of lanes.values()) {
        if (lane.congested) congested++;
        occupancy = Math.max(occupancy, lane.occupancy);
        flow += (lane.intensity * 3600) / lane.periodDuration;
        if (lane.averageVehicleSpeed !== undefined) {
          speedSum += lane.averageVehicleSpeed * lane.intensity;
          speedN += lane.intensity;
        }
      }
      const view: CameraView = { id: e.deviceId, lon: e.location.lon, lat: e.location.lat, t, congestedLanes: congested, lanes: lanes.size, occupancy: round(occupancy, 3), flowPerHour: Math.round(flow) };
      if (speedN > 0) view.speedKmh = round((speedSum / speedN) * 3.6, 1);
      touch(cameras, e.deviceId, view, limits.maxCameras, (gone) => {
        dirty.cameras.delete(gone);
        cameraLanes.delete(gone);
      });
      dirty.cameras.add(e.deviceId);
    },
    incident(e) {
      const t = ms(e.dateObserved);
      const current = incidents.get(e.incidentId);
      if (current !== undefined && current.t > t) return;
      if (e.incidentStatus === 'closed') {
        if (incidents.delete(e.incidentId)) {
          dirty.incidents.delete(e.incidentId);
          dirty.removedIncidents.add(e.incidentId);
        }
        return;
      }
      const view: IncidentView = { id: e.incidentId, lon: e.location.lon, lat: e.location.lat, t, category: e.category, subCategory: e.subCategory, severity: e.severity, status: e.incidentStatus };
      // The oldest open incidents leave first when the bound is reached.
      touch(incidents, e.incidentId, view, limits.maxIncidents, (gone) => {
        dirty.incidents.delete(gone);
        dirty.removedIncidents.add(gone);
      });
      dirty.removedIncidents.delete(e.incidentId);
      dirty.incidents.add(e.incidentId);
    },
    gateway(e) {
      const t = ms(e.dateObserved);
      const current = gateways.get(e.deviceId);
      if (current !== undefined && current.lastReport > t) return;
      const view: GatewayView = {
        id: e.deviceId,
        lastReport: t,
        offline: Date.now() - t > limits.gatewayOfflineMs,
        bufferDepth: e.bufferDepth,
        bufferBytes: e.bufferBytes,
        connectedDevices: e.connectedDevices,
        inRate: round(e.inRate, 1),
        outRate: round(e.outRate, 1),
      };
      if (e.oldestUnsentAge !== undefined) view.oldestUnsentAge = e.oldestUnsentAge;
      touch(gateways, e.deviceId, view, limits.maxGateways, (gone) => dirty.gateways.delete(gone));
      dirty.gateways.add(e.deviceId);
    },
    kpi(k) {
      const id = `${k.kpi}|${k.key}`;
      const current = kpis.get(id);
      const asFinal = (v: KpiView) => ({ windowStart: v.windowStart, windowEnd: v.windowEnd, values: v.values });
      // The screen shows the newest window of each KPI and key, and beside it the newest final one.
      if (current !== undefined && current.windowStart > k.windowStart) {
        if (!k.final || (current.lastFinal !== undefined && current.lastFinal.windowStart > k.windowStart)) return;
        touch(kpis, id, { ...current, lastFinal: asFinal(k) }, limits.maxKpis, (gone) => dirty.kpis.delete(gone));
        dirty.kpis.add(id);
        return;
      }
      const view: KpiView = { kpi: k.kpi, key: k.key, windowStart: k.windowStart, windowEnd: k.windowEnd, final: k.final, values: k.values };
      const lastFinal = k.final ? undefined : current !== undefined && current.final && current.windowStart < k.windowStart ? asFinal(current) : current?.lastFinal;
      if (lastFinal !== undefined) view.lastFinal = lastFinal;
      touch(kpis, id, view, limits.maxKpis, (gone) => dirty.kpis.delete(gone));
      dirty.kpis.add(id);
    },
    alert(a) {
      if (a.state === 'raised') touch(activeAlerts, a.alertId, a, limits.alertFeed);
      else activeAlerts.delete(a.alertId);
      feed.push(a);
      if (feed.length > limits.alertFeed) feed.splice(0, feed.length - limits.alertFeed);
      dirty.alerts.push(a);
      if (dirty.alerts.length > limits.alertFeed) dirty.alerts.splice(0, dirty.alerts.length - limits.alertFeed);
    },
    expire(now) {
      // Oldest first in recency order: stop at the first one still fresh.
      for (const [id, v] of vehicles) {
        if (now - v.seen <= limits.vehicleTtlMs) break;
        vehicles.delete(id);
        vehicleGone(id);
      }
      for (const g of gateways.values()) {
        const offline = now - g.lastReport > limits.gatewayOfflineMs;
        if (offline !== g.offline) {
          g.offline = offline;
          dirty.gateways.add(g.id);
        }
      }
    },
    takeDelta(seq, health) {
      const any =
        dirty.vehicles.size + dirty.removedVehicles.size + dirty.stations.size + dirty.cameras.size + dirty.incidents.size + dirty.removedIncidents.size + dirty.gateways.size + dirty.kpis.size + dirty.alerts.length >
        0;
      if (!any && health === undefined) return undefined;
      const pick = <V>(ids: Set<string>, map: Map<string, V>) => {
        const out: V[] = [];
        for (const id of ids) {
          const v = map.get(id);
          if (v !== undefined) out.push(v);
        }
        ids.clear();
        return out;
      };
      const delta: DeltaMessage = {
        type: 'delta',
        seq,
        vehicles: pick(dirty.vehicles, vehicles).map((v) => v.row),
        removedVehicles: [...dirty.removedVehicles],
        stations: pick(dirty.stations, stations),
        cameras: pick(dirty.cameras, cameras),
        incidents: pick(dirty.incidents, incidents),
        removedIncidents: [...dirty.removedIncidents],
        gateways: pick(dirty.gateways, gateways),
        kpis: pick(dirty.kpis, kpis),
        alerts: dirty.alerts.splice(0),
      };
      dirty.removedVehicles.clear();
      dirty.removedIncidents.clear();
      if (health !== undefined) delta.health = health;
      return delta;
    },
    snapshot(health) {
      return {
        vehicles: [...vehicles.values()].map((v) => v.row),
        stations: [...stations.values()],
        cameras: [...cameras.values()],
        incidents: [...incidents.values()],
        gateways: [...gateways.values()],
        kpis: [...kpis.values()],
        activeAlerts: [...activeAlerts.values()],
        alertFeed: [...feed],
        health,
      };
    },
    get vehicleCount() {
      return vehicles.size;
    },
  };
}

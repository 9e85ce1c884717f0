// The dashboard's city state stays bounded and shows the newest of everything: vehicles capped and
// expired, older reports ignored, closed incidents removed, KPI windows and alerts as the screen needs.
import { exampleEvent } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { aqiBand } from './messages.ts';
import { aqiOf, createCityState, type StateLimits } from './state.ts';

const LIMITS: StateLimits = { maxVehicles: 3, maxStations: 10, maxCameras: 10, maxIncidents: 2, maxGateways: 10, maxKpis: 10, alertFeed: 3, vehicleTtlMs: 60_000, gatewayOfflineMs: 30_000 };
const at = (ms: number) => new Date(ms).toISOString();
const T = Date.parse('2026-12-01T12:00:00.000Z');

describe('dashboard city state', () => {
  it('keeps the latest position per vehicle, at most maxVehicles, and reports the evicted as removed', () => {
    const s = createCityState(LIMITS);
    for (let i = 0; i < 5; i++) s.vehicle(exampleEvent('vehicle', { deviceId: `v${i}`, dateObserved: at(T + i) }));
    s.vehicle(exampleEvent('vehicle', { deviceId: 'v4', dateObserved: at(T + 10), location: { lat: 52.4, lon: 4.9 } }));
    s.vehicle(exampleEvent('vehicle', { deviceId: 'v4', dateObserved: at(T), location: { lat: 52.3, lon: 4.8 } }));
    expect(s.vehicleCount).toBe(3);
    const d = s.takeDelta(1, undefined)!;
    expect(d.vehicles.map((v) => v[0]).sort()).toEqual(['v2', 'v3', 'v4']);
    expect(d.removedVehicles.sort()).toEqual(['v0', 'v1']);
    expect(d.vehicles.find((v) => v[0] === 'v4')!.slice(1, 3)).toEqual([4.9, 52.4]);
    expect(s.takeDelta(2, undefined)).toBeUndefined();
    s.expire(Date.now() + 61_000);
    expect(s.vehicleCount).toBe(0);
    expect(s.takeDelta(3, undefined)!.removedVehicles.sort()).toEqual(['v2', 'v3', 'v4']);
  });

  it('removes closed incidents, bounds open ones, and flips gateways offline by their last report', () => {
    const s = createCityState(LIMITS);
    s.incident(exampleEvent('emergency', { incidentId: 'a', dateObserved: at(T) }));
    s.incident(exampleEvent('emergency', { incidentId: 'b', dateObserved: at(T) }));
    s.incident(exampleEvent('emergency', { incidentId: 'a', incidentStatus: 'closed', dateObserved: at(T + 1) }));
    s.incident(exampleEvent('emergency', { incidentId: 'c', dateObserved: at(T) }));
    s.incident(exampleEvent('emergency', { incidentId: 'd', dateObserved: at(T) }));
    const d = s.takeDelta(1, undefined)!;
    expect(d.incidents.map((i) => i.id).sort()).toEqual(['c', 'd']);
    expect(d.removedIncidents.sort()).toEqual(['a', 'b']);
    const now = Date.now();
    s.gateway(exampleEvent('gateway_health', { deviceId: 'gw', dateObserved: at(now) }));
    expect(s.takeDelta(2, undefined)!.gateways[0]).toMatchObject({ id: 'gw', offline: false });
    s.expire(now + 31_000);
    expect(s.takeDelta(3, undefined)!.gateways[0]).toMatchObject({ id: 'gw', offline: true });
  });

  it('shows the newest KPI window per key and keeps a bounded alert feed', () => {
    const s = createCityState(LIMITS);
    const kpi = (windowStart: string, v: number) => ({ kpi: 'k', key: 'x', windowStart, windowEnd: windowStart, final: false, values: { v } });
    s.kpi(kpi('2026-12-01T12:05:00.000Z', 1));
    s.kpi(kpi('2026-12-01T12:00:00.000Z', 2));
    expect(s.snapshot({} as never).kpis.map((k) => k.values['v'])).toEqual([1]);
    // A final that comes after the next window opened (the watermark passes a window's end later) is kept
    // beside the newest window; a newer window carries the newest final along.
    s.kpi({ ...kpi('2026-12-01T12:00:00.000Z', 3), final: true });
    expect(s.snapshot({} as never).kpis.map((k) => [k.windowStart.slice(11, 16), k.values['v'], k.lastFinal?.windowStart.slice(11, 16), k.lastFinal?.values['v']])).toEqual([['12:05', 1, '12:00', 3]]);
    s.kpi({ ...kpi('2026-12-01T11:55:00.000Z', 4), final: true }); // an even older final: not newer than the one kept
    s.kpi(kpi('2026-12-01T12:10:00.000Z', 5));
    expect(s.snapshot({} as never).kpis.map((k) => [k.windowStart.slice(11, 16), k.values['v'], k.lastFinal?.windowStart.slice(11, 16), k.lastFinal?.values['v']])).toEqual([['12:10', 5, '12:00', 3]]);
    s.kpi({ ...kpi('2026-12-01T12:05:00.000Z', 6), final: true });
    s.kpi({ ...kpi('2026-12-01T12:10:00.000Z', 7), final: true });
    expect(s.snapshot({} as never).kpis.map((k) => [k.values['v'], k.final, k.lastFinal])).toEqual([[7, true, undefined]]);
    s.kpi(kpi('2026-12-01T12:15:00.000Z', 8));
    expect(s.snapshot({} as never).kpis.map((k) => [k.values['v'], k.lastFinal?.values['v']])).toEqual([[8, 7]]);
    const alert = (id: string, state: 'raised' | 'cleared') => ({ alertId: id, rule: 'r', key: 'k', state, raisedAt: at(T), clearedAt: null, value: 1, threshold: 1, severity: 'warning' as const, message: 'm' });
    for (const id of ['a1', 'a2', 'a3', 'a4']) s.alert(alert(id, 'raised'));
    s.alert(alert('a2', 'cleared'));
    const snap = s.snapshot({} as never);
    expect(snap.alertFeed.map((a) => `${a.alertId} ${a.state}`)).toEqual(['a3 raised', 'a4 raised', 'a2 cleared']);
    expect(snap.activeAlerts.map((a) => a.alertId)).toEqual(['a3', 'a4']);
  });

  it('computes the US EPA AQI from PM2.5 and PM10 when the sensor sends none', () => {
    expect(aqiOf({ pm25: 9, pm10: 10 })).toBe(50);
    expect(aqiOf({ pm25: 35.4, pm10: 10 })).toBe(100);
    expect(aqiOf({ pm25: 5, pm10: 254 })).toBe(150);
    expect(aqiOf({ pm25: 1, pm10: 1, airQualityIndex: 42 })).toBe(42);
    expect([0, 50, 51, 100, 101, 151, 201, 301].map(aqiBand)).toEqual([0, 0, 1, 1, 2, 3, 4, 5]);
  });
});

import type { EventOf } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { ROUTES } from './city.ts';
import { cityTimeToUtc } from './clock.ts';
import { createDevice } from './devices.ts';
import { bearingDegrees, haversineMetres, headingDifference } from './geo.ts';
import { gpsPersonaOf } from './kinds/gps.ts';
import { VEHICLE_MIX, VehicleModel, vehicleTypeOf } from './kinds/vehicle.ts';
import { Rng } from './rng.ts';

type Vehicle = EventOf<'vehicle'>;
const maxRoadLimit = Math.max(...[...ROUTES.values()].map((r) => r.maxLimit));

describe('vehicles', () => {
  // A weekday from 06:00: rush hour, buses in service, cars making trips.
  const start = cityTimeToUtc(2025, 9, 16, 6, 0);

  it('never exceed the limit of the road they are on (checked every second of 3 hours)', () => {
    for (const route of ROUTES.values()) {
      for (const type of ['bus', 'car', 'ambulance', 'lorry'] as const) {
        const model = new VehicleModel(type, route, new Rng('limit-test', route.id, type));
        model.begin(start);
        let t = start;
        let worst = 0;
        for (let i = 0; i < 3 * 3600; i++) {
          model.advance(t, t + 1000);
          t += 1000;
          worst = Math.max(worst, model.v - model.limitHere());
          if (model.v < 0) expect.fail(`negative speed ${model.v}`);
        }
        expect(worst, `${type} on ${route.id}`).toBeLessThanOrEqual(1e-9);
      }
    }
  });

  it('move consistently: odometer = integrated speed, displacement ≤ odometer, heading along the motion', () => {
    let headingChecks = 0;
    let headingOk = 0;
    for (let index = 0; index < VEHICLE_MIX.length; index++) {
      const device = createDevice('vehicle', index, { seed: 4, startTime: start, intervalMs: 1000 });
      let prev = device.next() as Vehicle;
      let moving = 0;
      const problems: string[] = [];
      for (let i = 0; i < 4 * 3600; i++) {
        const e = device.next() as Vehicle;
        const dOdo = e.mileageFromOdometer - prev.mileageFromOdometer;
        const displacement = haversineMetres(prev.location, e.location);
        if (e.speed > maxRoadLimit) problems.push(`speed ${e.speed}`);
        if (dOdo < 0) problems.push(`odometer went back by ${-dOdo}`);
        // Trapezoid of the reported speeds over 1 s, allowing for a stop or speed change inside the second.
        if (Math.abs(dOdo - (prev.speed + e.speed) / 2) > 1.6) problems.push(`odometer +${dOdo} m at ${prev.speed}->${e.speed} m/s`);
        // GPS noise is 1.2 m per axis.
        if (displacement > dOdo + 12) problems.push(`moved ${displacement} m, odometer +${dOdo} m`);
        if (e.speed > 0) moving++;
        if (dOdo > 8 && e.speed > 5) {
          headingChecks++;
          if (headingDifference(bearingDegrees(prev.location, e.location), e.heading) < 25) headingOk++;
        }
        prev = e;
      }
      expect(problems.slice(0, 5), `vehicle ${index} (${vehicleTypeOf(index)})`).toEqual([]);
      if (vehicleTypeOf(index) === 'bus') expect(moving).toBeGreaterThan(3600);
    }
    // Corners and GPS noise account for the rest.
    expect(headingOk / headingChecks).toBeGreaterThan(0.95);
  });

  it('buses stop at stops and run through the day, and sleep at night', () => {
    const device = createDevice('vehicle', 0, { seed: 2, startTime: cityTimeToUtc(2025, 9, 16, 0, 0), intervalMs: 10_000 });
    expect(vehicleTypeOf(0)).toBe('bus');
    const byHour = new Map<number, Vehicle[]>();
    for (let i = 0; i < (24 * 3600) / 10; i++) {
      const e = device.next() as Vehicle;
      const hour = Math.floor(i / 360);
      byHour.set(hour, [...(byHour.get(hour) ?? []), e]);
    }
    const at = (h: number) => byHour.get(h) ?? [];
    expect(at(3).every((e) => e.serviceStatus === 'outOfService' && e.speed === 0)).toBe(true);
    const midday = at(12);
    expect(midday.every((e) => e.serviceStatus === 'onRoute')).toBe(true);
    const stops = midday.filter((e, i) => i > 0 && e.speed === 0 && (midday[i - 1] as Vehicle).speed > 0).length;
    expect(stops).toBeGreaterThan(5);
    const odoGain = (midday[midday.length - 1] as Vehicle).mileageFromOdometer - (midday[0] as Vehicle).mileageFromOdometer;
    // A city bus covers 10-25 km an hour including stops.
    expect(odoGain).toBeGreaterThan(8000);
    expect(odoGain).toBeLessThan(30_000);
  });
});

describe('GPS trackers', () => {
  it('walk and cycle at human speeds, with fixes that follow the speed', () => {
    const start = cityTimeToUtc(2025, 5, 14, 9, 0);
    for (let index = 0; index < 6; index++) {
      const persona = gpsPersonaOf(index);
      const top = persona === 'walker' ? 2.2 : persona === 'runner' ? 4.2 : 8;
      const device = createDevice('gps', index, { seed: 8, startTime: start, intervalMs: 5000 });
      let prev = device.next() as EventOf<'gps'>;
      let fastest = 0;
      let jumps = 0;
      for (let i = 0; i < 2000; i++) {
        const e = device.next() as EventOf<'gps'>;
        fastest = Math.max(fastest, e.speed);
        // 5 s at top speed plus receiver noise on both fixes.
        if (haversineMetres(prev.location, e.location) > top * 5 + 6 * ((prev.location.accuracy ?? 0) + (e.location.accuracy ?? 0))) jumps++;
        prev = e;
      }
      expect(fastest, persona).toBeLessThan(top);
      expect(jumps, persona).toBe(0);
    }
  });
});

import type { EventOf } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { cityTimeToUtc, localTime, utcOffsetMinutes } from './clock.ts';
import { createDevice } from './devices.ts';
import { solarElevation } from './environment.ts';

const DATES: readonly (readonly [number, number, number])[] = [
  [2025, 1, 15], [2025, 3, 3], [2025, 4, 10], [2025, 6, 21], [2025, 7, 20], [2025, 9, 1], [2025, 10, 5], [2025, 12, 1],
];

describe('city clock', () => {
  it('keeps CET and CEST with the EU switch dates', () => {
    expect(utcOffsetMinutes(Date.UTC(2025, 2, 30, 0, 59))).toBe(60);
    expect(utcOffsetMinutes(Date.UTC(2025, 2, 30, 1, 0))).toBe(120);
    expect(utcOffsetMinutes(Date.UTC(2025, 9, 26, 0, 59))).toBe(120);
    expect(utcOffsetMinutes(Date.UTC(2025, 9, 26, 1, 0))).toBe(60);
    expect(cityTimeToUtc(2025, 7, 1, 15, 0)).toBe(Date.UTC(2025, 6, 1, 13, 0));
    expect(cityTimeToUtc(2025, 1, 1, 15, 0)).toBe(Date.UTC(2025, 0, 1, 14, 0));
    expect(localTime(Date.UTC(2025, 6, 1, 13, 30)).hour).toBeCloseTo(15.5);
  });
});

describe('weather', () => {
  it('is warmer at 15:00 than at 05:00 city time, every day, every station, every seed', () => {
    let humidDawn = 0;
    let humidAfternoon = 0;
    for (const seed of [1, 2, 3, 42, 2024]) {
      for (const [y, m, d] of DATES) {
        for (let station = 0; station < 5; station++) {
          const dawn = cityTimeToUtc(y, m, d, 5, 0);
          const device = createDevice('weather', station, { seed, startTime: dawn, intervalMs: cityTimeToUtc(y, m, d, 15, 0) - dawn });
          const early = device.next() as EventOf<'weather'>;
          const late = device.next() as EventOf<'weather'>;
          expect(late.temperature, `seed ${seed} ${y}-${m}-${d} station ${station}`).toBeGreaterThan(early.temperature);
          humidDawn += early.relativeHumidity;
          humidAfternoon += late.relativeHumidity;
          // Dark at 05:00 outside summer, light at 15:00.
          expect(late.solarRadiation).toBeGreaterThan(0);
          if (m < 4 || m > 9) expect(early.solarRadiation).toBe(0);
        }
      }
    }
    expect(humidDawn).toBeGreaterThan(humidAfternoon);
  });

  it('stations agree with each other and values stay in a temperate climate', () => {
    const start = cityTimeToUtc(2025, 1, 20, 0, 0);
    const stations = [0, 1, 2, 3, 4].map((i) => createDevice('weather', i, { seed: 5, startTime: start, intervalMs: 600_000 }));
    for (let i = 0; i < 6 * 24 * 14; i++) {
      const readings = stations.map((s) => s.next() as EventOf<'weather'>);
      const temps = readings.map((r) => r.temperature);
      expect(Math.max(...temps) - Math.min(...temps)).toBeLessThan(3);
      for (const r of readings) {
        expect(r.temperature).toBeGreaterThan(-15);
        expect(r.temperature).toBeLessThan(20);
        expect(r.atmosphericPressure).toBeGreaterThan(960);
        expect(r.atmosphericPressure).toBeLessThan(1060);
        expect(r.precipitation).toBeLessThan(5);
      }
    }
  });

  it('the sun is up at noon in summer and down at midnight', () => {
    expect(solarElevation(cityTimeToUtc(2025, 6, 21, 13, 40))).toBeGreaterThan(60);
    expect(solarElevation(cityTimeToUtc(2025, 12, 21, 12, 40))).toBeLessThan(16);
    expect(solarElevation(cityTimeToUtc(2025, 6, 21, 0, 0))).toBeLessThan(0);
  });
});

describe('traffic-driven sensors peak in the rush hour', () => {
  const weekdays = [[2025, 3, 4], [2025, 5, 14], [2025, 9, 18], [2025, 11, 25]] as const;

  it('roadside NO2 at 08:00 is well above 03:00 on weekdays', () => {
    let rush = 0;
    let night = 0;
    for (const [y, m, d] of weekdays) {
      for (const [hour, add] of [[8, (v: number) => (rush += v)], [3, (v: number) => (night += v)]] as const) {
        const device = createDevice('air_quality', 0, { seed: 1, startTime: cityTimeToUtc(y, m, d, hour, 0), intervalMs: 60_000 });
        for (let i = 0; i < 60; i++) add((device.next() as EventOf<'air_quality'>).no2);
      }
    }
    expect(rush).toBeGreaterThan(1.8 * night);
  });

  it('cameras count more vehicles per hour at 08:00 than at 03:00, and speed falls as flow rises', () => {
    for (let camera = 0; camera < 8; camera++) {
      const rate = (hour: number) => {
        const device = createDevice('traffic_camera', camera, { seed: 2, startTime: cityTimeToUtc(2025, 3, 4, hour, 0), intervalMs: 15_000 });
        let vehicles = 0;
        let seconds = 0;
        for (let i = 0; i < 240; i++) {
          const e = device.next() as EventOf<'traffic_camera'>;
          vehicles += e.intensity;
          seconds += e.periodDuration;
          if (e.intensity === 0) expect(e.occupancy).toBe(0);
          else expect(e.averageVehicleSpeed).toBeGreaterThan(0);
          if (e.congested) expect(e.averageVehicleSpeed).toBeLessThan(12);
        }
        return (vehicles * 3600) / seconds;
      };
      expect(rate(8)).toBeGreaterThan(4 * rate(3));
    }
  });
});

describe('emergency incidents', () => {
  it('open, get updates, and close under one id, one location and one category', () => {
    for (let unit = 0; unit < 3; unit++) {
      for (const intervalMs of [1000, 120_000]) {
        const device = createDevice('emergency', unit, { seed: 6, startTime: cityTimeToUtc(2025, 8, 8, 10, 0), intervalMs });
        const events = Array.from({ length: 800 }, () => device.next() as EventOf<'emergency'>);
        const incidents: EventOf<'emergency'>[][] = [];
        for (const e of events) {
          const current = incidents[incidents.length - 1];
          if (current !== undefined && current[0]?.incidentId === e.incidentId) current.push(e);
          else incidents.push([e]);
        }
        // Ids never come back once an incident is over.
        expect(new Set(incidents.map((i) => i[0]?.incidentId)).size).toBe(incidents.length);
        const complete = incidents.slice(0, -1);
        expect(complete.length).toBeGreaterThan(10);
        for (const reports of complete) {
          const first = reports[0] as EventOf<'emergency'>;
          const last = reports[reports.length - 1] as EventOf<'emergency'>;
          expect(first.incidentStatus).toBe('open');
          expect(last.incidentStatus).toBe('closed');
          expect(reports.length).toBeGreaterThanOrEqual(2);
          for (const r of reports.slice(1, -1)) expect(r.incidentStatus).toBe('inProgress');
          for (const r of reports) {
            expect(r.location).toEqual(first.location);
            expect(r.category).toBe(first.category);
            expect(r.subCategory).toBe(first.subCategory);
          }
          const minutes = (Date.parse(last.dateObserved as string) - Date.parse(first.dateObserved as string)) / 60_000;
          expect(minutes).toBeLessThanOrEqual(240 + intervalMs / 60_000);
        }
      }
    }
  });
});

import { decodeEvent, validateEvent, type EventOf } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { cityTimeToUtc } from './clock.ts';
import { DEVICE_SLUGS, eventIdOf, SIM_KINDS, type SimEvent, type SimKind } from './device.ts';
import { createDevice } from './devices.ts';
import { platformOf } from './kinds/phone.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function run<K extends SimKind>(kind: K, index: number, seed: number, count: number, startTime: number, intervalMs: number): SimEvent<K>[] {
  const device = createDevice(kind, index, { seed, startTime, intervalMs, deviceIdPrefix: `gen${seed}` });
  return Array.from({ length: count }, () => device.next());
}

describe('every generated event passes the protocol', () => {
  // Winter night, spring rush hour, summer afternoon, autumn weekend: different regimes of every model.
  const starts = [cityTimeToUtc(2025, 1, 14, 2, 0), cityTimeToUtc(2025, 4, 8, 7, 30), cityTimeToUtc(2025, 7, 17, 14, 0), cityTimeToUtc(2025, 10, 25, 18, 0)];
  for (const kind of SIM_KINDS) {
    it(`${kind}: 12 000 events over seeds, devices, seasons and rates`, () => {
      let checked = 0;
      for (const seed of [1, 7, 2024]) {
        for (const index of [0, 5]) {
          for (const [i, intervalMs] of [1000, 60_000].entries()) {
            const events = run(kind, index + i, seed, 1000, starts[(seed + index + i) % starts.length] as number, intervalMs);
            for (const event of events) {
              const result = validateEvent(event, kind);
              if (!result.ok) expect.fail(`${JSON.stringify(event)}: ${JSON.stringify(result.problems)}`);
              const decoded = decodeEvent(Buffer.from(JSON.stringify(event)), { kind, deviceId: event.deviceId });
              expect(decoded.ok).toBe(true);
              checked++;
            }
          }
        }
      }
      expect(checked).toBe(12_000);
    });
  }

  it('wall-clock mode: valid, and times never go backwards', () => {
    for (const kind of SIM_KINDS) {
      const device = createDevice(kind, 2, { seed: 3 });
      let last = 0;
      const now = Date.now();
      for (let i = 0; i < 200; i++) {
        // A clock that steps back now and then must not produce earlier event times.
        const event = device.next(now + i * 1000 - (i % 7 === 0 ? 5000 : 0));
        expect(validateEvent(event, kind).ok).toBe(true);
        const t = typeof event.dateObserved === 'number' ? event.dateObserved : Date.parse(event.dateObserved);
        expect(t).toBeGreaterThanOrEqual(last);
        last = t;
      }
    }
  });
});

describe('determinism and ids', () => {
  const start = cityTimeToUtc(2025, 5, 6, 8, 0);

  it('the same seed gives the same sequence; another seed a different one', () => {
    for (const kind of SIM_KINDS) {
      const a = run(kind, 3, 11, 400, start, 1000);
      const b = run(kind, 3, 11, 400, start, 1000);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      const other = createDevice(kind, 3, { seed: 12, startTime: start, deviceIdPrefix: 'gen11' });
      const c = Array.from({ length: 400 }, () => other.next());
      const body = (e: SimEvent) => JSON.stringify({ ...e, eventId: '' });
      expect(c.map(body)).not.toEqual(a.map(body));
      expect(c.map((e) => e.eventId)).not.toEqual(a.map((e) => e.eventId));
    }
  });

  it('ids are UUIDs derived from seed, run, device and seq; seq counts up from 0', () => {
    const seen = new Set<string>();
    for (const kind of SIM_KINDS) {
      for (let index = 0; index < 5; index++) {
        const events = run(kind, index, 5, 200, start, 1000);
        events.forEach((e, i) => {
          expect(e.seq).toBe(i);
          expect(e.eventId).toMatch(UUID);
          expect(e.eventId).toBe(eventIdOf(5, start, e.deviceId, e.seq));
          seen.add(e.eventId);
        });
        expect(events[0]?.deviceId).toBe(`gen5-${DEVICE_SLUGS[kind]}-${String(index).padStart(4, '0')}`);
      }
    }
    expect(seen.size).toBe(SIM_KINDS.length * 5 * 200);
  });

  it('simulated times are startTime + seq * interval', () => {
    const events = run('weather', 0, 1, 10, start, 250);
    expect(events.map((e) => Date.parse(e.dateObserved as string) - start)).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250]);
  });
});

describe('phones', () => {
  it('both platforms with real version strings; Android writes epoch ms, iOS RFC 3339', () => {
    const start = cityTimeToUtc(2025, 6, 3, 12, 0);
    const platforms = new Set<string>();
    const types = new Set<string>();
    for (let index = 0; index < 10; index++) {
      const events = run('phone', index, 9, 300, start, 30_000) as EventOf<'phone'>[];
      for (const e of events) {
        platforms.add(e.platform);
        types.add(e.eventType);
        expect(e.platform).toBe(platformOf(index));
        if (e.platform === 'android') {
          expect(typeof e.dateObserved).toBe('number');
          expect(e.osVersion).toMatch(/^1[1-5]$/);
        } else {
          expect(e.dateObserved).toMatch(/Z$/);
          expect(e.osVersion).toMatch(/^1[6-8]\.\d+(\.\d+)?$/);
        }
        expect(e.appVersion).toMatch(/^\d+\.\d+\.\d+$/);
        if (e.eventType === 'issueReport') expect(e.reportCategory).toBeDefined();
        else expect(e.reportCategory).toBeUndefined();
      }
    }
    expect([...platforms].sort()).toEqual(['android', 'ios']);
    for (const t of ['appOpen', 'appClose', 'locationUpdate', 'issueReport', 'transitCheckIn']) expect(types).toContain(t);
  });
});

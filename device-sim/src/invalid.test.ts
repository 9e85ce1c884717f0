import { decodeEvent, MAX_PAYLOAD_BYTES } from '@city/protocol';
import { describe, expect, it } from 'vitest';
import { cityTimeToUtc } from './clock.ts';
import { SIM_KINDS } from './device.ts';
import { createDevice } from './devices.ts';
import { DEFAULT_DEFECTS, INVALID_DEFECTS, makeInvalid, planInvalid } from './invalid.ts';
import { Rng } from './rng.ts';

describe('invalid payloads', () => {
  it('every defect, on every kind, fails decodeEvent with exactly the intended rule and field', () => {
    const start = cityTimeToUtc(2025, 4, 2, 8, 0);
    const seenRules = new Set<string>();
    for (const kind of SIM_KINDS) {
      for (let index = 0; index < 3; index++) {
        const device = createDevice(kind, index, { seed: 13, startTime: start, intervalMs: 20_000 });
        const rng = new Rng('invalid-test', kind, index);
        for (let n = 0; n < 30; n++) {
          const valid = device.next();
          const before = JSON.stringify(valid);
          for (const defect of INVALID_DEFECTS) {
            const bad = makeInvalid(defect, rng, valid);
            const result = decodeEvent(bad.payload, { kind, deviceId: valid.deviceId });
            if (result.ok) expect.fail(`${kind} ${defect} passed: ${bad.payload.toString('utf8', 0, 300)}`);
            const summary = result.problems.map((p) => `${p.path} ${p.rule}`);
            expect(summary, `${kind} ${defect}: ${bad.description}`).toEqual([`${bad.path} ${bad.rule}`]);
            expect(bad.eventId).not.toBe(valid.eventId);
            seenRules.add(bad.rule);
          }
          // The valid event is not touched.
          expect(JSON.stringify(valid)).toBe(before);
        }
      }
    }
    for (const rule of ['type', 'required', 'minimum', 'maximum', 'exclusiveMaximum', 'eventTime', 'maxLength', 'pattern', 'json', 'additionalProperties', 'enum', 'topic', 'size']) {
      expect(seenRules).toContain(rule);
    }
  });

  it('naive local times and garbage times both break the eventTime rule', () => {
    const device = createDevice('weather', 0, { seed: 1, startTime: cityTimeToUtc(2025, 7, 1, 9, 30) });
    const valid = device.next();
    const naive = makeInvalid('naiveTime', new Rng('naive'), valid);
    const value = (JSON.parse(naive.payload.toString()) as { dateObserved: string }).dateObserved;
    // 09:30 city time in summer, without the +02:00.
    expect(value).toMatch(/^2025-07-01[T ]09:30:00$/);
    expect(naive.rule).toBe('eventTime');
  });

  it('oversize payloads are over the protocol limit', () => {
    const valid = createDevice('phone', 1, { seed: 1 }).next();
    const bad = makeInvalid('oversizePayload', new Rng('big'), valid);
    expect(bad.payload.byteLength).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(DEFAULT_DEFECTS).not.toContain('oversizePayload');
  });

  it('an exact count is spread deterministically over devices and slots', () => {
    for (const [count, devices, slots] of [[0, 5, 10], [17, 14, 15], [1000, 30, 10], [3, 100, 1]] as const) {
      const plan = planInvalid(count, devices, slots, 42);
      let total = 0;
      for (const [device, perSlot] of plan) {
        expect(device).toBeGreaterThanOrEqual(0);
        expect(device).toBeLessThan(devices);
        for (const [slot, n] of perSlot) {
          expect(slot).toBeGreaterThanOrEqual(0);
          expect(slot).toBeLessThan(slots);
          total += n;
        }
      }
      expect(total).toBe(count);
      // Devices take turns, so no device gets more than its share rounded up.
      for (const perSlot of plan.values()) expect([...perSlot.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(Math.ceil(count / devices));
      expect(planInvalid(count, devices, slots, 42)).toEqual(plan);
    }
    expect(planInvalid(20, 10, 10, 1)).not.toEqual(planInvalid(20, 10, 10, 2));
  });
});

// The live engine without Kafka: windows, watermarks, lateness, merging and restart replay, checked
// against a direct computation over the same events.
import { describe, expect, it } from 'vitest';
import { eventRow, exampleEvent, type CellValue, type EventKind } from '@city/protocol';
import { mergePartials, valuesOf } from './aggregate.ts';
import { aqiCategory, aqiOfPm25, checkDefinitions, KPI_DEFINITIONS, kpiDefinition } from './definitions.ts';
import { Merger } from './merge.ts';
import { decodeMark, encodeMark, WindowEngine, type CommitMark, type Contribution } from './windows.ts';

const T0 = Date.parse('2026-12-01T12:00:00.000Z');
const traffic = kpiDefinition('traffic_district_5m')!;
// Centrum and Oostpark (see DISTRICT_BOXES)
const CENTRUM = { lat: 52.37, lon: 4.89 };
const OOSTPARK = { lat: 52.365, lon: 4.93 };

interface Input {
  source: string;
  kind: EventKind;
  offset: bigint;
  ms: number;
  row: CellValue[];
  id: string;
  district: string;
  device: string;
}

function vehicle(source: string, offset: number, device: string, ms: number, speed: number, where = CENTRUM): Input {
  const e = exampleEvent('vehicle', { eventId: `e-${source.replace('/', '-')}-${offset}`, deviceId: device, dateObserved: new Date(ms).toISOString(), speed, location: where });
  return {
    source, kind: 'vehicle', offset: BigInt(offset), ms, row: eventRow('vehicle', e, { gatewayId: 'gw', receivedAt: ms }), id: e.eventId,
    district: where === CENTRUM ? 'Centrum' : 'Oostpark', device,
  };
}

const engine = () => new WindowEngine({ definitions: KPI_DEFINITIONS, allowedLatenessMs: 60_000, idleTimeoutMs: 10_000 });
const feed = (e: WindowEngine, inputs: readonly Input[], now: number) => inputs.flatMap((i) => e.add(i.source, i.kind, i.offset, i.ms, i.row, i.id, now));

/** The latest contribution per window and source, as the merge stage keeps them. */
function latest(contributions: readonly Contribution[]): Map<string, Contribution> {
  const out = new Map<string, Contribution>();
  for (const c of contributions) out.set(`${c.kpi}|${c.key}|${c.windowStart}|${c.source}`, c);
  return out;
}

describe('KPI definitions', () => {
  it('name only columns their tables have', () => {
    expect(checkDefinitions(KPI_DEFINITIONS)).toEqual([]);
  });

  it('compute the US EPA 2024 PM2.5 AQI and its category at the breakpoints', () => {
    expect(aqiOfPm25(0)).toBe(0);
    expect(aqiOfPm25(9.0)).toBe(50);
    expect(aqiOfPm25(9.1)).toBe(51);
    expect(aqiOfPm25(35.4)).toBe(100);
    expect(aqiOfPm25(35.5)).toBe(101);
    expect(aqiOfPm25(55.5)).toBe(151);
    expect(aqiOfPm25(125.4)).toBe(200);
    expect(aqiOfPm25(225.5)).toBe(301);
    expect(aqiOfPm25(9.09)).toBe(50); // truncated to 0.1 first
    expect(aqiOfPm25(900)).toBe(500);
    expect(aqiCategory(162)).toBe('unhealthy');
    expect(aqiCategory(42)).toBe('good');
  });
});

describe('window engine', () => {
  it('emits early updates, a final once the watermark passes the end, and the figures of a direct computation', () => {
    const e = engine();
    const inputs = [vehicle('v/0', 0, 'bus-1', T0 + 1_000, 10), vehicle('v/0', 1, 'bus-1', T0 + 61_000, 20), vehicle('v/1', 0, 'car-9', T0 + 2_000, 15, OOSTPARK)];
    expect(feed(e, inputs, 0)).toEqual([]);
    const early = e.tick(0).contributions.filter((c) => c.kpi === 'traffic_district_5m');
    expect(early.map((c) => [c.key, c.final])).toEqual([['Centrum', false], ['Oostpark', false]]);
    // Nothing changed: no re-emit.
    expect(e.tick(1).contributions).toEqual([]);
    // Both partitions move past the window end + out-of-orderness.
    feed(e, [vehicle('v/0', 2, 'bus-1', T0 + 306_000, 10), vehicle('v/1', 1, 'car-9', T0 + 306_000, 10, OOSTPARK)], 2);
    const finals = e.tick(2).contributions.filter((c) => c.kpi === 'traffic_district_5m' && c.windowStart === T0);
    const sums = (p: Contribution['partial']) => [p['samples'], p['vehicles'], p['moving_samples'], Number(p['speed_kmh_sum']).toFixed(6), p['speed_kmh_n'], p['free_flow_sum']];
    expect(finals.map((c) => [c.key, c.final, ...sums(c.partial)])).toEqual([
      // Route L12 has no free-flow speed of its own: the district's (Centrum 32, Oostpark 54.8 km/h).
      ['Centrum', true, 2, 1, 2, (30 * 3.6).toFixed(6), 2, 64],
      ['Oostpark', true, 1, 1, 1, (15 * 3.6).toFixed(6), 1, 54.8],
    ]);
    expect(valuesOf(traffic, finals[0]!.partial)).toEqual({
      vehicles: 1, samples: 2, moving_samples: 2, mean_speed_kmh: 54, free_flow_kmh: 32, travel_time_index: 0.593, tti_band: 'free', camera_periods: 0, congested_share: null,
    });
  });

  it('re-emits a final updated by an event within the allowed lateness; later events are late with a reason', () => {
    const e = engine();
    feed(e, [vehicle('v/0', 0, 'bus-1', T0 + 1_000, 10), vehicle('v/0', 1, 'bus-1', T0 + 310_000, 10)], 0);
    expect(e.tick(0).contributions.some((c) => c.windowStart === T0 && c.kpi === 'traffic_district_5m' && c.final)).toBe(true);
    // Within lateness: the window end (T0+300 s) + 60 s is past the watermark (T0+305 s).
    expect(feed(e, [vehicle('v/0', 2, 'bus-2', T0 + 2_000, 30)], 1)).toEqual([]);
    const again = e.tick(1).contributions.find((c) => c.windowStart === T0 && c.kpi === 'traffic_district_5m')!;
    expect(again).toMatchObject({ final: true, revision: 2, partial: { samples: 2, vehicles: 2, speed_kmh_n: 2 } });
    expect(again.partial['speed_kmh_sum']).toBeCloseTo(40 * 3.6, 9);
    // Past end + lateness.
    feed(e, [vehicle('v/0', 3, 'bus-1', T0 + 400_000, 10)], 2);
    const late = feed(e, [vehicle('v/0', 4, 'bus-3', T0 + 3_000, 50)], 3);
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ kpi: 'traffic_district_5m', offset: '4', windowEnd: T0 + 300_000 });
    expect(late[0]!.reason).toMatch(/^late: .*allowed lateness 60000 ms/);
    expect(e.stats().late).toBe(1);
  });

  it('keeps bounded state: windows are dropped once past end + lateness', () => {
    const e = engine();
    for (let i = 0; i < 2_000; i++) feed(e, [vehicle('v/0', i, `bus-${i % 7}`, T0 + i * 10_000, 10)], 0);
    e.tick(0);
    // 20,000 s of data; only windows within the last end + lateness stay open.
    expect(e.stats().openWindows).toBeLessThanOrEqual(4);
  });

  it('holds the global watermark at the slowest active partition, and lets an idle one go', () => {
    const e = engine();
    feed(e, [vehicle('v/0', 0, 'bus-1', T0 + 400_000, 10)], 0);
    feed(e, [vehicle('v/1', 0, 'car-1', T0 + 1_000, 10)], 0);
    expect(e.watermark(1)).toBe(T0 + 1_000 - 5_000);
    expect(e.tick(1).contributions.find((c) => c.key === 'Centrum' && c.windowStart === T0 && c.kpi === 'traffic_district_5m')?.final).toBe(false);
    // v/1 silent past the idle timeout; v/0 goes on.
    feed(e, [vehicle('v/0', 1, 'bus-1', T0 + 401_000, 10)], 20_000);
    expect(e.watermark(20_000)).toBe(T0 + 401_000 - 5_000);
    expect(e.tick(20_000).contributions.find((c) => c.key === 'Centrum' && c.windowStart === T0 && c.kpi === 'traffic_district_5m')?.final).toBe(true);
  });

  it('merges contributions of disjoint partitions into what one engine over everything computes', () => {
    const inputs: Input[] = [];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 3_000; i++) {
      const p = i % 4;
      const where = rnd() < 0.5 ? CENTRUM : OOSTPARK;
      inputs.push(vehicle(`v/${p}`, Math.floor(i / 4), `dev-${p}-${Math.floor(rnd() * 20)}`, T0 + i * 700 + Math.floor(rnd() * 3_000), Math.round(rnd() * 300) / 10, where));
    }
    // One engine with all four partitions, versus two engines with two each.
    const one = engine();
    const a = engine();
    const b = engine();
    const all: Contribution[] = [];
    const split: Contribution[] = [];
    for (let i = 0; i < inputs.length; i += 100) {
      const chunk = inputs.slice(i, i + 100);
      feed(one, chunk, i);
      feed(a, chunk.filter((x) => x.source < 'v/2'), i);
      feed(b, chunk.filter((x) => x.source >= 'v/2'), i);
      all.push(...one.tick(i).contributions);
      split.push(...a.tick(i).contributions, ...b.tick(i).contributions);
    }
    const merged = (cs: readonly Contribution[]) => {
      const byWindow = new Map<string, Contribution[]>();
      for (const c of latest(cs).values()) {
        if (c.kpi !== 'traffic_district_5m') continue;
        const id = `${c.key}|${c.windowStart}`;
        byWindow.set(id, [...(byWindow.get(id) ?? []), c]);
      }
      return new Map([...byWindow].map(([id, list]) => [id, mergePartials(traffic, list.map((c) => c.partial))]));
    };
    // Direct computation: samples, distinct devices and speed sums per district and 5-minute bucket.
    const direct = new Map<string, { samples: number; devices: Set<string> }>();
    for (const x of inputs) {
      const key = `${x.district}|${Math.floor(x.ms / 300_000) * 300_000}`;
      const d = direct.get(key) ?? { samples: 0, devices: new Set<string>() };
      d.samples++;
      d.devices.add(x.device);
      direct.set(key, d);
    }
    const m1 = merged(all);
    const m2 = merged(split);
    expect(m2).toEqual(m1);
    expect([...m1.values()].reduce((s, p) => s + Number(p['samples'] ?? 0), 0)).toBe(inputs.length);
    expect(new Map([...m1].map(([k, p]) => [k, [p['samples'], p['vehicles']]]))).toEqual(new Map([...direct].map(([k, d]) => [k, [d.samples, d.devices.size]])));
  });

  it('after a crash, replaying from the committed offset with its mark gives the same latest contributions', () => {
    const inputs: Input[] = [];
    let seed = 11;
    const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 4_000; i++) {
      // Out of order by up to 90 s: some events are within lateness, some are late.
      inputs.push(vehicle('v/0', i, `dev-${Math.floor(rnd() * 30)}`, T0 + i * 500 - Math.floor(rnd() < 0.05 ? rnd() * 90_000 : rnd() * 4_000), Math.round(rnd() * 300) / 10));
    }
    const run = (from: number, to: number, mark: CommitMark | undefined, out: Contribution[], late: string[]) => {
      const e = engine();
      e.assign('v/0', 'vehicle', mark, 0);
      let commit: { offset: string; mark: CommitMark } | undefined;
      for (let i = from; i < to; i += 50) {
        late.push(...feed(e, inputs.slice(i, Math.min(i + 50, to)), i).map((l) => l.offset));
        const t = e.tick(i);
        out.push(...t.contributions);
        const c = t.commits[0];
        // Committed only after the tick's contributions are durable; the mark survives as text.
        if (c !== undefined) commit = { offset: c.offset, mark: decodeMark(encodeMark(c.mark))! };
      }
      return commit;
    };
    const whole: Contribution[] = [];
    const wholeLate: string[] = [];
    run(0, inputs.length, undefined, whole, wholeLate);

    const crashed: Contribution[] = [];
    const crashedLate: string[] = [];
    const commit = run(0, 2_730, undefined, crashed, crashedLate)!;
    expect(Number(commit.offset)).toBeLessThan(2_730);
    run(Number(commit.offset), inputs.length, commit.mark, crashed, crashedLate);

    expect(wholeLate.length).toBeGreaterThan(0);
    const sameLate = new Set(crashedLate);
    expect([...new Set(wholeLate)].every((o) => sameLate.has(o))).toBe(true);
    expect(crashedLate.length).toBe(new Set(crashedLate).size); // no late event dead-lettered twice
    const strip = (m: Map<string, Contribution>) => new Map([...m].map(([k, c]) => [k, { final: c.final, partial: c.partial }]));
    expect(strip(latest(crashed))).toEqual(strip(latest(whole)));
  });
});

/** A source's final contribution to one district's first traffic window. */
function finalTraffic(key: string, source: string, samples: number, watermark: number): Contribution {
  return {
    kpi: 'traffic_district_5m', key, windowStart: T0, windowEnd: T0 + 300_000, source, final: true, revision: 1, watermark,
    partial: { samples, vehicles: 1, moving_samples: samples, speed_kmh_sum: 10 * samples, speed_kmh_n: samples },
  };
}

describe('merge stage', () => {
  it('keeps the latest contribution per source and emits the merged figures, final once every contribution is', () => {
    const m = new Merger({ allowedLatenessMs: 60_000, graceMs: 5_000 });
    const c = (source: string, final: boolean, samples: number, speed: number, watermark: number): Contribution => ({
      kpi: 'traffic_district_5m', key: 'Centrum', windowStart: T0, windowEnd: T0 + 300_000, source, final, revision: 1, watermark,
      partial: { samples, vehicles: 1, moving_samples: samples, speed_kmh_sum: speed, speed_kmh_n: samples },
    });
    m.add('k/0', 0n, c('v/0', false, 1, 10, T0));
    m.add('k/0', 1n, c('v/1', true, 2, 20, T0 + 300_000));
    expect(m.tick(0).windows).toEqual([expect.objectContaining({ final: false, sources: 2, partial: expect.objectContaining({ samples: 3, vehicles: 2, speed_kmh_sum: 30, speed_kmh_n: 3 }) })]);
    m.add('k/0', 2n, c('v/0', true, 2, 30, T0 + 301_000));
    const [w] = m.tick(1_000).windows;
    expect(w).toMatchObject({ final: true, partial: { samples: 4, vehicles: 2, speed_kmh_sum: 50 }, values: { samples: 4, vehicles: 2, mean_speed_kmh: 12.5 } });
    // Past end + lateness, the finished window waits out its grace (wall clock) before it is dropped.
    m.add('k/0', 3n, { ...c('v/0', true, 1, 1, T0 + 500_000), windowStart: T0 + 300_000, windowEnd: T0 + 600_000 });
    expect(m.tick(2_000).commits).toEqual([expect.objectContaining({ source: 'k/0', offset: '0' })]);
    expect(m.stats().openWindows).toBe(2);
    const t = m.tick(6_000);
    expect(m.stats().openWindows).toBe(1);
    expect(t.commits).toEqual([expect.objectContaining({ source: 'k/0', offset: '3' })]);
  });

  it('merges a contribution that comes after the window was final and past its lateness into that window', () => {
    // Two instances: the first reads its partitions, reaches far ahead and reports final; the second reports a moment later.
    const m = new Merger({ allowedLatenessMs: 60_000, graceMs: 5_000 });
    const traffic = (source: string, samples: number, watermark: number) => finalTraffic('Centrum', source, samples, watermark);
    m.add('k/0', 0n, traffic('v/0', 220, T0 + 700_000));
    expect(m.tick(0).windows).toEqual([expect.objectContaining({ final: true, sources: 1, revision: 1, partial: expect.objectContaining({ samples: 220 }) })]);
    expect(m.tick(200).windows).toEqual([]);
    m.add('k/0', 1n, traffic('v/1', 180, T0 + 700_000));
    expect(m.tick(400).windows).toEqual([expect.objectContaining({ final: true, sources: 2, revision: 2, partial: expect.objectContaining({ samples: 400 }) })]);
    m.tick(5_300);
    expect(m.stats().openWindows).toBe(1);
    expect(m.tick(5_400).commits).toEqual([expect.objectContaining({ source: 'k/0', offset: '2' })]);
    expect(m.stats().openWindows).toBe(0);
  });

  it("drops a window by its own KPI's watermark, not by another KPI's far ahead on the same partition", () => {
    const m = new Merger({ allowedLatenessMs: 60_000, graceMs: 0 });
    const traffic = (source: string, samples: number, watermark: number) => finalTraffic('Oostpark', source, samples, watermark);
    m.add('k/0', 0n, traffic('v/0', 110, T0 + 301_000));
    // Air quality an hour ahead, keyed onto the same partition of the partials topic.
    const air = kpiDefinition('air_quality_station_hour')!;
    m.add('k/0', 1n, { kpi: air.name, key: 'aq-1', windowStart: T0 + 3_600_000, windowEnd: T0 + 7_200_000, source: 'a/0', final: false, revision: 1, watermark: T0 + 3_670_000, partial: mergePartials(air, []) });
    expect(m.tick(0).windows.filter((w) => w.kpi === 'traffic_district_5m')).toEqual([expect.objectContaining({ final: true, partial: expect.objectContaining({ samples: 110 }) })]);
    // The other source's final comes later: it joins the same window (not a window of its own).
    m.add('k/0', 2n, traffic('v/1', 90, T0 + 302_000));
    expect(m.tick(1).windows.filter((w) => w.kpi === 'traffic_district_5m')).toEqual([expect.objectContaining({ final: true, sources: 2, partial: expect.objectContaining({ samples: 200 }) })]);
    // The replay floor of the commit is the slowest KPI's watermark, not the air quality's.
    const [commit] = m.tick(2).commits;
    expect(commit?.mark.wmAtCommit).toBeLessThanOrEqual(T0 + 302_000);
  });
});

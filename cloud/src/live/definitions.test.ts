// One definition, two executions: every KPI definition run by the live engine and, as SQL from
// kpiSql, by DuckDB over a table with the lake's columns, on the same events, gives the same figures.
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { eventRow, eventTable, exampleEvent, type CellValue, type EventKind } from '@city/protocol';
import { KPI_DEFINITIONS, kpiSql } from './definitions.ts';
import { WindowEngine, type Contribution } from './windows.ts';

const T0 = Date.parse('2026-12-01T12:00:00.000Z');
const SQL_TYPES = { string: 'VARCHAR', double: 'DOUBLE', int64: 'BIGINT', boolean: 'BOOLEAN', timestamp: 'TIMESTAMPTZ' } as const;

function events(): { kind: EventKind; row: CellValue[]; ms: number }[] {
  let seed = 3;
  const rnd = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const out: { kind: EventKind; row: CellValue[]; ms: number }[] = [];
  const push = (kind: EventKind, ms: number, overrides: Record<string, unknown>) =>
    out.push({ kind, ms, row: eventRow(kind, exampleEvent(kind, { dateObserved: new Date(ms).toISOString(), ...overrides } as never), { gatewayId: 'gw', receivedAt: ms }) });
  for (let i = 0; i < 600; i++) {
    const ms = T0 + i * 6_000; // an hour
    push('vehicle', ms, { deviceId: `veh-${i % 17}`, speed: Math.round(rnd() * 300) / 10, location: { lat: 52.34 + rnd() * 0.07, lon: 4.83 + rnd() * 0.11 } });
    if (i % 2 === 0) push('traffic_camera', ms, { deviceId: `cam-${i % 5}`, intensity: Math.floor(rnd() * 40), occupancy: Math.round(rnd() * 100) / 100, congested: rnd() < 0.2, ...(rnd() < 0.1 ? { averageVehicleSpeed: undefined } : { averageVehicleSpeed: Math.round(rnd() * 200) / 10 }) });
    if (i % 3 === 0) push('air_quality', ms, { deviceId: `aq-${i % 4}`, pm25: Math.round(rnd() * 900) / 10, pm10: Math.round(rnd() * 900) / 10, no2: Math.round(rnd() * 900) / 10 });
    if (i % 3 === 1) push('weather', ms, { deviceId: `ws-${i % 3}`, temperature: Math.round(rnd() * 300) / 10, windSpeed: Math.round(rnd() * 250) / 10, precipitation: Math.round(rnd() * 20) / 10, relativeHumidity: Math.round(rnd() * 100) / 100 });
  }
  return out;
}

const literal = (v: CellValue, type: string) => (v === null ? 'NULL' : type === 'timestamp' ? `to_timestamp(${Number(v) / 1000})` : typeof v === 'string' ? `'${v.replaceAll("'", "''")}'` : String(v));
const round = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 1e6) / 1e6);

describe('KPI definitions, two executions', () => {
  it('the live engine and DuckDB running kpiSql give the same aggregates for every window and key', async () => {
    const input = events();
    const engine = new WindowEngine({ definitions: KPI_DEFINITIONS, allowedLatenessMs: 0, idleTimeoutMs: 1 });
    input.forEach((e, i) => engine.add(`${e.kind}/0`, e.kind, BigInt(i), e.ms, e.row, undefined, 0));
    const latest = new Map<string, Contribution>();
    for (const c of engine.tick(10).contributions) latest.set(`${c.kpi}|${c.key}|${c.windowStart}`, c);
    // Move every partition far past the hour so each window is final.
    for (const kind of ['vehicle', 'traffic_camera', 'air_quality', 'weather'] as const) {
      const last = input.filter((e) => e.kind === kind).at(-1)!;
      engine.add(`${kind}/0`, kind, BigInt(input.length), T0 + 10 * 3_600_000, last.row, undefined, 20);
    }
    for (const c of engine.tick(30).contributions) if (c.windowStart < T0 + 3_600_000) latest.set(`${c.kpi}|${c.key}|${c.windowStart}`, c);

    const instance = await DuckDBInstance.create(':memory:');
    const db = await instance.connect();
    try {
      await db.run(`SET TimeZone = 'UTC'`);
      for (const kind of ['vehicle', 'traffic_camera', 'air_quality', 'weather'] as const) {
        const columns = eventTable(kind).columns;
        await db.run(`CREATE TABLE ${kind} (${columns.map((c) => `${c.name} ${SQL_TYPES[c.type]}`).join(', ')})`);
        const rows = input.filter((e) => e.kind === kind).map((e) => `(${e.row.map((v, i) => literal(v, columns[i]!.type)).join(', ')})`);
        await db.run(`INSERT INTO ${kind} VALUES ${rows.join(', ')}`);
      }
      let compared = 0;
      for (const d of KPI_DEFINITIONS) {
        const result = await db.runAndReadAll(`SELECT epoch_ms(window_start) AS ws, * EXCLUDE (window_start) FROM (${kpiSql(d)})`);
        const sql = result.getRowObjects().map((r) => ({
          id: `${d.name}|${String(r['key'])}|${Number(r['ws'])}`,
          partial: Object.fromEntries(d.aggregates.map((a) => [a.name, round(r[a.name])])),
        }));
        const live = [...latest.values()].filter((c) => c.kpi === d.name).map((c) => ({
          id: `${c.kpi}|${c.key}|${c.windowStart}`,
          final: c.final,
          partial: Object.fromEntries(d.aggregates.map((a) => [a.name, round(c.partial[a.name])])),
        }));
        expect(live.every((c) => c.final)).toBe(true);
        expect(new Map(live.map((c) => [c.id, c.partial]))).toEqual(new Map(sql.map((r) => [r.id, r.partial])));
        expect(sql.length).toBeGreaterThan(0);
        compared += sql.length;
      }
      expect(compared).toBeGreaterThan(50);
    } finally {
      db.closeSync();
      instance.closeSync();
    }
  });
});

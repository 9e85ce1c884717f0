// Rows written from their JSON texts (DuckDB reads the columns) must be the rows the JavaScript reader
// builds from the same texts, cell for cell, whatever the text looks like.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_KINDS, eventRow, eventTable, parseEventTime, type CellValue, type CityEvent, type EventKind } from '@city/protocol';
import { sampleEvent } from '../../../test/support/lake.ts';
import { parquetFixture } from '../../../test/support/parquet-fixture.ts';
import type { JsonRows } from './parquet.ts';

const META = { gatewayId: 'gw-1', receivedAt: Date.UTC(2024, 4, 1, 0, 0, 1, 999) };

function countKeys(value: Record<string, unknown>): number {
  let n = Object.keys(value).length;
  for (const v of Object.values(value)) if (typeof v === 'object' && v !== null) n += Object.keys(v).length;
  return n;
}

function jsonRows(kind: EventKind, texts: string[], fallbacks: { n: number }): JsonRows {
  const parsed = texts.map((t) => JSON.parse(t) as CityEvent & Record<string, unknown>);
  return {
    texts,
    keys: parsed.map(countKeys),
    cells: {
      date_observed: parsed.map((e) => (parseEventTime(e.dateObserved) as { ms: number }).ms),
      gateway_id: parsed.map(() => META.gatewayId),
      received_at: parsed.map((_, i) => META.receivedAt + i),
    },
    row: (i) => {
      fallbacks.n++;
      return eventRow(kind, parsed[i] as CityEvent, { gatewayId: META.gatewayId, receivedAt: META.receivedAt + i });
    },
  };
}

describe('Parquet writer: rows from JSON texts', () => {
  const fx = parquetFixture('cloud-parquet-json-');
  let n = 0;

  /** Writes the texts both ways and returns how many rows differ (each way) and how many fell back to cells. */
  async function compare(kind: EventKind, texts: string[]): Promise<{ differ: number; rows: number; fallbacks: number }> {
    const fallbacks = { n: 0 };
    const asJson = join(fx.dir, `json-${++n}.parquet`);
    const asCells = join(fx.dir, `cells-${n}.parquet`);
    await fx.writer.write(eventTable(kind), jsonRows(kind, texts, fallbacks), asJson);
    const cells: CellValue[][] = texts.map((t, i) => eventRow(kind, JSON.parse(t) as CityEvent, { gatewayId: META.gatewayId, receivedAt: META.receivedAt + i }));
    await fx.writer.write(eventTable(kind), cells, asCells);
    // Doubles compared by their bits' text, so -0 and 0 or a last-digit difference count.
    const cols = eventTable(kind).columns.map((c) => (c.type === 'double' ? `CAST("${c.name}" AS VARCHAR)` : `"${c.name}"`)).join(', ');
    const r = await fx.db.runAndReadAll(
      `SELECT (SELECT count(*) FROM (SELECT ${cols} FROM '${asJson}' EXCEPT ALL SELECT ${cols} FROM '${asCells}'))
            + (SELECT count(*) FROM (SELECT ${cols} FROM '${asCells}' EXCEPT ALL SELECT ${cols} FROM '${asJson}')) AS d,
              (SELECT count(*) FROM '${asJson}') AS n`,
    );
    const [d, rows] = r.getRows()[0] as [bigint, bigint];
    return { differ: Number(d), rows: Number(rows), fallbacks: fallbacks.n };
  }

  it.each(EVENT_KINDS)('gives the JavaScript rows for sample %s events, without falling back', async (kind) => {
    const texts = Array.from({ length: 300 }, (_, i) => JSON.stringify(sampleEvent(kind, i)));
    expect(await compare(kind, texts)).toEqual({ differ: 0, rows: 300, fallbacks: 0 });
  });

  it('reads numbers, escapes, whitespace and text the way JSON.parse does', async () => {
    const base = sampleEvent('phone', 1);
    const texts: string[] = [];
    for (let i = 0; i < 500; i++) {
      // Doubles with every digit count, from random bits within the field's range.
      texts.push(JSON.stringify({ ...base, eventId: `e-${i}`, batteryLevel: Math.random() ** (1 + (i % 5)), message: `m ${i} "q" \\ é ☃ 東京 😀 \u0000 \u001f` }));
    }
    texts.push(JSON.stringify({ ...base, batteryLevel: 1e-7 }), JSON.stringify({ ...base, batteryLevel: 0 }));
    texts.push(`{ "kind" : "phone",\n\t"eventId":"e\\u002dx", "deviceId":"d1", "seq": 1e3, "dateObserved":"2024-05-01T00:00:00.123456+02:00",
      "platform":"ios","osVersion":"17\\/1","appVersion":"\\ud83d\\ude00","eventType":"appOpen", "batteryLevel": 5e-1, "location": {"lat": -0.0, "lon": 12.50}}`);
    texts.push(JSON.stringify({ ...base, seq: 9007199254740991, batteryLevel: 0.30000000000000004 }));
    expect(await compare('phone', texts)).toEqual({ differ: 0, rows: texts.length, fallbacks: 0 });
  });

  it('falls back to the JavaScript rows for a repeated key (JSON.parse keeps the last) and an escaped lone surrogate', async () => {
    const event = JSON.stringify(sampleEvent('vehicle', 7));
    const repeated = event.replace('"speed":', '"speed":99,"speed":');
    const nested = event.replace('"lat":', '"lat":-80,"lat":');
    const surrogate = JSON.stringify({ ...sampleEvent('phone', 2), message: 'a\ud800b' });
    expect(JSON.parse(repeated).speed).not.toBe(99);
    expect(await compare('vehicle', [event, repeated])).toEqual({ differ: 0, rows: 2, fallbacks: 2 });
    expect(await compare('vehicle', [nested, event])).toEqual({ differ: 0, rows: 2, fallbacks: 2 });
    expect(await compare('phone', [surrogate])).toEqual({ differ: 0, rows: 1, fallbacks: 1 });
  });
});

// The intake keeps valid events as their text; the lake writer has DuckDB read the columns from it. The
// files must hold the decoder's rows, and for what the gateway sends DuckDB must read the texts itself
// (a silent fall back to the JavaScript rows would cost the per-record work this path removes).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_KINDS, eventTable, HEADERS, SCHEMA_VERSION, type CellValue, type EventKind } from '@city/protocol';
import { sampleEvent } from '../../../test/support/lake.ts';
import { parquetFixture } from '../../../test/support/parquet-fixture.ts';
import { rawTable, tableSchema } from '../lake/layout.ts';
import {
  createRecordDecoder,
  createRecordReader,
  DEFAULT_TOPICS,
  eventTextPack,
  eventTextRows,
  packedEventRows,
  packEvent,
  packRawRecord,
  rawCells,
  rawRowPack,
  type EventText,
  type KafkaRecord,
} from './records.ts';

const RECEIVED_AT = Date.UTC(2024, 4, 1, 12, 0, 0, 123);

function record(kind: EventKind, n: number): KafkaRecord {
  const event = sampleEvent(kind, n);
  const headers = {
    [HEADERS.gatewayId]: Buffer.from(`gw-${n % 3}`),
    [HEADERS.receivedAt]: Buffer.from(String(RECEIVED_AT + n)),
    [HEADERS.schemaVersion]: Buffer.from(String(SCHEMA_VERSION)),
    [HEADERS.eventId]: Buffer.from(event.eventId),
  };
  return { key: Buffer.from(event.deviceId), value: Buffer.from(JSON.stringify(event)), timestamp: String(RECEIVED_AT), offset: String(n), headers };
}

describe('valid events kept as text', () => {
  const fx = parquetFixture('sink-event-texts-');
  const decode = createRecordDecoder(DEFAULT_TOPICS);
  const read = createRecordReader(DEFAULT_TOPICS, true, decode, { eventTexts: true });

  it.each(EVENT_KINDS)('writes the decoder’s %s rows, DuckDB reading every text', async (kind) => {
    const records = Array.from({ length: 200 }, (_, n) => record(kind, n));
    const events: EventText[] = [];
    const cells: CellValue[][] = [];
    for (const r of records) {
      const out = read(DEFAULT_TOPICS.events[kind], 0, r);
      expect(out.row.rejected).toBeUndefined();
      expect(out.row.event).toBeDefined();
      events.push(out.row.event as EventText);
      cells.push(decode(DEFAULT_TOPICS.events[kind], r).row);
    }
    const rows = eventTextRows(kind, events);
    let fellBack = 0;
    const counted = { ...rows, row: (i: number) => (fellBack++, rows.row(i)) };
    await fx.writer.write(eventTable(kind), counted, join(fx.dir, `${kind}-text.parquet`));
    await fx.writer.write(eventTable(kind), cells, join(fx.dir, `${kind}-cells.parquet`));
    expect(fellBack).toBe(0);
    const a = join(fx.dir, `${kind}-text.parquet`);
    const b = join(fx.dir, `${kind}-cells.parquet`);
    const diff = await fx.db.runAndReadAll(
      `SELECT (SELECT count(*) FROM (FROM '${a}' EXCEPT ALL FROM '${b}')) + (SELECT count(*) FROM (FROM '${b}' EXCEPT ALL FROM '${a}')) AS d, (SELECT count(*) FROM '${a}') AS n`,
    );
    expect(diff.getRows()[0]).toEqual([0n, 200n]);
  });

  it.each(EVENT_KINDS)('packs the %s texts and raw rows as the sink buffers them, with the rows of the cells', async (kind) => {
    const records = Array.from({ length: 200 }, (_, n) => record(kind, n));
    const packed = eventTextPack();
    const raw = rawRowPack();
    const cells: CellValue[][] = [];
    const rawRows: CellValue[][] = [];
    for (const r of records) {
      const out = read(DEFAULT_TOPICS.events[kind], 0, r);
      packEvent(packed, out.row.event as EventText);
      packRawRecord(raw, out.raw!);
      rawRows.push(rawCells(out.raw!));
      cells.push(decode(DEFAULT_TOPICS.events[kind], r).row);
    }
    const rows = packedEventRows(kind, packed);
    let fellBack = 0;
    const json = rows.json as NonNullable<typeof rows.json>;
    await fx.writer.write(eventTable(kind), { packed, json: { ...json, row: (i: number) => (fellBack++, json.row(i)) } }, join(fx.dir, `${kind}-packed.parquet`));
    await fx.writer.write(eventTable(kind), cells, join(fx.dir, `${kind}-packed-cells.parquet`));
    await fx.writer.write(tableSchema(rawTable(kind)), { packed: raw }, join(fx.dir, `${kind}-raw.parquet`));
    await fx.writer.write(tableSchema(rawTable(kind)), rawRows, join(fx.dir, `${kind}-raw-cells.parquet`));
    expect(fellBack).toBe(0);
    // The fallback rows are the decoder's too.
    expect(json.row(7)).toEqual(cells[7]);
    for (const [a, b] of [[`${kind}-packed`, `${kind}-packed-cells`], [`${kind}-raw`, `${kind}-raw-cells`]]) {
      const diff = await fx.db.runAndReadAll(
        `SELECT (SELECT count(*) FROM (FROM '${join(fx.dir, `${a}.parquet`)}' EXCEPT ALL FROM '${join(fx.dir, `${b}.parquet`)}')) + (SELECT count(*) FROM (FROM '${join(fx.dir, `${b}.parquet`)}' EXCEPT ALL FROM '${join(fx.dir, `${a}.parquet`)}')) AS d, (SELECT count(*) FROM '${join(fx.dir, `${a}.parquet`)}') AS n`,
      );
      expect(diff.getRows()[0]).toEqual([0n, 200n]);
    }
  });
});

// Benchmark (not a test): the sink's per-record work without Kafka, where the bench with Kafka is too noisy
// to show it. (1) Intake.accept of valid events of every kind in batches of one topic, rows kept until a
// flush, the raw zone on and off in alternating rounds: CPU µs per record and JS heap bytes per buffered
// record. (2) The Parquet writer given the same rows as cells,
// as event texts (DuckDB reads the columns), and packed as the sink buffers them (curated and raw rows):
// CPU µs per row, the ratios in the same run.
//   node --expose-gc test/bench/sink-intake.ts [--events 200000] [--rounds 3]
import { parseArgs } from 'node:util';
import { EVENT_KINDS, eventTable, kafkaTopicSet, recordHeaders, silentLog, type CellValue } from '@city/protocol';
import {
  createParquetWriter,
  createRecordDecoder,
  createRecordReader,
  DuplicateWindow,
  emptyStats,
  eventTextPack,
  eventTextRows,
  Intake,
  packedEventRows,
  packEvent,
  packRawRecord,
  rawCells,
  rawRowPack,
  tableSchema,
  Segments,
  type EventText,
  type KafkaRecord,
} from '@city/cloud';
import { sampleEvent } from '../support/lake.ts';

const { values } = parseArgs({ options: { events: { type: 'string' }, rounds: { type: 'string' } } });
const N = Number(values.events ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const topics = kafkaTopicSet('intakebench');
const HOUR = Date.UTC(2026, 10, 29, 6);
const offsets = new Map<string, number>();
const records: { topic: string; record: KafkaRecord }[] = [];
for (let i = 0; i < N; i++) {
  const kind = EVENT_KINDS[i % EVENT_KINDS.length] as (typeof EVENT_KINDS)[number];
  const event = sampleEvent(kind, i, { idPrefix: 'b', dateObserved: HOUR + (i % 3600) * 1000 });
  const headers = recordHeaders({ gatewayId: 'gw-bench', receivedAt: HOUR + 3_600_000, eventId: event.eventId });
  const topic = topics.events[kind];
  const offset = offsets.get(topic) ?? 0;
  offsets.set(topic, offset + 1);
  records.push({
    topic,
    record: {
      key: Buffer.from(event.deviceId),
      value: Buffer.from(JSON.stringify(event)),
      timestamp: String(HOUR + 3_600_000),
      offset: String(offset),
      headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
    },
  });
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// The intake takes records as a consumer hands them out: in batches of one topic-partition.
const BATCH = 1_000;
const batched: typeof records = [];
for (let start = 0; start < records.length; start += BATCH * EVENT_KINDS.length) {
  const slice = records.slice(start, start + BATCH * EVENT_KINDS.length);
  for (const kind of EVENT_KINDS) for (const r of slice) if (r.topic === topics.events[kind]) batched.push(r);
}

// (1) intake, raw zone on and off in turns (the first round of each warms the JIT up and is not counted)
function runIntake(rawZone: boolean): { us: number; heap: number; rows: number } {
  gc!();
  const heap0 = process.memoryUsage().heapUsed;
  const segments = new Segments({ maxRows: N, maxBytes: Number.MAX_SAFE_INTEGER, maxSpanMs: Number.MAX_SAFE_INTEGER, maxAgeMs: 3_600_000 }, () => undefined);
  const intake = new Intake({
    topics,
    rawZone,
    dedupWindow: 20_000,
    segments,
    duplicates: new DuplicateWindow(20_000),
    ownership: { assigned: new Set(), committed: new Map(), generation: 0 },
    stats: emptyStats(),
    seek: () => false,
    rejected: () => undefined,
    log: silentLog,
  });
  const c0 = cpuMs();
  for (const { topic, record } of batched) intake.accept(topic, 0, record);
  const ms = cpuMs() - c0;
  gc!();
  const heap = (process.memoryUsage().heapUsed - heap0) / N;
  segments.stopTimer();
  const rows = segments.bufferedRows;
  return { us: (ms * 1000) / N, heap, rows };
}
const ROUNDS = Number(values.rounds ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const on: number[] = [];
const off: number[] = [];
runIntake(true);
runIntake(false);
let last = { us: 0, heap: 0, rows: 0 };
for (let r = 0; r < ROUNDS; r++) {
  last = runIntake(true);
  on.push(last.us);
  off.push(runIntake(false).us);
}
console.log(`intake, raw zone on: ${median(on).toFixed(2)} CPU µs/record (rounds ${on.map((x) => x.toFixed(2)).join(', ')}), ${Math.round(last.heap)} heap bytes per buffered record (${last.rows} rows buffered)`);
console.log(`intake, raw zone off: ${median(off).toFixed(2)} CPU µs/record (rounds ${off.map((x) => x.toFixed(2)).join(', ')}); the raw zone's intake ${(median(on) - median(off)).toFixed(2)} µs/record`);

// (2) the writer, one kind per file
const decode = createRecordDecoder(topics);
const read = createRecordReader(topics, true, decode, { eventTexts: true });
const writer = await createParquetWriter();
const dir = `/tmp/sink-intake-bench-${process.pid}`;
let cellsMs = 0;
let textsMs = 0;
let packedMs = 0;
let rawCellsMs = 0;
let rawPackedMs = 0;
const HOWS = ['cells', 'texts', 'packed', 'raw-cells', 'raw-packed'];
for (const kind of EVENT_KINDS) {
  const mine = records.filter((r) => r.topic === topics.events[kind]);
  const cells: CellValue[][] = mine.map((r) => decode(r.topic, r.record).row);
  const both = mine.map((r) => read(r.topic, 0, r.record));
  const texts: EventText[] = both.map((b) => b.row.event as EventText);
  const rawRows = both.map((b) => (b.raw === undefined ? [] : rawCells(b.raw)));
  let t = cpuMs();
  await writer.write(eventTable(kind), cells, `${dir}-cells-${kind}.parquet`);
  cellsMs += cpuMs() - t;
  t = cpuMs();
  await writer.write(eventTable(kind), eventTextRows(kind, texts), `${dir}-texts-${kind}.parquet`);
  textsMs += cpuMs() - t;
  // Packed as the intake packs them (the packing counted here too), then written.
  t = cpuMs();
  const packed = eventTextPack();
  for (const e of texts) packEvent(packed, e);
  await writer.write(eventTable(kind), packedEventRows(kind, packed), `${dir}-packed-${kind}.parquet`);
  packedMs += cpuMs() - t;
  const rawSchema = tableSchema(`raw_${kind}`);
  t = cpuMs();
  await writer.write(rawSchema, rawRows, `${dir}-raw-cells-${kind}.parquet`);
  rawCellsMs += cpuMs() - t;
  t = cpuMs();
  const raw = rawRowPack();
  for (const b of both) if (b.raw !== undefined) packRawRecord(raw, b.raw);
  await writer.write(rawSchema, { packed: raw }, `${dir}-raw-packed-${kind}.parquet`);
  rawPackedMs += cpuMs() - t;
}
writer.close();
const { rmSync } = await import('node:fs');
for (const kind of EVENT_KINDS) for (const how of HOWS) rmSync(`${dir}-${how}-${kind}.parquet`, { force: true });
const us = (ms: number) => ((ms * 1000) / N).toFixed(2);
console.log(`writer, curated rows as cells: ${us(cellsMs)} CPU µs/row; as event texts: ${us(textsMs)} CPU µs/row; ratio texts/cells ${(textsMs / cellsMs).toFixed(2)}`);
console.log(`writer, curated rows packed (packing included): ${us(packedMs)} CPU µs/row; ratio packed/texts ${(packedMs / textsMs).toFixed(2)}`);
console.log(`writer, raw rows as cells: ${us(rawCellsMs)} CPU µs/row; packed (packing included): ${us(rawPackedMs)} CPU µs/row; ratio packed/cells ${(rawPackedMs / rawCellsMs).toFixed(2)}`);

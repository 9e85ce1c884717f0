// Benchmark (not a test): the raw zone's rows into Parquet, the ways there are to hand them to DuckDB, side
// by side in one run, CPU µs per row of the process (DuckDB's threads included) and bytes per row:
//   packed    as the sink does it: each record packed straight into column chunks (packRawRecord), then one
//             COPY whose SELECT splits the chunks back (lake/packed.ts)
//   appender  each value appended through DuckDB's appender into a table, then COPY from it
//   text      the rows as US-delimited lines in /dev/shm, read by read_csv in the COPY
//   floor     COPY from a DuckDB table holding the rows already: what encoding and compression cost alone
// and the floor again per codec (file size per row beside it).
//   node test/bench/raw-zone.ts [--rows 50000] [--rounds 3]
import { writeFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { EVENT_KINDS, kafkaTopicSet, recordHeaders } from '@city/protocol';
import { createParquetWriter, createRecordReader, packRawRecord, rawRowPack, tableSchema, type KafkaRecord, type RawRecord } from '@city/cloud';
import { sampleEvent } from '../support/lake.ts';

const { values } = parseArgs({ options: { rows: { type: 'string' }, rounds: { type: 'string' } } });
const N = Number(values.rows ?? 50_000);
const ROUNDS = Number(values.rounds ?? 3);
const topics = kafkaTopicSet('rawbench');
const HOUR = Date.UTC(2026, 10, 29, 6);
const read = createRecordReader(topics, true, undefined, { eventTexts: true });
// Records as a consumer hands them out, read as the intake reads them (the reading is not timed).
const raws: RawRecord[] = [];
for (let i = 0; i < N; i++) {
  const kind = EVENT_KINDS[i % EVENT_KINDS.length] as (typeof EVENT_KINDS)[number];
  const event = sampleEvent(kind, i, { idPrefix: 'rawbench', dateObserved: HOUR + (i % 3600) * 1000 });
  const headers = recordHeaders({ gatewayId: 'gw-bench', receivedAt: HOUR + 3_600_000 + i, eventId: event.eventId });
  const record: KafkaRecord = {
    key: Buffer.from(event.deviceId),
    value: Buffer.from(JSON.stringify(event)),
    timestamp: String(HOUR + 3_600_000 + i),
    offset: String(i),
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
  };
  const raw = read(topics.events[kind], 0, record).raw;
  if (raw === undefined) throw new Error('no raw row');
  raws.push(raw);
}
const schema = tableSchema('raw_weather');
const dir = `/tmp/raw-zone-bench-${process.pid}`;
const writer = await createParquetWriter();
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const perRow = (ms: number) => (ms * 1000) / N;
const sizePerRow = async (path: string) => Number((await c.runAndReadAll(`SELECT sum(total_compressed_size) FROM parquet_metadata('${path}')`)).getRows()[0]?.[0]) / N;
/** The raw table's SELECT list over columns named as RAW_COLUMNS but with times as epoch ms and the payload maybe a BLOB. */
const select = (payload: string) =>
  `kafka_topic, kafka_partition::BIGINT AS kafka_partition, kafka_offset::BIGINT AS kafka_offset, make_timestamp(kafka_timestamp::BIGINT * 1000) AS kafka_timestamp, record_key, headers, ${payload} AS payload, payload_encoding, event_id, gateway_id, make_timestamp(received_at::BIGINT * 1000) AS received_at, valid::BOOLEAN AS valid`;
const COLUMNS = schema.columns.map((col) => col.name);

async function packed(path: string): Promise<{ packUs: number; us: number }> {
  const t = cpuMs();
  const rows = rawRowPack();
  for (const raw of raws) packRawRecord(rows, raw);
  const packMs = cpuMs() - t;
  await writer.write(schema, { packed: rows }, path);
  rows.release();
  return { packUs: perRow(packMs), us: perRow(cpuMs() - t) };
}

async function appender(path: string): Promise<{ appendUs: number; us: number }> {
  const t = cpuMs();
  await c.run(`CREATE OR REPLACE TABLE appended (kafka_topic VARCHAR, kafka_partition BIGINT, kafka_offset BIGINT, kafka_timestamp BIGINT, record_key VARCHAR, headers VARCHAR, payload BLOB, payload_encoding VARCHAR, event_id VARCHAR, gateway_id VARCHAR, received_at BIGINT, valid BOOLEAN)`);
  const app = await c.createAppender('appended');
  for (const { topic, kafkaPartition, record, read: parts } of raws) {
    app.appendVarchar(topic);
    app.appendBigInt(BigInt(kafkaPartition));
    app.appendBigInt(BigInt(record.offset));
    app.appendBigInt(BigInt(record.timestamp));
    app.appendVarchar(parts.deviceId ?? '');
    app.appendVarchar(JSON.stringify(parts.headers));
    app.appendBlob(record.value ?? Buffer.alloc(0));
    app.appendVarchar('utf8');
    app.appendVarchar(parts.meta.eventId ?? '');
    app.appendVarchar(parts.meta.gatewayId ?? '');
    app.appendBigInt(BigInt(parts.meta.receivedAt ?? 0));
    app.appendBoolean(true);
    app.endRow();
  }
  app.flushSync();
  app.closeSync();
  const appendMs = cpuMs() - t;
  await c.run(`COPY (SELECT ${select('decode(payload)')} FROM appended) TO '${path}' (FORMAT parquet, COMPRESSION snappy)`);
  return { appendUs: perRow(appendMs), us: perRow(cpuMs() - t) };
}

/** The floor's source: the rows as the packed file holds them, in a DuckDB table. */
await packed(`${dir}-source.parquet`);
await c.run(`CREATE TABLE materialized AS FROM '${dir}-source.parquet'`);
// The text way's file, made once (untimed: JavaScript would write it as it packs now).
const lines = (await c.runAndReadAll(`SELECT ${COLUMNS.map((n) => (n.endsWith('timestamp') || n === 'received_at' ? `epoch_ms(${n})` : n)).join(', ')} FROM materialized`)).getRows();
const text = Buffer.from(lines.map((r) => r.map((v) => String(v)).join('\x1f')).join('\n') + '\n');
for (const r of lines) if (r.some((v) => /[\x1f\n]/.test(String(v)))) throw new Error('a value holds US or a newline: the text way would need escapes');

async function viaText(path: string): Promise<number> {
  const t = cpuMs();
  writeFileSync(`/dev/shm/raw-zone-bench-${process.pid}.txt`, text);
  const columns = `{${COLUMNS.map((n) => `'${n}': 'VARCHAR'`).join(', ')}}`;
  await c.run(
    `COPY (SELECT ${select('payload')} FROM read_csv('/dev/shm/raw-zone-bench-${process.pid}.txt', delim = chr(31), quote = '', escape = '', header = false, auto_detect = false, columns = ${columns})) TO '${path}' (FORMAT parquet, COMPRESSION snappy)`,
  );
  return perRow(cpuMs() - t);
}

async function floor(path: string, codec: string): Promise<number> {
  const t = cpuMs();
  await c.run(`COPY materialized TO '${path}' (FORMAT parquet, ${codec})`);
  return perRow(cpuMs() - t);
}

const CODECS: Record<string, string> = { snappy: 'COMPRESSION snappy', uncompressed: 'COMPRESSION uncompressed', 'zstd level 1': 'COMPRESSION zstd, COMPRESSION_LEVEL 1', zstd: 'COMPRESSION zstd', lz4: 'COMPRESSION lz4_raw' };
const fmt = (x: number) => x.toFixed(2).padStart(6);
console.log(`raw zone, ${N} rows of ${EVENT_KINDS.length} kinds (${Math.round(raws.reduce((a, r) => a + (r.record.value?.length ?? 0), 0) / N)} B payload each); CPU µs per row, ${ROUNDS} rounds`);
for (let round = 1; round <= ROUNDS; round++) {
  const p = await packed(`${dir}-packed.parquet`);
  const a = await appender(`${dir}-appender.parquet`);
  const tx = await viaText(`${dir}-text.parquet`);
  const fl = await floor(`${dir}-floor.parquet`, CODECS.snappy as string);
  const same = (await c.runAndReadAll(`SELECT count(*) FROM (FROM '${dir}-appender.parquet' EXCEPT ALL FROM '${dir}-packed.parquet')`)).getRows()[0]?.[0];
  if (Number(same) !== 0) throw new Error('the appender way wrote other rows than the packed way');
  console.log(`round ${round}: packed ${fmt(p.us)} (packing ${fmt(p.packUs)}) | appender ${fmt(a.us)} (appending ${fmt(a.appendUs)}) | text ${fmt(tx)} | floor ${fmt(fl)} | packed/floor ${(p.us / fl).toFixed(2)}`);
}
const codecs: string[] = [];
for (const [name, options] of Object.entries(CODECS)) {
  const path = `${dir}-${name.replace(/ /g, '-')}.parquet`;
  const us = Math.min(await floor(path, options), await floor(path, options));
  codecs.push(`${name} ${us.toFixed(2)} µs ${Math.round(await sizePerRow(path))} B`);
}
console.log(`floor per codec (best of 2, file bytes per row): ${codecs.join(' | ')}`);
writer.close();
rmSync(`/dev/shm/raw-zone-bench-${process.pid}.txt`, { force: true });
for (const way of ['source', 'packed', 'appender', 'text', 'floor', ...Object.keys(CODECS).map((n) => n.replace(/ /g, '-'))]) rmSync(`${dir}-${way}.parquet`, { force: true });

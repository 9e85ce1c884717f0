// Benchmark (a script, not a test): the same rows of a real event table written as Parquet with
// parquetjs-lite (the package chosen first) and with the DuckDB path the sink uses, both read back with
// DuckDB to check the row counts. Prints rows/s for each and the ratio.
//
//   node test/bench/parquet-writers.ts [--rows 200000] [--kind vehicle] [--repeat 3]
import { createRequire } from 'node:module';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { eventRow, eventTable, isEventKind, type CellValue, type ColumnType, type EventKind, type TableSchema } from '@city/protocol';
import { createLakeWriter, createLocalFolderStore, createParquetWriter } from '@city/cloud';
import { sampleEvent } from '../support/lake.ts';

// parquetjs-lite ships no types: describe the part used here.
interface ParquetJsWriter {
  appendRow(row: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}
interface ParquetJs {
  ParquetSchema: new (fields: Record<string, { type: string; optional?: boolean; compression?: string }>) => object;
  ParquetWriter: { openFile(schema: object, path: string): Promise<ParquetJsWriter> };
}
const parquetjs = createRequire(import.meta.url)('parquetjs-lite') as ParquetJs;

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '200000' }, kind: { type: 'string', default: 'vehicle' }, repeat: { type: 'string', default: '3' } },
});
const rowCount = Number(values.rows);
const repeat = Number(values.repeat);
const kind = values.kind;
if (!Number.isSafeInteger(rowCount) || rowCount < 1) throw new Error('--rows must be a positive integer');
if (!Number.isSafeInteger(repeat) || repeat < 1) throw new Error('--repeat must be a positive integer');
if (!isEventKind(kind)) throw new Error(`--kind must be an event kind, got ${kind}`);

const PARQUETJS_TYPES: { [T in ColumnType]: string } = {
  string: 'UTF8',
  int64: 'INT64',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMP_MILLIS',
};

function parquetjsSchema(table: TableSchema): object {
  return new parquetjs.ParquetSchema(
    Object.fromEntries(table.columns.map((c) => [c.name, { type: PARQUETJS_TYPES[c.type], optional: true, compression: 'SNAPPY' }])),
  );
}

async function writeParquetjs(table: TableSchema, objects: Record<string, unknown>[], path: string): Promise<void> {
  const writer = await parquetjs.ParquetWriter.openFile(parquetjsSchema(table), path);
  for (const row of objects) await writer.appendRow(row);
  await writer.close();
}

async function main(): Promise<void> {
  const table = eventTable(kind as EventKind);
  const meta = { gatewayId: 'gw-bench', receivedAt: Date.UTC(2024, 4, 1) };
  const rows: CellValue[][] = Array.from({ length: rowCount }, (_, i) => eventRow(kind as EventKind, sampleEvent(kind as EventKind, i), meta));
  // parquetjs-lite wants objects; building them is left out of its timing to keep the comparison conservative.
  const objects = rows.map((row) => {
    const object: Record<string, unknown> = {};
    table.columns.forEach((c, i) => {
      const v = row[i];
      if (v !== null && v !== undefined) object[c.name] = v;
    });
    return object;
  });

  const dir = await mkdtemp(join(tmpdir(), 'bench-parquet-'));
  const duck = await createParquetWriter();
  const lake = await createLakeWriter(createLocalFolderStore(join(dir, 'lake')));
  const reader = await DuckDBInstance.create(':memory:');
  const db = await reader.connect();
  try {
    const candidates: { name: string; write: (path: string, run: number) => Promise<string> }[] = [
      { name: 'parquetjs-lite 0.8.7', write: async (path) => (await writeParquetjs(table, objects, path), path) },
      { name: 'DuckDB writer (sink path)', write: async (path) => (await duck.write(table, rows, path), path) },
      {
        name: 'DuckDB lake writer (+fsync, rename)',
        write: async (_path, run) =>
          lake.store.locate(
            await lake.write({
              table: kind as EventKind,
              partition: { event_date: '2024-05-01', event_hour: 0 },
              topic: 'bench',
              kafkaPartition: 0,
              firstOffset: BigInt(run * rows.length),
              lastOffset: BigInt((run + 1) * rows.length - 1),
              rows,
            }),
          ),
      },
    ];

    // Warm up each path (JIT, DuckDB init) on a small file first.
    const warm = rows.slice(0, 2_000);
    await writeParquetjs(table, objects.slice(0, 2_000), join(dir, 'warm-a.parquet'));
    await duck.write(table, warm, join(dir, 'warm-b.parquet'));

    console.log(`${rowCount} rows of table "${table.name}" (${table.columns.length} columns), Snappy, best of ${repeat}; node ${process.version}`);
    const results: { name: string; ms: number; bytes: number }[] = [];
    for (const candidate of candidates) {
      let best = Infinity;
      let bytes = 0;
      for (let r = 0; r < repeat; r++) {
        const started = performance.now();
        const path = await candidate.write(join(dir, `${results.length}-${r}.parquet`), r);
        const ms = performance.now() - started;
        const back = (await db.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM read_parquet('${path}')`)).getRowObjects()[0];
        if (Number(back?.n) !== rowCount || Number(back?.ids) !== rowCount) {
          throw new Error(`${candidate.name}: read back ${String(back?.n)} rows, ${String(back?.ids)} ids; expected ${rowCount}`);
        }
        bytes = (await stat(path)).size;
        best = Math.min(best, ms);
      }
      results.push({ name: candidate.name, ms: best, bytes });
      console.log(
        `${candidate.name.padEnd(38)} ${best.toFixed(0).padStart(7)} ms  ${Math.round(rowCount / (best / 1000)).toLocaleString('en-US').padStart(12)} rows/s  ${(bytes / 1e6).toFixed(1).padStart(6)} MB  (read back: ${rowCount} rows ✓)`,
      );
    }
    const reference = results[0] as { ms: number };
    for (const result of results.slice(1)) console.log(`ratio ${result.name} vs parquetjs-lite: ${(reference.ms / result.ms).toFixed(1)}× faster`);
  } finally {
    db.closeSync();
    reader.closeSync();
    duck.close();
    await lake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();

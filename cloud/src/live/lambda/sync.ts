// One run of the warehouse → Power BI sync: per source table (alerts first, then KPI windows), read the
// rows newer than the table's watermark, push them through the live output, and advance the watermark
// only when the output reports every row accepted. A failed push leaves the watermark where it was, so
// the next run sends the same rows again (at least once: a push that half succeeded repeats its rows).
import type { Log } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import type { LakeValue } from '../../ports/query/port.ts';
import type { Warehouse } from '../../warehouse/port.ts';
import { qualified, quoteLiteral } from '../../warehouse/schema.ts';
import { outputTables, type LiveOutput, type OutputRow } from '../output.ts';
import { ALERTS, ALERTS_TABLE, KPI_WINDOWS, POWERBI_WATERMARK } from './tables.ts';

export interface SyncOptions {
  warehouse: Warehouse;
  /** Started; the caller closes it. */
  output: LiveOutput & { lastError?(): string | undefined };
  /** Rows read per source table per run, at most (the rest waits for the next run). */
  maxRows: number;
  /** Resolves when the run must stop waiting for the output (the Lambda's remaining time). */
  deadline?: Promise<void> | undefined;
  log?: Log | undefined;
}

export interface TableSync {
  source: string;
  /** Rows read from the warehouse newer than the watermark. */
  read: number;
  /** Rows handed to the output (KPI rows of an unknown KPI are skipped and counted in read only). */
  pushed: number;
  watermarkBefore: string | null;
  watermarkAfter: string | null;
}

const EPOCH = '1970-01-01T00:00:00.000Z';
const OUTPUT_COLUMNS = new Map(outputTables().map((t) => [t.name, new Set(t.columns.map((c) => c.name))]));

const ts = (iso: string) => `CAST(${quoteLiteral(iso)} AS TIMESTAMPTZ)`;

function scalar(v: LakeValue | undefined): string | number | boolean | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}

async function readWatermark(w: Warehouse, source: string): Promise<string | null> {
  const r = await w.query(`SELECT watermark FROM ${qualified(w.schema, POWERBI_WATERMARK)} WHERE source_table = ${quoteLiteral(source)}`);
  const v = r.rows[0]?.['watermark'];
  return typeof v === 'string' ? v : null;
}

async function writeWatermark(w: Warehouse, source: string, watermark: string, rows: number): Promise<void> {
  const table = qualified(w.schema, POWERBI_WATERMARK);
  // DELETE + INSERT in one transaction: the same text on Redshift and PostgreSQL.
  await w.transaction([
    { sql: `DELETE FROM ${table} WHERE source_table = ${quoteLiteral(source)}` },
    {
      sql:
        `INSERT INTO ${table} (source_table, watermark, rows_pushed, updated_at) VALUES (${quoteLiteral(source)}, ${ts(watermark)}, ` +
        `${rows}, ${ts(new Date().toISOString())})`,
    },
  ]);
}

/** Rows newer than the watermark, oldest first; a page never ends inside a run of rows with equal emitted_at. */
async function readNewer(w: Warehouse, source: string, columns: readonly string[], after: string | null, maxRows: number): Promise<Record<string, LakeValue>[]> {
  const sql =
    `SELECT ${columns.join(', ')} FROM ${qualified(w.schema, source)} WHERE emitted_at > ${ts(after ?? EPOCH)} ` +
    `ORDER BY emitted_at LIMIT ${maxRows + 1}`;
  const rows = (await w.query(sql)).rows;
  if (rows.length <= maxRows) return rows;
  // One more than asked: the rows sharing the last emitted_at may continue past the page, so they wait
  // for the next run (the watermark moves past a timestamp only once all of its rows went).
  const page = rows.slice(0, maxRows);
  const last = page[page.length - 1]?.['emitted_at'];
  if (rows[maxRows]?.['emitted_at'] !== last) return page;
  const cut = page.findIndex((r) => r['emitted_at'] === last);
  if (cut > 0) return page.slice(0, cut);
  // The whole page shares one emitted_at: all of its rows go together, however many.
  return (await w.query(`SELECT ${columns.join(', ')} FROM ${qualified(w.schema, source)} WHERE emitted_at = ${ts(String(last))}`)).rows;
}

/** Power BI rows per table for KPI window rows (the KPI's own table; figures from values_json). */
function kpiRows(rows: readonly Record<string, LakeValue>[], log: Log): Map<string, OutputRow[]> {
  const out = new Map<string, OutputRow[]>();
  for (const r of rows) {
    const kpi = String(r['kpi']);
    const columns = OUTPUT_COLUMNS.get(kpi);
    if (columns === undefined || kpi === ALERTS) {
      log('warn', 'powerbi lambda: skipping a KPI window of a KPI the dataset has no table for', { kpi });
      continue;
    }
    let values: Record<string, unknown> = {};
    try {
      values = JSON.parse(String(r['values_json'] ?? '{}')) as Record<string, unknown>;
    } catch (err) {
      log('warn', 'powerbi lambda: values_json is not JSON; the window goes without figures', { kpi, key: r['key'], error: errorMessage(err) });
    }
    const row: OutputRow = { window_start: scalar(r['window_start']), window_end: scalar(r['window_end']), key: scalar(r['key']), final: scalar(r['final']), emitted_at: scalar(r['emitted_at']) };
    for (const [name, v] of Object.entries(values)) {
      if (columns.has(name) && (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')) row[name] = v;
    }
    const list = out.get(kpi) ?? [];
    list.push(row);
    out.set(kpi, list);
  }
  return out;
}

function alertRows(rows: readonly Record<string, LakeValue>[]): Map<string, OutputRow[]> {
  const columns = OUTPUT_COLUMNS.get(ALERTS) ?? new Set<string>();
  return new Map([[ALERTS, rows.map((r) => Object.fromEntries([...columns].map((c) => [c, scalar(r[c])])) as OutputRow)]]);
}

/** Waits for the output to send everything queued; fails unless every row was accepted. */
async function pushAll(output: SyncOptions['output'], tables: Map<string, OutputRow[]>, deadline: Promise<void> | undefined): Promise<number> {
  const before = output.stats();
  let n = 0;
  for (const [table, rows] of tables) {
    output.write(table, rows);
    n += rows.length;
  }
  if (n === 0) return 0;
  const flushed = output.flush().then(() => true);
  const inTime = deadline === undefined ? await flushed : await Promise.race([flushed, deadline.then(() => false)]);
  const after = output.stats();
  const failed = after.failed - before.failed;
  if (!inTime || after.queued > 0) throw cloudErrors.create('CLD_POWERBI_UNAVAILABLE', `${after.queued} of ${n} rows still unsent when the run had to end`);
  if (failed > 0) {
    const reason = output.lastError?.() ?? '';
    throw cloudErrors.create('CLD_POWERBI_UNAVAILABLE', `Power BI did not accept ${failed} of ${n} rows${reason === '' ? '' : `: ${reason}`}`);
  }
  return n;
}

const KPI_COLUMNS = ['kpi', 'key', 'window_start', 'window_end', 'revision', 'final', 'emitted_at', 'values_json'];

export async function syncWarehouseToPowerBi(o: SyncOptions): Promise<TableSync[]> {
  const log = o.log ?? (() => undefined);
  const results: TableSync[] = [];
  const sources: [string, readonly string[], (rows: readonly Record<string, LakeValue>[]) => Map<string, OutputRow[]>][] = [
    [ALERTS, ALERTS_TABLE.columns.map((c) => c.name), alertRows],
    [KPI_WINDOWS, KPI_COLUMNS, (rows) => kpiRows(rows, log)],
  ];
  for (const [source, columns, toRows] of sources) {
    const before = await readWatermark(o.warehouse, source);
    const rows = await readNewer(o.warehouse, source, columns, before, o.maxRows);
    const result: TableSync = { source, read: rows.length, pushed: 0, watermarkBefore: before, watermarkAfter: before };
    if (rows.length > 0) {
      result.pushed = await pushAll(o.output, toRows(rows), o.deadline);
      const newest = String(rows[rows.length - 1]?.['emitted_at']);
      await writeWatermark(o.warehouse, source, newest, result.pushed);
      result.watermarkAfter = newest;
    }
    log('info', 'powerbi lambda: table synced', { ...result });
    results.push(result);
  }
  return results;
}

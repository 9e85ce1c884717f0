// Lake and warehouse freshness for the health panel. The lake's: the age of the newest curated file,
// found by walking only the newest partition of each table (curated/kind=K/event_date=D/event_hour=H/),
// so the cost does not grow with the lake. The warehouse's: its load ledger's latest load, one
// aggregate over the ledger (what the loader records in the same transaction as the rows).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Warehouse } from '../warehouse/port.ts';
import { LEDGER_TABLE, qualified } from '../warehouse/schema.ts';

async function dirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

const newest = (names: string[], prefix: string, numeric: boolean) =>
  names
    .filter((n) => n.startsWith(prefix))
    .sort((a, b) => (numeric ? Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)) : a < b ? -1 : a > b ? 1 : 0))
    .at(-1);

/** Modification time (epoch ms) of the newest file of the curated zone, or undefined when there is none. */
export async function newestLakeFile(lakeDir: string): Promise<number | undefined> {
  const curated = join(lakeDir, 'curated');
  let best: number | undefined;
  for (const table of await dirs(curated)) {
    const date = newest(await dirs(join(curated, table)), 'event_date=', false);
    if (date === undefined) continue;
    const hour = newest(await dirs(join(curated, table, date)), 'event_hour=', true);
    if (hour === undefined) continue;
    const partition = join(curated, table, date, hour);
    let files: string[] = [];
    try {
      files = await readdir(partition);
    } catch {
      continue;
    }
    for (const f of files) {
      const info = await stat(join(partition, f)).catch(() => undefined);
      if (info?.isFile() === true && (best === undefined || info.mtimeMs > best)) best = info.mtimeMs;
    }
  }
  return best;
}

/** When (epoch ms) the warehouse's ledger last recorded a load, or undefined when it recorded none. */
export async function latestWarehouseLoad(warehouse: Warehouse): Promise<number | undefined> {
  const result = await warehouse.query(`SELECT max(loaded_at) AS last_load FROM ${qualified(warehouse.schema, LEDGER_TABLE)}`);
  const v = result.rows[0]?.['last_load'];
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v.includes('T') || v.endsWith('Z') ? v : `${v.replace(' ', 'T')}Z`) : v instanceof Date ? v.getTime() : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** The health panel's warehouse figures: age of the latest load, and how far it trails the lake's newest file. */
export function warehouseFreshness(now: number, lastLoad: number | undefined, lakeNewest: number | undefined): { freshnessS: number | null; behindLakeS: number | null } {
  if (lastLoad === undefined) return { freshnessS: null, behindLakeS: null };
  return {
    freshnessS: Math.max(0, Math.round((now - lastLoad) / 1000)),
    behindLakeS: lakeNewest === undefined ? null : Math.max(0, Math.round((lakeNewest - lastLoad) / 1000)),
  };
}

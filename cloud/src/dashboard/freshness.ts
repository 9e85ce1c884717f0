// Lake freshness for the health panel: the age of the newest curated file, found by walking only the
// newest partition of each table (curated/kind=K/event_date=D/event_hour=H/), so the cost does not grow
// with the lake.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

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

// Compaction by version, killed with SIGKILL at several points while a sink-like writer keeps appending
// to the same partition and readers read it the way Athena or Spark would: through the catalog only,
// every file directly in the registered location, with no knowledge of our file names. Never a
// duplicate, never a gap (every append finished before a read began is in it, no append is partial),
// and a rerun finishes the job. Heavy: many processes killed.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { partitionOf, sleep } from '@city/protocol';
import { spawnCli } from '../../../test/support/cli.ts';
import { lakeFolder, rowsOf, sampleEvent, writeSinkLikeLake } from '../../../test/support/lake.ts';
import { createLocalCatalog } from '../ports/catalog/index.ts';
import { openLake } from '../ports/query/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { partitionPrefix, tablePrefix, type LakePartition } from './layout.ts';
import { filesAt, retiredOf } from './versions.ts';
import { createLakeWriter } from './writer.ts';

const CLI = join(import.meta.dirname, '../cli/main.ts');
const HOUR: LakePartition = partitionOf(Date.UTC(2024, 4, 1, 0, 30));
const root = lakeFolder('compaction-catalog-kill-');
const APPEND_ROWS = 40;

interface View {
  rows: number;
  ids: number;
  /** Id prefixes present: 'c' (the initial files) and a<k> per appended file. */
  prefixes: Set<string>;
  base: number;
}

/** Reads the partition as an engine that lists the catalog's location would. A file gone meanwhile: list again. */
async function throughCatalog(dir: string): Promise<View> {
  const catalog = createLocalCatalog(dir);
  const store = createLocalFolderStore(dir);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      const [p] = await catalog.partitions('vehicle');
      const files = (await filesAt(store, p?.location ?? '')).map((k) => store.locate(k));
      try {
        const src = `read_parquet([${files.map(quotedString).join(', ')}])`;
        const rows = (await c.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT event_id) AS d, count(*) FILTER (WHERE event_id LIKE 'c-%') AS b FROM ${src}`)).getRowObjects()[0];
        const prefixes = (await c.runAndReadAll(`SELECT DISTINCT split_part(event_id, '-', 1) AS p FROM ${src}`)).getRows().map((r) => String(r[0]));
        return { rows: Number(rows?.n), ids: Number(rows?.d), base: Number(rows?.b), prefixes: new Set(prefixes) };
      } catch (err) {
        if (attempt >= 20 || !/No files found|No such file|Could not open|Cannot open|does not exist/i.test(String(err))) throw err;
      }
    }
  } finally {
    c.closeSync();
    db.closeSync();
    await store.close();
    await catalog.close();
  }
}

describe('compaction by version (CLI), killed with SIGKILL while a writer appends', () => {
  it('never shows a catalog reader a duplicate or a gap, and a rerun finishes the job', { timeout: 300_000 }, async () => {
    const dir = join(root, 'kill');
    const total = await writeSinkLikeLake(dir, [
      { partition: HOUR, kafkaPartition: 0, files: 12, rowsPerFile: 200 },
      { partition: HOUR, kafkaPartition: 1, files: 6, rowsPerFile: 200 },
    ]);
    // Registered as the sink registers it: the base folder.
    const catalog = createLocalCatalog(dir);
    await catalog.ensureTable({ name: 'vehicle', columns: [], partitionKeys: [{ name: 'event_date', type: 'string', nullable: false, source: [] }, { name: 'event_hour', type: 'int64', nullable: false, source: [] }], location: tablePrefix('vehicle') });
    await catalog.addPartitions('vehicle', [{ values: [HOUR.event_date, String(HOUR.event_hour)], location: partitionPrefix('vehicle', HOUR) }]);

    // The appender: a lake writer that follows the catalog, one file after another on Kafka partition 2.
    const writer = await createLakeWriter(createLocalFolderStore(dir), undefined, { catalog });
    let appended = 0;
    let stop = false;
    const appending = (async () => {
      for (let k = 0; !stop; k++) {
        const events = Array.from({ length: APPEND_ROWS }, (_, i) => sampleEvent('vehicle', i, { idPrefix: `a${k}`, dateObserved: Date.UTC(2024, 4, 1, 0, 40) }));
        const first = 100_000n + BigInt(k * APPEND_ROWS);
        await writer.write({ table: 'vehicle', partition: HOUR, topic: 'city.vehicle.v1', kafkaPartition: 2, firstOffset: first, lastOffset: first + BigInt(APPEND_ROWS - 1), rows: rowsOf('vehicle', events) });
        appended = k + 1;
        await sleep(30);
      }
    })();

    const problems: string[] = [];
    let looks = 0;
    const look = async (when: string) => {
      const done = appended;
      const v = await throughCatalog(dir);
      looks++;
      const appends = [...v.prefixes].filter((p) => p.startsWith('a')).length;
      if (v.rows !== v.ids) problems.push(`${when}: ${v.rows - v.ids} duplicate rows`);
      if (v.base !== total) problems.push(`${when}: ${v.base} of ${total} initial rows`);
      if (v.rows !== total + appends * APPEND_ROWS) problems.push(`${when}: a partial append (${v.rows} rows, ${appends} appends)`);
      for (let k = 0; k < done; k++) if (!v.prefixes.has(`a${k}`)) problems.push(`${when}: append a${k} finished before the read is missing`);
    };

    const runCompact = async (killAfter: number | undefined, graceMs: number): Promise<string[]> => {
      const run = spawnCli(CLI, ['compact', '--lake', dir, '--catalog', 'local', '--sealed', '--target-bytes', '40000', '--grace-ms', String(graceMs)]);
      const lines: string[] = [];
      if (killAfter === 0) run.signal('SIGKILL');
      for await (const line of createInterface({ input: run.child.stdout! })) {
        lines.push(line);
        if (killAfter !== undefined && lines.length >= killAfter) {
          run.signal('SIGKILL');
          break;
        }
        await look(`after "${line.slice(0, 60)}"`);
      }
      const result = await run.exited;
      if (killAfter === undefined && result.code !== 0) throw new Error(`compact exited ${result.code}: ${result.stderr}`);
      return lines;
    };

    await look('start');
    const killedAt: string[] = [];
    for (const [killAfter, grace] of [[0, 600_000], [1, 600_000], [3, 0], [6, 600_000], [2, 0], [10, 0]] as const) {
      const lines = await runCompact(killAfter, grace);
      killedAt.push(`${killAfter}:${lines.at(-1) ?? '-'}`);
      await look(`after kill at ${killAfter}`);
    }
    const final = await runCompact(undefined, 0);
    expect(final.at(-1)).toMatch(/^compacted \d+ partitions/);
    stop = true;
    await appending;
    await writer.close();
    // Again with the writer stopped: carries over the last appends; a run with nothing left to merge
    // deletes every retired location.
    for (let i = 0; i < 4 && (await catalog.partitions('vehicle')).some((q) => retiredOf(q).length > 0); i++) await runCompact(undefined, 0);
    await look('end');
    expect(problems, killedAt.join(' | ')).toEqual([]);
    expect(looks).toBeGreaterThan(10);

    const [p] = await catalog.partitions('vehicle');
    expect(p?.location).toMatch(/_v\//);
    expect(retiredOf(p)).toEqual([]);
    const v = await throughCatalog(dir);
    expect(v).toMatchObject({ rows: total + appended * APPEND_ROWS, ids: total + appended * APPEND_ROWS });
    // Our own views agree, and the base folder's files are gone.
    const lake = await openLake(dir);
    try {
      expect((await lake.query('SELECT count(*) AS n FROM vehicle')).rows[0]?.n).toBe(v.rows);
    } finally {
      lake.close();
    }
    const store = createLocalFolderStore(dir);
    expect(await filesAt(store, partitionPrefix('vehicle', HOUR))).toEqual([]);
    await store.close();
    await catalog.close();
  });
});

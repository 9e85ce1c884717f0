// Compaction by the CLI killed with SIGKILL at several points while readers query the lake: no reader
// ever sees a duplicate or a gap, and a rerun finishes the job. Heavy: many processes killed.
import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { partitionOf } from '@city/protocol';
import { spawnCli } from '../../../test/support/cli.ts';
import { lakeFolder, writeSinkLikeLake } from '../../../test/support/lake.ts';
import { queryLake } from '../ports/query/index.ts';
import type { LakePartition } from './layout.ts';
import { liveFiles } from './reader.ts';

const CLI = join(import.meta.dirname, '../cli/main.ts');
const HOUR: LakePartition = partitionOf(Date.UTC(2024, 4, 1, 0, 30));
const OTHER_HOUR: LakePartition = partitionOf(Date.UTC(2024, 4, 1, 1, 30));
const root = lakeFolder('compaction-kill-');
const buildLake = writeSinkLikeLake;

/** What a reader sees through the lake's SQL views (which read only live files): rows and distinct ids of vehicle. */
async function readerView(dir: string): Promise<{ rows: number; ids: number }> {
  const { rows } = await queryLake(dir, 'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM vehicle');
  return { rows: Number(rows[0]?.n), ids: Number(rows[0]?.d) };
}

async function parquetFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'curated'), { recursive: true }).catch(() => []);
  return entries.filter((e) => e.endsWith('.parquet')).sort();
}

describe('sink compact (CLI), killed with SIGKILL', () => {
  /** Runs the CLI; kills it with SIGKILL once it printed `killAfter` progress lines (never, if undefined). */
  async function runCompact(dir: string, killAfter: number | undefined, onLine: () => Promise<void>): Promise<{ lines: string[]; signal: NodeJS.Signals | null; code: number | null }> {
    const run = spawnCli(CLI, ['compact', '--lake', dir, '--target-bytes', '60000', '--sealed']);
    const lines: string[] = [];
    if (killAfter === 0) run.signal('SIGKILL');
    for await (const line of createInterface({ input: run.child.stdout! })) {
      lines.push(line);
      if (killAfter !== undefined && lines.length >= killAfter) {
        run.signal('SIGKILL');
        break;
      }
      // Readers look while the compactor runs.
      await onLine();
    }
    const result = await run.exited;
    if (killAfter === undefined && result.code !== 0) throw new Error(`compact exited ${result.code}: ${result.stderr}`);
    return { lines, signal: result.signal, code: result.code };
  }

  it('never shows a reader a duplicate or a gap, and a rerun finishes the job', { timeout: 180_000 }, async () => {
    const dir = join(root, 'kill');
    const total = await buildLake(dir, [
      { partition: HOUR, kafkaPartition: 0, files: 12, rowsPerFile: 300 },
      { partition: HOUR, kafkaPartition: 1, files: 6, rowsPerFile: 300 },
      { partition: OTHER_HOUR, kafkaPartition: 0, files: 6, rowsPerFile: 300 },
    ]);
    const exact = { rows: total, ids: total };
    const views: { rows: number; ids: number }[] = [];
    const look = async () => {
      views.push(await readerView(dir));
    };
    await look();
    // Kill points: at once, after the first merge, after a merge and a deletion, a few steps later.
    const killedAt: string[] = [];
    for (const killAfter of [0, 1, 2, 4, 7]) {
      const run = await runCompact(dir, killAfter, look);
      killedAt.push(`${killAfter}:${run.signal ?? run.code}:${run.lines.at(-1) ?? '-'}`);
      await look();
    }
    const final = await runCompact(dir, undefined, look);
    expect(final.lines.at(-1)).toMatch(/^compacted \d+ partitions/);
    await look();
    expect(views.length).toBeGreaterThan(8);
    for (const v of views) expect(v, killedAt.join(' | ')).toEqual(exact);
    // Done: nothing superseded is left, and a further run has nothing to do.
    const keys = (await parquetFiles(dir)).map((f) => `curated/${f}`);
    expect(liveFiles(keys)).toEqual(keys);
    expect(keys.length).toBeLessThan(24);
    const idle = await runCompact(dir, undefined, async () => undefined);
    expect(idle.lines.at(-1)).toMatch(/0 files written, 0 superseded files deleted/);
  });
});

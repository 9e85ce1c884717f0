// The loader (`sink warehouse load` on PostgreSQL) killed with SIGKILL mid-batch, again and again, while
// the lake keeps growing and is compacted in between: at the end every table holds each event once —
// warehouse rows = count(DISTINCT event_id) = the lake's distinct events — and the ledger matches.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_KINDS, type EventKind } from '@city/protocol';
import { runCli, spawnCli } from '../../../test/support/cli.ts';
import { lakeCounts } from '../../../test/support/lake.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { TEST_POSTGRES_URL, testSchema, writeCityLake } from '../../../test/support/warehouse.ts';
import { compactLake } from '../lake/compaction.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { createPostgresWarehouse } from './postgres.ts';

const CLI = join(import.meta.dirname, '../cli/main.ts');
const KINDS: readonly EventKind[] = ['vehicle', 'weather', 'phone'];
const KILLS = 4;

describe('warehouse loader killed with SIGKILL', () => {
  it(`loads each event exactly once after ${KILLS} kills mid-batch, with the lake growing and compacted between them`, async () => {
    const lake = tempDir('wh-kill-');
    const schema = testSchema('whkill');
    const flags = ['--lake', lake, '--warehouse', 'postgres', '--postgres-url', TEST_POSTGRES_URL, '--schema', schema];
    const round = (r: number) =>
      writeCityLake(lake, { kinds: KINDS, perHour: 300, hours: 2, filesPerHour: 6, replayed: 15, idPrefix: `r${r}`, firstOffset: BigInt(r) * 1_000_000n, startMs: Date.UTC(2024, 4, 1, r) });
    const expected: Record<string, number> = {};
    const add = (distinct: Record<string, number>) => {
      for (const [k, n] of Object.entries(distinct)) expected[k] = (expected[k] ?? 0) + n;
    };
    add(await round(0));
    expect((await runCli(CLI, ['warehouse', 'init', ...flags], { timeoutMs: 120_000 })).code).toBe(0);

    let kills = 0;
    for (let r = 1; r <= KILLS; r++) {
      const load = spawnCli(CLI, ['warehouse', 'load', ...flags, '--batch', '2', '--log-level', 'info']);
      // Let a batch or two commit, then kill while the next one is under way.
      const batches = new RegExp(`(?:[^\\n]*"warehouse batch loaded"[^\\n]*\\n){${r % 2 === 0 ? 2 : 1}}`);
      await load.waitForOutput(batches, 120_000);
      await new Promise((resolve) => setTimeout(resolve, 20 + ((r * 37) % 80)));
      load.signal('SIGKILL');
      const result = await load.exited;
      expect(result.signal, `run ${r} finished before it was killed:\n${result.stdout}`).toBe('SIGKILL');
      kills++;
      // The city goes on: more files arrive, and compaction merges what is there.
      add(await round(r));
      if (r % 2 === 0) {
        const store = createLocalFolderStore(lake);
        await compactLake(store, { keepNewest: false, tables: [...KINDS] });
        await store.close();
      }
    }
    expect(kills).toBe(KILLS);

    const final = await runCli(CLI, ['warehouse', 'load', ...flags, '--log-level', 'warn'], { timeoutMs: 300_000 });
    expect(final.code, final.stderr).toBe(0);
    expect(final.stdout).toMatch(/0 skipped/);

    const warehouse = createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema });
    onTeardown(() => warehouse.close());
    const lakeNow = await lakeCounts(lake);
    for (const kind of KINDS) {
      const { rows } = await warehouse.query(`SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM ${kind}`);
      expect(rows[0], kind).toEqual({ n: expected[kind], ids: expected[kind] });
      expect(lakeNow[`${kind}.ids`], kind).toBe(expected[kind]);
    }
    for (const kind of EVENT_KINDS.filter((k) => !KINDS.includes(k))) {
      expect((await warehouse.query(`SELECT count(*) AS n FROM ${kind}`)).rows).toEqual([{ n: 0 }]);
    }
    // Nothing pending, and the ledger's loaded rows account for every lake row that is not covered.
    const status = await runCli(CLI, ['warehouse', 'status', ...flags, ...KINDS.flatMap((k) => ['--table', k])], { timeoutMs: 120_000 });
    for (const kind of KINDS) expect(status.stdout).toMatch(new RegExp(`${kind}\\s+\\|\\s+\\d+ \\|\\s+\\d+ \\|\\s+0 \\|`));
  }, 600_000);
});

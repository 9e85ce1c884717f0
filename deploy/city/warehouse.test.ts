// The city's warehouse loader in a process of its own: it loads the lake into PGlite, reports its
// totals, answers the dashboard's read queries over IPC, and closes PGlite before it exits.
import { join } from 'node:path';
import { silentLog, waitFor } from '@city/protocol';
import { createPgliteWarehouse, latestWarehouseLoad } from '@city/cloud';
import { describe, expect, it } from 'vitest';
import { onTeardown, tempDir } from '../../test/support/teardown.ts';
import { writeCityLake } from '../../test/support/warehouse.ts';
import { startCityWarehouse } from './warehouse.ts';

describe("the city's warehouse loader", () => {
  it('loads the lake in its own process, answers read queries through the handle, and leaves PGlite closed', async () => {
    const dir = tempDir('city-warehouse-');
    const lakeDir = join(dir, 'lake');
    const written = await writeCityLake(lakeDir, { kinds: ['vehicle', 'weather'], perHour: 40, hours: 2, filesPerHour: 2 });
    const total = Object.values(written).reduce((a, b) => a + b, 0);
    const warehouse = startCityWarehouse({ lakeDir, dataDir: join(dir, 'warehouse'), everyMs: 600_000, logDir: dir, log: silentLog });
    onTeardown(() => warehouse.close());

    const figures = warehouse.process();
    expect(figures.pid).not.toBe(process.pid);
    expect(figures.running).toBe(true);
    await waitFor(() => warehouse.stats().rounds >= 1, { timeoutMs: 120_000, what: 'the first load round' });
    expect(warehouse.stats()).toMatchObject({ rows: total, rounds: 1 });
    expect(warehouse.stats().lastError).toBeUndefined();

    // What the dashboard asks: the ledger's latest load, through the handle that forwards to the process.
    const handle = warehouse.warehouse();
    expect(handle?.engine).toBe('pglite');
    expect(await latestWarehouseLoad(handle!)).toBeGreaterThan(Date.now() - 600_000);
    const n = await handle!.query(`SELECT count(*) AS n FROM ${handle!.schema}.vehicle`);
    expect(n.rows[0]?.n).toBe(written['vehicle']);
    await expect(handle!.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: 'CITY_PART_FAILED', message: expect.stringMatching(/no_such_table/) });
    // The handle reads only: loads belong to the loader's process.
    await expect(handle!.transaction([])).rejects.toMatchObject({ code: 'CITY_CLOSED' });

    const closing = warehouse.close();
    expect(warehouse.close()).toBe(closing);
    await closing;
    expect(warehouse.process().running).toBe(false);
    expect(warehouse.warehouse()).toBeUndefined();
    // PGlite has one user at a time: it opens here only if the loader's process closed it.
    const pglite = await createPgliteWarehouse({ dataDir: join(dir, 'warehouse') });
    onTeardown(() => pglite.close());
    const again = await pglite.query(`SELECT count(*) AS n FROM ${pglite.schema}.vehicle`);
    expect(again.rows[0]?.n).toBe(written['vehicle']);
  }, 240_000);
});

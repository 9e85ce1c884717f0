// The one-command city on the suite's broker (KAFKA_BROKERS), with topics of its own: in process, and as
// `npm run city` stopped by a signal.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { silentLog, waitFor } from '@city/protocol';
import { DEFAULT_FLEET } from '@city/device-sim';
import { describe, expect, inject, it, vi } from 'vitest';
import { runCli, spawnCli } from '../../test/support/cli.ts';
import { onTeardown, tempDir } from '../../test/support/teardown.ts';
import { createPgliteWarehouse } from '@city/cloud';
import { createCity } from './index.ts';

const brokers = inject('kafkaBrokers');
const CLI = join(import.meta.dirname, '..', 'city.ts');
const suffix = () => `city${randomUUID().slice(0, 8)}`;

describe('the city', () => {
  it('starts Kafka topics → sink → gateway → fleet, fills the lake, refuses a second start and closes once', async () => {
    vi.stubEnv('KAFKA_BROKERS', brokers.join(','));
    onTeardown(() => vi.unstubAllEnvs());
    const city = createCity({ dir: tempDir('city-'), port: 0, dashboardPort: 0, scale: 0.05, rate: 5, topicSuffix: suffix(), log: silentLog, warehouseEveryMs: 1_000 });
    onTeardown(() => city.close());
    await city.start();
    expect(city.brokers()).toEqual(brokers);
    const page = await fetch(city.dashboardUrl());
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Havenstad operations');
    await expect(city.start()).rejects.toMatchObject({ code: 'CITY_ALREADY_STARTED' });
    // The default fleet scaled, each kind keeping at least one device.
    expect(city.stats().devices).toBe(Object.values(DEFAULT_FLEET).reduce((n, k) => n + Math.max(1, Math.round(k * 0.05)), 0));
    await waitFor(() => city.stats().lakeRows > 0, { timeoutMs: 30_000, what: 'rows in the lake' });
    // The live engine's KPI updates reach the lake through the sink (table kpi_windows).
    await waitFor(() => city.stats().liveRows > 0, { timeoutMs: 60_000, what: 'KPI window rows in the lake' });
    // The loader on its timer fills the PGlite warehouse from the lake.
    await waitFor(() => city.stats().warehouseRows > 0, { timeoutMs: 120_000, what: 'rows in the warehouse' });
    // The processing schedule builds the processed zone (every 30 s) and the loader replaces its partitions in PGlite.
    await waitFor(() => city.stats().warehouseProcessedRows > 0, { timeoutMs: 150_000, what: 'processed rows in the warehouse' });
    const closing = city.close();
    expect(city.close()).toBe(closing);
    await closing;
    await expect(city.start()).rejects.toMatchObject({ code: 'CITY_CLOSED' });
    // The devices are gone, and the gateway forwarded all it held before it closed.
    const after = city.stats();
    expect(after.connected).toBe(0);
    expect(after.buffered).toBe(0);
    // PGlite after the city: processed tables hold rows, each partition exactly the rows its ledger entry
    // names (one build, never two summed).
    const pglite = await createPgliteWarehouse({ dataDir: city.warehouseDir });
    onTeardown(() => pglite.close());
    const ledger = await pglite.query(`SELECT table_name, event_date, event_hour, partition_rows FROM wh_processed_ledger`);
    expect(ledger.rows.length).toBeGreaterThan(0);
    let total = 0;
    for (const l of ledger.rows) {
      const n = await pglite.query(`SELECT count(*) AS n FROM "${String(l.table_name)}" WHERE event_date = '${String(l.event_date)}' AND event_hour = ${Number(l.event_hour)}`);
      expect(n.rows[0]?.n, `${String(l.table_name)} ${String(l.event_date)}/${Number(l.event_hour)}`).toBe(l.partition_rows);
      total += Number(l.partition_rows);
    }
    expect(total).toBeGreaterThan(0);
  }, 360_000);

  it('refuses bad options before starting anything', () => {
    expect(() => createCity({ invalidRate: 2 })).toThrow(/invalidRate/);
    expect(() => createCity({ rate: -1 })).toThrow(expect.objectContaining({ code: 'CITY_INVALID_OPTIONS', usage: true }));
  });

  it('npm run city: --help exits 0, a bad flag 2, and SIGINT stops every part and exits 0', async () => {
    const [help, bad] = await Promise.all([runCli(CLI, ['--help']), runCli(CLI, ['--rate', 'fast'])]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: npm run city -- /);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^city: CITY_USAGE: .*--rate/);

    const dir = tempDir('city-cli-');
    const city = spawnCli(CLI, ['--dir', dir, '--port', '0', '--dashboard-port', '0', '--scale', '0.05', '--rate', '5', '--topic-suffix', suffix()], {
      env: { KAFKA_BROKERS: brokers.join(',') },
    });
    await city.waitForOutput(/The city is running/, 60_000);
    await city.waitForOutput(/Watch it live: http:\/\/127\.0\.0\.1:\d+\//, 5_000);
    city.signal('SIGINT');
    const result = await city.exited;
    expect(result.code, result.stderr + '\n---\n' + result.stdout).toBe(0);
    expect(result.stdout).toMatch(/stopping the city…\nstopped\. The lake stays in /);
  }, 180_000);
});

// `sink warehouse` as a user runs it: init, load, status and a named query on PGlite beside a local lake,
// the same named query through `sink query --engine warehouse`, and usage errors.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alertLakeRow } from '@city/protocol';
import { runCli } from '../../../test/support/cli.ts';
import { tempDir } from '../../../test/support/teardown.ts';
import { writeCityLake } from '../../../test/support/warehouse.ts';
import { createLakeWriter } from '../lake/writer.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';

const CLI = join(import.meta.dirname, 'main.ts');
const cli = (args: string[]) => runCli(CLI, args, { env: { WAREHOUSE: undefined, WAREHOUSE_POSTGRES_URL: undefined }, timeoutMs: 120_000 });

describe('cli warehouse', () => {
  it('init, load, status and query on PGlite beside the lake', async () => {
    const lake = tempDir('cli-wh-');
    await writeCityLake(lake, { kinds: ['traffic_camera'], perHour: 12, hours: 2, filesPerHour: 2, replayed: 2 });
    const init = await cli(['warehouse', 'init', '--lake', lake]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/warehouse pglite schema public: 21 tables created, 0 columns added/);

    const load = await cli(['warehouse', 'load', '--lake', lake, '--log-level', 'warn']);
    expect(load.code).toBe(0);
    expect(load.stdout).toContain('loaded 6 objects (28 rows) in 1 batches, 0 covered by loaded objects, 0 skipped');

    const status = await cli(['warehouse', 'status', '--lake', lake, '--table', 'traffic_camera']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/traffic_camera \|\s+6 \|\s+0 \|\s+0 \|\s+28 \|\s+24 \| 2024-05-01\/1\s+\| 2024-05-01\/1\s+\|\s+0/);

    // The processed zone built from the lake loads too: one partition per hour of camera flow.
    expect(load.stdout).toContain('; 0 processed partitions replaced (0 rows)');
    const processed = await cli(['process', '--lake', lake, '--table', 'camera_flow_15m']);
    expect(processed.code).toBe(0);
    const again = await cli(['warehouse', 'load', '--lake', lake, '--log-level', 'warn']);
    expect(again.stdout).toMatch(/loaded 0 objects .*; 2 processed partitions replaced \(\d+ rows\)/);
    const flow = await cli(['warehouse', 'status', '--lake', lake, '--table', 'camera_flow_15m']);
    expect(flow.stdout).toMatch(/camera_flow_15m \|\s+2 \|\s+0 \|\s+0 \|/);
    expect(flow.stdout).not.toContain('traffic_camera');

    const named = await cli(['warehouse', 'query', '--lake', lake, '--named', 'traffic_per_camera_hour']);
    expect(named.code).toBe(0);
    const viaQuery = await cli(['query', '--engine', 'warehouse', '--lake', lake, '--named', 'traffic_per_camera_hour']);
    expect(viaQuery.code).toBe(0);
    expect(viaQuery.stdout).toBe(named.stdout);
    const onLake = await cli(['query', '--lake', lake, '--named', 'traffic_per_camera_hour']);
    // The lake holds the replayed duplicates; the warehouse has each event once.
    expect(named.stdout).toMatch(/\(24 rows\)/);
    expect(onLake.stdout).toMatch(/\(24 rows\)/);

    const sql = await cli(['warehouse', 'query', '--lake', lake, 'SELECT count(*) AS n FROM traffic_camera']);
    expect(sql.stdout).toMatch(/n\n-+\n24\n/);
    // Seven processes, each opening PGlite (seconds apiece on a busy machine).
  }, 300_000);

  it('--live-tables loads the live engine\'s alerts (and final KPI windows) once; the lake answers the alerts query', async () => {
    const lake = tempDir('cli-wh-live-');
    const store = createLocalFolderStore(lake);
    const writer = await createLakeWriter(store);
    const alert = { alertId: 'aqi|aq-1|2026-12-01T12:00:00.000Z', rule: 'aqi', key: 'aq-1', raisedAt: '2026-12-01T12:01:00.000Z', value: 168, threshold: 151, severity: 'warning' as const, message: 'air' };
    const rows = [
      alertLakeRow({ ...alert, state: 'raised', clearedAt: null }, Date.parse('2026-12-01T12:01:02Z')),
      alertLakeRow({ ...alert, alertId: 'incident|inc-9', rule: 'incident', key: 'inc-9', state: 'raised', clearedAt: null }, Date.parse('2026-12-01T12:01:03Z')),
      alertLakeRow({ ...alert, state: 'cleared', clearedAt: '2026-12-01T12:40:00.000Z', value: 22 }, Date.parse('2026-12-01T12:40:01Z')),
    ];
    await writer.write({ table: 'alerts', partition: { event_date: '2026-12-01', event_hour: 12 }, topic: 'city.alerts.v1', kafkaPartition: 0, firstOffset: 0n, lastOffset: 2n, rows });
    await writer.close();
    await store.close();
    const init = await cli(['warehouse', 'init', '--lake', lake, '--live-tables']);
    expect(init.stdout).toMatch(/24 tables created/);
    const load = await cli(['warehouse', 'load', '--lake', lake, '--live-tables', '--log-level', 'warn']);
    expect(load.stderr).toBe('');
    expect(load.stdout).toContain('loaded 1 objects (3 rows)');
    const again = await cli(['warehouse', 'load', '--lake', lake, '--live-tables', '--log-level', 'warn']);
    expect(again.stdout).toContain('loaded 0 objects (0 rows)');
    const sql = await cli(['warehouse', 'query', '--lake', lake, 'SELECT count(*) AS n FROM alerts']);
    expect(sql.stdout).toMatch(/n\n-+\n3\n/);
    const status = await cli(['warehouse', 'status', '--lake', lake, '--live-tables']);
    expect(status.stdout).toMatch(/alerts\s+\|\s+1 \|\s+0 \|\s+0 \|\s+3 \|\s+3 \| 2026-12-01\/12\s+\| 2026-12-01\/12\s+\|\s+0/);
    expect(status.stdout).toMatch(/kpi_windows\s+\|\s+0 \|/);
    const open = await cli(['query', '--lake', lake, '--named', 'alerts', '--param', 'open=true']);
    expect(open.code).toBe(0);
    expect(open.stdout).toContain('incident|inc-9');
    expect(open.stdout).not.toContain('aq-1');
    expect(open.stdout).toMatch(/\(1 rows?\)/);
  }, 300_000);

  it('refuses bad command lines with usage (exit 2)', async () => {
    const none = await cli(['warehouse']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/CLD_USAGE: .*an action is required/);
    const bad = await cli(['warehouse', 'load', '--lake', '/tmp/x', '--warehouse', 'oracle']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--warehouse must be pglite, postgres or redshift/);
    const table = await cli(['warehouse', 'load', '--lake', '/tmp/x', '--table', 'unicorn']);
    expect(table.code).toBe(2);
    expect(table.stderr).toMatch(/neither an event kind nor a processed table/);
    const spectrum = await cli(['warehouse', 'init', '--lake', '/tmp/x', '--spectrum']);
    expect(spectrum.code).toBe(2);
    expect(spectrum.stderr).toMatch(/--spectrum needs --warehouse redshift/);
  });
});

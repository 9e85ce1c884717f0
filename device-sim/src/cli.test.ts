// `npm run sim` as a user runs it, against an MQTT broker in the test process.
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../../test/support/cli.ts';
import { startMqttBroker } from '../../test/support/mqtt-broker.ts';

const CLI = join(import.meta.dirname, 'cli.ts');

describe('simulator command line', () => {
  it('prints usage for --help (exit 0) and names a bad flag (exit 2)', async () => {
    const [help, bad] = await Promise.all([runCli(CLI, ['--help']), runCli(CLI, ['--devcies', '5'])]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: npm run sim -- \[flags\]/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^device-sim: SIM_BAD_FLAG: .*--devcies/);
    expect(bad.stdout).toBe('');
  });

  it('publishes a burst and exits 0 once every event is acknowledged', async () => {
    const broker = await startMqttBroker(() => Aedes.createBroker());
    const result = await runCli(CLI, ['--url', broker.url, '--devices', '7', '--events-per-device', '3', '--rate', '0', '--stats-interval', '0', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const stats = JSON.parse(result.stdout) as { done: boolean; acknowledged: number; devices: number };
    expect(stats).toMatchObject({ done: true, devices: 7, acknowledged: 21 });
  });

  it('stops cleanly on SIGTERM: outstanding publishes finish, exit 0', async () => {
    const broker = await startMqttBroker(() => Aedes.createBroker());
    const sim = spawnCli(CLI, ['--url', broker.url, '--devices', '7', '--rate', '20', '--stats-interval', '0']);
    await sim.waitForOutput(/all 7 devices connected/, 30_000);
    sim.signal('SIGTERM');
    const result = await sim.exited;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/shutting down \(SIGTERM\)/);
    expect(result.stdout).toMatch(/connected 0\/7/);
  });
});

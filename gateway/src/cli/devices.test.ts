import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRegistry } from '../broker/index.ts';
import { runDevicesCommand } from './devices.ts';
import { runCli } from '../../../test/support/cli.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';

const registryPath = (): string => join(tempDir('gw-reg-'), 'devices.db');
const CLI = join(import.meta.dirname, '../cli.ts');

function captured() {
  const io = { stdout: '', stderr: '' };
  return { io, cli: { out: (t: string) => (io.stdout += t), err: (t: string) => (io.stderr += t) } };
}

describe('gateway devices CLI', () => {
  it('adds (printing a generated secret once), lists and revokes', async () => {
    const path = registryPath();
    const a = captured();
    expect(runDevicesCommand(['add', 'phone-7', '--registry', path], a.cli)).toBe(0);
    const secret = /secret: (\S+)/.exec(a.io.stdout)?.[1];
    expect(secret).toBeDefined();

    const b = captured();
    expect(runDevicesCommand(['add', 'phone-8', '--secret', 'given-secret-0123456789', '--registry', path], b.cli)).toBe(0);
    expect(b.io.stdout).not.toContain('given-secret');

    expect(runDevicesCommand(['revoke', 'phone-8', '--registry', path], captured().cli)).toBe(0);
    const list = captured();
    expect(runDevicesCommand(['list', '--json', '--registry', path], list.cli)).toBe(0);
    const devices = JSON.parse(list.io.stdout) as { deviceId: string; revokedAt: number | null }[];
    expect(devices.map((d) => [d.deviceId, d.revokedAt === null])).toEqual([
      ['phone-7', true],
      ['phone-8', false],
    ]);

    const registry = openRegistry(path);
    onTeardown(() => registry.close());
    expect(await registry.verify('phone-7', secret!)).toEqual({ ok: true });
  });

  it('reads a secret from --secret-file (last line break dropped), and names a file it cannot read', async () => {
    const dir = tempDir('gw-secret-');
    const path = join(dir, 'devices.db');
    const file = join(dir, 'bus-17.secret');
    writeFileSync(file, 'from-a-file-0123456789\n', { mode: 0o600 });
    const added = captured();
    expect(runDevicesCommand(['add', 'bus-17', '--secret-file', file, '--registry', path], added.cli)).toBe(0);
    expect(added.io.stdout).toBe('added bus-17\n');
    const registry = openRegistry(path);
    onTeardown(() => registry.close());
    expect(await registry.verify('bus-17', 'from-a-file-0123456789')).toEqual({ ok: true });

    const missing = captured();
    expect(runDevicesCommand(['add', 'bus-18', '--secret-file', join(dir, 'nope'), '--registry', path], missing.cli)).toBe(2);
    expect(missing.io.stderr).toContain(`--secret-file ${join(dir, 'nope')}: ENOENT`);
    const both = captured();
    expect(runDevicesCommand(['add', 'bus-18', '--secret-file', file, '--secret', 'x'.repeat(20), '--registry', path], both.cli)).toBe(2);
    expect(both.io.stderr).toContain('not both');
  });

  it('reports usage errors and failures with an exit code', () => {
    const path = registryPath();
    const unknown = captured();
    expect(runDevicesCommand(['revoke', 'nobody', '--registry', path], unknown.cli)).toBe(1);
    expect(unknown.io.stderr).toContain('unknown device "nobody"');
    const usage = captured();
    expect(runDevicesCommand(['add', '--registry', path], usage.cli)).toBe(2);
    expect(usage.io.stderr).toContain('add needs a device id');
    expect(runDevicesCommand(['explode', '--registry', path], captured().cli)).toBe(2);
    expect(runDevicesCommand([], captured().cli)).toBe(2);
    expect(runDevicesCommand(['list', '--secret', 'x'], captured().cli)).toBe(2);
    const bad = captured();
    expect(runDevicesCommand(['add', 'x/y', '--registry', path], bad.cli)).toBe(1);
    expect(bad.io.stderr).toContain('device id "x/y"');
  });

  it('finds the registry through the same config file as start', () => {
    const path = registryPath();
    const config = join(path, '..', 'gateway.json');
    writeFileSync(config, JSON.stringify({ gatewayId: 'gw-cfg', buffer: { path: 'buffer.db' }, auth: { mode: 'registry', registryPath: path } }));
    expect(runDevicesCommand(['add', 'aq-9', '--config', config], captured().cli)).toBe(0);
    const registry = openRegistry(path);
    onTeardown(() => registry.close());
    expect(registry.isActive('aq-9')).toBe(true);

    // A bad config file is a usage error (exit 2), naming the field.
    writeFileSync(config, JSON.stringify({ auth: { mode: 'registry' } }));
    const bad = captured();
    expect(runDevicesCommand(['list', '--config', config], bad.cli)).toBe(2);
    expect(bad.io.stderr).toContain('/auth/registryPath');
  });

  it('prints the usage of the command asked about for --help, and exits 0', () => {
    const all = captured();
    expect(runDevicesCommand(['--help'], all.cli)).toBe(0);
    expect(all.io.stdout).toMatch(/^usage: gateway devices <command>/);
    for (const command of ['add', 'list', 'revoke']) {
      const one = captured();
      expect(runDevicesCommand([command, '--help'], one.cli)).toBe(0);
      expect(one.io.stdout).toMatch(new RegExp(`^usage: gateway devices ${command}`));
      expect(one.io.stderr).toBe('');
    }
    // A usage error prints the usage of the command it is about.
    const wrong = captured();
    expect(runDevicesCommand(['add', 'phone-9', '--json'], wrong.cli)).toBe(2);
    expect(wrong.io.stderr).toMatch(/GW_USAGE: .*'--json'[\s\S]*usage: gateway devices add/);
  });

  it('is reached through the gateway command line', async () => {
    const path = registryPath();
    const added = await runCli(CLI, ['devices', 'add', 'ws-cli', '--registry', path]);
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout).toMatch(/added ws-cli\nsecret: \S{32}/);
    const list = await runCli(CLI, ['devices', 'list', '--registry', path]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ws-cli\tactive/);
  });
});

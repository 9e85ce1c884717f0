import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runDevicesCommand } from './cli-devices.ts';
import { hashSecret, openRegistry, verifySecret } from './registry.ts';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function registryPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-reg-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'devices.db');
}

function captured() {
  const io = { stdout: '', stderr: '' };
  return { io, cli: { out: (t: string) => (io.stdout += t), err: (t: string) => (io.stderr += t) } };
}

describe('device registry', () => {
  it('stores only a salted hash, verifies with the secret and tells why it refuses', async () => {
    const path = registryPath();
    const registry = openRegistry(path);
    cleanups.push(() => registry.close());
    const generated = registry.add('veh-1');
    expect(generated.length).toBeGreaterThanOrEqual(32);
    registry.add('veh-2', 'same-secret-0123456789');
    registry.add('veh-3', 'same-secret-0123456789');

    const raw = new Database(path, { readonly: true });
    const rows = raw.prepare('SELECT device_id, hash FROM devices ORDER BY device_id').all() as { device_id: string; hash: string }[];
    raw.close();
    expect(rows.map((r) => r.device_id)).toEqual(['veh-1', 'veh-2', 'veh-3']);
    for (const row of rows) expect(row.hash).not.toContain('same-secret');
    expect(rows[1]!.hash).not.toBe(rows[2]!.hash); // per-device salt

    expect(await registry.verify('veh-1', generated)).toEqual({ ok: true });
    expect(await registry.verify('veh-1', Buffer.from(generated))).toEqual({ ok: true });
    expect(await registry.verify('veh-1', `${generated}x`)).toEqual({ ok: false, reason: 'bad-secret' });
    expect(await registry.verify('veh-9', generated)).toEqual({ ok: false, reason: 'unknown' });
    expect(registry.revoke('veh-2')).toBe(true);
    expect(registry.revoke('veh-9')).toBe(false);
    expect(await registry.verify('veh-2', 'same-secret-0123456789')).toEqual({ ok: false, reason: 'revoked' });
    expect(registry.isActive('veh-2')).toBe(false);
    expect(registry.list().map((d) => [d.deviceId, d.revokedAt === null])).toEqual([
      ['veh-1', true],
      ['veh-2', false],
      ['veh-3', true],
    ]);

    // Adding again re-enables the device with a new secret; the old one stops working.
    const renewed = registry.add('veh-2');
    expect(await registry.verify('veh-2', renewed)).toEqual({ ok: true });
    expect(await registry.verify('veh-2', 'same-secret-0123456789')).toEqual({ ok: false, reason: 'bad-secret' });
  });

  it('rejects bad ids and short secrets, naming them', () => {
    const registry = openRegistry(registryPath());
    cleanups.push(() => registry.close());
    expect(() => registry.add('bad/id')).toThrow(/device id "bad\/id" must match/);
    expect(() => registry.add('+')).toThrow(/device id/);
    expect(() => registry.add('ok-1', 'short')).toThrow(/at least 16 characters/);
    expect(registry.list()).toEqual([]);
  });

  it('survives reopening and shows other connections writes through version()', () => {
    const path = registryPath();
    const gatewaySide = openRegistry(path);
    cleanups.push(() => gatewaySide.close());
    const before = gatewaySide.version();
    const cli = openRegistry(path);
    cli.add('cam-1');
    cli.close();
    expect(gatewaySide.version()).not.toBe(before);
    expect(gatewaySide.isActive('cam-1')).toBe(true);
    gatewaySide.close();
    expect(() => gatewaySide.list()).toThrow(/closed/);
  });

  it('hash strings carry their cost, so old entries keep verifying after the default changes', async () => {
    const cheap = hashSecret('a-secret-of-16-chars', { N: 1024, r: 8, p: 1 });
    expect(cheap.startsWith('scrypt$1024$8$1$')).toBe(true);
    expect(await verifySecret(cheap, 'a-secret-of-16-chars')).toBe(true);
    expect(await verifySecret(cheap, 'a-secret-of-16-chars!')).toBe(false);
    expect(await verifySecret('md5$abc', 'anything')).toBe(false);
  });
});

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
    cleanups.push(() => registry.close());
    expect(await registry.verify('phone-7', secret!)).toEqual({ ok: true });
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
    cleanups.push(() => registry.close());
    expect(registry.isActive('aq-9')).toBe(true);

    writeFileSync(config, JSON.stringify({ auth: { mode: 'registry' } }));
    const bad = captured();
    expect(runDevicesCommand(['list', '--config', config], bad.cli)).toBe(1);
    expect(bad.io.stderr).toContain('/auth/registryPath');
  });

  it('is reached through the gateway command line', () => {
    const path = registryPath();
    const node = join(import.meta.dirname, '../../node_modules/.bin/node');
    const out = execFileSync(node, [join(import.meta.dirname, 'cli.ts'), 'devices', 'add', 'ws-cli', '--registry', path], { encoding: 'utf8' });
    expect(out).toMatch(/added ws-cli\nsecret: \S{32}/);
    const list = execFileSync(node, [join(import.meta.dirname, 'cli.ts'), 'devices', 'list', '--registry', path], { encoding: 'utf8' });
    expect(list).toMatch(/^ws-cli\tactive/);
  });
});

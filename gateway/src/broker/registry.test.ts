import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { hashSecret, openRegistry, verifySecret } from './registry.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';

const registryPath = (): string => join(tempDir('gw-reg-'), 'devices.db');

describe('device registry', () => {
  it('stores only a salted hash, verifies with the secret and tells why it refuses', async () => {
    const path = registryPath();
    const registry = openRegistry(path);
    onTeardown(() => registry.close());
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
    onTeardown(() => registry.close());
    expect(() => registry.add('bad/id')).toThrow(/device id "bad\/id" must match/);
    expect(() => registry.add('+')).toThrow(/device id/);
    expect(() => registry.add('ok-1', 'short')).toThrow(/at least 16 characters/);
    expect(registry.list()).toEqual([]);
  });

  it('survives reopening and shows other connections writes through version()', () => {
    const path = registryPath();
    const gatewaySide = openRegistry(path);
    onTeardown(() => gatewaySide.close());
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


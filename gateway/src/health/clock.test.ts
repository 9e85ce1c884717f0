import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLOCK_FLOOR_MS, createClockWatch, readClock } from './clock.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';

/** A stand-in for /run/systemd/timesync: the directory timesyncd creates, and the flag it touches at sync. */
function timesyncDir(): { dir: string; flag: string } {
  const dir = join(tempDir('gw-clock-'), 'timesync');
  return { dir, flag: join(dir, 'synchronized') };
}

describe('clock synchronisation check', () => {
  it('reads the flag file: present = synchronized, absent beside its directory = unsynchronized, neither = unknown', async () => {
    const { dir, flag } = timesyncDir();
    expect(await readClock({ syncFlag: flag })).toMatchObject({ state: 'unknown', source: 'none' });
    mkdirSync(dir);
    expect(await readClock({ syncFlag: flag })).toMatchObject({ state: 'unsynchronized', source: 'no-flag' });
    writeFileSync(flag, '');
    expect(await readClock({ syncFlag: flag })).toMatchObject({ state: 'synchronized', source: 'flag' });
    // No time service configured: unknown, never a guess.
    expect(await readClock({ syncFlag: '' })).toMatchObject({ state: 'unknown', source: 'none' });
  });

  it('calls a clock earlier than the floor unsynchronized, whatever the flag says', async () => {
    const { dir, flag } = timesyncDir();
    mkdirSync(dir);
    writeFileSync(flag, '');
    // A board without an RTC boots in 1970.
    expect(await readClock({ syncFlag: flag, now: () => 86_400_000 })).toMatchObject({ state: 'unsynchronized', source: 'floor', at: 86_400_000 });
    expect(await readClock({ syncFlag: '', now: () => CLOCK_FLOOR_MS - 1 })).toMatchObject({ state: 'unsynchronized', source: 'floor' });
    expect(await readClock({ syncFlag: flag, now: () => CLOCK_FLOOR_MS })).toMatchObject({ state: 'synchronized' });
  });

  it('samples in the background and serves the cached state: unknown before start, then follows the flag', async () => {
    const { dir, flag } = timesyncDir();
    mkdirSync(dir);
    const watch = createClockWatch({ syncFlag: flag, intervalMs: 50 });
    onTeardown(() => watch.close());
    expect(watch.synced()).toBeUndefined();
    expect((await watch.start()).state).toBe('unsynchronized');
    expect(watch.synced()).toBe(false);
    writeFileSync(flag, '');
    await expect.poll(() => watch.synced(), { timeout: 10_000, interval: 20 }).toBe(true);
    // timesyncd's directory gone (the service stopped): back to unknown.
    rmSync(dir, { recursive: true });
    await expect.poll(() => watch.latest().state, { timeout: 10_000, interval: 20 }).toBe('unknown');
    expect(watch.synced()).toBeUndefined();
  });
});

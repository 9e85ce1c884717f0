import { spawnSync } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lakeFolder } from '../../../../test/support/lake.ts';
import { createLocalCatalog } from './local.ts';
import { createKeyedMutex, lockFile } from './partition-lock.ts';

const root = lakeFolder('partition-lock-');

describe('partition locks', () => {
  it('grants one key at a time in arrival order, other keys at once', async () => {
    const lock = createKeyedMutex();
    const order: string[] = [];
    const first = await lock('a');
    const second = lock('a').then((r) => (order.push('a2'), r));
    const other = await lock('b');
    order.push('b');
    await Promise.resolve();
    expect(order).toEqual(['b']);
    await first();
    await (await second)();
    await other();
    expect(order).toEqual(['b', 'a2']);
  });

  it('breaks a lock file whose process is gone, and waits for one whose process lives', async () => {
    const path = join(root, 'dead.lock');
    await mkdir(root, { recursive: true });
    // A pid that has exited: the lock was left by a process killed while holding it.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    await writeFile(path, gone);
    const release = await lockFile(path);
    expect(await readFile(path, 'utf8')).toBe(String(process.pid));

    let second = false;
    const waiting = lockFile(path).then((r) => ((second = true), r));
    await new Promise((r) => setTimeout(r, 100));
    expect(second).toBe(false);
    await release();
    await (await waiting)();
    expect(second).toBe(true);
  });

  it('the local catalog holds a partition across catalogs of one lake, not other partitions', async () => {
    const dir = join(root, 'catalog');
    const a = createLocalCatalog(dir);
    const b = createLocalCatalog(dir);
    const held = await a.lockPartition('vehicle', ['2024-05-01', '0']);
    const other = await b.lockPartition('vehicle', ['2024-05-01', '1']);
    let got = false;
    const same = b.lockPartition('vehicle', ['2024-05-01', '0']).then((r) => ((got = true), r));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toBe(false);
    await held();
    await (await same)();
    await other();
    await a.close();
    await b.close();
  });
});

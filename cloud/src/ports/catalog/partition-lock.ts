// Partition locks: a lake writer and a compaction's switch of the same partition never overlap.
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sleep } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';

export type Release = () => Promise<void>;

/** Exclusive sections per key within one process, granted in arrival order. */
export function createKeyedMutex(): (key: string) => Promise<Release> {
  const tails = new Map<string, Promise<void>>();
  return async (key) => {
    const before = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    tails.set(key, tail);
    await before;
    return async () => {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    };
  };
}

/** A lock held longer than this by a live process is taken as abandoned (a hung process). */
const HELD_STALE_MS = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A lock file taken with O_EXCL holding the owner's pid, for processes on one host (the local lake).
 * A file whose process is gone (killed with SIGKILL) is broken at once, one older than HELD_STALE_MS too.
 */
export async function lockFile(path: string): Promise<Release> {
  await mkdir(dirname(path), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw cloudErrors.create('CLD_CATALOG', `${path}: ${errorMessage(err)}`, err);
    }
    const [owner, age] = await Promise.all([
      readFile(path, 'utf8').then((t) => Number.parseInt(t, 10), () => Number.NaN),
      stat(path).then((s) => Date.now() - s.mtimeMs, () => 0),
    ]);
    // An empty file is one being written right now (or left by a kill between create and write).
    const abandoned = Number.isInteger(owner) ? !alive(owner) || age > HELD_STALE_MS : age > 1_000;
    if (abandoned) await rm(path, { force: true });
    else await sleep(Math.min(20, 1 + attempt));
  }
}

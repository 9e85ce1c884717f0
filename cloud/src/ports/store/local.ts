// The object store on a local folder: put() is fsync + rename, so an object is atomic and durable.
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { cloudErrors } from '../../errors.ts';
import type { ObjectStore } from './port.ts';

/** Scratch files live beside the data so put() is a same-filesystem rename. */
const SCRATCH_DIR = '_scratch';

export function createLocalFolderStore(folder: string): ObjectStore {
  const root = resolve(folder);
  // Per instance, so two sinks sharing a folder never touch each other's scratch files.
  const scratchDir = join(root, SCRATCH_DIR, randomUUID());
  let scratchSeq = 0;
  let closed = false;

  const pathOf = (key: string): string => {
    const path = resolve(root, ...key.split('/'));
    if (key === '' || key.startsWith('/') || !path.startsWith(root + sep)) throw new RangeError(`bad object key ${key}`);
    return path;
  };

  return {
    root,
    async scratchPath(key) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'object store');
      await mkdir(scratchDir, { recursive: true });
      const base = key.slice(key.lastIndexOf('/') + 1);
      return join(scratchDir, `${++scratchSeq}-${base}`);
    },
    async put(key, scratchPath) {
      const target = pathOf(key);
      try {
        await fsyncPath(scratchPath, 'r+');
        await mkdirDurable(dirname(target));
        await rename(scratchPath, target);
        // The rename is only durable once the directory entry is.
        await fsyncPath(dirname(target), 'r');
      } catch (err) {
        throw cloudErrors.create('CLD_STORE_PUT', `${key}: ${(err as Error).message}`, err);
      }
    },
    async discard(scratchPath) {
      await rm(scratchPath, { force: true });
    },
    async list(prefix) {
      const base = resolve(root, ...prefix.split('/').filter((p) => p !== ''));
      const keys: string[] = [];
      const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      });
      for (const entry of entries) {
        if (!entry.isFile()) continue;
        const key = relative(root, join(entry.parentPath, entry.name)).split(sep).join('/');
        if (!key.startsWith(`${SCRATCH_DIR}/`)) keys.push(key);
      }
      return keys.sort();
    },
    locate(keyOrPattern) {
      return join(root, ...keyOrPattern.split('/'));
    },
    async download(key, toPath) {
      await copyFile(pathOf(key), toPath);
    },
    async delete(key) {
      const target = pathOf(key);
      await rm(target, { force: true });
      await fsyncPath(dirname(target), 'r').catch(() => undefined);
    },
    async close() {
      if (closed) return;
      closed = true;
      await rm(scratchDir, { recursive: true, force: true });
    },
  };
}

async function fsyncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p, then fsync the parent of every directory it created so the new entries survive power loss. */
async function mkdirDurable(dir: string): Promise<void> {
  const exists = await stat(dir).then((s) => s.isDirectory(), () => false);
  if (exists) return;
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  let current = dir;
  const created: string[] = [];
  while (current.length >= first.length) {
    created.push(current);
    current = dirname(current);
  }
  for (const d of created) await fsyncPath(dirname(d), 'r');
}

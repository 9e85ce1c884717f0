// Reading the lake: which files a reader should read (compaction leaves superseded inputs behind for a
// moment), and a local mirror of a remote lake for engines that read only local files.
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import { parseLakeFileKey, type LakeFileKey } from './layout.ts';

const groupKey = (f: LakeFileKey): string => `${f.folder}\u0000${f.topic}\u0000${f.kafkaPartition}`;

/**
 * Superseded key → the merged key that covers it. A merged file hides every file of the same
 * topic-partition in the same folder whose first offset lies in its range (the inputs it replaced),
 * and every merged file inside a wider one (re-compaction).
 */
export function supersededFiles(keys: readonly string[]): Map<string, string> {
  const mergedByGroup = new Map<string, LakeFileKey[]>();
  const files: LakeFileKey[] = [];
  for (const key of keys) {
    const file = parseLakeFileKey(key);
    if (file === undefined) continue;
    files.push(file);
    if (file.merged) {
      const group = groupKey(file);
      let list = mergedByGroup.get(group);
      if (list === undefined) mergedByGroup.set(group, (list = []));
      list.push(file);
    }
  }
  const out = new Map<string, string>();
  for (const file of files) {
    for (const m of mergedByGroup.get(groupKey(file)) ?? []) {
      if (m.key === file.key) continue;
      const last = m.lastOffset as bigint;
      const covered = file.merged
        ? m.firstOffset <= file.firstOffset && (file.lastOffset as bigint) <= last
        : m.firstOffset <= file.firstOffset && file.firstOffset <= last;
      if (covered) {
        out.set(file.key, m.key);
        break;
      }
    }
  }
  return out;
}

/**
 * The keys a reader should read: drops files superseded by a merged file (see lake/compaction.ts for
 * why that never shows a duplicate or a gap). Keys it does not recognise pass through; order is kept.
 */
export function liveFiles(keys: readonly string[]): string[] {
  const superseded = supersededFiles(keys);
  return keys.filter((key) => !superseded.has(key));
}

/** The live Parquet files under a prefix of the store. */
export async function listLiveFiles(store: ObjectStore, prefix: string): Promise<string[]> {
  return liveFiles((await store.list(prefix)).filter((key) => key.endsWith('.parquet')));
}

/** A store the query side can read from. */
export interface ObjectSource {
  list(prefix: string): Promise<string[]>;
  /** Writes the object's bytes to a local file. */
  download(key: string, toPath: string): Promise<void>;
}

/** An object store as a cache source; the store must be able to download (the local and S3 stores can). */
export function objectSource(store: ObjectStore): ObjectSource {
  const download = store.download;
  if (download === undefined) throw cloudErrors.create('CLD_LAKE_OPEN', `the object store at ${store.root} cannot download objects`);
  return { list: (prefix) => store.list(prefix), download: (key, toPath) => download.call(store, key, toPath) };
}

export interface LakeCacheSync {
  downloaded: number;
  kept: number;
  removed: number;
}

/**
 * Mirrors the lake's Parquet objects into a local folder, for querying an S3 lake: the bundled DuckDB
 * has no httpfs extension and this machine cannot download one. Keys are written once (a data file's
 * name is a function of its Kafka position), so a key already cached is not fetched again; cached
 * files whose key is gone (compacted away) are removed.
 */
export async function syncLakeCache(source: ObjectSource, cacheDir: string): Promise<LakeCacheSync> {
  const root = resolve(cacheDir);
  const keys = (await source.list('')).filter((k) => k.endsWith('.parquet'));
  const wanted = new Set(keys);
  const local = new Set(
    (
      await readdir(root, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [];
        throw err;
      })
    )
      .filter((e) => e.isFile() && e.name.endsWith('.parquet'))
      .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join('/')),
  );
  const result: LakeCacheSync = { downloaded: 0, kept: 0, removed: 0 };
  for (const key of keys) {
    if (local.has(key)) {
      result.kept++;
      continue;
    }
    const target = resolve(root, ...key.split('/'));
    if (!target.startsWith(root + sep)) throw cloudErrors.create('CLD_LAKE_OPEN', `object key outside the cache: ${key}`);
    await mkdir(dirname(target), { recursive: true });
    // Fetch beside the target, then rename: a crash never leaves a truncated file under a valid key.
    const partial = `${target}.partial`;
    try {
      await source.download(key, partial);
      await rename(partial, target);
    } catch (err) {
      throw cloudErrors.create('CLD_LAKE_OPEN', `fetching ${key}: ${errorMessage(err)}`, err);
    } finally {
      await rm(partial, { force: true });
    }
    result.downloaded++;
  }
  for (const key of local) {
    if (wanted.has(key)) continue;
    await rm(resolve(root, ...key.split('/')), { force: true });
    result.removed++;
  }
  return result;
}

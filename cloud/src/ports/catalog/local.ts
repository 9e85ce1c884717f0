// The local catalog: one JSON document beside the lake, so the local engine reads the same tables and
// partitions that Glue would hold in AWS. Writes are atomic (temp file, fsync, rename) and serialized
// within one process; one writer process per lake (the sink) is assumed, as for the lake itself.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { sleep } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import { mergeColumns } from './columns.ts';
import { createKeyedMutex, lockFile } from './partition-lock.ts';
import type { CatalogPartition, CatalogReader, CatalogTable, CatalogTableState, VersionedCatalog } from './port.ts';

/** Relative path of the catalog document inside the lake folder; not a data key (no .parquet). */
export const LOCAL_CATALOG_FILE = '_catalog/catalog.json';

/** A lock file older than this was left by a killed process. */
const LOCK_STALE_MS = 10_000;

interface CatalogDocument {
  version: 1;
  tables: Record<string, CatalogTableState>;
}

export interface LocalCatalog extends VersionedCatalog, CatalogReader {
  readonly path: string;
}

export function createLocalCatalog(lakeDir: string): LocalCatalog {
  const path = join(resolve(lakeDir), ...LOCAL_CATALOG_FILE.split('/'));
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const inProcess = createKeyedMutex();

  const load = async (): Promise<CatalogDocument> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, tables: {} };
      throw cloudErrors.create('CLD_CATALOG', `${path}: ${errorMessage(err)}`, err);
    }
    try {
      const doc = JSON.parse(text) as CatalogDocument;
      if (doc.version !== 1 || typeof doc.tables !== 'object' || doc.tables === null) throw new Error('not a version 1 catalog');
      return doc;
    } catch (err) {
      throw cloudErrors.create('CLD_CATALOG', `${path}: ${errorMessage(err)}`, err);
    }
  };

  const save = async (doc: CatalogDocument): Promise<void> => {
    const tmp = `${path}.${randomUUID()}.tmp`;
    try {
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(`${JSON.stringify(doc, null, 1)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      const dir = await open(dirname(path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw cloudErrors.create('CLD_CATALOG', `${path}: ${errorMessage(err)}`, err);
    }
  };

  /**
   * Across processes (the sink, `cloud process`, `sink compact`, several catalogs in one process): a
   * lock file taken with O_EXCL around each read-modify-write. A lock older than LOCK_STALE_MS was left
   * by a killed process and is broken.
   */
  const lock = async (): Promise<() => Promise<void>> => {
    const lockPath = `${path}.lock`;
    await mkdir(dirname(path), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(lockPath, 'wx');
        await handle.close();
        return () => rm(lockPath, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw cloudErrors.create('CLD_CATALOG', `${lockPath}: ${errorMessage(err)}`, err);
        const age = await stat(lockPath).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > LOCK_STALE_MS) await rm(lockPath, { force: true });
        else await sleep(Math.min(50, 2 + attempt));
      }
    }
  };

  /** One read-modify-write at a time, so concurrent calls never lose each other's changes. */
  const update = <T>(change: (doc: CatalogDocument) => T | Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(cloudErrors.create('CLD_CLOSED', 'local catalog'));
    const run = queue.then(async () => {
      const unlock = await lock();
      try {
        const doc = await load();
        const before = JSON.stringify(doc);
        const result = await change(doc);
        // Nothing changed (a table ensured again): no write, no fsync.
        if (JSON.stringify(doc) !== before) await save(doc);
        return result;
      } finally {
        await unlock();
      }
    });
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    path,
    ensureTable(table: CatalogTable) {
      return update((doc) => {
        const existing = doc.tables[table.name];
        if (existing === undefined) {
          doc.tables[table.name] = {
            name: table.name,
            ...(table.description === undefined ? {} : { description: table.description }),
            columns: [...table.columns],
            partitionKeys: [...table.partitionKeys],
            location: table.location,
            partitions: [],
          };
          return;
        }
        const keys = existing.partitionKeys.map((k) => k.name).join(',');
        if (keys !== table.partitionKeys.map((k) => k.name).join(',')) {
          throw cloudErrors.create('CLD_CATALOG', `${table.name}: partition keys cannot change (${keys})`);
        }
        existing.columns = mergeColumns(table.name, existing.columns, table.columns).columns;
        existing.location = table.location;
      });
    },
    addPartitions(tableName: string, partitions: readonly CatalogPartition[]) {
      if (partitions.length === 0) return Promise.resolve();
      return update((doc) => {
        const table = doc.tables[tableName];
        if (table === undefined) throw cloudErrors.create('CLD_CATALOG', `table ${tableName} is not in the catalog`);
        const known = new Set(table.partitions.map((p) => p.values.join('/')));
        for (const p of partitions) {
          if (p.values.length !== table.partitionKeys.length) {
            throw cloudErrors.create('CLD_CATALOG', `${tableName}: partition ${p.values.join('/')} needs ${table.partitionKeys.length} values`);
          }
          const id = p.values.join('/');
          if (known.has(id)) continue;
          known.add(id);
          table.partitions.push({ values: [...p.values], location: p.location });
        }
      });
    },
    replacePartitions(tableName: string, partitions: readonly CatalogPartition[]) {
      if (partitions.length === 0) return Promise.resolve();
      return update((doc) => {
        const table = doc.tables[tableName];
        if (table === undefined) throw cloudErrors.create('CLD_CATALOG', `table ${tableName} is not in the catalog`);
        const byId = new Map(table.partitions.map((p, i) => [p.values.join('/'), i]));
        for (const p of partitions) {
          if (p.values.length !== table.partitionKeys.length) {
            throw cloudErrors.create('CLD_CATALOG', `${tableName}: partition ${p.values.join('/')} needs ${table.partitionKeys.length} values`);
          }
          const next: CatalogPartition = { values: [...p.values], location: p.location, ...(p.parameters === undefined ? {} : { parameters: { ...p.parameters } }) };
          const at = byId.get(p.values.join('/'));
          if (at === undefined) {
            byId.set(p.values.join('/'), table.partitions.length);
            table.partitions.push(next);
          } else table.partitions[at] = next;
        }
      });
    },
    async partitions(tableName: string) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'local catalog');
      await queue;
      return (await load()).tables[tableName]?.partitions ?? [];
    },
    async partition(tableName: string, values: readonly string[]) {
      const id = values.join('/');
      return (await this.partitions(tableName)).find((p) => p.values.join('/') === id);
    },
    async lockPartition(tableName: string, values: readonly string[]) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'local catalog');
      const name = `${tableName}+${values.map(encodeURIComponent).join('+')}`;
      const releaseHere = await inProcess(name);
      try {
        const releaseFile = await lockFile(join(dirname(path), 'locks', `${name}.lock`));
        return async () => {
          try {
            await releaseFile();
          } finally {
            await releaseHere();
          }
        };
      } catch (err) {
        await releaseHere();
        throw err;
      }
    },
    async tables() {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'local catalog');
      await queue;
      return Object.values((await load()).tables);
    },
    async close() {
      closed = true;
      await queue;
    },
  };
}

// The local catalog: one JSON document beside the lake, so the local engine reads the same tables and
// partitions that Glue would hold in AWS. Writes are atomic (temp file, fsync, rename) and serialized
// within one process; one writer process per lake (the sink) is assumed, as for the lake itself.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { cloudErrors, errorMessage } from '../../errors.ts';
import { mergeColumns } from './columns.ts';
import type { CatalogPartition, CatalogPort, CatalogReader, CatalogTable, CatalogTableState } from './port.ts';

/** Relative path of the catalog document inside the lake folder; not a data key (no .parquet). */
export const LOCAL_CATALOG_FILE = '_catalog/catalog.json';

interface CatalogDocument {
  version: 1;
  tables: Record<string, CatalogTableState>;
}

export interface LocalCatalog extends CatalogPort, CatalogReader {
  readonly path: string;
}

export function createLocalCatalog(lakeDir: string): LocalCatalog {
  const path = join(resolve(lakeDir), ...LOCAL_CATALOG_FILE.split('/'));
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

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

  /** One read-modify-write at a time, so concurrent calls never lose each other's changes. */
  const update = <T>(change: (doc: CatalogDocument) => T | Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(cloudErrors.create('CLD_CLOSED', 'local catalog'));
    const run = queue.then(async () => {
      const doc = await load();
      const result = await change(doc);
      await save(doc);
      return result;
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

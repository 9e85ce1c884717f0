// Writes one lake file: Parquet into a scratch file of the object store, then put() makes it the object.
import { CityError } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import type { ObjectStore } from '../ports/store/index.ts';
import type { VersionedCatalog } from '../ports/catalog/port.ts';
import { dataFileName, footerMetadata, partitionPrefix, tableSchema, type LakePartition, type LakeTable } from './layout.ts';
import { copyObject, filesAt, presentIn } from './versions.ts';
import { createParquetWriter, type ParquetRows, type ParquetWriter } from './parquet.ts';

export interface LakeFile {
  table: LakeTable;
  partition: LakePartition;
  topic: string;
  kafkaPartition: number;
  /** Offsets of the first and last record in the file; they name the file and go in its footer. */
  firstOffset: bigint;
  lastOffset: bigint;
  rows: ParquetRows;
}

export interface LakeWriter {
  readonly store: ObjectStore;
  /** Writes the file durably and returns its key; rewriting the same source position replaces it. */
  write(file: LakeFile): Promise<string>;
  /** Waits for writes under way, then closes the Parquet writer (if it made it) and the store. */
  close(): Promise<void>;
}

export interface LakeWriterOptions {
  /**
   * With a catalog, a file goes into its partition's current location as the catalog has it (a
   * compaction may have switched it to a version), read and written while the partition is locked, so
   * a switch comes wholly before or after it: a file is never left behind where no reader looks.
   */
  catalog?: VersionedCatalog | undefined;
}

export async function createLakeWriter(store: ObjectStore, parquet?: ParquetWriter, options: LakeWriterOptions = {}): Promise<LakeWriter> {
  const writer = parquet ?? (await createParquetWriter());
  const catalog = options.catalog;
  const locationOf = async (file: LakeFile): Promise<string> => {
    const base = partitionPrefix(file.table, file.partition);
    if (catalog === undefined) return base;
    try {
      return (await catalog.partition(file.table, [file.partition.event_date, String(file.partition.event_hour)]))?.location ?? base;
    } catch (err) {
      throw err instanceof CityError ? err : cloudErrors.create('CLD_CATALOG', errorMessage(err), err);
    }
  };
  const pending = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  const write = async (file: LakeFile): Promise<string> => {
    if (closing !== undefined) throw cloudErrors.create('CLD_CLOSED', 'lake writer');
    const name = dataFileName(file.topic, file.kafkaPartition, file.firstOffset);
    const base = partitionPrefix(file.table, file.partition);
    const scratch = await store.scratchPath(base + name);
    try {
      await writer.write(tableSchema(file.table), file.rows, scratch, { metadata: footerMetadata(file) });
    } catch (err) {
      await store.discard(scratch).catch(() => undefined);
      throw err instanceof CityError ? err : cloudErrors.create('CLD_PARQUET_WRITE', `${base + name}: ${errorMessage(err)}`, err);
    }
    const put = async (folder: string): Promise<void> => {
      try {
        await store.put(folder + name, scratch);
      } catch (err) {
        await store.discard(scratch).catch(() => undefined);
        throw err instanceof CityError ? err : cloudErrors.create('CLD_STORE_PUT', `${folder + name}: ${errorMessage(err)}`, err);
      }
    };
    if (catalog === undefined) {
      await put(base);
      return base + name;
    }
    // The location is read and the file put while the partition is held, so a compaction cannot switch
    // it in between; after the release it is checked once more for a switch by a process the lock does
    // not reach (Glue's lock is per process).
    const values = [file.partition.event_date, String(file.partition.event_hour)];
    const release = await catalog.lockPartition(file.table, values).catch((err: unknown) => {
      void store.discard(scratch).catch(() => undefined);
      throw err instanceof CityError ? err : cloudErrors.create('CLD_CATALOG', errorMessage(err), err);
    });
    let folder: string;
    try {
      folder = await locationOf(file);
      await put(folder);
    } finally {
      await release();
    }
    const now = await locationOf(file);
    if (now !== folder && !presentIn(base, await filesAt(store, now), name, false)) {
      await copyObject(store, folder + name, now + name);
      return now + name;
    }
    return folder + name;
  };

  return {
    store,
    write(file) {
      const run = write(file);
      const settled = run.catch(() => undefined);
      pending.add(settled);
      void settled.finally(() => pending.delete(settled));
      return run;
    },
    close() {
      // A write still running holds the DuckDB connection: closing it under the write would fail it.
      closing ??= (async () => {
        await Promise.all(pending);
        if (parquet === undefined) writer.close();
        await store.close();
      })();
      return closing;
    },
  };
}

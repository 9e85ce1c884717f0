// Writes one lake file: Parquet into a scratch file of the object store, then put() makes it the object.
import { CityError, SCHEMA_VERSION, type CellValue } from '@city/protocol';
import { cloudErrors, errorMessage } from './errors.ts';
import { dataFileKey, tableSchema, type LakePartition, type LakeTable } from './layout.ts';
import { createParquetWriter, type ParquetWriter } from './parquet.ts';
import type { ObjectStore } from './store.ts';

export interface LakeFile {
  table: LakeTable;
  partition: LakePartition;
  topic: string;
  kafkaPartition: number;
  /** Offsets of the first and last record in the file; they name the file and go in its footer. */
  firstOffset: bigint;
  lastOffset: bigint;
  rows: readonly (readonly CellValue[])[];
}

export interface LakeWriter {
  readonly store: ObjectStore;
  /** Writes the file durably and returns its key; rewriting the same source position replaces it. */
  write(file: LakeFile): Promise<string>;
  close(): Promise<void>;
}

export async function createLakeWriter(store: ObjectStore, parquet?: ParquetWriter): Promise<LakeWriter> {
  const writer = parquet ?? (await createParquetWriter());
  return {
    store,
    async write(file) {
      const key = dataFileKey(file.table, file.partition, {
        topic: file.topic,
        partition: file.kafkaPartition,
        firstOffset: file.firstOffset,
      });
      const scratch = await store.scratchPath(key);
      try {
        await writer.write(tableSchema(file.table), file.rows, scratch, {
          metadata: {
            'city.schema_version': String(SCHEMA_VERSION),
            'city.kafka.topic': file.topic,
            'city.kafka.partition': String(file.kafkaPartition),
            'city.kafka.first_offset': file.firstOffset.toString(),
            'city.kafka.last_offset': file.lastOffset.toString(),
          },
        });
      } catch (err) {
        await store.discard(scratch).catch(() => undefined);
        throw err instanceof CityError ? err : cloudErrors.create('CLD_PARQUET_WRITE', `${key}: ${errorMessage(err)}`, err);
      }
      try {
        await store.put(key, scratch);
      } catch (err) {
        await store.discard(scratch).catch(() => undefined);
        throw err instanceof CityError ? err : cloudErrors.create('CLD_STORE_PUT', `${key}: ${errorMessage(err)}`, err);
      }
      return key;
    },
    async close() {
      if (parquet === undefined) writer.close();
      await store.close();
    },
  };
}

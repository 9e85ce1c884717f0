// The catalog port: where the sink registers the tables and partitions it writes, so engines (DuckDB
// locally, Athena in AWS) find them without a crawler. Adapters: local (beside the lake), Glue.
import type { Column } from '@city/protocol';

export interface CatalogTable {
  /** Table name as engines see it, e.g. `vehicle` (curated), `raw_vehicle`, `deadletter`. */
  name: string;
  description?: string;
  columns: readonly Column[];
  partitionKeys: readonly Column[];
  /** Key prefix of the table's files in the object store, ending in '/'. */
  location: string;
}

export interface CatalogPartition {
  /** Values of the table's partition keys, in key order, as strings. */
  values: string[];
  /** Key prefix of the partition's files, ending in '/'. */
  location: string;
}

export interface CatalogPort {
  /** Creates the table if missing; updates it for additive column changes; idempotent. */
  ensureTable(table: CatalogTable): Promise<void>;
  /** Registers partitions; one already registered counts as success; idempotent. */
  addPartitions(table: string, partitions: readonly CatalogPartition[]): Promise<void>;
  close(): Promise<void>;
}

/** What a catalog holds for a table, for readers (the local query engine). */
export interface CatalogTableState extends CatalogTable {
  partitions: CatalogPartition[];
}

/** A catalog the local engine can read back (the local catalog; Glue is read by Athena instead). */
export interface CatalogReader {
  tables(): Promise<CatalogTableState[]>;
}

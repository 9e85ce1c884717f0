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
  /** Partition parameters (Glue's Parameters): e.g. whether a processed partition is final. */
  parameters?: Record<string, string>;
}

export interface CatalogPort {
  /** Creates the table if missing; updates it for additive column changes; idempotent. */
  ensureTable(table: CatalogTable): Promise<void>;
  /** Registers partitions; one already registered counts as success; idempotent. */
  addPartitions(table: string, partitions: readonly CatalogPartition[]): Promise<void>;
  /**
   * Points partitions at new locations (and parameters), creating those not registered yet. The switch
   * is what makes a rewrite atomic for every reader that goes through the catalog: files are written
   * under a fresh location first, the old location stays readable until it is deleted after a grace period.
   */
  replacePartitions?(table: string, partitions: readonly CatalogPartition[]): Promise<void>;
  /** The partitions registered for a table (empty when the table is not there). */
  partitions?(table: string): Promise<CatalogPartition[]>;
  /** One registered partition by its values, or undefined (the sink asks before and after each write). */
  partition?(table: string, values: readonly string[]): Promise<CatalogPartition | undefined>;
  /**
   * Holds a partition exclusively until the returned release is called: a lake writer holds it from
   * reading the partition's location to the file being there, a compaction from its last carry-over to
   * its switch, so no append can land in a location in the instant it is replaced. The local catalog's
   * lock holds across processes; Glue's only within one process (see versions.ts).
   */
  lockPartition?(table: string, values: readonly string[]): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** A catalog that can switch partition locations (both adapters here; optional for other ports). */
export type VersionedCatalog = CatalogPort & Required<Pick<CatalogPort, 'replacePartitions' | 'partitions' | 'partition' | 'lockPartition'>>;

export function isVersionedCatalog(catalog: CatalogPort | undefined): catalog is VersionedCatalog {
  return (
    typeof catalog?.replacePartitions === 'function' &&
    typeof catalog.partitions === 'function' &&
    typeof catalog.partition === 'function' &&
    typeof catalog.lockPartition === 'function'
  );
}

/** What a catalog holds for a table, for readers (the local query engine). */
export interface CatalogTableState extends CatalogTable {
  partitions: CatalogPartition[];
}

/** A catalog the local engine can read back (the local catalog; Glue is read by Athena instead). */
export interface CatalogReader {
  tables(): Promise<CatalogTableState[]>;
}

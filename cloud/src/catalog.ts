// The catalog port: where the sink registers the tables and partitions it writes, so engines (DuckDB
// locally, Athena in AWS) find them without a crawler. Implementations: local (beside the lake), Glue.
import type { Column } from '@city/protocol';
import { createGlueCatalog, type GlueCatalogOptions } from './catalog-glue.ts';
import { createLocalCatalog } from './catalog-local.ts';
import { cloudErrors } from './errors.ts';

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

/** Capped exponential backoff for AWS calls: the SDK retries too, this covers longer throttling spells. */
export interface RetryPolicy {
  /** Attempts in total, at least 1. */
  attempts: number;
  initialMs: number;
  maxMs: number;
}

export const AWS_RETRY_DEFAULTS: RetryPolicy = { attempts: 6, initialMs: 200, maxMs: 10_000 };

const RETRYABLE_AWS_ERRORS = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'InternalServiceException',
  'InternalServerException',
  'ServiceUnavailableException',
  'ResourceNumberLimitExceededException',
  'ConcurrentModificationException',
  'OperationTimeoutException',
]);

export function isRetryableAwsError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof e.name === 'string' && RETRYABLE_AWS_ERRORS.has(e.name)) return true;
  if (e.$retryable !== undefined && e.$retryable !== null) return true;
  const status = e.$metadata?.httpStatusCode;
  return typeof status === 'number' && (status === 429 || status >= 500);
}

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** attempt);
}

/** Not unref'd on purpose: someone awaits it, and a CLI polling Athena must not exit mid-wait. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `call`, retrying retryable AWS errors with capped exponential backoff; rethrows the last error. */
export async function withAwsRetry<T>(policy: RetryPolicy, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt + 1 >= policy.attempts || !isRetryableAwsError(err)) throw err;
      await sleep(backoffMs(policy, attempt));
    }
  }
}

/** Which catalog the sink (or a tool) registers in: the local one beside the lake, or AWS Glue. */
export type CatalogConfig = { type: 'local'; lakeDir: string } | ({ type: 'glue' } & GlueCatalogOptions);

export function createCatalog(config: CatalogConfig): CatalogPort {
  switch (config.type) {
    case 'local':
      return createLocalCatalog(config.lakeDir);
    case 'glue': {
      const { type: _type, ...glue } = config;
      return createGlueCatalog(glue);
    }
    default:
      throw cloudErrors.create('CLD_INVALID_OPTIONS', `/catalog/type must be local or glue`);
  }
}

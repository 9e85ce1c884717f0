// Error catalog of the cloud package: every error the sink, lake and CLI raise carries one of these codes.
import { defineErrors } from '@city/protocol';

export const cloudErrors = defineErrors({
  CLD_INVALID_OPTIONS: { message: 'invalid options', canRetry: false },
  CLD_USAGE: { message: 'invalid command line', canRetry: false },
  CLD_CLOSED: { message: 'component is closed', canRetry: false },
  CLD_ALREADY_STARTED: { message: 'component is already started', canRetry: false },
  CLD_KAFKA_START: { message: 'could not start consuming from Kafka', canRetry: true },
  CLD_KAFKA_CRASH: { message: 'Kafka consumer crashed', canRetry: true },
  CLD_PARQUET_WRITE: { message: 'writing a Parquet file failed', canRetry: true },
  CLD_STORE_PUT: { message: 'storing an object failed', canRetry: true },
  CLD_COMMIT: { message: 'committing Kafka offsets failed', canRetry: true },
  CLD_FLUSH_BUG: { message: 'flush failed unexpectedly', canRetry: false },
  CLD_CLOSE_TIMEOUT: { message: 'close did not finish before its deadline', canRetry: false },
  CLD_LAKE_OPEN: { message: 'opening the lake failed', canRetry: true },
  CLD_QUERY: { message: 'query failed', canRetry: false },
  CLD_CATALOG: { message: 'catalog request failed', canRetry: true },
  CLD_ATHENA: { message: 'Athena request failed', canRetry: true },
  CLD_ATHENA_QUERY: { message: 'Athena query did not succeed', canRetry: false },
  CLD_NAMED_QUERY: { message: 'bad named query', canRetry: false },
});

export type CloudErrorCode = keyof typeof cloudErrors.catalog;

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

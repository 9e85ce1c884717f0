// Error catalog of the cloud package: every error the sink, the lake, the ports and the CLI raise
// carries one of these codes (errors.test.ts checks that each is used and none is missing).
import { defineErrors, lifecycleErrorsFrom } from '@city/protocol';

export const cloudErrors = defineErrors('CLD', {
  CLD_INVALID_OPTIONS: { message: 'invalid options', canRetry: false, usage: true, action: 'fix the option the message names (field path and rule)' },
  CLD_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: "see the command's --help" },
  CLD_CLOSED: { message: 'component is closed', canRetry: false, action: 'create a new one; a closed component does not start again' },
  CLD_ALREADY_STARTED: { message: 'component is already started', canRetry: false, action: 'call start() once' },
  CLD_KAFKA_START: {
    message: 'could not start consuming from Kafka',
    canRetry: true,
    action: 'check the brokers; when topics are missing, create them (npm run kafka -- topics --brokers HOST:PORT)',
  },
  CLD_KAFKA_CRASH: { message: 'Kafka consumer crashed', canRetry: true, action: 'the consumer restarts by itself when it can; otherwise restart the sink (nothing committed is lost)' },
  CLD_PARQUET_WRITE: { message: 'writing a Parquet file failed', canRetry: true, action: 'retried with backoff; check the scratch disk (space, permissions)' },
  CLD_STORE_PUT: { message: 'storing an object failed', canRetry: true, action: 'retried with backoff; check the lake folder or the S3 bucket and its credentials' },
  CLD_STORE_DELETE: {
    message: 'deleting an object failed',
    canRetry: true,
    action: 'compaction finishes the deletion on its next run; check s3:DeleteObject or the folder permissions',
  },
  CLD_COMMIT: { message: 'committing Kafka offsets failed', canRetry: true, action: 'retried with backoff; the files are written, a replay rewrites the same ones' },
  CLD_FLUSH_BUG: { message: 'flush failed unexpectedly', canRetry: false, action: 'the sink stopped committing (nothing is lost); report the logged error and restart it' },
  CLD_CLOSE_TIMEOUT: {
    message: 'close did not finish before its deadline',
    canRetry: false,
    action: 'nothing is lost: uncommitted records are read again by the next run; raise closeTimeoutMs to wait longer',
  },
  CLD_LAKE_OPEN: { message: 'opening the lake failed', canRetry: true, action: 'check the lake folder (--lake) and that its files are readable' },
  CLD_LAKE_READ: { message: 'reading lake files failed', canRetry: true, action: 'check that the files are readable Parquet (a file written by hand or truncated breaks compaction of its partition)' },
  CLD_COMPACTION: {
    message: 'compaction failed',
    canRetry: true,
    action: 'the sink logs it and tries again next round (the lake stays consistent); run sink compact by hand to see the error',
  },
  CLD_QUERY: { message: 'query failed', canRetry: false, action: 'fix the SQL; table names are the event kinds, deadletter and raw_<kind>' },
  CLD_CATALOG: { message: 'catalog request failed', canRetry: true, action: 'retried with backoff; check the catalog file or the Glue permissions the README lists' },
  CLD_ATHENA: { message: 'Athena request failed', canRetry: true, action: 'check the workgroup, database, region and credentials' },
  CLD_ATHENA_QUERY: { message: 'Athena query did not succeed', canRetry: false, action: "read Athena's reason in the message and fix the query or its permissions" },
  CLD_NAMED_QUERY: { message: 'bad named query', canRetry: false, usage: true, action: 'list the names and their parameters with npm run query -- --list' },
  CLD_DASHBOARD_PAGE: { message: 'the dashboard page is missing or did not build', canRetry: false, action: 'build it with npm run dashboard:build (needs npm ci at the repository root) and read the Vite output in the message' },
  CLD_DASHBOARD_LISTEN: { message: 'the dashboard could not listen', canRetry: true, action: 'pick a free port with --port (0 picks one) or stop what holds it' },
});

export type CloudErrorCode = (typeof cloudErrors.codes)[number];

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The lifecycle's refusals as cloud errors. */
export const lifecycleErrors = lifecycleErrorsFrom(cloudErrors, { alreadyStarted: 'CLD_ALREADY_STARTED', closed: 'CLD_CLOSED', timeout: 'CLD_CLOSE_TIMEOUT' });

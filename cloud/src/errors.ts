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
  CLD_KAFKA_TLS: {
    message: 'the TLS handshake with Kafka failed',
    canRetry: true,
    action: 'the message names the cause: an untrusted broker certificate (check security.tls.caFile), a plaintext port, or a TLS listener without security.tls',
  },
  CLD_KAFKA_AUTH: {
    message: 'Kafka refused the SASL authentication',
    canRetry: true,
    action: 'fix the user, the password (or token) file or variable, or the mechanism; nothing was consumed',
  },
  CLD_KAFKA_SECRET: {
    message: 'cannot read a Kafka secret',
    canRetry: false,
    action: 'create the file or set the variable the message names (security.sasl.passwordFile, security.tls.caFile, …)',
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
  CLD_HTTP_LISTEN: { message: 'the health listener could not listen', canRetry: false, action: 'pick a free [HOST:]PORT for --http (or SINK_HTTP in the image)' },
  CLD_PROCESSING: {
    message: 'building a processed partition failed',
    canRetry: true,
    action: 'the partition keeps its previous build (readers see no change); read the engine error in the message and run sink process again',
  },
  CLD_LIVE_DEFINITIONS: { message: 'a live KPI definition names a column or aggregate that does not exist', canRetry: false, action: 'fix cloud/src/live/definitions.ts; the message names the KPI and the column' },
  CLD_LIVE_PRODUCE: { message: 'Kafka did not take the live engine output', canRetry: true, action: 'nothing is committed for that tick, so nothing is lost; check the brokers and that the live topics exist (npm run kafka -- topics)' },
  CLD_POWERBI_TOKEN: { message: 'could not get a Microsoft Entra token for Power BI', canRetry: true, action: 'check the tenant id, client id and secret of the app registration (and that the secret has not expired)' },
  CLD_POWERBI_REQUEST: { message: 'Power BI refused the request', canRetry: false, action: "read Power BI's error body in the message: a missing permission (the app needs Dataset.ReadWrite.All and workspace access), a wrong workspace or dataset, or rows that do not match the table" },
  CLD_POWERBI_DEPRECATED: {
    message: 'Power BI no longer creates push or streaming datasets here (FeatureDeprecatedError)',
    canRetry: false,
    action: 'use an existing dataset, or the Fabric Eventstream output (--output eventstream); see Connect Power BI in the README',
  },
  CLD_POWERBI_UNAVAILABLE: { message: 'Power BI did not answer or kept failing', canRetry: true, action: 'rows were retried with backoff and then counted as dropped; check the network and the Power BI service status' },
  CLD_EVENTSTREAM: { message: 'invalid Fabric Eventstream connection string', canRetry: false, usage: true, action: 'copy the Kafka endpoint connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=…) from the Eventstream custom endpoint source' },
  CLD_NAMED_QUERY: { message: 'bad named query', canRetry: false, usage: true, action: 'list the names and their parameters with npm run query -- --list' },
  CLD_WAREHOUSE: { message: 'warehouse request failed', canRetry: true, action: 'check the warehouse connection (PostgreSQL URL, PGlite folder, Redshift workgroup or cluster, secret, region); retried with backoff where a retry can help' },
  CLD_WAREHOUSE_SQL: { message: 'warehouse statement failed', canRetry: false, action: "read the engine's error in the message (Redshift's for the failed sub-statement); nothing of the batch was applied" },
  CLD_WAREHOUSE_SCHEMA: {
    message: 'warehouse table cannot follow the protocol',
    canRetry: false,
    action: 'a column changed type: only added columns are applied by themselves; migrate the column by hand (or drop the table and load it again)',
  },
  CLD_WAREHOUSE_OBJECT: { message: 'lake object skipped by the warehouse loader', canRetry: false, action: 'the object is unreadable or corrupt (reason in the message); fix or remove it, the next load picks it up' },
  CLD_DASHBOARD_PAGE: { message: 'the dashboard page is missing or did not build', canRetry: false, action: 'build it with npm run dashboard:build (needs npm ci at the repository root) and read the Vite output in the message' },
  CLD_DASHBOARD_LISTEN: { message: 'the dashboard could not listen', canRetry: true, action: 'pick a free port with --port (0 picks one) or stop what holds it' },
});

export type CloudErrorCode = (typeof cloudErrors.codes)[number];

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The lifecycle's refusals as cloud errors. */
export const lifecycleErrors = lifecycleErrorsFrom(cloudErrors, { alreadyStarted: 'CLD_ALREADY_STARTED', closed: 'CLD_CLOSED', timeout: 'CLD_CLOSE_TIMEOUT' });

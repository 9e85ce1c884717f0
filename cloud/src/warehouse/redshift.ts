// The warehouse on Amazon Redshift through the Data API: Serverless (workgroup) or a provisioned cluster,
// credentials from a Secrets Manager secret or IAM (a cluster then needs the database user). A
// transaction is one BatchExecuteStatement (the Data API runs its statements as one transaction); every
// statement is polled with DescribeStatement (capped backoff) until FINISHED, FAILED or ABORTED; results
// are read page by page with GetStatementResult. Retried: throttling, too many active statements or
// sessions, 5xx, and a batch that lost a serializable isolation conflict (it ran in full or not at all).
// Our own cap bounds the statements in flight, below the account's quota.
import {
  BatchExecuteStatementCommand,
  CancelStatementCommand,
  DescribeStatementCommand,
  ExecuteStatementCommand,
  GetStatementResultCommand,
  RedshiftDataClient,
  type ColumnMetadata,
  type DescribeStatementResponse,
  type Field,
} from '@aws-sdk/client-redshift-data';
import { Type, type Static } from '@sinclair/typebox';
import { defineOptions, type DeepPartial } from '@city/protocol';
import { cloudErrors, errorMessage } from '../errors.ts';
import { AWS_RETRY_DEFAULTS, awsErrorName, backoff, isRetryableAwsError, RetryPolicySchema, type RetryPolicy } from '../ports/aws-retry.ts';
import type { LakeValue, QueryResult } from '../ports/query/port.ts';
import type { Warehouse, WarehouseStep } from './port.ts';
import { SCHEMA_NAME } from './postgres.ts';
import { quoteIdent } from './schema.ts';
import { isoTimestamp } from './values.ts';

export const RedshiftWarehouseSchema = Type.Object(
  {
    database: Type.String({ minLength: 1, maxLength: 127 }),
    /** Redshift Serverless workgroup; or clusterIdentifier for a provisioned cluster. */
    workgroupName: Type.Optional(Type.String({ minLength: 3, maxLength: 64 })),
    clusterIdentifier: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    /** Secrets Manager secret with the database credentials; without it, IAM. */
    secretArn: Type.Optional(Type.String({ pattern: '^arn:' })),
    /** Database user for IAM temporary credentials on a cluster. */
    dbUser: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    schema: Type.String({ pattern: SCHEMA_NAME.source }),
    region: Type.Optional(Type.String({ minLength: 1 })),
    pollInitialMs: Type.Integer({ minimum: 1, maximum: 600_000 }),
    pollMaxMs: Type.Integer({ minimum: 1, maximum: 600_000 }),
    /** Deadline for one statement or batch; after it the statement is cancelled and the call fails. */
    timeoutMs: Type.Integer({ minimum: 1, maximum: 24 * 3600_000 }),
    /** Statements submitted and not finished, at most (the Data API's quota is per account). */
    maxInFlight: Type.Integer({ minimum: 1, maximum: 500 }),
    retry: RetryPolicySchema,
  },
  { additionalProperties: false },
);

export type RedshiftWarehouseConfig = Static<typeof RedshiftWarehouseSchema>;
export type RedshiftWarehouseOptions = DeepPartial<RedshiftWarehouseConfig> & { database: string; client?: RedshiftDataClient };

const redshiftOptions = defineOptions({
  schema: RedshiftWarehouseSchema,
  defaults: { schema: 'public', pollInitialMs: 100, pollMaxMs: 5_000, timeoutMs: 30 * 60_000, maxInFlight: 8, retry: AWS_RETRY_DEFAULTS },
  check: (o) => {
    if ((o.workgroupName === undefined) === (o.clusterIdentifier === undefined)) return 'give exactly one of /workgroupName and /clusterIdentifier';
    if (o.clusterIdentifier !== undefined && o.secretArn === undefined && o.dbUser === undefined) return 'a cluster needs /secretArn or /dbUser (IAM)';
    if (o.workgroupName !== undefined && o.dbUser !== undefined) return '/dbUser is for clusters; Serverless with IAM maps the caller to a user';
    if (o.pollMaxMs < o.pollInitialMs) return '/pollMaxMs must be at least /pollInitialMs';
    return undefined;
  },
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', `redshift: ${detail}`),
});

export const REDSHIFT_DEFAULTS = redshiftOptions.defaults;

/** Data API errors a later attempt can get past. */
const RETRYABLE = new Set(['ThrottlingException', 'ActiveStatementsExceededException', 'ActiveSessionsExceededException', 'ActiveWaitingRequestsExceededException', 'InternalServerException']);

export function isRetryableRedshiftError(err: unknown): boolean {
  const name = awsErrorName(err);
  if (RETRYABLE.has(name)) return true;
  // ValidationException and friends are 4xx: retrying the same request cannot help.
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return (typeof status === 'number' && (status === 429 || status >= 500)) || (name === 'Error' && isRetryableAwsError(err));
}

/** Redshift's error 1023: a concurrent transaction won; the whole batch was rolled back and may run again. */
export const isSerializableViolation = (message: string): boolean => /serializable isolation violation|\b1023\b/i.test(message);

export interface RedshiftWarehouse extends Warehouse {
  /** Statements submitted and not yet finished (never above maxInFlight). */
  readonly inFlight: number;
}

export function createRedshiftWarehouse(options: RedshiftWarehouseOptions): RedshiftWarehouse {
  const { client: givenClient, ...data } = options;
  const o = redshiftOptions.resolve(data);
  const client = givenClient ?? new RedshiftDataClient(o.region === undefined ? {} : { region: o.region });
  const owned = givenClient === undefined;
  const poll: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, initialMs: o.pollInitialMs, maxMs: o.pollMaxMs };
  const target = {
    Database: o.database,
    ...(o.workgroupName === undefined ? { ClusterIdentifier: o.clusterIdentifier } : { WorkgroupName: o.workgroupName }),
    ...(o.secretArn === undefined ? {} : { SecretArn: o.secretArn }),
    ...(o.dbUser === undefined ? {} : { DbUser: o.dbUser }),
  };
  let closed = false;
  let inFlight = 0;
  const waiting: (() => void)[] = [];

  const acquire = async () => {
    while (inFlight >= o.maxInFlight) await new Promise<void>((resolve) => waiting.push(resolve));
    inFlight++;
  };
  const release = () => {
    inFlight--;
    waiting.shift()?.();
  };

  /** One Data API call, retried while the error is one a retry can get past. */
  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (attempt + 1 < o.retry.attempts && isRetryableRedshiftError(err)) {
          await backoff(o.retry, attempt);
          continue;
        }
        throw cloudErrors.create('CLD_WAREHOUSE', `${what}: ${awsErrorName(err)}: ${errorMessage(err)}`, err);
      }
    }
  };

  /** Polls until the statement ends; FAILED and ABORTED become errors carrying Redshift's message. */
  const waitFor = async (id: string): Promise<DescribeStatementResponse> => {
    const deadline = Date.now() + o.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const d = await call('DescribeStatement', () => client.send(new DescribeStatementCommand({ Id: id })));
      if (d.Status === 'FINISHED') return d;
      if (d.Status === 'FAILED' || d.Status === 'ABORTED') return d;
      if (Date.now() >= deadline) {
        await client.send(new CancelStatementCommand({ Id: id })).catch(() => undefined);
        throw cloudErrors.create('CLD_WAREHOUSE', `statement ${id} still ${d.Status ?? 'unknown'} after ${o.timeoutMs} ms; cancelled`);
      }
      await backoff(poll, attempt);
    }
  };

  /** The failed sub-statement of a batch, for the error message: which statement, and Redshift's reason. */
  const failure = (d: DescribeStatementResponse): string => {
    const failed = (d.SubStatements ?? []).find((s) => s.Status === 'FAILED' || s.Status === 'ABORTED');
    const where = failed === undefined ? '' : ` in ${failed.Id} (${(failed.QueryString ?? '').slice(0, 200)})`;
    return `${d.Status}${where}: ${failed?.Error ?? d.Error ?? 'no error given'}`;
  };

  const checkOpen = () => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'redshift warehouse');
  };

  return {
    engine: 'redshift',
    dialect: 'redshift',
    schema: o.schema,
    canCopyCsv: false,
    get inFlight() {
      return inFlight;
    },
    async transaction(steps: readonly WarehouseStep[]) {
      checkOpen();
      const sqls = steps.map((s) => {
        if ('sql' in s) return s.sql;
        throw cloudErrors.create('CLD_WAREHOUSE_SQL', `Redshift loads rows from S3 (COPY … MANIFEST), not from a local CSV (${s.copyCsv.table})`);
      });
      if (sqls.length === 0) return;
      for (let attempt = 0; ; attempt++) {
        await acquire();
        let d: DescribeStatementResponse;
        try {
          const submitted = await call('BatchExecuteStatement', () =>
            client.send(new BatchExecuteStatementCommand({ ...target, Sqls: sqls, StatementName: `city-warehouse-${sqls.length}` })),
          );
          if (submitted.Id === undefined) throw cloudErrors.create('CLD_WAREHOUSE', 'BatchExecuteStatement returned no Id');
          d = await waitFor(submitted.Id);
        } finally {
          release();
        }
        if (d.Status === 'FINISHED') return;
        const message = failure(d);
        if (attempt + 1 < o.retry.attempts && isSerializableViolation(message)) {
          await backoff(o.retry, attempt);
          continue;
        }
        throw cloudErrors.create('CLD_WAREHOUSE_SQL', `batch ${d.Id} ${message}`);
      }
    },
    async query(sql: string): Promise<QueryResult> {
      checkOpen();
      // Each Data API call is its own session: outside `public`, the schema goes on the search path in a
      // batch of two, and the rows are the second sub-statement's (<id>:2).
      const batch = o.schema === 'public' ? undefined : [`SET search_path TO ${quoteIdent(o.schema)}`, sql];
      await acquire();
      let d: DescribeStatementResponse;
      try {
        const submitted =
          batch === undefined
            ? await call('ExecuteStatement', () => client.send(new ExecuteStatementCommand({ ...target, Sql: sql })))
            : await call('BatchExecuteStatement', () => client.send(new BatchExecuteStatementCommand({ ...target, Sqls: batch })));
        if (submitted.Id === undefined) throw cloudErrors.create('CLD_WAREHOUSE', 'ExecuteStatement returned no Id');
        d = await waitFor(submitted.Id);
      } finally {
        release();
      }
      if (d.Status !== 'FINISHED') throw cloudErrors.create('CLD_WAREHOUSE_SQL', `statement ${d.Id} ${failure(d)}`);
      const sub = batch === undefined ? undefined : (d.SubStatements ?? [])[1];
      if (batch !== undefined && sub === undefined) throw cloudErrors.create('CLD_WAREHOUSE', `batch ${d.Id} reported no second sub-statement`);
      if ((sub ?? d).HasResultSet !== true) return { columns: [], rows: [] };
      const id = (sub?.Id ?? d.Id) as string;
      let columns: ColumnMetadata[] = [];
      const rows: Record<string, LakeValue>[] = [];
      let nextToken: string | undefined;
      do {
        const page = await call('GetStatementResult', () =>
          client.send(new GetStatementResultCommand({ Id: id, ...(nextToken === undefined ? {} : { NextToken: nextToken }) })),
        );
        if (page.ColumnMetadata !== undefined && page.ColumnMetadata.length > 0) columns = page.ColumnMetadata;
        for (const record of page.Records ?? []) {
          const row: Record<string, LakeValue> = {};
          columns.forEach((c, i) => {
            row[c.name ?? c.label ?? `_${i}`] = redshiftValue(record[i], c.typeName ?? 'varchar');
          });
          rows.push(row);
        }
        nextToken = page.NextToken;
      } while (nextToken !== undefined && nextToken !== '');
      return { columns: columns.map((c, i) => c.name ?? c.label ?? `_${i}`), rows };
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) client.destroy();
    },
  };
}

/** A Data API field as the local engines give it: timestamps ISO, NUMERIC as a number. */
export function redshiftValue(field: Field | undefined, typeName: string): LakeValue {
  if (field === undefined || field.isNull === true) return null;
  if (field.booleanValue !== undefined) return field.booleanValue;
  if (field.longValue !== undefined) return field.longValue;
  if (field.doubleValue !== undefined) return field.doubleValue;
  if (field.stringValue !== undefined) {
    const type = typeName.toLowerCase();
    if (type.startsWith('timestamp')) return isoTimestamp(field.stringValue);
    if (type === 'numeric' || type === 'decimal') return Number(field.stringValue);
    if (type === 'int8' || type === 'int4' || type === 'int2') {
      const n = Number(field.stringValue);
      return Number.isSafeInteger(n) ? n : field.stringValue;
    }
    return field.stringValue;
  }
  return null;
}

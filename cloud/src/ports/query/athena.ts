// The Athena query adapter: StartQueryExecution (workgroup, database, idempotency token) → poll
// GetQueryExecution with capped exponential backoff → page GetQueryResults. Values come back as text;
// they are typed from ResultSetMetadata so results look like the local DuckDB engine's.
import { randomUUID } from 'node:crypto';
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type ColumnInfo,
} from '@aws-sdk/client-athena';
import { Type, type Static } from '@sinclair/typebox';
import { defineOptions, type DeepPartial } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
import { AWS_RETRY_DEFAULTS, backoff, RetryPolicySchema, withAwsRetry, type RetryPolicy } from '../aws-retry.ts';
import type { LakeValue, QueryResult } from './port.ts';

/** Options of the Athena engine (data only; `client` is passed beside them). */
export const AthenaEngineSchema = Type.Object(
  {
    workGroup: Type.String({ pattern: '^[a-zA-Z0-9._-]{1,128}$' }),
    /** Glue database the queries' table names resolve in. */
    database: Type.String({ minLength: 1, maxLength: 255 }),
    /** Data catalog; AwsDataCatalog (Glue) by default. */
    catalog: Type.String({ minLength: 1, maxLength: 256 }),
    /** s3:// folder for results, when the workgroup does not enforce its own. */
    outputLocation: Type.Optional(Type.String({ pattern: '^s3://' })),
    region: Type.Optional(Type.String({ minLength: 1 })),
    /** Polling backoff: doubles from initial up to max while the query is queued or running. */
    pollInitialMs: Type.Integer({ minimum: 1, maximum: 600_000 }),
    pollMaxMs: Type.Integer({ minimum: 1, maximum: 600_000 }),
    /** Deadline for one query; after it the query is stopped and the call fails. */
    timeoutMs: Type.Integer({ minimum: 1, maximum: 24 * 3600_000 }),
    /** Rows per GetQueryResults page (Athena allows up to 1000). */
    pageSize: Type.Integer({ minimum: 1, maximum: 1000 }),
    retry: RetryPolicySchema,
  },
  { additionalProperties: false },
);

export type AthenaEngineConfig = Static<typeof AthenaEngineSchema>;

export type AthenaEngineOptions = DeepPartial<AthenaEngineConfig> & { workGroup: string; database: string; client?: AthenaClient };

const athenaOptions = defineOptions({
  schema: AthenaEngineSchema,
  defaults: { catalog: 'AwsDataCatalog', pollInitialMs: 100, pollMaxMs: 5_000, timeoutMs: 30 * 60_000, pageSize: 1000, retry: AWS_RETRY_DEFAULTS },
  check: (o) => (o.pollMaxMs < o.pollInitialMs ? '/pollMaxMs must be at least /pollInitialMs' : undefined),
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', `athena: ${detail}`),
});

export const ATHENA_DEFAULTS = athenaOptions.defaults;

export interface AthenaQueryResult extends QueryResult {
  queryExecutionId: string;
  /** Athena's type of each column, e.g. varchar, bigint, timestamp. */
  types: string[];
  /** Bytes Athena scanned (what it bills). */
  dataScannedBytes: number;
}

export interface AthenaEngine {
  /** Runs one statement. `token` makes a retried submission the same query (32–128 characters). */
  query(sql: string, options?: { token?: string }): Promise<AthenaQueryResult>;
  close(): Promise<void>;
}

/** A fresh idempotency token: 32 hex characters, the shortest Athena accepts. */
export function newRequestToken(): string {
  return randomUUID().replaceAll('-', '');
}

export function createAthenaEngine(options: AthenaEngineOptions): AthenaEngine {
  const { client: givenClient, ...data } = options;
  const o = athenaOptions.resolve(data);
  const retry = o.retry;
  const poll: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, initialMs: o.pollInitialMs, maxMs: o.pollMaxMs };
  const client = givenClient ?? new AthenaClient(o.region === undefined ? {} : { region: o.region });
  const owned = givenClient === undefined;
  let closed = false;

  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await withAwsRetry(retry, run);
    } catch (err) {
      throw cloudErrors.create('CLD_ATHENA', `${what}: ${errorMessage(err)}`, err);
    }
  };

  const query = async (sql: string, queryOptions: { token?: string } = {}): Promise<AthenaQueryResult> => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'athena engine');
    const token = queryOptions.token ?? newRequestToken();
    if (token.length < 32 || token.length > 128) {
      throw cloudErrors.create('CLD_INVALID_OPTIONS', `athena: token must be 32 to 128 characters, got ${token.length}`);
    }
    const started = await call('StartQueryExecution', () =>
      client.send(
        new StartQueryExecutionCommand({
          QueryString: sql,
          WorkGroup: o.workGroup,
          ClientRequestToken: token,
          QueryExecutionContext: { Database: o.database, Catalog: o.catalog },
          ...(o.outputLocation === undefined ? {} : { ResultConfiguration: { OutputLocation: o.outputLocation } }),
        }),
      ),
    );
    const id = started.QueryExecutionId;
    if (id === undefined) throw cloudErrors.create('CLD_ATHENA', 'StartQueryExecution returned no QueryExecutionId');

    const deadline = Date.now() + o.timeoutMs;
    let statementType: string | undefined;
    let scanned = 0;
    for (let attempt = 0; ; attempt++) {
      const got = await call('GetQueryExecution', () => client.send(new GetQueryExecutionCommand({ QueryExecutionId: id })));
      const execution = got.QueryExecution;
      const state = execution?.Status?.State;
      statementType = execution?.StatementType;
      scanned = execution?.Statistics?.DataScannedInBytes ?? 0;
      if (state === 'SUCCEEDED') break;
      if (state === 'FAILED' || state === 'CANCELLED') {
        const reason = execution?.Status?.AthenaError?.ErrorMessage ?? execution?.Status?.StateChangeReason ?? 'no reason given';
        throw cloudErrors.create('CLD_ATHENA_QUERY', `${id} ${state}: ${reason}`);
      }
      if (Date.now() >= deadline) {
        // Stop it so it does not keep scanning (and billing) after we gave up.
        await client.send(new StopQueryExecutionCommand({ QueryExecutionId: id })).catch(() => undefined);
        throw cloudErrors.create('CLD_ATHENA_QUERY', `${id} still ${state ?? 'unknown'} after ${o.timeoutMs} ms; stopped`);
      }
      await backoff(poll, attempt);
    }

    let columns: string[] = [];
    let types: string[] = [];
    const rows: Record<string, LakeValue>[] = [];
    let nextToken: string | undefined;
    let first = true;
    do {
      const page = await call('GetQueryResults', () =>
        client.send(
          new GetQueryResultsCommand({ QueryExecutionId: id, MaxResults: o.pageSize, ...(nextToken === undefined ? {} : { NextToken: nextToken }) }),
        ),
      );
      let pageRows = page.ResultSet?.Rows ?? [];
      if (first) {
        const info: ColumnInfo[] = page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
        columns = info.map((c, i) => c.Name ?? c.Label ?? `_${i}`);
        types = info.map((c) => (c.Type ?? 'varchar').toLowerCase());
        // For SELECT (statement type DML) the first row of the first page repeats the column names.
        if (statementType === 'DML' && pageRows.length > 0) pageRows = pageRows.slice(1);
        first = false;
      }
      for (const row of pageRows) {
        const out: Record<string, LakeValue> = {};
        columns.forEach((name, i) => {
          out[name] = athenaValue(row.Data?.[i]?.VarCharValue, types[i] ?? 'varchar');
        });
        rows.push(out);
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined && nextToken !== '');
    return { columns, rows, queryExecutionId: id, types, dataScannedBytes: scanned };
  };

  return {
    query,
    async close() {
      if (closed) return;
      closed = true;
      if (owned) client.destroy();
    },
  };
}

/** Athena's text value as the local engine would return it; NULL arrives as a missing VarCharValue. */
export function athenaValue(text: string | undefined, type: string): LakeValue {
  if (text === undefined) return null;
  const base = type.replace(/\(.*$/, '').trim();
  switch (base) {
    case 'boolean':
      return text === 'true';
    case 'tinyint':
    case 'smallint':
    case 'integer':
    case 'int':
    case 'bigint': {
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case 'double':
    case 'float':
    case 'real':
    case 'decimal':
      return Number(text);
    case 'timestamp':
    case 'timestamp with time zone': {
      // Every lake timestamp is a UTC instant (Parquet isAdjustedToUTC), which Athena shows zoneless:
      // give the ISO form the local engine gives for TIMESTAMPTZ.
      const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?)\d*(?: UTC)?$/.exec(text);
      const date = m ? new Date(`${m[1]}T${m[2]}Z`) : undefined;
      return date !== undefined && !Number.isNaN(date.getTime()) ? date.toISOString() : text;
    }
    default:
      return text;
  }
}

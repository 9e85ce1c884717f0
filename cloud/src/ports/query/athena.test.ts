// Contract tests: Athena cannot run here, so the requests are checked against the shapes the Athena API
// reference gives (WorkGroup, QueryExecutionContext, ClientRequestToken of 32–128 characters, NextToken
// paging, the header row of SELECT results) and the polling against its states.
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type GetQueryResultsCommandInput,
  type Row,
} from '@aws-sdk/client-athena';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { athenaValue, createAthenaEngine, newRequestToken } from './athena.ts';
import { namedQuerySql } from './named.ts';

const athena = mockClient(AthenaClient);
const FAST = { pollInitialMs: 1, pollMaxMs: 4, retry: { attempts: 4, initialMs: 1, maxMs: 2 } };
const engine = (extra: Record<string, unknown> = {}) =>
  createAthenaEngine({ workGroup: 'city', database: 'city_lake', client: new AthenaClient({}), ...FAST, ...extra });

const row = (...values: (string | undefined)[]): Row => ({ Data: values.map((v) => (v === undefined ? {} : { VarCharValue: v })) });
const COLUMN_INFO = [
  { Name: 'station', Type: 'varchar' },
  { Name: 'samples', Type: 'bigint' },
  { Name: 'pm25', Type: 'double' },
  { Name: 'hour_start', Type: 'timestamp' },
  { Name: 'congested', Type: 'boolean' },
];
const succeeded = { QueryExecution: { Status: { State: 'SUCCEEDED' as const }, StatementType: 'DML' as const, Statistics: { DataScannedInBytes: 1234 } } };

afterEach(() => {
  athena.reset();
});

describe('Athena query adapter', () => {
  it('starts the query in the workgroup and database with an idempotency token, polls, and pages the results', async () => {
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-1' });
    athena
      .on(GetQueryExecutionCommand)
      .resolvesOnce({ QueryExecution: { Status: { State: 'QUEUED' } } })
      .resolvesOnce({ QueryExecution: { Status: { State: 'RUNNING' } } })
      .resolves(succeeded);
    athena.on(GetQueryResultsCommand).callsFake((input: GetQueryResultsCommandInput) => {
      if (input.NextToken === undefined) {
        return {
          ResultSet: {
            ResultSetMetadata: { ColumnInfo: COLUMN_INFO },
            // The first row of the first page of a SELECT is the header.
            Rows: [row('station', 'samples', 'pm25', 'hour_start', 'congested'), row('aq-1', '2', '15.5', '2024-05-01 10:00:00.000', 'true')],
          },
          NextToken: 'page-2',
        };
      }
      expect(input.NextToken).toBe('page-2');
      return { ResultSet: { Rows: [row('aq-2', '9007199254740993', undefined, '2024-05-01 11:00:00.000', 'false')] } };
    });

    const sql = namedQuerySql('air_quality_by_station_hour', 'athena');
    const e = engine();
    const result = await e.query(sql);
    await e.close();

    const start = athena.commandCalls(StartQueryExecutionCommand)[0]?.args[0].input;
    expect(start?.QueryString).toBe(sql);
    expect(start?.WorkGroup).toBe('city');
    expect(start?.QueryExecutionContext).toEqual({ Database: 'city_lake', Catalog: 'AwsDataCatalog' });
    expect(start?.ClientRequestToken?.length).toBeGreaterThanOrEqual(32);
    expect(start?.ClientRequestToken?.length).toBeLessThanOrEqual(128);
    expect(athena.commandCalls(GetQueryExecutionCommand).map((c) => c.args[0].input)).toEqual([
      { QueryExecutionId: 'q-1' },
      { QueryExecutionId: 'q-1' },
      { QueryExecutionId: 'q-1' },
    ]);
    const pages = athena.commandCalls(GetQueryResultsCommand).map((c) => c.args[0].input);
    expect(pages).toHaveLength(2);
    for (const p of pages) {
      expect(p.QueryExecutionId).toBe('q-1');
      expect(p.MaxResults).toBeLessThanOrEqual(1000);
    }

    expect(result).toEqual({
      queryExecutionId: 'q-1',
      columns: ['station', 'samples', 'pm25', 'hour_start', 'congested'],
      types: ['varchar', 'bigint', 'double', 'timestamp', 'boolean'],
      dataScannedBytes: 1234,
      rows: [
        { station: 'aq-1', samples: 2, pm25: 15.5, hour_start: '2024-05-01T10:00:00.000Z', congested: true },
        // Beyond 2^53 stays exact as text; a missing VarCharValue is NULL.
        { station: 'aq-2', samples: '9007199254740993', pm25: null, hour_start: '2024-05-01T11:00:00.000Z', congested: false },
      ],
    });
  });

  it('keeps the first row for statements without a header (DDL)', async () => {
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-ddl' });
    athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'SUCCEEDED' }, StatementType: 'DDL' } });
    athena.on(GetQueryResultsCommand).resolves({
      ResultSet: { ResultSetMetadata: { ColumnInfo: [{ Name: 'partition', Type: 'string' }] }, Rows: [row('event_date=2024-05-01/event_hour=10')] },
    });
    const result = await engine().query('SHOW PARTITIONS vehicle');
    expect(result.rows).toEqual([{ partition: 'event_date=2024-05-01/event_hour=10' }]);
  });

  it('reports FAILED and CANCELLED with the reason', async () => {
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-bad' });
    athena.on(GetQueryExecutionCommand).resolves({
      QueryExecution: {
        Status: { State: 'FAILED', StateChangeReason: 'SYNTAX_ERROR', AthenaError: { ErrorMessage: "line 1:8: Column 'nope' cannot be resolved" } },
      },
    });
    await expect(engine().query('SELECT nope FROM vehicle')).rejects.toMatchObject({
      code: 'CLD_ATHENA_QUERY',
      message: expect.stringMatching(/q-bad FAILED: line 1:8: Column 'nope' cannot be resolved/),
    });
    athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'CANCELLED', StateChangeReason: 'stopped by admin' } } });
    await expect(engine().query('SELECT 1')).rejects.toThrow(/CANCELLED: stopped by admin/);
    expect(athena.commandCalls(GetQueryResultsCommand)).toHaveLength(0);
  });

  it('backs off on throttling and reuses the same token, so a retried start is the same query', async () => {
    athena
      .on(StartQueryExecutionCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException', $metadata: {} }))
      .resolves({ QueryExecutionId: 'q-2' });
    athena
      .on(GetQueryExecutionCommand)
      .rejectsOnce(Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: {} }))
      .resolves(succeeded);
    athena.on(GetQueryResultsCommand).resolves({ ResultSet: { ResultSetMetadata: { ColumnInfo: [{ Name: 'n', Type: 'integer' }] }, Rows: [row('n'), row('7')] } });
    const token = newRequestToken();
    const result = await engine().query('SELECT 7 AS n', { token });
    expect(result.rows).toEqual([{ n: 7 }]);
    const starts = athena.commandCalls(StartQueryExecutionCommand).map((c) => c.args[0].input.ClientRequestToken);
    expect(starts).toEqual([token, token]);
    expect(athena.commandCalls(GetQueryExecutionCommand)).toHaveLength(2);
  });

  it('stops a query that outlives its deadline', async () => {
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-slow' });
    athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'RUNNING' } } });
    athena.on(StopQueryExecutionCommand).resolves({});
    await expect(engine({ timeoutMs: 20 }).query('SELECT 1')).rejects.toThrow(/q-slow still RUNNING .*stopped/);
    expect(athena.commandCalls(StopQueryExecutionCommand).map((c) => c.args[0].input)).toEqual([{ QueryExecutionId: 'q-slow' }]);
  });

  it('validates options and tokens, naming what is wrong', async () => {
    expect(() => createAthenaEngine({ workGroup: 'city', database: '' })).toThrow(/database/);
    expect(() => createAthenaEngine({ workGroup: 'bad group!', database: 'd' })).toThrow(/workGroup/);
    expect(() => engine({ pageSize: 5000 })).toThrow(/pageSize/);
    await expect(engine().query('SELECT 1', { token: 'short' })).rejects.toThrow(/token must be 32 to 128 characters/);
    expect(newRequestToken()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('maps Athena types to the local engine’s values', () => {
    expect(athenaValue('12', 'integer')).toBe(12);
    expect(athenaValue('1.5', 'decimal(10,2)')).toBe(1.5);
    expect(athenaValue('false', 'boolean')).toBe(false);
    expect(athenaValue('2024-05-01 10:05:00.000 UTC', 'timestamp with time zone')).toBe('2024-05-01T10:05:00.000Z');
    expect(athenaValue('2024-05-01', 'date')).toBe('2024-05-01');
    expect(athenaValue(undefined, 'varchar')).toBeNull();
  });
});

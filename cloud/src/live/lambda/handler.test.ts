// The Power BI Lambda invoked locally: the Redshift Data API is a stand-in (aws-sdk-client-mock) that
// follows the documented shapes (statement ids, batch sub-statements `<id>:<n>`, DescribeStatement
// statuses, GetStatementResult with ColumnMetadata and typed Field values) and runs the SQL for real on
// PostgreSQL (a batch in one transaction, on one session); Power BI is the contract server that enforces
// the push dataset limits.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { silentLog } from '@city/protocol';
import { startDataApi } from '../../../../test/support/data-api.ts';
import { startPowerBiServer } from '../../../../test/support/powerbi.ts';
import { onTeardown } from '../../../../test/support/teardown.ts';
import { TEST_POSTGRES_URL, testSchema } from '../../../../test/support/warehouse.ts';
import { staticTokenSource } from '../powerbi/token.ts';
import { clientSecretFromExtension, createHandler, lambdaEnv } from './handler.ts';

async function sql(text: string): Promise<pg.QueryResult> {
  const db = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await db.connect();
  try {
    return await db.query(text);
  } finally {
    await db.end();
  }
}

const env = (schema: string, apiBase: string) => ({
  REDSHIFT_WORKGROUP: 'city-wg',
  REDSHIFT_DATABASE: 'dev',
  REDSHIFT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:wh',
  WAREHOUSE_SCHEMA: schema,
  WAREHOUSE_CREATE_TABLES: 'true',
  POWERBI_API: apiBase,
  POWERBI_DATASET: 'City live',
  POWERBI_WORKSPACE_ID: 'ws-1',
  SYNC_MAX_ROWS: '100',
  AWS_LAMBDA_FUNCTION_NAME: 'city-powerbi',
});

const kpiInsert = (schema: string, key: string, emitted: string, vehicles: number) =>
  `INSERT INTO "${schema}".kpi_windows VALUES ('traffic_district_5m', '${key}', '2026-12-01T10:00:00Z', '2026-12-01T10:05:00Z', 1, true, '${emitted}', '{"vehicles": ${vehicles}, "unknown_figure": 1}')`;
const alertInsert = (schema: string, id: string, emitted: string) =>
  `INSERT INTO "${schema}".alerts VALUES ('${id}', 'congestion', 'Centrum', 'raised', 'warning', '2026-12-01T10:01:00Z', NULL, 1.8, 1.5, 'travel time index 1.8', '${emitted}')`;

describe('the Power BI Lambda', () => {
  it('pushes new rows once, keeps the watermark on a Power BI failure and pushes them on the next run', async () => {
    const schema = testSchema('pbl');
    await sql(`CREATE SCHEMA "${schema}"`);
    const powerbi = await startPowerBiServer();
    onTeardown(() => powerbi.close());
    const { client } = startDataApi();
    const handler = createHandler({ env: env(schema, powerbi.apiBase), dataClient: client, tokens: staticTokenSource(powerbi.token), log: silentLog, retry: { attempts: 2, initialMs: 5, maxMs: 10 } });
    const watermark = async () => (await sql(`SELECT source_table, watermark, rows_pushed FROM "${schema}".powerbi_watermark ORDER BY source_table`)).rows;

    // First run creates the tables (nothing to push yet) and the dataset.
    const empty = await handler({}, { getRemainingTimeInMillis: () => 60_000 });
    expect(empty.tables.map((t) => t.read)).toEqual([0, 0]);
    expect(await watermark()).toEqual([]);

    await sql(kpiInsert(schema, 'Centrum', '2026-12-01T10:05:01Z', 42));
    await sql(kpiInsert(schema, 'Oostpark', '2026-12-01T10:05:02Z', 7));
    await sql(alertInsert(schema, 'congestion:Centrum:1', '2026-12-01T10:01:00Z'));
    const first = await handler({}, {});
    expect(first.tables).toEqual([
      { source: 'alerts', read: 1, pushed: 1, watermarkBefore: null, watermarkAfter: '2026-12-01T10:01:00.000Z' },
      { source: 'kpi_windows', read: 2, pushed: 2, watermarkBefore: null, watermarkAfter: '2026-12-01T10:05:02.000Z' },
    ]);
    const kpis = powerbi.rows('City live', 'traffic_district_5m');
    expect(kpis.map((r) => [r['key'], r['vehicles'], r['final']])).toEqual([['Centrum', 42, true], ['Oostpark', 7, true]]);
    expect(kpis[0]).not.toHaveProperty('unknown_figure');
    expect(powerbi.rows('City live', 'alerts')).toMatchObject([{ alert_id: 'congestion:Centrum:1', value: 1.8, cleared_at: null }]);

    // Nothing new: nothing pushed, watermark unchanged.
    const postsBefore = powerbi.counts.posts;
    const idle = await handler({}, {});
    expect(idle.tables.map((t) => [t.read, t.pushed])).toEqual([[0, 0], [0, 0]]);
    expect(powerbi.counts.posts).toBe(postsBefore);

    // Power BI fails every attempt: the run fails and the KPI watermark stays.
    await sql(kpiInsert(schema, 'Westpoort', '2026-12-01T10:10:00Z', 3));
    powerbi.failNext(2, 503, '{"error":{"code":"ServiceUnavailable"}}');
    await expect(handler({}, {})).rejects.toMatchObject({ code: 'CLD_POWERBI_UNAVAILABLE' });
    expect((await watermark()).map((r) => [r.source_table, (r.watermark as Date).toISOString()])).toEqual([
      ['alerts', '2026-12-01T10:01:00.000Z'],
      ['kpi_windows', '2026-12-01T10:05:02.000Z'],
    ]);
    expect(powerbi.rows('City live', 'traffic_district_5m')).toHaveLength(2);

    // The next run pushes it.
    const retried = await handler({}, {});
    expect(retried.tables[1]).toMatchObject({ read: 1, pushed: 1, watermarkAfter: '2026-12-01T10:10:00.000Z' });
    expect(powerbi.rows('City live', 'traffic_district_5m').map((r) => r['key'])).toEqual(['Centrum', 'Oostpark', 'Westpoort']);
    expect(powerbi.datasets()).toHaveLength(1);
  });

  it('a refused batch (4xx) is not retried and leaves the watermark', async () => {
    const schema = testSchema('pbl');
    await sql(`CREATE SCHEMA "${schema}"`);
    const powerbi = await startPowerBiServer();
    onTeardown(() => powerbi.close());
    const { client } = startDataApi();
    const handler = createHandler({ env: env(schema, powerbi.apiBase), dataClient: client, tokens: staticTokenSource(powerbi.token), log: silentLog, retry: { attempts: 2, initialMs: 5, maxMs: 10 } });
    await handler({}, {});
    await sql(alertInsert(schema, 'a1', '2026-12-01T10:01:00Z'));
    powerbi.failNext(1, 400, '{"error":{"code":"InvalidRequest","message":"bad row"}}');
    await expect(handler({}, {})).rejects.toThrow(/did not accept 1 of 1 rows.*bad row/);
    expect((await sql(`SELECT count(*)::int AS n FROM "${schema}".powerbi_watermark`)).rows[0]).toEqual({ n: 0 });
    expect((await handler({}, {})).tables[0]).toMatchObject({ read: 1, pushed: 1 });
  });

  it('pages rows and never splits rows of one emitted_at across runs', async () => {
    const schema = testSchema('pbl');
    await sql(`CREATE SCHEMA "${schema}"`);
    const powerbi = await startPowerBiServer();
    onTeardown(() => powerbi.close());
    const { client } = startDataApi();
    const handler = createHandler({ env: { ...env(schema, powerbi.apiBase), SYNC_MAX_ROWS: '2' }, dataClient: client, tokens: staticTokenSource(powerbi.token), log: silentLog });
    await handler({}, {});
    await sql(alertInsert(schema, 'a1', '2026-12-01T10:01:00Z'));
    await sql(alertInsert(schema, 'a2', '2026-12-01T10:02:00Z'));
    await sql(alertInsert(schema, 'a3', '2026-12-01T10:02:00Z'));
    await sql(alertInsert(schema, 'a4', '2026-12-01T10:03:00Z'));
    expect((await handler({}, {})).tables[0]).toMatchObject({ read: 1, watermarkAfter: '2026-12-01T10:01:00.000Z' });
    expect((await handler({}, {})).tables[0]).toMatchObject({ read: 2, watermarkAfter: '2026-12-01T10:02:00.000Z' });
    expect((await handler({}, {})).tables[0]).toMatchObject({ read: 1, watermarkAfter: '2026-12-01T10:03:00.000Z' });
    expect(powerbi.rows('City live', 'alerts').map((r) => r['alert_id'])).toEqual(['a1', 'a2', 'a3', 'a4']);
    // More rows of one emitted_at than a page holds: all of them in one run.
    for (const id of ['b1', 'b2', 'b3', 'b4', 'b5']) await sql(alertInsert(schema, id, '2026-12-01T10:04:00Z'));
    expect((await handler({}, {})).tables[0]).toMatchObject({ read: 5, pushed: 5, watermarkAfter: '2026-12-01T10:04:00.000Z' });
    expect((await handler({}, {})).tables[0]).toMatchObject({ read: 0 });
    expect(powerbi.rows('City live', 'alerts')).toHaveLength(9);
  });

  it('reads the environment and the client secret from the Secrets Manager extension', async () => {
    expect(() => lambdaEnv({ REDSHIFT_DATABASE: 'dev', POWERBI_DATASET: 'x' })).toThrow(/exactly one of REDSHIFT_WORKGROUP and REDSHIFT_CLUSTER/);
    expect(lambdaEnv({ REDSHIFT_CLUSTER: 'c', REDSHIFT_DATABASE: 'dev', POWERBI_DATASET: 'x', _HANDLER: 'index.handler' })).toMatchObject({ WAREHOUSE_SCHEMA: 'public', SYNC_MAX_ROWS: '50000' });
    const seen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers['x-aws-parameters-secrets-token'] as string | undefined);
      const url = new URL(req.url ?? '/', 'http://localhost');
      const id = url.searchParams.get('secretId');
      res.writeHead(id === 'arn:aws:secretsmanager:x:1:secret:plain' || id === 'arn:aws:secretsmanager:x:1:secret:json' ? 200 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ARN: id, SecretString: id?.endsWith('json') === true ? '{"clientSecret":"s3cr3t"}' : 'plain-secret' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTeardown(() => new Promise((resolve) => server.close(resolve)));
    const e = { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: String((server.address() as AddressInfo).port), AWS_SESSION_TOKEN: 'session' };
    expect(await clientSecretFromExtension('arn:aws:secretsmanager:x:1:secret:plain', e)).toBe('plain-secret');
    expect(await clientSecretFromExtension('arn:aws:secretsmanager:x:1:secret:json', e)).toBe('s3cr3t');
    await expect(clientSecretFromExtension('arn:aws:secretsmanager:x:1:secret:other', e)).rejects.toMatchObject({ code: 'CLD_POWERBI_TOKEN' });
    expect(seen).toEqual(['session', 'session', 'session']);
  });
});

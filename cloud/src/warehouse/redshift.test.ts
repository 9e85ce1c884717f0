// Contract tests of the Redshift adapter against a stand-in for the Data API (aws-sdk-client-mock) that
// follows the documented shapes: statement ids, batch sub-statements `<id>:<n>`, statuses SUBMITTED →
// PICKED → STARTED → FINISHED | FAILED | ABORTED (one step per DescribeStatement), GetStatementResult
// pages with NextToken and typed Field values, and the error classes (throttling, active statements,
// validation). The SQL runs for real on PostgreSQL, a batch in one transaction. Only what PostgreSQL
// lacks is translated, and checked on the way: Redshift's table attributes (DISTSTYLE, SORTKEY) are
// stripped, and COPY … FORMAT AS PARQUET MANIFEST reads the manifest from the lake's store, checks each
// entry's meta.content_length against the object and the staging table's columns against the Parquet
// file's (position and count), then loads the rows.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ActiveStatementsExceededException,
  BatchExecuteStatementCommand,
  CancelStatementCommand,
  DescribeStatementCommand,
  ExecuteStatementCommand,
  GetStatementResultCommand,
  RedshiftDataClient,
  ValidationException,
  type BatchExecuteStatementCommandInput,
  type ColumnMetadata,
  type ExecuteStatementCommandInput,
  type Field,
  type SubStatementData,
} from '@aws-sdk/client-redshift-data';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import pg from 'pg';
import { DuckDBInstance, quotedString } from '@duckdb/node-api';
import type { ObjectStore } from '../ports/store/port.ts';
import { copyFromCsv } from './postgres.ts';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3, type TestS3 } from '../../../test/support/s3.ts';
import { TEST_POSTGRES_URL, testSchema, writeCityLake } from '../../../test/support/warehouse.ts';
import { createS3Store } from '../ports/store/s3.ts';
import { createWarehouseLoader } from './loader.ts';
import { createRedshiftWarehouse } from './redshift.ts';
import { spectrumSchemaSql } from './spectrum.ts';
import { warehouseNamedQuery } from './queries.ts';
import { openLake } from '../ports/query/duckdb.ts';
import { NAMED_QUERIES, namedQuerySql } from '../ports/query/named.ts';
import { syncLakeCache, objectSource } from '../lake/reader.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { writeCityLake as writeProcessingLake } from '../../../test/support/city-lake.ts';
import { copyFile } from 'node:fs/promises';
import { filesAt } from '../lake/versions.ts';
import { createLocalCatalog } from '../ports/catalog/local.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { createDuckDBProcessing } from '../processing/engine.ts';
import { runProcessing } from '../processing/job.ts';

type Status = 'SUBMITTED' | 'PICKED' | 'STARTED' | 'FINISHED' | 'FAILED' | 'ABORTED';

interface Sub {
  id: string;
  sql: string;
  status: Status;
  error?: string;
  result?: { fields: pg.FieldDef[]; rows: unknown[][] };
}

interface Statement {
  id: string;
  status: Status;
  error?: string;
  describes: number;
  batch: boolean;
  subs: Sub[];
  schemaFault?: 'serializable';
}

interface FakeDataApiOptions {
  connectionString: string;
  /** Schema the session's search path starts in (Redshift's default is public). */
  schema: string;
  /** The lake, where COPY reads manifests and objects. */
  store: ObjectStore;
  pageSize?: number;
}

interface FakeDataApi {
  readonly mock: AwsClientStub<RedshiftDataClient>;
  readonly client: RedshiftDataClient;
  /** Every Sqls/Sql submitted, in order. */
  readonly submitted: string[][];
  /** Manifests COPY read, as parsed. */
  readonly manifests: { url: string; mandatory: boolean; meta: { content_length: number } }[][];
  /** Most statements running at once. */
  readonly maxRunning: number;
  /** Faults for the next calls: thrown from the next N submissions, or the next batch losing a conflict. */
  faults: { throttle: number; activeStatements: number; serializable: number };
  close(): Promise<void>;
}

const TERMINAL = new Set<Status>(['FINISHED', 'FAILED', 'ABORTED']);
const raw = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

const TYPE_NAMES: Record<number, string> = { 20: 'int8', 21: 'int2', 23: 'int4', 700: 'float4', 701: 'float8', 16: 'bool', 1700: 'numeric', 1184: 'timestamptz', 1114: 'timestamp', 1043: 'varchar', 25: 'text', 1082: 'date' };

function field(value: unknown, oid: number): Field {
  if (value === null || value === undefined) return { isNull: true };
  const text = String(value);
  if (oid === 20 || oid === 21 || oid === 23) return { longValue: Number(text) };
  if (oid === 700 || oid === 701) return { doubleValue: Number(text) };
  if (oid === 16) return { booleanValue: text === 't' };
  return { stringValue: text };
}

/** Redshift-only clauses PostgreSQL does not parse: table attributes. */
const stripTableAttributes = (sql: string): string => sql.replace(/\)\s*DISTSTYLE\s+AUTO(\s+SORTKEY\s*\([^)]*\))?\s*$/i, ')');

const COPY = /^COPY\s+("?[A-Za-z0-9_]+"?)\s+FROM\s+'([^']+)'\s+IAM_ROLE\s+(default|'[^']+')\s+FORMAT\s+AS\s+PARQUET\s+MANIFEST$/i;

function startFakeDataApi(options: FakeDataApiOptions): FakeDataApi {
  const mock = mockClient(RedshiftDataClient);
  const client = new RedshiftDataClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const statements = new Map<string, Statement>();
  const submitted: string[][] = [];
  const manifests: FakeDataApi['manifests'] = [];
  const faults = { throttle: 0, activeStatements: 0, serializable: 0 };
  let running = 0;
  let maxRunning = 0;
  const pageSize = options.pageSize ?? 7;
  const duck = DuckDBInstance.create(':memory:').then(async (instance) => ({ instance, connection: await instance.connect() }));

  const validateTarget = (input: { Database?: string; WorkgroupName?: string; ClusterIdentifier?: string; SecretArn?: string; DbUser?: string }) => {
    if (input.Database === undefined) throw new ValidationException({ message: 'Database is required', $metadata: { httpStatusCode: 400 } });
    if ((input.WorkgroupName === undefined) === (input.ClusterIdentifier === undefined)) {
      throw new ValidationException({ message: 'Either WorkgroupName or ClusterIdentifier is required', $metadata: { httpStatusCode: 400 } });
    }
    if (input.ClusterIdentifier !== undefined && input.SecretArn === undefined && input.DbUser === undefined) {
      throw new ValidationException({ message: 'SecretArn or DbUser is required for a cluster', $metadata: { httpStatusCode: 400 } });
    }
  };

  const submit = (sqls: string[], batch: boolean): { Id: string } => {
    if (faults.throttle > 0) {
      faults.throttle--;
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
    }
    if (faults.activeStatements > 0) {
      faults.activeStatements--;
      throw new ActiveStatementsExceededException({ message: 'Active statements exceeded the allowed quota (200).', $metadata: { httpStatusCode: 400 } });
    }
    if (sqls.length === 0 || (batch && sqls.length > 40)) throw new ValidationException({ message: `Sqls must hold 1 to 40 statements, got ${sqls.length}`, $metadata: { httpStatusCode: 400 } });
    submitted.push(sqls);
    const id = randomUUID();
    const statement: Statement = { id, status: 'SUBMITTED', describes: 0, batch, subs: sqls.map((sql, i) => ({ id: `${id}:${i + 1}`, sql, status: 'SUBMITTED' })) };
    if (batch && faults.serializable > 0 && sqls.some((s) => /^MERGE/i.test(s))) {
      faults.serializable--;
      statement.schemaFault = 'serializable';
    }
    statements.set(id, statement);
    running++;
    maxRunning = Math.max(maxRunning, running);
    return { Id: id };
  };

  const copyFromManifest = async (db: pg.Client, match: RegExpExecArray, scratch: string) => {
    const table = (match[1] as string).replaceAll('"', '');
    const url = match[2] as string;
    const root = options.store.root.replace(/\/?$/, '/');
    if (!url.startsWith(root)) throw new Error(`S3ServiceException: manifest ${url} is outside the lake ${root}`);
    const manifestPath = join(scratch, `${randomUUID()}.json`);
    await options.store.download!(url.slice(root.length), manifestPath);
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { entries: FakeDataApi['manifests'][number] };
    manifests.push(manifest.entries);
    const { rows: attrs } = await db.query<{ attname: string }>(
      `SELECT attname FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    );
    const { connection } = await duck;
    for (const entry of manifest.entries) {
      if (typeof entry.meta?.content_length !== 'number') throw new Error(`manifest entry ${entry.url} has no meta.content_length (required for Parquet)`);
      if (!entry.url.startsWith(root)) throw new Error(`S3ServiceException: ${entry.url} is outside the lake`);
      const local = join(scratch, `${randomUUID()}.parquet`);
      await options.store.download!(entry.url.slice(root.length), local);
      const size = (await stat(local)).size;
      if (size !== entry.meta.content_length) throw new Error(`content_length ${entry.meta.content_length} of ${entry.url} does not match its ${size} bytes`);
      const described = (await connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quotedString(local)})`)).getRowObjects().map((r) => String(r.column_name));
      if (described.length !== attrs.length || described.some((name, i) => name !== attrs[i]?.attname)) {
        throw new Error(`Spectrum Scan Error: file has ${described.length} columns (${described.join(',')}), table ${table} has ${attrs.length} (${attrs.map((a) => a.attname).join(',')})`);
      }
      const csv = join(scratch, `${randomUUID()}.csv`);
      await connection.run(`COPY (SELECT * FROM read_parquet(${quotedString(local)})) TO ${quotedString(csv)} (FORMAT csv, HEADER false)`);
      await copyFromCsv(db, `COPY "${table}" FROM STDIN WITH (FORMAT csv)`, { path: csv });
    }
  };

  const execute = async (statement: Statement) => {
    const db = new pg.Client({ connectionString: options.connectionString, types: raw, options: `-c search_path=${options.schema} -c TimeZone=UTC` });
    const scratch = await mkdtemp(join(tmpdir(), 'fake-redshift-'));
    await db.connect();
    let failedAt = -1;
    try {
      await db.query('BEGIN');
      for (const [i, sub] of statement.subs.entries()) {
        try {
          const copy = COPY.exec(sub.sql.trim());
          if (copy !== null) {
            await copyFromManifest(db, copy, scratch);
          } else {
            if (statement.schemaFault === 'serializable' && /^MERGE/i.test(sub.sql)) {
              throw new Error('ERROR: 1023 DETAIL: Serializable isolation violation on table - 104857, transactions forming the cycle are: 9001, 9002 (pid:4242)');
            }
            const result = await db.query({ text: stripTableAttributes(sub.sql), rowMode: 'array' });
            if (result.fields.length > 0) sub.result = { fields: result.fields, rows: result.rows as unknown[][] };
          }
          sub.status = 'FINISHED';
        } catch (err) {
          failedAt = i;
          sub.status = 'FAILED';
          sub.error = err instanceof Error ? err.message : String(err);
          throw err;
        }
      }
      await db.query('COMMIT');
      statement.status = 'FINISHED';
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      // The rest of a failed batch never ran; what ran before is rolled back.
      for (const [i, sub] of statement.subs.entries()) if (i > failedAt) sub.status = 'ABORTED';
      statement.status = 'FAILED';
      statement.error = err instanceof Error ? err.message : String(err);
    } finally {
      await db.end();
      await rm(scratch, { recursive: true, force: true });
      running--;
    }
  };

  mock.on(BatchExecuteStatementCommand).callsFake((input: BatchExecuteStatementCommandInput) => {
    validateTarget(input);
    return { ...submit(input.Sqls ?? [], true), CreatedAt: new Date() };
  });
  mock.on(ExecuteStatementCommand).callsFake((input: ExecuteStatementCommandInput) => {
    validateTarget(input);
    if (input.Sql === undefined) throw new ValidationException({ message: 'Sql is required', $metadata: { httpStatusCode: 400 } });
    return { ...submit([input.Sql], false), CreatedAt: new Date() };
  });
  mock.on(CancelStatementCommand).resolves({ Status: true });
  mock.on(DescribeStatementCommand).callsFake(async (input: { Id?: string }) => {
    const statement = statements.get(input.Id ?? '');
    if (statement === undefined) throw new ValidationException({ message: `Query does not exist: ${input.Id}`, $metadata: { httpStatusCode: 400 } });
    statement.describes++;
    if (!TERMINAL.has(statement.status)) {
      statement.status = statement.describes === 1 ? 'PICKED' : 'STARTED';
      if (statement.describes >= 3) await execute(statement);
    }
    const subs: SubStatementData[] = statement.subs.map((s) => ({
      Id: s.id,
      Status: s.status,
      QueryString: s.sql,
      HasResultSet: s.result !== undefined,
      ...(s.error === undefined ? {} : { Error: s.error }),
      ...(s.result === undefined ? {} : { ResultRows: s.result.rows.length }),
    }));
    const only = statement.subs[0] as Sub;
    return {
      Id: statement.id,
      Status: statement.status,
      ...(statement.error === undefined ? {} : { Error: statement.error }),
      ...(statement.batch ? { SubStatements: subs, HasResultSet: false } : { HasResultSet: only.result !== undefined, QueryString: only.sql }),
    };
  });
  mock.on(GetStatementResultCommand).callsFake((input: { Id?: string; NextToken?: string }) => {
    const id = input.Id ?? '';
    const [base, n] = id.split(':');
    const statement = statements.get(base as string);
    const sub = statement === undefined ? undefined : n === undefined ? (statement.batch ? undefined : statement.subs[0]) : statement.subs[Number(n) - 1];
    if (sub?.result === undefined) throw new ValidationException({ message: `Query ${id} has no result set`, $metadata: { httpStatusCode: 400 } });
    const start = input.NextToken === undefined ? 0 : Number(input.NextToken);
    const rows = sub.result.rows.slice(start, start + pageSize);
    const columns: ColumnMetadata[] = sub.result.fields.map((f) => ({ name: f.name, label: f.name, typeName: TYPE_NAMES[f.dataTypeID] ?? 'varchar' }));
    const next = start + pageSize < sub.result.rows.length ? String(start + pageSize) : undefined;
    return {
      // Column metadata comes with the first page.
      ...(start === 0 ? { ColumnMetadata: columns } : {}),
      Records: rows.map((r) => r.map((v, i) => field(v, (sub.result as { fields: pg.FieldDef[] }).fields[i]?.dataTypeID ?? 25))),
      TotalNumRows: sub.result.rows.length,
      ...(next === undefined ? {} : { NextToken: next }),
    };
  });

  return {
    mock,
    client,
    submitted,
    manifests,
    get maxRunning() {
      return maxRunning;
    },
    faults,
    async close() {
      mock.restore();
      client.destroy();
      const { instance, connection } = await duck;
      connection.closeSync();
      instance.closeSync();
    },
  };
}

const MIN = 60_000;
const FAST = { pollInitialMs: 1, pollMaxMs: 4, retry: { attempts: 4, initialMs: 1, maxMs: 2 } };
let s3: TestS3;
let seq = 0;

beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.stop();
});

const s3Store = (prefix: string) => createS3Store({ bucket: s3.bucket, prefix, endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials });

async function setup(extra: Record<string, unknown> = {}) {
  const schema = testSchema('rs');
  const prefix = `lake-${++seq}`;
  const store = s3Store(prefix);
  onTeardown(() => store.close());
  const fake = startFakeDataApi({ connectionString: TEST_POSTGRES_URL, schema: 'public', store });
  onTeardown(() => fake.close());
  const warehouse = createRedshiftWarehouse({ workgroupName: 'city', database: 'dev', schema, client: fake.client, ...FAST, ...extra });
  onTeardown(() => warehouse.close());
  // The schema exists before the adapter's first session sets its search path.
  await warehouse.transaction([{ sql: `CREATE SCHEMA IF NOT EXISTS "${schema}"` }]);
  return { schema, prefix, store, fake, warehouse };
}

describe('redshift warehouse options', () => {
  it('needs exactly one of a workgroup and a cluster, and a secret or a user on a cluster', () => {
    const client = new RedshiftDataClient({});
    onTeardown(() => client.destroy());
    expect(() => createRedshiftWarehouse({ database: 'dev', client })).toThrow(/exactly one of \/workgroupName and \/clusterIdentifier/);
    expect(() => createRedshiftWarehouse({ database: 'dev', workgroupName: 'city', clusterIdentifier: 'c1', client })).toThrow(/exactly one/);
    expect(() => createRedshiftWarehouse({ database: 'dev', clusterIdentifier: 'c1', client })).toThrow(/secretArn or \/dbUser/);
    expect(() => createRedshiftWarehouse({ database: 'dev', clusterIdentifier: 'c1', dbUser: 'loader', client })).not.toThrow();
    expect(() => createRedshiftWarehouse({ database: 'dev', workgroupName: 'city', secretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:x', client })).not.toThrow();
  });
});

describe('redshift spectrum schema', () => {
  it('sends CREATE EXTERNAL SCHEMA … FROM DATA CATALOG over the Glue database through the Data API, and refuses bad names', async () => {
    const client = new RedshiftDataClient({ region: 'eu-west-1' });
    const mock = mockClient(client);
    onTeardown(() => {
      mock.restore();
      client.destroy();
    });
    mock.on(BatchExecuteStatementCommand).resolves({ Id: 'a1b2c3d4-0000-4000-8000-000000000001', CreatedAt: new Date() });
    mock.on(DescribeStatementCommand).resolves({ Id: 'a1b2c3d4-0000-4000-8000-000000000001', Status: 'FINISHED', HasResultSet: false });
    const warehouse = createRedshiftWarehouse({ workgroupName: 'city', database: 'dev', client, ...FAST });
    onTeardown(() => warehouse.close());
    const sql = spectrumSchemaSql({ externalSchema: 'lake', glueDatabase: 'city_lake', iamRole: 'arn:aws:iam::123456789012:role/city-spectrum', region: 'eu-west-1' });
    await warehouse.transaction([{ sql }]);
    const sent = mock.commandCalls(BatchExecuteStatementCommand)[0]?.args[0].input;
    expect(sent).toMatchObject({ WorkgroupName: 'city', Database: 'dev', Sqls: [`CREATE EXTERNAL SCHEMA IF NOT EXISTS "lake" FROM DATA CATALOG DATABASE 'city_lake' REGION 'eu-west-1' IAM_ROLE 'arn:aws:iam::123456789012:role/city-spectrum'`] });
    expect(spectrumSchemaSql({ externalSchema: 'lake', glueDatabase: 'city_lake', iamRole: 'default' })).toBe(`CREATE EXTERNAL SCHEMA IF NOT EXISTS "lake" FROM DATA CATALOG DATABASE 'city_lake' IAM_ROLE default`);
    expect(() => spectrumSchemaSql({ externalSchema: 'Lake"; DROP', glueDatabase: 'city_lake', iamRole: 'default' })).toThrow(/\/externalSchema/);
    expect(() => spectrumSchemaSql({ externalSchema: 'lake', glueDatabase: 'city_lake', iamRole: 'city-spectrum' })).toThrow(/\/iamRole must be an IAM role ARN or default/);
  });
});

describe('redshift warehouse through the Data API (SQL run on PostgreSQL)', () => {
  it('loads the lake with manifests and COPY … PARQUET MANIFEST in one batch per transaction, exactly once', async () => {
    const { schema, prefix, store, fake, warehouse } = await setup();
    const distinct = await writeCityLake(s3Store(prefix), { kinds: ['vehicle', 'air_quality'], perHour: 25, hours: 2, filesPerHour: 2, replayed: 3 });
    const loader = createWarehouseLoader({ warehouse, store, tables: ['vehicle', 'air_quality'], redshift: { iamRole: 'arn:aws:iam::123456789012:role/city-redshift-copy' } });
    onTeardown(() => loader.close());
    const plan = await loader.init();
    expect(plan.created).toContain('vehicle');
    const ddl = fake.submitted.flat().find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS "${schema}"."vehicle"`)) as string;
    expect(ddl).toMatch(/DISTSTYLE AUTO SORTKEY \("date_observed"\)$/);
    expect(ddl).toContain('"event_id" VARCHAR(256) NOT NULL');
    expect(ddl).toContain('"vehicle_type" VARCHAR(60)');

    const result = await loader.load();
    expect(result.skipped).toEqual([]);
    expect(result.objects).toBe(12);
    const counts = await warehouse.query(`SELECT (SELECT count(*) FROM vehicle) AS v, (SELECT count(DISTINCT event_id) FROM vehicle) AS vi, (SELECT count(*) FROM air_quality) AS a`);
    expect(counts.rows).toEqual([{ v: distinct['vehicle'], vi: distinct['vehicle'], a: distinct['air_quality'] }]);

    const batches = fake.submitted.filter((sqls) => sqls.some((s) => s.startsWith('MERGE INTO') && s.includes('"vehicle"')));
    expect(batches.length).toBeGreaterThan(0);
    for (const sqls of batches) {
      expect(sqls.length).toBeLessThanOrEqual(40);
      expect(sqls.some((s) => /^COPY "wh_stage_0" FROM 's3:\/\/.+\.json' IAM_ROLE 'arn:aws:iam::123456789012:role\/city-redshift-copy' FORMAT AS PARQUET MANIFEST$/.test(s))).toBe(true);
      expect(sqls.findIndex((s) => s.startsWith('MERGE INTO'))).toBeLessThan(sqls.findIndex((s) => s.includes('"wh_load_ledger" USING')));
    }
    for (const entries of fake.manifests) for (const e of entries) expect(e).toEqual({ url: expect.stringMatching(/^s3:\/\/.+\.parquet$/), mandatory: true, meta: { content_length: expect.any(Number) } });
    // Manifests are removed once their batch is done.
    expect((await store.list('_warehouse/')).length).toBe(0);
    expect((await loader.load()).objects).toBe(0);
    // The Data API was polled through its states for every statement.
    expect(fake.mock.commandCalls(DescribeStatementCommand).length).toBeGreaterThanOrEqual(3 * fake.submitted.length);
  });

  it('pages results with NextToken, types values, and reads a batch sub-statement <id>:2 outside public', async () => {
    const { fake, warehouse } = await setup();
    const result = await warehouse.query(
      `SELECT g AS n, g * 1.5 AS x, g % 2 = 0 AS even, CASE WHEN g = 3 THEN NULL ELSE 'v' || g END AS s, ` +
        `CAST('2024-05-01 00:00:00+00' AS TIMESTAMPTZ) + g * INTERVAL '1 second' AS t, round(CAST(g AS NUMERIC) / 3, 2) AS r FROM generate_series(1, 20) g ORDER BY g`,
    );
    expect(result.columns).toEqual(['n', 'x', 'even', 's', 't', 'r']);
    expect(result.rows).toHaveLength(20);
    expect(result.rows[2]).toEqual({ n: 3, x: 4.5, even: false, s: null, t: '2024-05-01T00:00:03.000Z', r: 1 });
    expect(result.rows[19]).toMatchObject({ n: 20, even: true, s: 'v20', r: 6.67 });
    const pages = fake.mock.commandCalls(GetStatementResultCommand);
    expect(pages.length).toBe(3);
    expect(pages.map((c) => c.args[0].input.NextToken)).toEqual([undefined, '7', '14']);
    expect(pages[0]?.args[0].input.Id).toMatch(/^[0-9a-f-]{36}:2$/);
  });

  it('retries throttling and active-statement limits, not a validation error; a failed statement names Redshift\'s error and applies nothing', async () => {
    const { fake, warehouse, schema } = await setup();
    await warehouse.transaction([{ sql: `CREATE TABLE "${schema}".t (id BIGINT)` }]);
    fake.faults.throttle = 2;
    fake.faults.activeStatements = 1;
    await warehouse.transaction([{ sql: `INSERT INTO "${schema}".t VALUES (1)` }]);
    expect(fake.faults).toMatchObject({ throttle: 0, activeStatements: 0 });

    const err = await warehouse
      .transaction([{ sql: `INSERT INTO "${schema}".t VALUES (2)` }, { sql: `INSERT INTO "${schema}".missing VALUES (3)` }])
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLD_WAREHOUSE_SQL' });
    expect((err as Error).message).toMatch(/FAILED in [0-9a-f-]{36}:2 .*missing.* does not exist/);
    expect((await warehouse.query(`SELECT count(*) AS n FROM "${schema}".t`)).rows).toEqual([{ n: 1 }]);

    const bad = createRedshiftWarehouse({ clusterIdentifier: 'c1', database: 'dev', dbUser: 'loader', client: fake.client, ...FAST });
    onTeardown(() => bad.close());
    fake.mock.on(ExecuteStatementCommand).rejectsOnce(new ValidationException({ message: 'Cluster c1 not found', $metadata: { httpStatusCode: 400 } }));
    const before = fake.mock.commandCalls(ExecuteStatementCommand).length;
    await expect(bad.query('SELECT 1')).rejects.toMatchObject({ code: 'CLD_WAREHOUSE', message: expect.stringMatching(/ValidationException: Cluster c1 not found/) });
    expect(fake.mock.commandCalls(ExecuteStatementCommand).length - before).toBe(1);
  });

  it('runs a batch again after a serializable isolation violation (it was rolled back whole)', async () => {
    const { fake, warehouse, schema } = await setup();
    await warehouse.transaction([{ sql: `CREATE TABLE "${schema}".t (id BIGINT PRIMARY KEY)` }, { sql: `CREATE TABLE "${schema}".s (id BIGINT)` }]);
    await warehouse.transaction([{ sql: `INSERT INTO "${schema}".s VALUES (1), (2)` }]);
    fake.faults.serializable = 1;
    const merge = `MERGE INTO "${schema}"."t" USING "${schema}"."s" ON "t".id = "s".id WHEN MATCHED THEN UPDATE SET id = "s".id WHEN NOT MATCHED THEN INSERT (id) VALUES ("s".id)`;
    await warehouse.transaction([{ sql: `INSERT INTO "${schema}".s VALUES (3)` }, { sql: merge }]);
    expect(fake.faults.serializable).toBe(0);
    expect((await warehouse.query(`SELECT count(*) AS n FROM "${schema}".t`)).rows).toEqual([{ n: 3 }]);
    expect((await warehouse.query(`SELECT count(*) AS n FROM "${schema}".s`)).rows).toEqual([{ n: 3 }]);
  });

  it("runs the named queries in Redshift's dialect with DuckDB's answers (weather_extremes aside: LISTAGG is Redshift's own)", async () => {
    const { prefix, store, warehouse } = await setup();
    await writeCityLake(s3Store(prefix), { kinds: ['vehicle', 'air_quality', 'emergency', 'traffic_camera'], perHour: 30, hours: 2, filesPerHour: 2 });
    const loader = createWarehouseLoader({ warehouse, store, tables: ['vehicle', 'air_quality', 'emergency', 'traffic_camera'], redshift: { iamRole: 'default' } });
    onTeardown(() => loader.close());
    await loader.init();
    await loader.load();
    const cache = tempDir('rs-named-');
    await syncLakeCache(objectSource(store), cache);
    const lake = await openLake(cache);
    onTeardown(() => lake.close());
    for (const q of NAMED_QUERIES.filter((n) => n.name !== 'weather_extremes')) {
      const expected = await lake.query(namedQuerySql(q.name, 'duckdb'));
      expect(expected.rows.length, q.name).toBeGreaterThan(0);
      expect(await warehouseNamedQuery(warehouse, q.name), q.name).toEqual(expected);
    }
    expect(namedQuerySql('weather_extremes', 'redshift')).toContain('listagg(');
  });

  it('replaces processed partitions by their current build: COPY … MANIFEST per partition, DELETE, INSERT and the ledger in one batch', async () => {
    const { schema, store, fake, warehouse } = await setup();
    // The processed zone built locally, its files put into the S3 lake under the same keys the catalog names.
    const dir = tempDir('rs-processed-');
    const start = Date.UTC(2024, 4, 1, 0);
    await writeProcessingLake(dir, { devices: 60, startMs: start, hours: 2 });
    const localStore = createLocalFolderStore(dir);
    const catalog = createLocalCatalog(dir);
    onTeardown(() => catalog.close());
    onTeardown(() => localStore.close());
    const tables = ['air_quality_station_hour', 'incidents'] as const;
    const build = async (at: number) => {
      const engine = await createDuckDBProcessing(dir, localStore, catalog);
      try {
        await runProcessing({ store: localStore, catalog, engine, now: () => at, tables });
      } finally {
        await engine.close();
      }
      for (const t of tables) {
        for (const p of await catalog.partitions(t)) {
          for (const key of await filesAt(localStore, p.location)) {
            const scratch = await store.scratchPath(key);
            await copyFile(localStore.locate(key), scratch);
            await store.put(key, scratch);
          }
        }
      }
    };
    const lakeCount = async (t: string) => {
      const files: string[] = [];
      for (const p of await catalog.partitions(t)) files.push(...(await filesAt(localStore, p.location)).map((k) => localStore.locate(k)));
      const db = await DuckDBInstance.create(':memory:');
      const c = await db.connect();
      try {
        return Number((await c.runAndReadAll(`SELECT count(*) FROM read_parquet([${files.map(quotedString).join(', ')}])`)).getRows()[0]?.[0]);
      } finally {
        c.closeSync();
        db.closeSync();
      }
    };
    const loader = createWarehouseLoader({ warehouse, store, tables: ['air_quality'], processed: { catalog, tables }, redshift: { iamRole: 'arn:aws:iam::123456789012:role/city-redshift-copy' } });
    onTeardown(() => loader.close());
    await loader.init();
    const ddl = fake.submitted.flat().find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS "${schema}"."air_quality_station_hour"`)) as string;
    expect(ddl).toMatch(/DISTSTYLE AUTO SORTKEY \("hour_start"\)$/);
    expect(ddl).toContain('"station" VARCHAR(256) NOT NULL');
    expect(ddl).toContain('PRIMARY KEY ("event_date", "event_hour", "hour_start", "station")');

    await build(start + 100 * MIN);
    const first = await loader.load();
    expect(first.skipped).toEqual([]);
    expect(first.processed?.perTable['air_quality_station_hour']?.partitions).toBe(2);
    for (const t of tables) expect((await warehouse.query(`SELECT count(*) AS n FROM ${t}`)).rows[0]?.n, t).toBe(await lakeCount(t));

    // Late rows and the hour's close: both partitions rebuilt, and replaced in the warehouse.
    await writeProcessingLake(dir, { devices: 60, startMs: start, kinds: ['air_quality'], idPrefix: 'late', rate: 0.25, firstOffset: 1_000_000n });
    const before = fake.submitted.length;
    await build(start + 210 * MIN);
    const second = await loader.load();
    expect(second.processed?.perTable['air_quality_station_hour']?.partitions).toBe(2);
    for (const t of tables) expect((await warehouse.query(`SELECT count(*) AS n FROM ${t}`)).rows[0]?.n, t).toBe(await lakeCount(t));
    const samples = await warehouse.query(`SELECT sum(samples) AS n FROM air_quality_station_hour`);
    expect(Number(samples.rows[0]?.n)).toBe(Math.round(60 * 0.04) * 60 * 2 + Math.round(60 * 0.04) * 15);

    const batches = fake.submitted.slice(before).filter((sqls) => sqls.some((s) => s.startsWith(`DELETE FROM "${schema}"."air_quality_station_hour"`)));
    expect(batches).toHaveLength(1);
    const sqls = batches[0] as string[];
    expect(sqls.length).toBeLessThanOrEqual(40);
    expect(sqls.filter((s) => /^COPY "wh_pstage_\d" FROM 's3:\/\/.+\.json' IAM_ROLE 'arn:aws:iam::123456789012:role\/city-redshift-copy' FORMAT AS PARQUET MANIFEST$/.test(s))).toHaveLength(2);
    const at = (re: RegExp) => sqls.findIndex((s) => re.test(s));
    expect(at(/^COPY /)).toBeLessThan(at(/^DELETE FROM /));
    expect(at(/^DELETE FROM .* WHERE \(event_date = '2024-05-01' AND event_hour = 0\) OR \(event_date = '2024-05-01' AND event_hour = 1\)$/)).toBeLessThan(at(/^INSERT INTO "[^"]+"\."air_quality_station_hour"/));
    expect(at(/^INSERT INTO "[^"]+"\."air_quality_station_hour"/)).toBeLessThan(at(/^MERGE INTO "[^"]+"\."wh_processed_ledger"/));
    for (const entries of fake.manifests) for (const e of entries) expect(e).toEqual({ url: expect.stringMatching(/^s3:\/\/.+\/processed\/.+\.parquet$/), mandatory: true, meta: { content_length: expect.any(Number) } });
    expect((await store.list('_warehouse/')).length).toBe(0);
    expect((await loader.load()).processed?.partitions).toBe(0);
  });

  it('keeps its own cap on statements in flight', async () => {
    const { fake, warehouse } = await setup({ maxInFlight: 2 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => warehouse.query(`SELECT ${i} AS n`)));
    expect(fake.maxRunning).toBeLessThanOrEqual(2);
    expect(warehouse.inFlight).toBe(0);
  });
});

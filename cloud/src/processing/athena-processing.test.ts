// Contract test of the processing job in AWS: Athena and Glue cannot run here, so their clients are
// mocked with the request and response shapes of their API references, while the SQL Athena would run
// is executed for real on DuckDB over the same lake (Trino's epoch functions as macros, see
// sql.test.ts). Each UNLOAD's SELECT is written as Parquet under the UNLOAD's TO location, refused if
// that location is not empty (as Athena does); Glue's partitions live in a map the Batch* calls change.
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  type StartQueryExecutionCommandInput,
} from '@aws-sdk/client-athena';
import {
  BatchCreatePartitionCommand,
  BatchUpdatePartitionCommand,
  CreateDatabaseCommand,
  CreateTableCommand,
  GetPartitionsCommand,
  GetTableCommand,
  GlueClient,
  type BatchCreatePartitionCommandInput,
  type BatchUpdatePartitionCommandInput,
  type CreateTableCommandInput,
  type GetPartitionsCommandInput,
  type Partition,
} from '@aws-sdk/client-glue';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { quotedString } from '@duckdb/node-api';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { writeCityLake } from '../../../test/support/city-lake.ts';
import { onTeardown, tempDir } from '../../../test/support/teardown.ts';
import { createGlueCatalog, createLocalCatalog } from '../ports/catalog/index.ts';
import { createAthenaEngine, openLake, type Lake } from '../ports/query/index.ts';
import { createLocalFolderStore } from '../ports/store/index.ts';
import { PROCESSED_TABLES } from './definitions.ts';
import { createAthenaProcessing, createDuckDBProcessing } from './engine.ts';
import { runProcessing } from './job.ts';
import { PARAM } from '../lake/versions.ts';

const athena = mockClient(AthenaClient);
const glue = mockClient(GlueClient);
const START = Date.UTC(2024, 4, 1, 0);
const NOW = START + 100 * 60_000;
const S3_ROOT = 's3://city-bucket/lake/';
const FAST = { pollInitialMs: 1, pollMaxMs: 2, retry: { attempts: 3, initialMs: 1, maxMs: 2 } };

afterEach(() => {
  athena.reset();
  glue.reset();
});

/** Glue as a map: tables created once, partitions by values; the Batch* calls report errors per entry as Glue does. */
function fakeGlue() {
  const tables = new Map<string, CreateTableCommandInput['TableInput']>();
  const partitions = new Map<string, Map<string, Partition>>();
  glue.on(CreateDatabaseCommand).resolves({});
  glue.on(GetTableCommand).callsFake((input: { Name: string }) => {
    const t = tables.get(input.Name);
    if (t === undefined) throw Object.assign(new Error('not found'), { name: 'EntityNotFoundException', $metadata: {} });
    return { Table: t };
  });
  glue.on(CreateTableCommand).callsFake((input: CreateTableCommandInput) => {
    tables.set(input.TableInput?.Name as string, input.TableInput);
    partitions.set(input.TableInput?.Name as string, new Map());
    return {};
  });
  glue.on(GetPartitionsCommand).callsFake((input: GetPartitionsCommandInput) => {
    const all = [...(partitions.get(input.TableName as string)?.values() ?? [])];
    // Two per page, to exercise NextToken.
    const from = Number(input.NextToken ?? 0);
    return { Partitions: all.slice(from, from + 2), ...(from + 2 < all.length ? { NextToken: String(from + 2) } : {}) };
  });
  glue.on(BatchUpdatePartitionCommand).callsFake((input: BatchUpdatePartitionCommandInput) => {
    expect(input.Entries?.length).toBeLessThanOrEqual(100);
    const table = partitions.get(input.TableName as string) as Map<string, Partition>;
    const Errors = [];
    for (const e of input.Entries ?? []) {
      const id = (e.PartitionValueList ?? []).join('/');
      if (!table.has(id)) Errors.push({ PartitionValueList: e.PartitionValueList, ErrorDetail: { ErrorCode: 'EntityNotFoundException', ErrorMessage: 'no such partition' } });
      else table.set(id, { ...e.PartitionInput, Values: e.PartitionValueList });
    }
    return { Errors };
  });
  glue.on(BatchCreatePartitionCommand).callsFake((input: BatchCreatePartitionCommandInput) => {
    const table = partitions.get(input.TableName as string) as Map<string, Partition>;
    for (const p of input.PartitionInputList ?? []) table.set((p.Values ?? []).join('/'), { ...p });
    return { Errors: [] };
  });
  return { partitions };
}

/** Athena answering from DuckDB: SELECTs return their rows as text, UNLOADs write Parquet under their TO location. */
function fakeAthena(lake: Lake, dir: string) {
  const statements: string[] = [];
  const results = new Map<string, { columns: string[]; types: string[]; rows: (string | undefined)[][] }>();
  athena.on(StartQueryExecutionCommand).callsFake(async (input: StartQueryExecutionCommandInput) => {
    const sql = input.QueryString as string;
    statements.push(sql);
    expect(input.WorkGroup).toBe('city');
    expect(input.QueryExecutionContext).toEqual({ Database: 'city_lake', Catalog: 'AwsDataCatalog' });
    const id = `q-${statements.length}`;
    const unload = /^UNLOAD \(([\s\S]*)\)\nTO '(s3:\/\/[^']+\/)'\nWITH \(format = 'PARQUET', compression = 'SNAPPY'\)$/.exec(sql);
    if (unload !== null) {
      const target = unload[2] as string;
      expect(target.startsWith(S3_ROOT)).toBe(true);
      const folder = join(dir, ...target.slice(S3_ROOT.length).split('/'));
      const present = await readdir(folder).catch(() => []);
      if (present.length > 0) throw Object.assign(new Error('HIVE_PATH_ALREADY_EXISTS'), { name: 'InvalidRequestException', $metadata: {} });
      await mkdir(folder, { recursive: true });
      await lake.query(`COPY (${unload[1]}) TO ${quotedString(join(folder, `${id}_00000.parquet`))} (FORMAT parquet)`);
      results.set(id, { columns: [], types: [], rows: [] });
    } else {
      const r = await lake.query(sql);
      results.set(id, {
        columns: r.columns,
        types: r.columns.map((c) => (typeof r.rows[0]?.[c] === 'number' ? 'bigint' : 'varchar')),
        rows: r.rows.map((row) => r.columns.map((c) => (row[c] === null ? undefined : String(row[c])))),
      });
    }
    return { QueryExecutionId: id };
  });
  athena.on(GetQueryExecutionCommand).callsFake((input: { QueryExecutionId: string }) => ({
    QueryExecution: { QueryExecutionId: input.QueryExecutionId, Status: { State: 'SUCCEEDED' }, StatementType: 'DML' },
  }));
  athena.on(GetQueryResultsCommand).callsFake((input: { QueryExecutionId: string }) => {
    const r = results.get(input.QueryExecutionId);
    if (r === undefined) throw new Error(`unknown query ${input.QueryExecutionId}`);
    const row = (values: (string | undefined)[]) => ({ Data: values.map((v) => (v === undefined ? {} : { VarCharValue: v })) });
    return {
      ResultSet: {
        ResultSetMetadata: { ColumnInfo: r.columns.map((Name, i) => ({ Name, Type: r.types[i] })) },
        Rows: r.columns.length === 0 ? [] : [row(r.columns), ...r.rows.map(row)],
      },
    };
  });
  return { statements };
}

async function rowsAt(lake: Lake, folders: string[]): Promise<string[]> {
  const files = folders.map((f) => join(f, '*.parquet'));
  const r = await lake.query(`SELECT * FROM read_parquet([${files.map(quotedString).join(', ')}], hive_partitioning = false)`);
  return r.rows.map((row) => JSON.stringify(row)).sort();
}

describe('processing job on Athena and Glue', () => {
  it('UNLOADs each build into a fresh location, points the Glue partition at it, and writes the rows the local build writes', async () => {
    const dir = tempDir('processing-athena-');
    const localDir = tempDir('processing-athena-local-');
    for (const d of [dir, localDir]) await writeCityLake(d, { devices: 80, startMs: START, hours: 2 });
    const lake = await openLake(dir);
    onTeardown(() => lake.close());
    await lake.query('CREATE MACRO to_unixtime(ts) AS epoch(ts)');
    await lake.query('CREATE MACRO from_unixtime(s) AS to_timestamp(s)');
    const { partitions } = fakeGlue();
    const { statements } = fakeAthena(lake, dir);

    const store = createLocalFolderStore(dir);
    onTeardown(() => store.close());
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: S3_ROOT, client: new GlueClient({}), retry: FAST.retry });
    const engine = createAthenaProcessing(createAthenaEngine({ workGroup: 'city', database: 'city_lake', client: new AthenaClient({}), ...FAST }), S3_ROOT);
    const report = await runProcessing({ store, catalog, engine, now: () => NOW });
    expect(report.built.length).toBe(15);

    const unloads = statements.filter((s) => s.startsWith('UNLOAD'));
    expect(unloads).toHaveLength(15);
    for (const b of report.built) {
      const target = `${S3_ROOT}${b.location}`;
      expect(b.location).toMatch(new RegExp(`^processed/${b.table}/_v/${report.build}/event_date=2024-05-01/event_hour=${b.partition.event_hour}/$`));
      expect(unloads.filter((u) => u.includes(`TO '${target}'`))).toHaveLength(1);
      const p = partitions.get(b.table)?.get(`${b.partition.event_date}/${b.partition.event_hour}`);
      expect(p?.StorageDescriptor?.Location).toBe(target);
      expect(p?.StorageDescriptor?.SerdeInfo?.SerializationLibrary).toBe('org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe');
      expect(p?.Parameters).toMatchObject({ [PARAM.final]: String(b.final), [PARAM.build]: report.build });
    }
    // New partitions: BatchUpdatePartition reported them missing, BatchCreatePartition made them; one call per table each.
    expect(glue.commandCalls(BatchUpdatePartitionCommand).length).toBeGreaterThanOrEqual(PROCESSED_TABLES.length);
    expect(glue.commandCalls(BatchCreatePartitionCommand)).toHaveLength(PROCESSED_TABLES.length);

    // The same job locally writes the same rows.
    const localStore = createLocalFolderStore(localDir);
    onTeardown(() => localStore.close());
    const localCatalog = createLocalCatalog(localDir);
    onTeardown(() => localCatalog.close());
    const local = await createDuckDBProcessing(localDir, localStore, localCatalog);
    await runProcessing({ store: localStore, catalog: localCatalog, engine: local, now: () => NOW });
    await local.close();
    for (const t of PROCESSED_TABLES) {
      const viaAthena = [...(partitions.get(t.name)?.values() ?? [])].map((p) => join(dir, ...(p.StorageDescriptor?.Location ?? '').slice(S3_ROOT.length).split('/')));
      const viaDuck = (await localCatalog.partitions(t.name)).map((p) => join(localDir, ...p.location.split('/')));
      const a = (await rowsAt(lake, viaAthena)).map((r) => r.replace(/(\d{2}:\d{2}:\d{2}\.\d{3})Z"/g, '$1"'));
      const d = (await rowsAt(lake, viaDuck)).map((r) => r.replace(/(\d{2}:\d{2}:\d{2}\.\d{3})Z"/g, '$1"'));
      expect(a.length, t.name).toBeGreaterThan(0);
      expect(a, t.name).toEqual(d);
    }

    // Nothing changed: no UNLOAD, no switch. Then hour 1 closes: its partitions are UNLOADed again into new locations.
    const before = statements.length;
    const again = await runProcessing({ store, catalog, engine, now: () => NOW });
    expect(again.built).toEqual([]);
    expect(statements.slice(before).filter((s) => s.startsWith('UNLOAD'))).toEqual([]);
    const closed = await runProcessing({ store, catalog, engine, now: () => NOW + 60 * 60_000 });
    expect(closed.built.length).toBeGreaterThan(0);
    for (const b of closed.built) {
      const p = partitions.get(b.table)?.get(`${b.partition.event_date}/${b.partition.event_hour}`);
      expect(p?.StorageDescriptor?.Location).toBe(`${S3_ROOT}${b.location}`);
      expect(JSON.parse(p?.Parameters?.[PARAM.retired] ?? '[]')).toHaveLength(1);
    }
    await engine.close();
    await catalog.close();
  });
});

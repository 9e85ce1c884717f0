// Contract tests: Glue cannot run here, so the requests are checked against the shapes the Glue API
// reference gives (required fields, ≤ 100 partitions per BatchCreatePartition, Parquet SerDe/formats).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchCreatePartitionCommand,
  BatchUpdatePartitionCommand,
  GetPartitionCommand,
  type BatchUpdatePartitionCommandInput,
  CreateDatabaseCommand,
  CreateTableCommand,
  GetTableCommand,
  GlueClient,
  UpdateTableCommand,
  type BatchCreatePartitionCommandInput,
  type TableInput,
} from '@aws-sdk/client-glue';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventTable, type Column } from '@city/protocol';
import { RAW_COLUMNS, tablePrefix } from '../../lake/index.ts';
import { createGlueCatalog, GLUE_TYPES, PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT, PARQUET_SERDE } from './glue.ts';
import { createLocalCatalog } from './local.ts';
import type { CatalogPartition, CatalogTable } from './port.ts';

const glue = mockClient(GlueClient);
const FAST = { attempts: 3, initialMs: 1, maxMs: 2 };

const vehicle = eventTable('vehicle');
const TABLE: CatalogTable = { name: 'vehicle', columns: vehicle.columns, partitionKeys: vehicle.partitionKeys, location: tablePrefix('vehicle') };

const awsError = (name: string) => Object.assign(new Error(`${name} from the mock`), { name, $metadata: {} });

function partitions(n: number): CatalogPartition[] {
  return Array.from({ length: n }, (_, i) => {
    const date = new Date(Date.UTC(2024, 0, 1) + Math.floor(i / 24) * 86_400_000).toISOString().slice(0, 10);
    const values = [date, String(i % 24)];
    return { values, location: `${TABLE.location}event_date=${values[0]}/event_hour=${values[1]}/` };
  });
}

afterEach(() => {
  glue.reset();
});

describe('Glue catalog adapter', () => {
  it('names the codec each table is written with (zstd for the raw zone)', async () => {
    glue.on(CreateDatabaseCommand).resolves({});
    glue.on(GetTableCommand).rejects(awsError('EntityNotFoundException'));
    glue.on(CreateTableCommand).resolves({});
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-bucket/lake', client: new GlueClient({}), retry: FAST });
    await catalog.ensureTable({ ...TABLE, name: 'raw_vehicle', columns: RAW_COLUMNS, location: tablePrefix('raw_vehicle') });
    await catalog.ensureTable(TABLE);
    await catalog.close();
    const codecs = glue.commandCalls(CreateTableCommand).map((c) => [c.args[0].input.TableInput?.Name, c.args[0].input.TableInput?.Parameters?.['parquet.compression']]);
    expect(codecs).toEqual([
      ['raw_vehicle', 'ZSTD'],
      ['vehicle', 'SNAPPY'],
    ]);
  });

  it('creates the database and a Parquet table with columns derived from the protocol', async () => {
    glue.on(CreateDatabaseCommand).resolves({});
    glue.on(GetTableCommand).rejects(awsError('EntityNotFoundException'));
    glue.on(CreateTableCommand).resolves({});
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-bucket/lake', client: new GlueClient({}), retry: FAST });
    await catalog.ensureTable(TABLE);
    await catalog.ensureTable(TABLE); // the database is created once per catalog
    await catalog.close();

    const db = glue.commandCalls(CreateDatabaseCommand);
    expect(db).toHaveLength(1);
    expect(db[0]?.args[0].input).toEqual({ DatabaseInput: { Name: 'city_lake', Description: expect.any(String) } });

    const created = glue.commandCalls(CreateTableCommand);
    expect(created).toHaveLength(2);
    const input = created[0]?.args[0].input;
    expect(input?.DatabaseName).toBe('city_lake');
    const table = input?.TableInput as TableInput;
    expect(table.Name).toBe('vehicle');
    expect(table.TableType).toBe('EXTERNAL_TABLE');
    expect(table.Parameters).toMatchObject({ classification: 'parquet', EXTERNAL: 'TRUE', 'parquet.compression': 'SNAPPY' });
    expect(table.Parameters).not.toHaveProperty('projection.enabled');
    expect(table.StorageDescriptor).toMatchObject({
      Location: 's3://city-bucket/lake/curated/kind=vehicle/',
      InputFormat: PARQUET_INPUT_FORMAT,
      OutputFormat: PARQUET_OUTPUT_FORMAT,
      SerdeInfo: { SerializationLibrary: PARQUET_SERDE },
    });
    expect(PARQUET_SERDE).toBe('org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe');
    expect(PARQUET_INPUT_FORMAT).toBe('org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat');
    expect(PARQUET_OUTPUT_FORMAT).toBe('org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat');
    const columns = table.StorageDescriptor?.Columns ?? [];
    expect(columns.map((c) => c.Name)).toEqual(vehicle.columns.map((c) => c.name));
    expect(columns.find((c) => c.Name === 'seq')?.Type).toBe('bigint');
    expect(columns.find((c) => c.Name === 'speed')?.Type).toBe('double');
    expect(columns.find((c) => c.Name === 'date_observed')?.Type).toBe('timestamp');
    expect(columns.find((c) => c.Name === 'vehicle_type')?.Type).toBe('string');
    for (const c of columns) expect((c.Comment ?? '').length).toBeLessThanOrEqual(255);
    // Partition keys are not repeated among the columns (Glue/Athena refuse duplicates).
    expect(table.PartitionKeys).toEqual([
      { Name: 'event_date', Type: 'string', Comment: expect.any(String) },
      { Name: 'event_hour', Type: 'bigint', Comment: expect.any(String) },
    ]);
    expect(GLUE_TYPES).toEqual({ string: 'string', int64: 'bigint', double: 'double', boolean: 'boolean', timestamp: 'timestamp' });
  });

  it('adds partition projection properties when asked', async () => {
    glue.on(CreateDatabaseCommand).rejects(awsError('AlreadyExistsException'));
    glue.on(GetTableCommand).rejects(awsError('EntityNotFoundException'));
    glue.on(CreateTableCommand).resolves({});
    const catalog = createGlueCatalog({
      database: 'city_lake',
      s3Root: 's3://city-bucket/lake/',
      client: new GlueClient({}),
      projection: { enabled: true, dateRange: '2024-01-01,NOW' },
      retry: FAST,
    });
    await catalog.ensureTable(TABLE);
    const params = glue.commandCalls(CreateTableCommand)[0]?.args[0].input.TableInput?.Parameters;
    expect(params).toMatchObject({
      'projection.enabled': 'true',
      'projection.event_date.type': 'date',
      'projection.event_date.range': '2024-01-01,NOW',
      'projection.event_date.format': 'yyyy-MM-dd',
      'projection.event_hour.type': 'integer',
      'projection.event_hour.range': '0,23',
      'storage.location.template': 's3://city-bucket/lake/curated/kind=vehicle/event_date=${event_date}/event_hour=${event_hour}/',
    });
  });

  it('updates a table only for added columns, keeping the existing ones, never dropping', async () => {
    const older = vehicle.columns.filter((c) => c.name !== 'route_id');
    const existing = [...older.map((c) => ({ Name: c.name, Type: GLUE_TYPES[c.type], Comment: 'set by hand' })), { Name: 'legacy', Type: 'string' }];
    glue.on(CreateDatabaseCommand).resolves({});
    glue.on(GetTableCommand).resolves({ Table: { Name: 'vehicle', DatabaseName: 'city_lake', StorageDescriptor: { Columns: existing } } });
    glue.on(UpdateTableCommand).resolves({});
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-b1/', client: new GlueClient({}), retry: FAST });
    await catalog.ensureTable(TABLE);
    const updates = glue.commandCalls(UpdateTableCommand);
    expect(updates).toHaveLength(1);
    const columns = updates[0]?.args[0].input.TableInput?.StorageDescriptor?.Columns ?? [];
    expect(columns.slice(0, existing.length)).toEqual(existing);
    expect(columns.slice(existing.length).map((c) => c.Name)).toEqual(['route_id']);
    expect(catalog.stats()).toMatchObject({ tablesUpdated: 1, tablesCreated: 0 });

    // Same columns again: no UpdateTable.
    glue.on(GetTableCommand).resolves({ Table: { Name: 'vehicle', StorageDescriptor: { Columns: columns } } });
    await catalog.ensureTable(TABLE);
    expect(glue.commandCalls(UpdateTableCommand)).toHaveLength(1);

    // A changed type is not additive: refused, naming the column.
    const changed: Column[] = vehicle.columns.map((c) => (c.name === 'speed' ? { ...c, type: 'string' } : c));
    await expect(catalog.ensureTable({ ...TABLE, columns: changed })).rejects.toThrow(/vehicle\.speed: type change double → string/);
    expect(glue.commandCalls(UpdateTableCommand)).toHaveLength(1);
  });

  it('registers partitions at most 100 per call; "already exists" counts as success', async () => {
    const tableColumns = [{ Name: 'event_id', Type: 'string' }, { Name: 'speed', Type: 'double' }];
    glue.on(GetTableCommand).resolves({ Table: { Name: 'vehicle', StorageDescriptor: { Columns: tableColumns } } });
    glue.on(BatchCreatePartitionCommand).callsFake((input: BatchCreatePartitionCommandInput) => ({
      // The first partition of every call already exists.
      Errors: [{ PartitionValues: input.PartitionInputList?.[0]?.Values, ErrorDetail: { ErrorCode: 'AlreadyExistsException', ErrorMessage: 'exists' } }],
    }));
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-b1/lake', client: new GlueClient({}), retry: FAST });
    const all = partitions(250);
    await catalog.addPartitions('vehicle', all);
    const calls = glue.commandCalls(BatchCreatePartitionCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.PartitionInputList?.length)).toEqual([100, 100, 50]);
    for (const c of calls) {
      expect(c.DatabaseName).toBe('city_lake');
      expect(c.TableName).toBe('vehicle');
    }
    const first = calls[0]?.PartitionInputList?.[0];
    expect(first?.Values).toEqual(['2024-01-01', '0']);
    expect(first?.StorageDescriptor).toMatchObject({
      Location: 's3://city-b1/lake/curated/kind=vehicle/event_date=2024-01-01/event_hour=0/',
      Columns: tableColumns,
      InputFormat: PARQUET_INPUT_FORMAT,
      SerdeInfo: { SerializationLibrary: PARQUET_SERDE },
    });
    // The table's columns are read once per catalog, not per call.
    expect(glue.commandCalls(GetTableCommand)).toHaveLength(1);
    expect(calls.flatMap((c) => c.PartitionInputList?.map((p) => p.Values?.join('/')) ?? [])).toEqual(all.map((p) => p.values.join('/')));
    expect(catalog.stats()).toMatchObject({ partitionsCreated: 247, partitionsAlreadyThere: 3 });
  });

  it('retries only the partitions that failed, and reports those that keep failing', async () => {
    glue.on(GetTableCommand).resolves({ Table: { Name: 'vehicle', StorageDescriptor: { Columns: [] } } });
    let call = 0;
    glue.on(BatchCreatePartitionCommand).callsFake((input: BatchCreatePartitionCommandInput) => {
      call++;
      const list = input.PartitionInputList ?? [];
      // Call 1: partition 2 fails transiently and partition 3 always fails; later calls: 3 still fails.
      const errors = list
        .filter((p) => (call === 1 && p.Values?.[1] === '2') || p.Values?.[1] === '3')
        .map((p) => ({ PartitionValues: p.Values, ErrorDetail: { ErrorCode: 'InternalServiceException', ErrorMessage: 'try again' } }));
      return { Errors: errors };
    });
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-b1/', client: new GlueClient({}), retry: FAST });
    await expect(catalog.addPartitions('vehicle', partitions(5))).rejects.toMatchObject({
      code: 'CLD_CATALOG',
      message: expect.stringMatching(/1 partition\(s\) failed: 2024-01-01\/3 \(InternalServiceException: try again\)/),
    });
    const calls = glue.commandCalls(BatchCreatePartitionCommand).map((c) => c.args[0].input.PartitionInputList?.map((p) => p.Values?.[1]));
    expect(calls).toEqual([['0', '1', '2', '3', '4'], ['2', '3'], ['3']]);
    expect(catalog.stats().partitionsCreated).toBe(4);
  });

  it('backs off and retries a throttled call', async () => {
    glue.on(GetTableCommand).resolves({ Table: { Name: 'vehicle', StorageDescriptor: { Columns: [] } } });
    glue
      .on(BatchCreatePartitionCommand)
      .rejectsOnce(awsError('ThrottlingException'))
      .resolves({ Errors: [] });
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-b1/', client: new GlueClient({}), retry: FAST });
    await catalog.addPartitions('vehicle', partitions(2));
    expect(glue.commandCalls(BatchCreatePartitionCommand)).toHaveLength(2);
    glue.on(BatchCreatePartitionCommand).rejects(awsError('AccessDeniedException'));
    await expect(catalog.addPartitions('vehicle', partitions(1))).rejects.toThrow(/AccessDeniedException/);
    expect(glue.commandCalls(BatchCreatePartitionCommand)).toHaveLength(3); // not retryable: one call
  });

  it('switches partition locations with BatchUpdatePartition, creating missing ones, and reads them back as keys', async () => {
    glue.on(GetTableCommand).resolves({ Table: { Name: 'vehicle', StorageDescriptor: { Columns: [{ Name: 'event_id', Type: 'string' }] } } });
    glue.on(BatchUpdatePartitionCommand).callsFake((input: BatchUpdatePartitionCommandInput) => ({
      // The second entry is not registered yet.
      Errors: [{ PartitionValueList: input.Entries?.[1]?.PartitionValueList, ErrorDetail: { ErrorCode: 'EntityNotFoundException', ErrorMessage: 'no partition' } }],
    }));
    glue.on(BatchCreatePartitionCommand).resolves({ Errors: [] });
    glue
      .on(GetPartitionCommand)
      .resolvesOnce({ Partition: { Values: ['2024-01-01', '0'], StorageDescriptor: { Location: 's3://city-b1/lake/curated/kind=vehicle/_v/b1/event_date=2024-01-01/event_hour=0/' }, Parameters: { 'city.final': 'true' } } })
      .rejects(awsError('EntityNotFoundException'));
    const catalog = createGlueCatalog({ database: 'city_lake', s3Root: 's3://city-b1/lake', client: new GlueClient({}), retry: FAST });
    const moved = partitions(2).map((p) => ({ ...p, location: p.location.replace('curated/kind=vehicle/', 'curated/kind=vehicle/_v/b1/'), parameters: { 'city.final': 'true' } }));
    await catalog.replacePartitions('vehicle', moved);
    const update = glue.commandCalls(BatchUpdatePartitionCommand)[0]?.args[0].input;
    expect(update?.Entries?.map((e) => e.PartitionValueList)).toEqual([['2024-01-01', '0'], ['2024-01-01', '1']]);
    expect(update?.Entries?.[0]?.PartitionInput).toMatchObject({
      Values: ['2024-01-01', '0'],
      Parameters: { 'city.final': 'true' },
      StorageDescriptor: { Location: 's3://city-b1/lake/curated/kind=vehicle/_v/b1/event_date=2024-01-01/event_hour=0/', SerdeInfo: { SerializationLibrary: PARQUET_SERDE } },
    });
    expect(glue.commandCalls(BatchCreatePartitionCommand)[0]?.args[0].input.PartitionInputList?.map((p) => p.Values)).toEqual([['2024-01-01', '1']]);
    expect(catalog.stats()).toMatchObject({ partitionsReplaced: 1, partitionsCreated: 1 });
    expect(await catalog.partition('vehicle', ['2024-01-01', '0'])).toEqual({
      values: ['2024-01-01', '0'],
      location: 'curated/kind=vehicle/_v/b1/event_date=2024-01-01/event_hour=0/',
      parameters: { 'city.final': 'true' },
    });
    expect(glue.commandCalls(GetPartitionCommand)[0]?.args[0].input).toMatchObject({ DatabaseName: 'city_lake', TableName: 'vehicle', PartitionValues: ['2024-01-01', '0'] });
    expect(await catalog.partition('vehicle', ['2024-01-01', '5'])).toBeUndefined();
  });

  it('validates its options, naming the field', () => {
    expect(() => createGlueCatalog({ database: 'City Lake', s3Root: 's3://city-b1/' })).toThrow(/database/);
    expect(() => createGlueCatalog({ database: 'city', s3Root: '/tmp/lake' })).toThrow(/s3Root/);
  });
});

describe('local catalog', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cloud-catalog-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps tables and partitions beside the lake, additive and idempotent', async () => {
    const catalog = createLocalCatalog(dir);
    const older = { ...TABLE, columns: TABLE.columns.filter((c) => c.name !== 'route_id') };
    await catalog.ensureTable(older);
    await Promise.all([catalog.addPartitions('vehicle', partitions(3)), catalog.addPartitions('vehicle', partitions(4))]);
    await catalog.ensureTable(TABLE);
    await catalog.ensureTable(older); // a sink on the old schema never drops the new column
    await catalog.close();

    const reopened = createLocalCatalog(dir);
    const [table] = await reopened.tables();
    expect(table?.columns.map((c) => c.name)).toEqual([...older.columns.map((c) => c.name), 'route_id']);
    expect(table?.partitions.map((p) => p.values.join('/'))).toEqual(['2024-01-01/0', '2024-01-01/1', '2024-01-01/2', '2024-01-01/3']);
    await expect(reopened.addPartitions('nope', partitions(1))).rejects.toThrow(/table nope is not in the catalog/);
    await reopened.close();
    await expect(reopened.ensureTable(TABLE)).rejects.toMatchObject({ code: 'CLD_CLOSED' });
  });
});

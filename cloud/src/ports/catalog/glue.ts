// The AWS Glue catalog adapter: Parquet tables over the S3 lake, partitions registered as the sink
// writes them, additive schema changes applied with GetTable → UpdateTable. Athena reads these tables.
import {
  BatchCreatePartitionCommand,
  BatchUpdatePartitionCommand,
  GetPartitionCommand,
  GetPartitionsCommand,
  CreateDatabaseCommand,
  CreateTableCommand,
  GetTableCommand,
  GlueClient,
  UpdateTableCommand,
  type Column as GlueColumn,
  type PartitionInput,
  type StorageDescriptor,
  type TableInput,
} from '@aws-sdk/client-glue';
import { Type, type Static } from '@sinclair/typebox';
import { defineOptions, type Column, type ColumnType, type DeepPartial } from '@city/protocol';
import { cloudErrors, errorMessage } from '../../errors.ts';
// The layout module alone: the catalog names each table's codec as the lake writes it, without loading DuckDB.
import { parquetCodec } from '../../lake/layout.ts';
import { AWS_RETRY_DEFAULTS, awsErrorName as errorName, backoff, RetryPolicySchema, withAwsRetry } from '../aws-retry.ts';
import { mergeColumns } from './columns.ts';
import { createKeyedMutex } from './partition-lock.ts';
import type { CatalogPartition, CatalogTable, VersionedCatalog } from './port.ts';

/** Protocol column types as Hive/Glue types. */
export const GLUE_TYPES: { readonly [T in ColumnType]: string } = {
  string: 'string',
  int64: 'bigint',
  double: 'double',
  boolean: 'boolean',
  timestamp: 'timestamp',
};

export const PARQUET_SERDE = 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe';
export const PARQUET_INPUT_FORMAT = 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat';
export const PARQUET_OUTPUT_FORMAT = 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat';

/** BatchCreatePartition accepts at most this many partitions per call. */
export const GLUE_MAX_PARTITIONS_PER_CALL = 100;

/** Options of the Glue catalog (data only; `client` is passed beside them). */
export const GlueCatalogSchema = Type.Object(
  {
    /** Glue database holding the lake's tables (created if missing). Glue lower-cases names; Athena wants letters, digits and underscores. */
    database: Type.String({ pattern: '^[a-z0-9_]{1,255}$' }),
    /** S3 URL of the lake root, e.g. s3://bucket/lake/ — table locations are keys below it. */
    s3Root: Type.String({ pattern: '^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$' }),
    region: Type.Optional(Type.String({ minLength: 1 })),
    /** Owner account of the catalog; the caller's by default. */
    catalogId: Type.Optional(Type.String({ pattern: '^\\d{12}$' })),
    /**
     * Athena partition projection: Athena then computes partitions from the date range instead of
     * reading registered ones (which are still registered, for engines that do not project).
     */
    projection: Type.Optional(
      Type.Object(
        { enabled: Type.Boolean(), dateRange: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2},(NOW|\\d{4}-\\d{2}-\\d{2})$' })) },
        { additionalProperties: false },
      ),
    ),
    retry: RetryPolicySchema,
  },
  { additionalProperties: false },
);

export type GlueCatalogConfig = Static<typeof GlueCatalogSchema>;

export type GlueCatalogOptions = DeepPartial<GlueCatalogConfig> & {
  database: string;
  s3Root: string;
  /** A client to use instead of creating one (tests, custom credentials). */
  client?: GlueClient;
};

const glueCatalogOptions = defineOptions({
  schema: GlueCatalogSchema,
  defaults: { retry: AWS_RETRY_DEFAULTS },
  error: (detail) => cloudErrors.create('CLD_INVALID_OPTIONS', `glue catalog: ${detail}`),
});

export interface GlueCatalogStats {
  tablesCreated: number;
  tablesUpdated: number;
  partitionsCreated: number;
  partitionsAlreadyThere: number;
  /** Partitions pointed at a new location by BatchUpdatePartition. */
  partitionsReplaced: number;
}

export interface GlueCatalog extends VersionedCatalog {
  readonly database: string;
  stats(): GlueCatalogStats;
}

export function createGlueCatalog(options: GlueCatalogOptions): GlueCatalog {
  const { client: givenClient, ...data } = options;
  const resolved = glueCatalogOptions.resolve(data);
  const retry = resolved.retry;
  const s3Root = resolved.s3Root.endsWith('/') ? resolved.s3Root : `${resolved.s3Root}/`;
  const client = givenClient ?? new GlueClient(resolved.region === undefined ? {} : { region: resolved.region });
  const owned = givenClient === undefined;
  const database = resolved.database;
  const catalogId = resolved.catalogId === undefined ? {} : { CatalogId: resolved.catalogId };
  const stats: GlueCatalogStats = { tablesCreated: 0, tablesUpdated: 0, partitionsCreated: 0, partitionsAlreadyThere: 0, partitionsReplaced: 0 };
  let databaseReady: Promise<void> | undefined;
  let closed = false;
  /** Columns of each table as Glue holds them, copied into its partitions' descriptors. */
  const tableColumns = new Map<string, GlueColumn[]>();

  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await withAwsRetry(retry, run);
    } catch (err) {
      throw cloudErrors.create('CLD_CATALOG', `${what}: ${errorName(err)}: ${errorMessage(err)}`, err);
    }
  };

  const ensureDatabase = (): Promise<void> => {
    databaseReady ??= call('CreateDatabase', async () => {
      try {
        await client.send(
          new CreateDatabaseCommand({ ...catalogId, DatabaseInput: { Name: database, Description: 'Smart-city data lake' } }),
        );
      } catch (err) {
        if (errorName(err) !== 'AlreadyExistsException') throw err;
      }
    }).catch((err: unknown) => {
      databaseReady = undefined; // let the next call try again
      throw err;
    });
    return databaseReady;
  };

  const tableInput = (table: CatalogTable, columns: readonly GlueColumn[]): TableInput => {
    const location = s3Root + table.location;
    const parameters: Record<string, string> = { classification: 'parquet', EXTERNAL: 'TRUE', 'parquet.compression': parquetCodec(table.name).toUpperCase() };
    if (resolved.projection?.enabled === true) Object.assign(parameters, projectionParameters(table, location, resolved.projection.dateRange));
    return {
      Name: table.name,
      ...(table.description === undefined ? {} : { Description: table.description }),
      TableType: 'EXTERNAL_TABLE',
      Parameters: parameters,
      PartitionKeys: table.partitionKeys.map(glueColumn),
      StorageDescriptor: storageDescriptor(location, columns),
    };
  };

  const ensureTable = async (table: CatalogTable): Promise<void> => {
    if (closed) throw cloudErrors.create('CLD_CLOSED', 'glue catalog');
    await ensureDatabase();
    let current: GlueColumn[] | undefined;
    try {
      const got = await withAwsRetry(retry, () => client.send(new GetTableCommand({ ...catalogId, DatabaseName: database, Name: table.name })));
      current = got.Table?.StorageDescriptor?.Columns ?? [];
    } catch (err) {
      if (errorName(err) !== 'EntityNotFoundException') {
        throw cloudErrors.create('CLD_CATALOG', `GetTable ${table.name}: ${errorName(err)}: ${errorMessage(err)}`, err);
      }
    }
    if (current === undefined) {
      try {
        await call(`CreateTable ${table.name}`, () =>
          client.send(new CreateTableCommand({ ...catalogId, DatabaseName: database, TableInput: tableInput(table, table.columns.map(glueColumn)) })),
        );
        stats.tablesCreated++;
        tableColumns.set(table.name, table.columns.map(glueColumn));
        return;
      } catch (err) {
        // Another sink created it meanwhile: fall through to the additive check.
        if (errorName((err as Error).cause) !== 'AlreadyExistsException') throw err;
        const got = await call(`GetTable ${table.name}`, () =>
          client.send(new GetTableCommand({ ...catalogId, DatabaseName: database, Name: table.name })),
        );
        current = got.Table?.StorageDescriptor?.Columns ?? [];
      }
    }
    const { added } = mergeColumns(table.name, current.map(fromGlueColumn), table.columns);
    if (added.length === 0) {
      tableColumns.set(table.name, current);
      return;
    }
    // Keep the existing columns exactly as Glue has them (comments, types someone set); append the new.
    const columns = [...current, ...added.map(glueColumn)];
    await call(`UpdateTable ${table.name}`, () =>
      client.send(new UpdateTableCommand({ ...catalogId, DatabaseName: database, TableInput: tableInput(table, columns) })),
    );
    stats.tablesUpdated++;
    tableColumns.set(table.name, columns);
  };

  const columnsOf = async (table: string): Promise<GlueColumn[]> => {
    let columns = tableColumns.get(table);
    if (columns === undefined) {
      const got = await call(`GetTable ${table}`, () => client.send(new GetTableCommand({ ...catalogId, DatabaseName: database, Name: table })));
      columns = got.Table?.StorageDescriptor?.Columns ?? [];
      tableColumns.set(table, columns);
    }
    return columns;
  };

  const addBatch = async (table: string, batch: readonly CatalogPartition[]): Promise<void> => {
    const columns = await columnsOf(table);
    let pending = [...batch];
    for (let attempt = 0; ; attempt++) {
      const result = await call(`BatchCreatePartition ${table}`, () =>
        client.send(
          new BatchCreatePartitionCommand({
            ...catalogId,
            DatabaseName: database,
            TableName: table,
            PartitionInputList: pending.map((p): PartitionInput => ({
              Values: [...p.values],
              // The table's columns: a partition whose schema differs from its table's fails Athena reads.
              StorageDescriptor: storageDescriptor(s3Root + p.location, columns),
            })),
          }),
        ),
      );
      const failed = new Map<string, string>();
      let already = 0;
      for (const e of result.Errors ?? []) {
        const id = (e.PartitionValues ?? []).join('/');
        if (e.ErrorDetail?.ErrorCode === 'AlreadyExistsException') already++;
        else failed.set(id, `${e.ErrorDetail?.ErrorCode ?? 'unknown'}: ${e.ErrorDetail?.ErrorMessage ?? ''}`);
      }
      stats.partitionsAlreadyThere += already;
      stats.partitionsCreated += pending.length - already - failed.size;
      if (failed.size === 0) return;
      pending = pending.filter((p) => failed.has(p.values.join('/')));
      if (attempt + 1 >= retry.attempts) {
        const detail = [...failed].map(([id, why]) => `${id} (${why})`).join(', ');
        throw cloudErrors.create('CLD_CATALOG', `BatchCreatePartition ${table}: ${failed.size} partition(s) failed: ${detail}`);
      }
      await backoff(retry, attempt);
    }
  };

  /** BatchUpdatePartition (≤ 100 per call); partitions Glue does not have yet are created instead. */
  const replaceBatch = async (table: string, batch: readonly CatalogPartition[]): Promise<void> => {
    const columns = await columnsOf(table);
    const input = (p: CatalogPartition): PartitionInput => ({
      Values: [...p.values],
      StorageDescriptor: storageDescriptor(s3Root + p.location, columns),
      ...(p.parameters === undefined ? {} : { Parameters: { ...p.parameters } }),
    });
    let pending = [...batch];
    for (let attempt = 0; ; attempt++) {
      const result = await call(`BatchUpdatePartition ${table}`, () =>
        client.send(
          new BatchUpdatePartitionCommand({
            ...catalogId,
            DatabaseName: database,
            TableName: table,
            Entries: pending.map((p) => ({ PartitionValueList: [...p.values], PartitionInput: input(p) })),
          }),
        ),
      );
      const missing: CatalogPartition[] = [];
      const failed = new Map<string, string>();
      const byId = new Map(pending.map((p) => [p.values.join('/'), p]));
      for (const e of result.Errors ?? []) {
        const id = (e.PartitionValueList ?? []).join('/');
        const p = byId.get(id);
        if (p !== undefined && e.ErrorDetail?.ErrorCode === 'EntityNotFoundException') missing.push(p);
        else failed.set(id, `${e.ErrorDetail?.ErrorCode ?? 'unknown'}: ${e.ErrorDetail?.ErrorMessage ?? ''}`);
      }
      stats.partitionsReplaced += pending.length - missing.length - failed.size;
      if (missing.length > 0) {
        const created = await call(`BatchCreatePartition ${table}`, () =>
          client.send(new BatchCreatePartitionCommand({ ...catalogId, DatabaseName: database, TableName: table, PartitionInputList: missing.map(input) })),
        );
        const createFailed = new Set<string>();
        for (const e of created.Errors ?? []) {
          const id = (e.PartitionValues ?? []).join('/');
          // Created meanwhile by someone else: update it on the next attempt.
          if (e.ErrorDetail?.ErrorCode === 'AlreadyExistsException') failed.set(id, 'AlreadyExistsException: created meanwhile');
          else failed.set(id, `${e.ErrorDetail?.ErrorCode ?? 'unknown'}: ${e.ErrorDetail?.ErrorMessage ?? ''}`);
          createFailed.add(id);
        }
        stats.partitionsCreated += missing.filter((p) => !createFailed.has(p.values.join('/'))).length;
      }
      if (failed.size === 0) return;
      pending = pending.filter((p) => failed.has(p.values.join('/')));
      if (attempt + 1 >= retry.attempts) {
        const detail = [...failed].map(([id, why]) => `${id} (${why})`).join(', ');
        throw cloudErrors.create('CLD_CATALOG', `BatchUpdatePartition ${table}: ${failed.size} partition(s) failed: ${detail}`);
      }
      await backoff(retry, attempt);
    }
  };

  // Glue has no lock: partitions are held within this process (the sink and its own compactor); a
  // compaction in another process relies on the carry-overs after its switch (lake/compaction.ts).
  const held = createKeyedMutex();

  return {
    database,
    ensureTable,
    lockPartition(table, values) {
      if (closed) return Promise.reject(cloudErrors.create('CLD_CLOSED', 'glue catalog'));
      return held(`${table}\u0000${values.join('\u0000')}`);
    },
    async replacePartitions(table, partitions) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'glue catalog');
      for (let i = 0; i < partitions.length; i += GLUE_MAX_PARTITIONS_PER_CALL) {
        await replaceBatch(table, partitions.slice(i, i + GLUE_MAX_PARTITIONS_PER_CALL));
      }
    },
    async partition(table, values) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'glue catalog');
      let got;
      try {
        got = await withAwsRetry(retry, () => client.send(new GetPartitionCommand({ ...catalogId, DatabaseName: database, TableName: table, PartitionValues: [...values] })));
      } catch (err) {
        if (errorName(err) === 'EntityNotFoundException') return undefined;
        throw cloudErrors.create('CLD_CATALOG', `GetPartition ${table} ${values.join('/')}: ${errorName(err)}: ${errorMessage(err)}`, err);
      }
      const p = got.Partition;
      if (p === undefined) return undefined;
      const location = p.StorageDescriptor?.Location ?? '';
      return {
        values: [...(p.Values ?? values)],
        location: location.startsWith(s3Root) ? location.slice(s3Root.length) : location,
        ...(p.Parameters === undefined ? {} : { parameters: { ...p.Parameters } }),
      };
    },
    async partitions(table) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'glue catalog');
      const out: CatalogPartition[] = [];
      let next: string | undefined;
      do {
        let page;
        try {
          page = await withAwsRetry(retry, () =>
            client.send(new GetPartitionsCommand({ ...catalogId, DatabaseName: database, TableName: table, ...(next === undefined ? {} : { NextToken: next }) })),
          );
        } catch (err) {
          if (errorName(err) === 'EntityNotFoundException') return [];
          throw cloudErrors.create('CLD_CATALOG', `GetPartitions ${table}: ${errorName(err)}: ${errorMessage(err)}`, err);
        }
        for (const p of page.Partitions ?? []) {
          const location = p.StorageDescriptor?.Location ?? '';
          out.push({
            values: [...(p.Values ?? [])],
            // Locations below the lake root come back as keys, like the local catalog's.
            location: location.startsWith(s3Root) ? location.slice(s3Root.length) : location,
            ...(p.Parameters === undefined ? {} : { parameters: { ...p.Parameters } }),
          });
        }
        next = page.NextToken;
      } while (next !== undefined && next !== '');
      return out;
    },
    async addPartitions(table, partitions) {
      if (closed) throw cloudErrors.create('CLD_CLOSED', 'glue catalog');
      for (let i = 0; i < partitions.length; i += GLUE_MAX_PARTITIONS_PER_CALL) {
        await addBatch(table, partitions.slice(i, i + GLUE_MAX_PARTITIONS_PER_CALL));
      }
    },
    stats: () => ({ ...stats }),
    async close() {
      if (closed) return;
      closed = true;
      if (owned) client.destroy();
    },
  };
}

/** Athena partition projection over event_date (daily) and event_hour (0–23), and where the files are. */
export function projectionParameters(table: CatalogTable, location: string, dateRange = '2024-01-01,NOW'): Record<string, string> {
  const template = `${location}${table.partitionKeys.map((k) => `${k.name}=\${${k.name}}`).join('/')}/`;
  return {
    'projection.enabled': 'true',
    'projection.event_date.type': 'date',
    'projection.event_date.range': dateRange,
    'projection.event_date.format': 'yyyy-MM-dd',
    'projection.event_date.interval': '1',
    'projection.event_date.interval.unit': 'DAYS',
    'projection.event_hour.type': 'integer',
    'projection.event_hour.range': '0,23',
    'storage.location.template': template,
  };
}

function storageDescriptor(location: string, columns: readonly GlueColumn[]): StorageDescriptor {
  return {
    Columns: [...columns],
    Location: location,
    InputFormat: PARQUET_INPUT_FORMAT,
    OutputFormat: PARQUET_OUTPUT_FORMAT,
    SerdeInfo: { SerializationLibrary: PARQUET_SERDE, Parameters: { 'serialization.format': '1' } },
  };
}

function glueColumn(column: Column): GlueColumn {
  // Glue limits comments to 255 characters.
  const comment = [column.description, column.unit === undefined ? undefined : `unit ${column.unit}`].filter((s) => s !== undefined).join('; ');
  return { Name: column.name, Type: GLUE_TYPES[column.type], ...(comment === '' ? {} : { Comment: comment.slice(0, 255) }) };
}

const FROM_GLUE = new Map<string, ColumnType>(Object.entries(GLUE_TYPES).map(([k, v]) => [v, k as ColumnType]));

function fromGlueColumn(column: GlueColumn): Column {
  const name = column.Name ?? '';
  const type = FROM_GLUE.get((column.Type ?? '').toLowerCase());
  // A type we did not write (someone edited the table): keep the column, compare by an impossible type.
  return { name, type: type ?? (`glue:${column.Type ?? ''}` as ColumnType), nullable: true, source: [] };
}

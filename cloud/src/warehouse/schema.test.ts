// Warehouse DDL from the protocol's table schemas, and its evolution on a real PostgreSQL: an added
// protocol field becomes an added column, a changed type is refused with the column named.
import { describe, expect, it } from 'vitest';
import { eventTable, type TableSchema } from '@city/protocol';
import { onTeardown } from '../../../test/support/teardown.ts';
import { TEST_POSTGRES_URL, testSchema } from '../../../test/support/warehouse.ts';
import { createLocalFolderStore } from '../ports/store/local.ts';
import { createWarehouseLoader } from './loader.ts';
import { createPostgresWarehouse } from './postgres.ts';
import { createTableSql, factTable, planSchema, warehouseTable } from './schema.ts';

describe('warehouse DDL', () => {
  it('has a fact table per kind keyed by event id, with the protocol\'s columns and string lengths', () => {
    const vehicle = factTable('vehicle');
    expect(vehicle.key).toEqual(['event_id']);
    expect(vehicle.sortKey).toBe('date_observed');
    expect(vehicle.columns.map((c) => c.name)).toEqual([...eventTable('vehicle').columns.map((c) => c.name), 'event_date', 'event_hour']);
    expect(vehicle.fileColumns).toEqual(eventTable('vehicle').columns.map((c) => c.name));
    const pg = createTableSql(vehicle, 'postgres', 'city');
    expect(pg).toMatch(/^CREATE TABLE IF NOT EXISTS "city"."vehicle" \(/);
    expect(pg).toContain('"event_id" VARCHAR(64) NOT NULL');
    expect(pg).toContain('"vehicle_type" VARCHAR(15)');
    expect(pg).toContain('"speed" DOUBLE PRECISION');
    expect(pg).toContain('"date_observed" TIMESTAMPTZ');
    expect(pg).toContain('PRIMARY KEY ("event_id")');
    expect(pg).not.toContain('DISTSTYLE');
    const rs = createTableSql(vehicle, 'redshift', 'city');
    // Redshift counts bytes: four per character of the protocol's limit.
    expect(rs).toContain('"event_id" VARCHAR(256) NOT NULL');
    expect(rs).toMatch(/\) DISTSTYLE AUTO SORTKEY \("date_observed"\)$/);
    expect(createTableSql(factTable('phone'), 'redshift')).toMatch(/"message" VARCHAR\(\d+\)/);
  });

  it('takes any table schema passed in, e.g. a processed table keyed by its group-by columns', () => {
    const processed: TableSchema = {
      name: 'traffic_district_5m',
      columns: [
        { name: 'bucket_start', type: 'timestamp', nullable: false, source: [] },
        { name: 'district', type: 'string', nullable: false, source: [] },
        { name: 'mean_speed_kmh', type: 'double', nullable: true, source: [] },
      ],
      partitionKeys: eventTable('vehicle').partitionKeys,
    };
    const table = warehouseTable(processed, { key: ['bucket_start', 'district'], sortKey: 'bucket_start', lengths: { district: 32 } });
    expect(createTableSql(table, 'redshift')).toBe(
      'CREATE TABLE IF NOT EXISTS "traffic_district_5m" (\n  "bucket_start" TIMESTAMPTZ NOT NULL,\n  "district" VARCHAR(128) NOT NULL,\n' +
        '  "mean_speed_kmh" DOUBLE PRECISION,\n  "event_date" VARCHAR(40),\n  "event_hour" BIGINT,\n  PRIMARY KEY ("bucket_start", "district")\n) DISTSTYLE AUTO SORTKEY ("bucket_start")',
    );
    expect(() => warehouseTable(processed, { key: ['nope'] })).toThrow(/no column nope/);
  });

  it('plans added columns and widened strings, and refuses a changed type', () => {
    const vehicle = factTable('vehicle');
    const existing = vehicle.columns
      .filter((c) => c.name !== 'heading')
      .map((c) => ({ table: 'vehicle', column: c.name, dataType: c.name === 'speed' ? 'character varying' : ({ string: 'character varying', int64: 'bigint', double: 'double precision', boolean: 'boolean', timestamp: 'timestamp with time zone' } as const)[c.type], maxLength: c.name === 'vehicle_type' ? 5 : c.maxLength ?? null }));
    expect(() => planSchema([vehicle], existing, 'postgres', 'city')).toThrow(expect.objectContaining({ code: 'CLD_WAREHOUSE_SCHEMA', message: expect.stringMatching(/vehicle\.speed is character varying in the warehouse but double/) }));
    const fine = existing.map((c) => (c.column === 'speed' ? { ...c, dataType: 'double precision' } : c));
    const plan = planSchema([vehicle], fine, 'postgres', 'city');
    expect(plan.added).toEqual(['vehicle.heading']);
    expect(plan.widened).toEqual(['vehicle.vehicle_type']);
    expect(plan.statements).toEqual([
      'ALTER TABLE "city"."vehicle" ALTER COLUMN "vehicle_type" TYPE VARCHAR(15)',
      'ALTER TABLE "city"."vehicle" ADD COLUMN "heading" DOUBLE PRECISION',
    ]);
  });

  it('on PostgreSQL: init adds a column the protocol has and the table lacks, and refuses a changed type', async () => {
    const schema = testSchema();
    const warehouse = createPostgresWarehouse({ connectionString: TEST_POSTGRES_URL, schema });
    onTeardown(() => warehouse.close());
    const store = createLocalFolderStore('/nonexistent-lake');
    const loader = createWarehouseLoader({ warehouse, store });
    onTeardown(() => loader.close());
    await loader.init();
    // As if the table predated a protocol field.
    await warehouse.transaction([{ sql: `ALTER TABLE vehicle DROP COLUMN heading` }]);
    const plan = await loader.init();
    expect(plan.added).toEqual(['vehicle.heading']);
    const cols = await warehouse.query(`SELECT data_type FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = 'vehicle' AND column_name = 'heading'`);
    expect(cols.rows).toEqual([{ data_type: 'double precision' }]);
    await warehouse.transaction([{ sql: `ALTER TABLE weather ALTER COLUMN temperature TYPE VARCHAR(20)` }]);
    await expect(loader.init()).rejects.toMatchObject({ code: 'CLD_WAREHOUSE_SCHEMA', message: expect.stringMatching(/weather\.temperature is character varying in the warehouse but double/) });
  });
});

import { describe, expect, it } from 'vitest';
import { dataFileKey, dataFileName, isLakeTable, parseDataFileKey, partitionPrefix, tablePrefix, tableSchema } from './layout.ts';
import { DEADLETTER_TABLE, eventTable } from '@city/protocol';

describe('lake layout', () => {
  it('names a file after its Kafka source position, zero-padded so names sort by offset', () => {
    expect(dataFileName('city.vehicle.v1', 3, 42n)).toBe('city.vehicle.v1+3+0000000000000000042.parquet');
    expect(dataFileName('t', 0, '9223372036854775807')).toBe('t+0+9223372036854775807.parquet');
    const names = [5n, 40n, 300n, 2n].map((o) => dataFileName('t', 0, o));
    expect([...names].sort()).toEqual([2n, 5n, 40n, 300n].map((o) => dataFileName('t', 0, o)));
  });

  it('is a pure function of the source position', () => {
    const a = dataFileKey('vehicle', { event_date: '2024-05-01', event_hour: 7 }, { topic: 'city.vehicle.v1', partition: 1, firstOffset: 10n });
    const b = dataFileKey('vehicle', { event_date: '2024-05-01', event_hour: 7 }, { topic: 'city.vehicle.v1', partition: 1, firstOffset: '10' });
    expect(a).toBe(b);
  });

  it('lays events out Hive-style under curated/kind=… and dead letters under deadletter/', () => {
    expect(dataFileKey('air_quality', { event_date: '2024-05-01', event_hour: 7 }, { topic: 'city.air_quality.v1', partition: 0, firstOffset: 0n })).toBe(
      'curated/kind=air_quality/event_date=2024-05-01/event_hour=7/city.air_quality.v1+0+0000000000000000000.parquet',
    );
    expect(partitionPrefix('deadletter', { event_date: '2024-12-31', event_hour: 23 })).toBe('deadletter/event_date=2024-12-31/event_hour=23/');
    expect(tablePrefix('gps')).toBe('curated/kind=gps/');
  });

  it('parses a key back into its parts', () => {
    const key = dataFileKey('deadletter', { event_date: '2024-05-01', event_hour: 0 }, { topic: 'city.deadletter.v1', partition: 2, firstOffset: 99n });
    expect(parseDataFileKey(key)).toEqual({
      table: 'deadletter',
      partition: { event_date: '2024-05-01', event_hour: 0 },
      topic: 'city.deadletter.v1',
      kafkaPartition: 2,
      firstOffset: 99n,
    });
    expect(parseDataFileKey('curated/kind=nope/event_date=2024-05-01/event_hour=0/t+0+1.parquet')).toBeUndefined();
    expect(parseDataFileKey('_scratch/x/1-t+0+1.parquet')).toBeUndefined();
  });

  it('lays the raw zone out under raw/kind=… and parses its keys back', () => {
    const key = dataFileKey('raw_gps', { event_date: '2024-05-01', event_hour: 9 }, { topic: 'city.gps.v1', partition: 1, firstOffset: 5n });
    expect(key).toBe('raw/kind=gps/event_date=2024-05-01/event_hour=9/city.gps.v1+1+0000000000000000005.parquet');
    expect(tablePrefix('raw_gps')).toBe('raw/kind=gps/');
    expect(parseDataFileKey(key)).toMatchObject({ table: 'raw_gps', kafkaPartition: 1, firstOffset: 5n });
    expect(isLakeTable('raw_gps')).toBe(true);
    expect(isLakeTable('raw_nope')).toBe(false);
    expect(tableSchema('raw_gps').columns.map((c) => c.name)).toContain('payload');
    expect(parseDataFileKey('raw/kind=nope/event_date=2024-05-01/event_hour=0/t+0+1.parquet')).toBeUndefined();
  });

  it('refuses values that would break the layout', () => {
    expect(() => dataFileName('a/b', 0, 0n)).toThrow(RangeError);
    expect(() => dataFileName('t', -1, 0n)).toThrow(RangeError);
    expect(() => dataFileName('t', 0, -1n)).toThrow(RangeError);
    expect(() => partitionPrefix('gps', { event_date: '2024-5-1', event_hour: 0 })).toThrow(RangeError);
    expect(() => partitionPrefix('gps', { event_date: '2024-05-01', event_hour: 24 })).toThrow(RangeError);
  });

  it('takes table schemas from protocol', () => {
    expect(tableSchema('weather')).toBe(eventTable('weather'));
    expect(tableSchema('deadletter')).toBe(DEADLETTER_TABLE);
  });
});

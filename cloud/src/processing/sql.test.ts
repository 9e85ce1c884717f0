// Both forms of every processed table's SQL give the same rows on the same lake. Athena cannot run
// here, so what is executed is this: the DuckDB form as is, and the Athena (Trino) form's text on
// DuckDB too, with Trino's two epoch functions (from_unixtime, to_unixtime) defined as DuckDB macros of
// the same meaning. Executed for real: every expression either form shares, the Athena time buckets'
// arithmetic, its casts and its naive timestamp literals. Not executed: Trino's own implementations of
// those functions and of round(), the types Trino infers (checked by reading the text instead).
import { describe, expect, it } from 'vitest';
import { writeCityLake } from '../../../test/support/city-lake.ts';
import { tempDir } from '../../../test/support/teardown.ts';
import { openLake } from '../ports/query/index.ts';
import { PROCESSED_TABLES } from './definitions.ts';
import { aqiPm25Sql, processedSql } from './sql.ts';

const START = Date.UTC(2024, 4, 1, 0);
const WINDOW = { start: new Date(START), end: new Date(START + 3_600_000), final: true };

/** Rows as comparable text: timestamps without their zone mark (DuckDB's TIMESTAMPTZ vs Trino's TIMESTAMP). */
const normal = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r).replace(/(\d{2}:\d{2}:\d{2}\.\d{3})Z"/g, '$1"'));

describe('processed SQL, DuckDB and Athena forms', () => {
  it('give the same rows for every table', async () => {
    const dir = tempDir('processing-sql-');
    await writeCityLake(dir, { devices: 150, startMs: START - 3_600_000, hours: 3 });
    const lake = await openLake(dir);
    try {
      await lake.query('CREATE MACRO to_unixtime(ts) AS epoch(ts)');
      await lake.query('CREATE MACRO from_unixtime(s) AS to_timestamp(s)');
      for (const t of PROCESSED_TABLES) {
        const window = t.grain === 'day' ? { ...WINDOW, end: new Date(START + 24 * 3_600_000) } : WINDOW;
        const duck = (await lake.query(processedSql(t, 'duckdb', window))).rows;
        const athena = (await lake.query(processedSql(t, 'athena', window))).rows;
        expect(duck.length, t.name).toBeGreaterThan(0);
        expect(normal(athena), t.name).toEqual(normal(duck));
      }
    } finally {
      lake.close();
    }
  });

  it('keep each dialect to its own functions and types, and Spark-friendly casts', () => {
    for (const t of PROCESSED_TABLES) {
      const athena = processedSql(t, 'athena', WINDOW);
      const duck = processedSql(t, 'duckdb', WINDOW);
      expect(athena, t.name).not.toMatch(/time_bucket|epoch\(|TIMESTAMPTZ|\bSTRING\b|::/);
      expect(duck, t.name).not.toMatch(/from_unixtime|to_unixtime|\bVARCHAR\b|::/);
      expect(athena + duck).not.toMatch(/VARCHAR\(/);
      // The partition is pruned by its date in both.
      expect(athena).toMatch(/event_date IN \([^)]*'2024-05-01'/);
      expect(athena).toContain("TIMESTAMP '2024-05-01 00:00:00'");
      expect(duck).toContain("TIMESTAMPTZ '2024-05-01 00:00:00+00'");
    }
  });

  it('maps PM2.5 onto the 2024 EPA AQI breakpoints', async () => {
    const dir = tempDir('processing-aqi-');
    const lake = await openLake(dir);
    try {
      const cases: [number, number][] = [[0, 0], [9.0, 50], [9.05, 50], [9.1, 51], [35.4, 100], [35.5, 101], [55.4, 150], [55.5, 151], [125.4, 200], [225.4, 300], [225.5, 301], [325.4, 500], [400, 500], [12.0, 56]];
      const sql = cases.map(([c], i) => `SELECT ${i} AS i, ${aqiPm25Sql(`${c}E0`)} AS aqi`).join(' UNION ALL ');
      const got = (await lake.query(`SELECT aqi FROM (${sql}) ORDER BY i`)).rows.map((r) => r.aqi);
      expect(got).toEqual(cases.map(([, aqi]) => aqi));
    } finally {
      lake.close();
    }
  });
});

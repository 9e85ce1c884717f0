// The query port: SQL over the lake's tables, answered by DuckDB locally or Athena in AWS, with results
// in the same plain shape so callers (the CLI, tests, named queries) do not care which.

export type LakeValue = string | number | boolean | null | LakeValue[] | { [key: string]: LakeValue };

export interface QueryResult {
  columns: string[];
  rows: Record<string, LakeValue>[];
}

/** The engines a named query has SQL for. */
export type QueryEngineName = 'duckdb' | 'athena';
